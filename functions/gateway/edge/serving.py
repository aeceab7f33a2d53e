"""What both API surfaces share once a conversation is ready: open the answer, stream or collect it, record it."""

from __future__ import annotations

import contextlib
import json
import logging
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from functools import partial
from typing import Protocol

import anyio
from fastapi import Request
from fastapi.responses import StreamingResponse
from starlette.background import BackgroundTask
from starlette.types import Receive, Scope, Send

from gateway import observability
from gateway.edge.deps import runtime_of
from gateway.edge.http_io import (
    SSE_HEADERS,
    UNRENDERABLE_MESSAGE,
    ModelT,
    decode_json,
    is_anthropic_path,
    parse_model,
    read_body,
)
from gateway.edge.json_limits import JsonLimits
from gateway.edge.request_log import RequestRecord, record_of
from gateway.edge.session_edge import request_session
from gateway.runtime import GatewayRuntime, PreparedAnswer
from gateway.upstream.pipeline import AnswerStats
from gateway.usage.counters import OTHER_MODELS, RequestUsage
from kiro_core.convert.options import ConversionOptions
from kiro_core.errors import ErrorKind, GatewayError, anthropic_error_body, openai_error_body
from kiro_core.events import OutputEvent, StreamError
from kiro_core.unified import Conversation

log = logging.getLogger(__name__)


class DisconnectAwareStreamingResponse(StreamingResponse):
    """A StreamingResponse that stops (and so closes the upstream read) as soon as the client disconnects.

    Starlette only watches for `http.disconnect` on servers older than ASGI 2.4 and otherwise waits for a failed
    write, but uvicorn drops writes to a gone client silently: the upstream answer would be read (and billed, on
    Lambda) to its end. The request body has been read by the time this runs, so `receive` only reports the end.
    """

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        async with anyio.create_task_group() as group:

            async def until_done(step: Callable[[], Awaitable[None]]) -> None:
                await step()
                group.cancel_scope.cancel()

            group.start_soon(until_done, partial(self.stream_response, send))
            await until_done(partial(self.listen_for_disconnect, receive))
        if self.background is not None:
            await self.background()


class StreamFormatter(Protocol):
    def start(self) -> bytes: ...

    def format(self, events: list[OutputEvent]) -> bytes: ...


async def open_answer(request: Request, runtime: GatewayRuntime, conversation: Conversation) -> PreparedAnswer:
    """Open the upstream answer; failures before the commit boundary propagate as GatewayErrors (HTTP errors)."""
    record = record_of(request)
    record.update(model=conversation.model, stream=conversation.stream)
    await runtime.prefetch_state()  # a new instance: catalogue and account states in one call
    with contextlib.suppress(Exception):  # counted under Kiro's model id even when the answer fails to open
        record.update(kiro_model=(await runtime.models.catalog()).resolve(conversation.model).kiro_id)
    stats = AnswerStats()
    try:
        answer = await runtime.open_answer(conversation, stats)
    except Exception as error:
        stats.error_kind = stats.error_kind or _error_kind(error)
        await finish_record(runtime, record, stats, conversation.stream)
        raise
    record.kiro_payload = answer.kiro_request.body
    record.update(kiro_model=answer.model.kiro_id, input_tokens_estimate=answer.input_tokens,
                  conversation_id=answer.ids.conversation_id,
                  conversation_from=(conversation.session.source if answer.ids.derived and conversation.session
                                     else "random"))
    return answer


async def read_conversation(
    request: Request, model: type[ModelT], adapter: Callable[[ModelT, ConversionOptions], Conversation]
) -> tuple[GatewayRuntime, ModelT, Conversation]:
    """Body → validated client request → unified conversation; every failure is a 4xx in the client's shape."""
    runtime = await runtime_of(request)
    settings = runtime.settings
    body = await read_body(request, settings.server.max_request_body_bytes)

    def prepare() -> tuple[ModelT, Conversation]:
        parsed = parse_model(model, decode_json(body, JsonLimits.of(settings)))
        return parsed, adapter(parsed, runtime.conversion)

    # A megabyte body takes tens of milliseconds to decode, check and convert: not on the event loop.
    large = len(body) >= settings.processing.cpu_offload_bytes
    parsed, conversation = await runtime.run_cpu(prepare) if large else prepare()
    conversation.session = request_session(request, parsed)
    conversation.body_bytes = len(body)
    return runtime, parsed, conversation


def unrenderable_stream_error(path: str) -> bytes:
    """The last event of a stream whose own failure could not be rendered: fixed text in the route's error shape
    (Anthropic `error`, OpenAI error chunk, Responses `error` event), never a stream that just stops."""
    error = GatewayError(ErrorKind.INTERNAL, UNRENDERABLE_MESSAGE)
    if is_anthropic_path(path):
        return f"event: error\ndata: {json.dumps(anthropic_error_body(error))}\n\n".encode()
    if path.startswith("/v1/responses"):
        event = {"type": "error", "code": "server_error", "message": UNRENDERABLE_MESSAGE, "param": None,
                 "sequence_number": 0}
        return f"event: error\ndata: {json.dumps(event)}\n\n".encode()
    return f"data: {json.dumps(openai_error_body(error))}\n\n".encode()


