"""OpenAI surface: `/v1/chat/completions`.

Imports of the request machinery (upstream client, converters, formatters, pydantic request models) are made in the
handler, on its first call: a process serves one API surface more often than not, and none of it is needed to
answer `/health`, so start-up (Lambda's readiness check, `kiro-gateway serve`) does not pay for it.
"""

from __future__ import annotations

import time
import uuid

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, Response

from gateway.edge.openapi_bodies import json_body

router = APIRouter()

OPENAI_KEEPALIVE = b": keep-alive\n\n"


@router.post("/v1/chat/completions", openapi_extra=json_body("kiro_core.models.openai:ChatCompletionRequest"))
async def chat_completions(request: Request) -> Response:
    # lazy: conversion and upstream code load with the first request, so /health answers sooner (cold start)
    from gateway.edge.serving import collect_answer, open_answer, read_conversation, stream_response
    from kiro_core.convert.openai import openai_to_conversation
    from kiro_core.format.openai import OpenAIStreamFormatter, openai_completion
    from kiro_core.models.openai import ChatCompletionRequest
    from kiro_core.stream import collect

    runtime, _chat, conversation = await read_conversation(request, ChatCompletionRequest, openai_to_conversation)
    answer = await open_answer(request, runtime, conversation)
    completion_id = f"chatcmpl-{uuid.uuid4().hex}"
    created = int(time.time())
    if conversation.stream:
        formatter = OpenAIStreamFormatter(conversation.model, completion_id, created, include_usage=True)
        return stream_response(request, answer, formatter, OPENAI_KEEPALIVE)
    events = await collect_answer(request, answer)
    return JSONResponse(openai_completion(collect(events), conversation.model, completion_id, created))
