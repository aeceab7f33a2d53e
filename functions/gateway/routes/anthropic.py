"""Anthropic surface: `/v1/messages` and `/v1/messages/count_tokens` (Claude Code's `?beta=true` included)."""

from __future__ import annotations

import uuid

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, Response

from gateway.openapi_bodies import json_body
from gateway.serving import collect_answer, open_answer, read_conversation, stream_response
from kiro_core.convert.anthropic import anthropic_to_conversation
from kiro_core.format.anthropic import AnthropicStreamFormatter, anthropic_message
from kiro_core.models.anthropic import CountTokensRequest, MessagesRequest
from kiro_core.stream import collect
from kiro_core.tokens import estimate_input_tokens

router = APIRouter()


@router.post("/v1/messages", openapi_extra=json_body(MessagesRequest))
async def messages(request: Request) -> Response:
    runtime, _parsed, conversation = await read_conversation(request, MessagesRequest, anthropic_to_conversation)
    answer = await open_answer(request, runtime, conversation)
    message_id = f"msg_{uuid.uuid4().hex[:24]}"
    if conversation.stream:
        formatter = AnthropicStreamFormatter(conversation.model, message_id, answer.input_tokens)
        return stream_response(request, answer, formatter, formatter.ping())
    events = await collect_answer(request, answer)
    return JSONResponse(anthropic_message(collect(events), conversation.model, message_id, answer.input_tokens))


@router.post("/v1/messages/count_tokens", openapi_extra=json_body(CountTokensRequest))
async def count_tokens(request: Request) -> dict[str, int]:
    _runtime, _parsed, conversation = await read_conversation(request, CountTokensRequest, anthropic_to_conversation)
    return {"input_tokens": estimate_input_tokens(conversation)}
