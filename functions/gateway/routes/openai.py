"""OpenAI surface: `/v1/chat/completions` and `/v1/models`."""

from __future__ import annotations

import time
import uuid
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, Response

from gateway.routes.deps import runtime_of
from gateway.serving import collect_answer, open_answer, read_conversation, stream_response
from kiro_core.convert.openai import openai_to_conversation
from kiro_core.format.openai import OpenAIStreamFormatter, openai_completion
from kiro_core.models.openai import ChatCompletionRequest
from kiro_core.stream import collect

router = APIRouter()

OPENAI_KEEPALIVE = b": keep-alive\n\n"


@router.post("/v1/chat/completions")
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


@router.get("/v1/models")
async def list_models(request: Request) -> dict[str, Any]:
    """Both SDKs read this path: OpenAI fields plus Anthropic's (`type`, `display_name`, `has_more`...)."""
    runtime = await runtime_of(request)
    catalog = await runtime.models.catalog()
    created = int(time.time())
    data = [
        {
            "id": model["id"],
            "object": "model",
            "created": created,
            "owned_by": "anthropic",
            "type": "model",
            "display_name": model.get("display_name") or model["id"],
            "created_at": "2025-01-01T00:00:00Z",
            "max_input_tokens": model.get("max_input_tokens"),
            "max_output_tokens": model.get("max_output_tokens"),
        }
        for model in catalog.list_models()
    ]
    return {
        "object": "list",
        "data": data,
        "has_more": False,
        "first_id": data[0]["id"] if data else None,
        "last_id": data[-1]["id"] if data else None,
    }
