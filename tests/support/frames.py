"""Encoder for AWS event-stream frames, the exact binary format Kiro sends (tests and benchmarks only).

Frame: total_length u32 | headers_length u32 | prelude_crc u32 | headers | payload | message_crc u32 (CRC-32/zlib,
big-endian). Headers are string-typed (type 7), as Kiro sends them.
"""

from __future__ import annotations

import json
import struct
import zlib
from typing import Any

_STRING_HEADER = 7


def encode_headers(headers: dict[str, str]) -> bytes:
    out = bytearray()
    for name, value in headers.items():
        raw_name = name.encode()
        raw_value = value.encode()
        out += struct.pack(">B", len(raw_name)) + raw_name
        out += struct.pack(">BH", _STRING_HEADER, len(raw_value)) + raw_value
    return bytes(out)


def encode_frame(headers: dict[str, str], payload: bytes) -> bytes:
    """One complete, CRC-correct frame."""
    raw_headers = encode_headers(headers)
    total = 12 + len(raw_headers) + len(payload) + 4
    prelude = struct.pack(">II", total, len(raw_headers))
    prelude += struct.pack(">I", zlib.crc32(prelude) & 0xFFFFFFFF)
    body = prelude + raw_headers + payload
    return body + struct.pack(">I", zlib.crc32(body) & 0xFFFFFFFF)


def event_frame(event_type: str, payload: dict[str, Any]) -> bytes:
    """A normal `:message-type event` frame with a JSON payload."""
    headers = {":message-type": "event", ":event-type": event_type, ":content-type": "application/json"}
    return encode_frame(headers, json.dumps(payload, separators=(",", ":")).encode())


def exception_frame(exception_type: str, message: str, reason: str | None = None,
                    retry_after_ms: int | None = None) -> bytes:
    """A `:message-type exception` frame, as Kiro sends mid-stream throttling or internal errors (with its
    `reason` and `retryAfterMilliseconds` when given)."""
    headers = {":message-type": "exception", ":exception-type": exception_type, ":content-type": "application/json"}
    body: dict[str, object] = {"message": message}
    if reason is not None:
        body["reason"] = reason
    if retry_after_ms is not None:
        body["retryAfterMilliseconds"] = retry_after_ms
    return encode_frame(headers, json.dumps(body).encode())


def error_frame(error_code: str, message: str) -> bytes:
    """A `:message-type error` frame."""
    headers = {":message-type": "error", ":error-code": error_code, ":error-message": message}
    return encode_frame(headers, b"")


def text(content: str) -> bytes:
    return event_frame("assistantResponseEvent", {"content": content})


def tool_start(tool_use_id: str, name: str) -> bytes:
    return event_frame("toolUseEvent", {"name": name, "toolUseId": tool_use_id})


def tool_input(tool_use_id: str, name: str, fragment: str) -> bytes:
    return event_frame("toolUseEvent", {"input": fragment, "name": name, "toolUseId": tool_use_id})


def tool_stop(tool_use_id: str, name: str) -> bytes:
    return event_frame("toolUseEvent", {"name": name, "stop": True, "toolUseId": tool_use_id})


def metering(credits: float) -> bytes:
    return event_frame("meteringEvent", {"unit": "credit", "unitPlural": "credits", "usage": credits})


def context_usage(percentage: float) -> bytes:
    return event_frame("contextUsageEvent", {"contextUsagePercentage": percentage})


# ---------------------------------------------------------------- helpers for decoder edge cases (additive)


def encode_raw_frame(raw_headers: bytes, payload: bytes) -> bytes:
    """A CRC-correct frame around already-encoded header bytes (to test odd or invalid header encodings)."""
    total = 12 + len(raw_headers) + len(payload) + 4
    prelude = struct.pack(">II", total, len(raw_headers))
    prelude += struct.pack(">I", zlib.crc32(prelude) & 0xFFFFFFFF)
    body = prelude + raw_headers + payload
    return body + struct.pack(">I", zlib.crc32(body) & 0xFFFFFFFF)


def prelude_only(total_length: int, headers_length: int) -> bytes:
    """A prelude with a valid CRC declaring the given lengths, whatever they are (impossible-length tests)."""
    prelude = struct.pack(">II", total_length, headers_length)
    return prelude + struct.pack(">I", zlib.crc32(prelude) & 0xFFFFFFFF)


def event_frame_raw(event_type: str, payload: bytes) -> bytes:
    """An event frame whose payload bytes are sent as given (invalid UTF-8, non-JSON...)."""
    headers = {":message-type": "event", ":event-type": event_type, ":content-type": "application/json"}
    return encode_frame(headers, payload)


def reasoning(text: str, signature: str | None = None) -> bytes:
    payload: dict[str, Any] = {"text": text}
    if signature is not None:
        payload["signature"] = signature
    return event_frame("reasoningContentEvent", payload)


def redacted(blob: str) -> bytes:
    """A `reasoningContentEvent` carrying only `redactedContent` (base64)."""
    return event_frame("reasoningContentEvent", {"redactedContent": blob})


def token_usage(uncached: int, output: int, cache_read: int = 0, cache_write: int = 0) -> bytes:
    usage = {
        "uncachedInputTokens": uncached,
        "outputTokens": output,
        "cacheReadInputTokens": cache_read,
        "cacheWriteInputTokens": cache_write,
        "totalTokens": uncached + output + cache_read + cache_write,
    }
    return event_frame("metadataEvent", {"tokenUsage": usage})


def invalid_state(reason: str, message: str) -> bytes:
    return event_frame("invalidStateEvent", {"reason": reason, "message": message})


def text_utf8(content: str) -> bytes:
    """Like `text`, but the JSON keeps non-ASCII characters as raw UTF-8 bytes (as the real stream sends them)."""
    payload = json.dumps({"content": content}, ensure_ascii=False, separators=(",", ":")).encode()
    return event_frame_raw("assistantResponseEvent", payload)


def metadata_stop(stop_reason: str = "END_TURN") -> bytes:
    """The `metadataEvent` live streams send: only a `stopReason`, no `tokenUsage` (docs/protocol.md §Event stream)."""
    return event_frame("metadataEvent", {"stopReason": stop_reason})
