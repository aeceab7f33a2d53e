"""Anthropic surface: `/v1/messages` and `/v1/messages/count_tokens` (Claude Code's `?beta=true` included).

Imports of the request machinery (upstream client, converters, formatters, pydantic request models) are made in the
handler, on its first call: a process serves one API surface more often than not, and none of it is needed to
answer `/health`, so start-up (Lambda's readiness check, `kiro-gateway serve`) does not pay for it.
"""

from __future__ import annotations

import asyncio
import uuid

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, Response

from gateway.edge.openapi_bodies import json_body

router = APIRouter()


@router.post("/v1/messages", openapi_extra=json_body("kiro_core.models.anthropic:MessagesRequest"))
async def messages(request: Request) -> Response:
    # lazy: conversion and upstream code load with the first request, so /health answers sooner (cold start)
    from gateway.edge.serving import collect_answer, open_answer, read_conversation, stream_response
    from kiro_core.convert.anthropic import anthropic_to_conversation
    from kiro_core.convert.reasoning import signature_binder
    from kiro_core.format.anthropic import AnthropicStreamFormatter, anthropic_message
    from kiro_core.models.anthropic import MessagesRequest
    from kiro_core.stream import collect

    runtime, parsed, conversation = await read_conversation(request, MessagesRequest, anthropic_to_conversation)
    message_id = f"msg_{uuid.uuid4().hex[:24]}"
    if parsed.tools and any(tool.is_server_tool for tool in parsed.tools):
        # lazy: conversion and upstream code load with the first request, so /health answers sooner (cold start)
        from gateway.web_search.serve import anthropic_web_search

        searched = await anthropic_web_search(request, runtime, parsed, conversation, message_id)
        if searched is not None:
            return searched
    answer = await open_answer(request, runtime, conversation)
    omit = bool(parsed.thinking and parsed.thinking.display == "omitted")
    sign = signature_binder(answer.model.kiro_id, answer.kiro_request.tool_names) \
        if runtime.settings.conversion.bind_reasoning_signatures else None
    if conversation.stream:
        formatter = AnthropicStreamFormatter(conversation.model, message_id, answer.input_tokens,
                                             omit_thinking=omit, sign=sign)
        return stream_response(request, answer, formatter, formatter.ping())
    events = await collect_answer(request, answer)
    return JSONResponse(anthropic_message(collect(events), conversation.model, message_id, answer.input_tokens,
                                          omit_thinking=omit, sign=sign))


@router.post("/v1/messages/count_tokens", openapi_extra=json_body("kiro_core.models.anthropic:CountTokensRequest"),
             response_model=None)
async def count_tokens(request: Request) -> dict[str, int]:
    # lazy: conversion and upstream code load with the first request, so /health answers sooner (cold start)
    from gateway.edge.serving import read_conversation
    from kiro_core.convert.anthropic import anthropic_to_conversation
    from kiro_core.models.anthropic import CountTokensRequest

    runtime, _parsed, conversation = await read_conversation(request, CountTokensRequest, anthropic_to_conversation)
    # The same figure a streamed answer reports, counted in a worker thread (bounded per text: kiro_core.tokens).
    return {"input_tokens": await asyncio.wrap_future(runtime.estimate(conversation))}
