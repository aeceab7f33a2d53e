"""Kiro's binary response stream → typed stage-1 events (`kiro_core.events`).

Framing, CRC checks and header parsing are `botocore.eventstream.EventStreamBuffer`'s job (it is incremental, so a
frame may arrive in any number of network chunks, including a multi-byte UTF-8 character cut in half: payloads are
decoded per whole frame, never per chunk). This module only routes frames on `:message-type` / `:event-type` and
turns their JSON payloads into events.

Failure policy, chosen so that a damaged stream is never mistaken for a finished one:
* CRC mismatch, impossible lengths or unparsable headers → one `UpstreamErrorEvent(CORRUPT_FRAME)`, then every later
  byte is ignored. Frame boundaries come only from the length prefix, so once one is wrong there is no reliable way
  to find the next frame (scanning for a CRC-valid prelude could lock onto payload bytes).
* Bytes left over at `close()` → `UpstreamErrorEvent(TRUNCATED)`.
* `error` / `exception` frames and `invalidStateEvent` → `UpstreamErrorEvent`; decoding continues (the assembler
  decides what an error means).
* A frame that is intact but useless (unknown event type, invalid UTF-8, non-JSON payload) is skipped with a log
  line: the framing is still trustworthy, so later frames are fine.

Repeated identical `assistantResponseEvent` contents are *not* de-duplicated. The jwadow reference drops them
because its text scanner can see one payload twice; with real frame decoding each frame is one delta, and identical
consecutive deltas are legitimate ("\\n", "|", "**" in tables and Markdown), so dropping them would corrupt text.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from typing import Any

from botocore.eventstream import EventStreamBuffer

from kiro_core.events import (
    ContextUsageEvent,
    KiroEvent,
    MetadataEvent,
    MeteringEvent,
    ReasoningEvent,
    TextEvent,
    TokenUsageEvent,
    ToolUseEvent,
    UpstreamErrorEvent,
    UpstreamErrorKind,
)

logger = logging.getLogger(__name__)

_MIN_FRAME = 16  # prelude (12) + message CRC (4): the smallest frame the format allows
# botocore's buffer copies everything it still holds after each frame it parses, which is quadratic in the size of
# one `add_data`; feeding it at most this much at a time keeps a 4 MB feed linear (measured: 3.8 s → 0.3 s).
_SLICE = 8 * 1024
_MAX_ERROR_TEXT = 2000  # keep a runaway error payload out of client-facing messages

_loads = json.loads
_INF = float("inf")


def _text(payload: dict[str, Any]) -> KiroEvent | None:
    content = payload.get("content")
    if not content or content.__class__ is not str or payload.get("followupPrompt"):
        return None  # status-only frames (messageStatus COMPLETED) and follow-up suggestions carry no answer text
    return TextEvent(content)


def _tool_use(payload: dict[str, Any]) -> KiroEvent | None:
    raw = payload.get("input")
    value: str | dict[str, Any] | None
    if isinstance(raw, str | dict):
        value = raw
    elif raw is None:
        value = None
    else:  # a bare number/list is not a valid argument fragment in any known version; keep it as JSON text
        value = json.dumps(raw, separators=(",", ":"))
    return ToolUseEvent(
        tool_use_id=str(payload.get("toolUseId") or ""),
        name=str(payload.get("name") or ""),
        input=value,
        stop=bool(payload.get("stop")),
    )


def _metering(payload: dict[str, Any]) -> KiroEvent | None:
    usage = payload.get("usage")
    if not isinstance(usage, int | float) or isinstance(usage, bool):
        return None
    return MeteringEvent(usage=float(usage), unit=str(payload.get("unit") or "credit"))


def _context_usage(payload: dict[str, Any]) -> KiroEvent | None:
    value = payload.get("contextUsagePercentage")
    if not isinstance(value, int | float) or isinstance(value, bool):
        return None
    return ContextUsageEvent(percentage=float(value))


def _reasoning(payload: dict[str, Any]) -> KiroEvent | None:
    text = payload.get("text")
    signature = payload.get("signature")
    redacted = payload.get("redactedContent")
    if not text and not signature and not redacted:
        return None
    return ReasoningEvent(
        text=text if isinstance(text, str) else "",
        signature=signature if isinstance(signature, str) and signature else None,
        redacted_content=redacted if isinstance(redacted, str) and redacted else None,
    )


def _int(value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int | float) or value != value or value in (_INF, -_INF):
        return 0  # also NaN / Infinity, which Python's json accepts
    return int(value)


def _metadata(payload: dict[str, Any]) -> KiroEvent | None:
    usage = payload.get("tokenUsage")
    if not isinstance(usage, dict):  # what live streams send: still one of the trailer events that end an answer
        stop = payload.get("stopReason")
        return MetadataEvent(stop if isinstance(stop, str) else None)
    cache_read = _int(usage.get("cacheReadInputTokens"))
    # Input = uncached + cache reads, as kiro.rs computes it (fixture: 120 + 30 → 150). Cache writes are reported
    # separately in cache_write_input_tokens; formatters decide how each client API wants them counted.
    return TokenUsageEvent(
        input_tokens=_int(usage.get("uncachedInputTokens")) + cache_read,
        output_tokens=_int(usage.get("outputTokens")),
        cache_read_input_tokens=cache_read,
        cache_write_input_tokens=_int(usage.get("cacheWriteInputTokens")),
        cache_reported="cacheReadInputTokens" in usage or "cacheWriteInputTokens" in usage,
    )


def _invalid_state(payload: dict[str, Any]) -> KiroEvent | None:
    reason = payload.get("reason")
    message = payload.get("message")
    return UpstreamErrorEvent(
        UpstreamErrorKind.INVALID_STATE,
        str(reason) if reason else "invalidStateEvent",
        str(message) if message else "The upstream reported an invalid conversation state.",
    )


_HANDLERS: dict[str, Callable[[dict[str, Any]], KiroEvent | None]] = {
    "assistantResponseEvent": _text,
    "toolUseEvent": _tool_use,
    "meteringEvent": _metering,
    "contextUsageEvent": _context_usage,
    "reasoningContentEvent": _reasoning,
    "metadataEvent": _metadata,
    "invalidStateEvent": _invalid_state,
}


def _error_message(payload: bytes, headers: dict[str, Any]) -> str:
    """Message of an error/exception frame: JSON `message`/`Message`, else the raw text, else `:error-message`."""
    raw = payload.decode("utf-8", "replace").strip()
    header = headers.get(":error-message")
    header = header if isinstance(header, str) and header else ""
    parsed: Any = None
    if raw:
        try:
            parsed = _loads(raw)
        except ValueError:
            parsed = None
    if isinstance(parsed, dict):
        message = parsed.get("message") or parsed.get("Message")
        text = str(message) if message else header or raw
    else:
        text = raw or header
    return text[:_MAX_ERROR_TEXT]


def _error_reason(payload: bytes) -> tuple[str | None, float | None]:
    """Kiro's `reason` and `retryAfterMilliseconds` of an error/exception frame, when its payload is JSON."""
    try:
        parsed = _loads(payload.decode("utf-8", "replace")) if payload[:1] == b"{" else None
    except ValueError:
        return None, None
    if not isinstance(parsed, dict):
        return None, None
    reason, retry_ms = parsed.get("reason"), parsed.get("retryAfterMilliseconds")
    return (reason if isinstance(reason, str) and reason else None,
            float(retry_ms) if isinstance(retry_ms, int | float) and not isinstance(retry_ms, bool) else None)


