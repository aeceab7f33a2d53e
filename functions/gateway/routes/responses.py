"""OpenAI Responses surface: `POST /v1/responses`, the only API Codex CLI speaks.

Stateless by design: the client sends its whole history every turn (Codex does, with `store: false`), so there is
no `GET /v1/responses/{id}` and `previous_response_id` is refused by the adapter. Codex may first try a WebSocket
upgrade of `GET /v1/responses`; a Function URL cannot hold one, so it is refused at once with 426, the status Codex
falls back to HTTP on without retrying (docs/protocol.md §Codex WebSocket).

Imports of the request machinery (upstream client, converters, formatters, pydantic request models) are made in the
handler, on its first call: a process serves one API surface more often than not, and none of it is needed to
answer `/health`, so start-up (Lambda's readiness check, `kiro-gateway serve`) does not pay for it.
"""

from __future__ import annotations

import time
import uuid
from typing import TYPE_CHECKING

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, Response

from gateway.edge.openapi_bodies import json_body

if TYPE_CHECKING:
    from gateway.runtime import GatewayRuntime
    from kiro_core.models.responses import ResponsesRequest
    from kiro_core.unified import Conversation

router = APIRouter()

RESPONSES_KEEPALIVE = b": keep-alive\n\n"
ENCRYPTED_REASONING = "reasoning.encrypted_content"  # `include` value asking for replayable reasoning (Codex sends it)


@router.get("/v1/responses", include_in_schema=False)
async def refuse_websocket(request: Request) -> Response:
    """The WebSocket transport Codex tries first: 426 (Codex: "fall back to HTTP"), plain GETs: 405."""
    from kiro_core.errors import ErrorKind, GatewayError, openai_error_body

    if "websocket" not in request.headers.get("upgrade", "").lower():
        error = GatewayError(ErrorKind.INVALID_REQUEST, "Use POST /v1/responses.", status=405)
        return JSONResponse(openai_error_body(error), status_code=405, headers={"allow": "POST"})
    error = GatewayError(ErrorKind.INVALID_REQUEST, "This gateway serves /v1/responses over HTTP only (POST with "
                         "server-sent events), not WebSocket; set supports_websockets = false for the provider.",
                         status=426)
    return JSONResponse(openai_error_body(error), status_code=426, headers={"connection": "close"})


@router.post("/v1/responses", openapi_extra=json_body("kiro_core.models.responses:ResponsesRequest"))
async def create_response(request: Request) -> Response:
    # lazy: conversion and upstream code load with the first request, so /health answers sooner (cold start)
    from gateway.edge.serving import collect_answer, open_answer, read_conversation, stream_response
    from kiro_core.convert.responses import custom_tool_names, responses_to_conversation
    from kiro_core.format.responses import ResponsesStreamFormatter, responses_object
    from kiro_core.models.responses import ResponsesRequest
    from kiro_core.stream import collect

    runtime, parsed, conversation = await read_conversation(request, ResponsesRequest, responses_to_conversation)
    if parsed.tools and any(tool.type not in ("function", "custom") for tool in parsed.tools):
        # lazy: conversion and upstream code load with the first request, so /health answers sooner (cold start)
        from gateway.web_search.serve import responses_web_search

        if responses_web_search(runtime.settings, parsed, conversation):
            return await _with_web_search(request, runtime, parsed, conversation)
    answer = await open_answer(request, runtime, conversation)
    response_id = f"resp_{uuid.uuid4().hex}"
    created_at = int(time.time())
    echo = parsed.echo()
    custom_tools = custom_tool_names(parsed)
    parallel = parsed.parallel_tool_calls is not False
    encrypted = ENCRYPTED_REASONING in (parsed.include or [])
    minted = (answer.model.kiro_id, answer.kiro_request.tool_names) \
        if runtime.settings.conversion.bind_reasoning_signatures else None
    if conversation.stream:
        formatter = ResponsesStreamFormatter(conversation.model, response_id, created_at, echo,
                                             custom_tools=custom_tools, parallel_tool_calls=parallel,
                                             include_encrypted=encrypted, minted=minted)
        return stream_response(request, answer, formatter, RESPONSES_KEEPALIVE)
    events = await collect_answer(request, answer)
    body = responses_object(collect(events), conversation.model, response_id, created_at, echo,
                            custom_tools=custom_tools, parallel_tool_calls=parallel, include_encrypted=encrypted,
                            minted=minted)
    return JSONResponse(body)


async def _with_web_search(request: Request, runtime: GatewayRuntime, parsed: ResponsesRequest,
                           conversation: Conversation) -> Response:
    """The same response, with the gateway running the model's web searches (`web_search_call` items)."""
    # lazy: conversion and upstream code load with the first request, so /health answers sooner (cold start)
    from gateway.edge.serving import collect_answer, stream_response
    from gateway.web_search.serve import open_search_answer
    from kiro_core.convert.responses import custom_tool_names
    from kiro_core.format.web_search import ResponsesSearchStreamFormatter, responses_call_id, responses_search_object

    answer = await open_search_answer(request, runtime, conversation, responses_call_id)
    response_id = f"resp_{uuid.uuid4().hex}"
    created_at = int(time.time())
    echo = parsed.echo()
    custom_tools = custom_tool_names(parsed)
    parallel = parsed.parallel_tool_calls is not False
    if conversation.stream:
        formatter = ResponsesSearchStreamFormatter(conversation.model, response_id, created_at, echo,
                                                   custom_tools=custom_tools, parallel_tool_calls=parallel)
        return stream_response(request, answer, formatter, RESPONSES_KEEPALIVE)  # type: ignore[arg-type]
    events = await collect_answer(request, answer)  # type: ignore[arg-type]
    return JSONResponse(responses_search_object(events, conversation.model, response_id, created_at, echo,
                                                custom_tools=custom_tools, parallel_tool_calls=parallel))