def stream_response(
    request: Request, answer: PreparedAnswer, formatter: StreamFormatter, keepalive: bytes
) -> StreamingResponse:
    """SSE response: the formatter's opening, then each batch as one write, keep-alives during silence."""
    record = record_of(request)

    async def body() -> AsyncIterator[bytes]:
        try:
            yield formatter.start()
            async for batch in answer.stream:
                yield keepalive if batch is None else formatter.format(batch)
        except Exception as error:  # a bug must still end the stream with an error, never a silent success
            log.exception("stream failed", extra={"request_id": record.request_id})
            answer.stream.stats.error_kind = "INTERNAL"
            try:
                failure = formatter.format([StreamError("INTERNAL", f"Internal gateway error: {type(error).__name__}")])
            except Exception:  # the formatter cannot even render its failure: a fixed event in the client's shape
                log.exception("stream failure not renderable", extra={"request_id": record.request_id})
                failure = unrenderable_stream_error(request.url.path)
            yield failure
        finally:
            with anyio.CancelScope(shield=True):  # runs in a cancelled scope when the client went away
                await answer.stream.aclose()
                await finish_record(await runtime_of(request), record, answer.stream.stats, True)

    return DisconnectAwareStreamingResponse(
        body(), media_type="text/event-stream", headers=SSE_HEADERS, background=BackgroundTask(answer.stream.aclose)
    )


async def collect_answer(request: Request, answer: PreparedAnswer) -> list[OutputEvent]:
    """The whole answer for a non-streaming client; in-stream failures raise (→ HTTP error in the client's shape)."""
    try:
        return await answer.stream.collect()
    finally:
        await finish_record(await runtime_of(request), record_of(request), answer.stream.stats, False)


def _error_kind(error: Exception) -> str:
    kind = getattr(error, "kind", None)
    return str(getattr(kind, "name", None) or type(error).__name__)


async def _counted_model(runtime: GatewayRuntime, name: str) -> str:
    """The model name a request is counted under: a catalogue (or alias / hidden) model by its id, anything else
    under one bucket, so client-chosen names never become counters (a day's item must not grow with them)."""
    try:
        resolved = (await runtime.models.catalog()).resolve(name) if name else None
    except Exception:  # the catalogue never fails a request; its absence must not make names countable either
        resolved = None
    return resolved.kiro_id if resolved is not None and resolved.source != "passthrough" else OTHER_MODELS


async def finish_record(runtime: GatewayRuntime, record: RequestRecord, stats: AnswerStats, streamed: bool) -> None:
    """The request log fields, the EMF metrics and the usage counters of one finished, failed or abandoned answer.

    An answer that ended without its Finish (the client hung up, or it failed part-way) records the credits Kiro
    metered before that; when none were metered after the answer began, it is counted as `creditsUnknown`, never as
    a free answer."""
    usage = stats.finish.usage if stats.finish else None
    credits = usage.credits if usage else stats.metered
    began = stats.first_output_at is not None
    abandoned = stats.finish is None and stats.error_kind is None and began
    record.update(
        ttft_ms=stats.ttft_ms,
        upstream_attempts=stats.upstream_attempts or None,
        finish_reason=stats.finish.reason if stats.finish else None,
        input_tokens=usage.input_tokens if usage else None,
        output_tokens=usage.output_tokens if usage else None,
        credits=credits,
        error_kind=stats.error_kind,
        abandoned=abandoned or None,
        credits_unknown=(credits is None and began) or None,
    )
    observability.record_request(
        model=str(record.fields.get("model", "")),
        ttft_ms=stats.ttft_ms,
        input_tokens=usage.input_tokens if usage else 0,
        output_tokens=usage.output_tokens if usage else 0,
        error_kind=stats.error_kind,
        streamed=streamed,
        credits=credits,
    )
    observability.record_key_request(
        str(record.fields.get("client_key", "")), input_tokens=usage.input_tokens if usage else 0,
        output_tokens=usage.output_tokens if usage else 0, credits=credits,
        error_kind=stats.error_kind,
    )
    fields = record.fields
    await runtime.usage.record(RequestUsage(
        model=await _counted_model(runtime, str(fields.get("kiro_model") or fields.get("model") or "")),
        key_name=str(fields.get("client_key") or "unknown"),
        credits=credits,
        input_tokens=usage.input_tokens if usage else 0,
        output_tokens=usage.output_tokens if usage else 0,
        ttft_ms=stats.ttft_ms,
        error_kind=stats.error_kind,
        at=time.time(),
        credits_unknown=credits is None and began,
    ))
