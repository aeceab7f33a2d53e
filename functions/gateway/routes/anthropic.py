"""Anthropic surface: `/v1/messages` and `/v1/messages/count_tokens` (Claude Code's `?beta=true` included)."""

from __future__ import annotations

import uuid

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, Response

from gateway.http_io import error_sse, parse_model, read_json
from gateway.routes.deps import runtime_of
from gateway.serving import collect_answer, open_answer, stream_response
from kiro_core.convert.anthropic import anthropic_to_conversation
from kiro_core.errors import ErrorKind, GatewayError
from kiro_core.format.anthropic import AnthropicStreamFormatter, anthropic_message
from kiro_core.models.anthropic import CountTokensRequest, MessagesRequest
from kiro_core.stream import collect
from kiro_core.tokens import estimate_input_tokens

router = APIRouter()


@router.post("/v1/messages")
async def messages(request: Request) -> Response:
    runtime = await runtime_of(request)
    data = await read_json(request, runtime.settings.max_request_body_bytes)
    parsed = parse_model(MessagesRequest, data)
    conversation = anthropic_to_conversation(parsed, runtime.conversion)
    answer = await open_answer(request, runtime, conversation)
    message_id = f"msg_{uuid.uuid4().hex[:24]}"
    if conversation.stream:
        formatter = AnthropicStreamFormatter(conversation.model, message_id, answer.input_tokens)

        def internal_error(message: str) -> bytes:
            return error_sse(request.url.path, GatewayError(ErrorKind.INTERNAL, message))

        return stream_response(request, answer, formatter, formatter.ping(), internal_error)
    events = await collect_answer(request, answer)
    return JSONResponse(anthropic_message(collect(events), conversation.model, message_id, answer.input_tokens))


@router.post("/v1/messages/count_tokens")
async def count_tokens(request: Request) -> dict[str, int]:
    runtime = await runtime_of(request)
    data = await read_json(request, runtime.settings.max_request_body_bytes)
    parsed = parse_model(CountTokensRequest, data)
    conversation = anthropic_to_conversation(parsed, runtime.conversion)
    return {"input_tokens": estimate_input_tokens(conversation)}