class KiroEventDecoder:
    """Incremental decoder: feed network chunks as they arrive, get the events of every completed frame."""

    __slots__ = ("_buffer", "_done", "_pending")

    def __init__(self) -> None:
        self._buffer = EventStreamBuffer()
        self._pending = 0  # bytes fed but not yet consumed by a whole frame
        self._done = False  # set after a corrupt frame or close(): later input is ignored

    def feed(self, data: bytes) -> list[KiroEvent]:
        """Events of every frame completed by `data` (possibly none)."""
        if self._done or not data:
            return []
        events: list[KiroEvent] = []
        if len(data) <= _SLICE:
            self._drain(data, events)
        else:  # botocore re-copies its whole buffer after each frame: keep that buffer small
            view = memoryview(data)
            for start in range(0, len(data), _SLICE):
                self._drain(bytes(view[start:start + _SLICE]), events)
                if self._done:
                    break
        return events

    def _drain(self, data: bytes, events: list[KiroEvent]) -> None:
        self._pending += len(data)
        buffer = self._buffer
        buffer.add_data(data)
        append = events.append
        route = self._route
        while True:
            try:
                message = next(buffer)
                prelude = message.prelude
                total = prelude.total_length
                # botocore does not reject a frame shorter than the minimum or headers longer than the frame
                if total < _MIN_FRAME or prelude.headers_length > total - _MIN_FRAME:
                    raise ValueError(f"impossible frame lengths: total {total}, headers {prelude.headers_length}")
            except StopIteration:
                return
            except Exception as exc:  # botocore ParserErrors, or struct/KeyError/UnicodeError from bad headers
                self._done = True
                append(
                    UpstreamErrorEvent(
                        UpstreamErrorKind.CORRUPT_FRAME,
                        type(exc).__name__,
                        f"corrupt event-stream frame ({exc}); the rest of the stream was discarded",
                    )
                )
                return
            self._pending -= total
            event = route(message.headers, message.payload)
            if event is not None:
                append(event)

    def close(self) -> list[KiroEvent]:
        """End of input: a frame left half-received means the upstream connection was cut."""
        if self._done:
            return []
        self._done = True
        if self._pending:
            return [
                UpstreamErrorEvent(
                    UpstreamErrorKind.TRUNCATED,
                    "TruncatedStream",
                    f"the stream ended inside a frame ({self._pending} bytes of an incomplete frame)",
                )
            ]
        return []

    @staticmethod
    def _route(headers: dict[str, Any], payload: bytes) -> KiroEvent | None:
        message_type = headers.get(":message-type")
        if message_type == "event":
            event_type = headers.get(":event-type")
            handler = _HANDLERS.get(event_type)
            if handler is None:
                logger.debug("skipping event-stream frame of unhandled event type %r", event_type)
                return None
            try:
                body = _loads(payload.decode("utf-8"))
            except ValueError as exc:  # UnicodeDecodeError and JSONDecodeError are both ValueErrors
                logger.warning("skipping %s frame with an undecodable payload (%d bytes): %s",
                               event_type, len(payload), exc)
                return None
            if body.__class__ is not dict:
                logger.warning("skipping %s frame whose payload is not a JSON object", event_type)
                return None
            nested = body.get(event_type)  # nested shape {"assistantResponseEvent": {...}}
            if nested.__class__ is dict:
                body = nested
            try:
                return handler(body)
            except (TypeError, ValueError, OverflowError) as exc:  # a known type with fields of unexpected types
                logger.warning("skipping %s frame with unexpected field values: %s", event_type, exc)
                return None
        if message_type == "exception":
            code = headers.get(":exception-type")
            code = code if isinstance(code, str) and code else "UnknownException"
            reason, retry_ms = _error_reason(payload)
            return UpstreamErrorEvent(UpstreamErrorKind.EXCEPTION, code, _error_message(payload, headers) or code,
                                      reason, retry_ms)
        if message_type == "error":
            code = headers.get(":error-code")
            code = code if isinstance(code, str) and code else "UnknownError"
            reason, retry_ms = _error_reason(payload)
            return UpstreamErrorEvent(UpstreamErrorKind.ERROR, code, _error_message(payload, headers) or code,
                                      reason, retry_ms)
        logger.warning("skipping event-stream frame with unknown :message-type %r", message_type)
        return None
