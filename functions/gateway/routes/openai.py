"""OpenAI surface: `/v1/chat/completions`."""

from __future__ import annotations

import time
import uuid

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, Response

from gateway.openapi_bodies import json_body
from gateway.serving import collect_answer, open_answer, read_conversation, stream_response
from kiro_core.convert.openai import openai_to_conversation
from kiro_core.format.openai import OpenAIStreamFormatter, openai_completion
from kiro_core.models.openai import ChatCompletionRequest
from kiro_core.stream import collect

router = APIRouter()

OPENAI_KEEPALIVE = b": keep-alive\n\n"


@router.post("/v1/chat/completions", openapi_extra=json_body(ChatCompletionRequest))
async def chat_completions(request: Request) -> Response:
    runtime, _chat, conversation = await read_conversation(request, ChatCompletionRequest, openai_to_conversation)
    answer = await open_answer(request, runtime, conversation)
    completion_id = f"chatcmpl-{uuid.uuid4().hex}"
    created = int(time.time())
    if conversation.stream:
        formatter = OpenAIStreamFormatter(conversation.model, completion_id, created, include_usage=True)
        return stream_response(request, answer, formatter, OPENAI_KEEPALIVE)
    events = await collect_answer(request, answer)
    return JSONResponse(openai_completion(collect(events), conversation.model, completion_id, created))
