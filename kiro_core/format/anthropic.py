"""Output events → Anthropic Messages: the streamed SSE event sequence and whole `message` bodies.

Stream shape (what the Anthropic SDK and Claude Code accumulate): `message_start`; content blocks, each
`content_block_start` / deltas / `content_block_stop` with consecutive indexes — a thinking block (`thinking_delta`s,
then one `signature_delta` before it closes), text blocks (`text_delta`), tool_use blocks (one `input_json_delta`
with the complete arguments); then `message_delta` with the stop reason and usage, and `message_stop`.

A block stays open while deltas of its kind keep coming and is closed when another kind arrives. Delta events are
built from a per-block pre-serialised prefix plus `json.dumps` of the text, since they run once per streamed delta.
An in-stream failure is `event: error` and nothing after it (the SDK raises; no `message_stop` means incomplete).

Thinking signatures: the upstream's when native reasoning sent one (Kiro checks it when the block comes back; `sign`
may wrap it with what Kiro bound it to, `convert.reasoning.bind_signature`), else a placeholder derived from the
message id, which the request adapter recognises and never sends back. Redacted reasoning becomes a
`redacted_thinking` block of its own (`data` = the upstream blob). With `omit_thinking` (the client's
`thinking.display: "omitted"`) thinking blocks are streamed as Anthropic's API does then: empty text, signature kept.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from typing import Any

from kiro_core.errors import ErrorKind, GatewayError, anthropic_error_body
from kiro_core.events import (
    ContentDelta,
    Finish,
    OutputEvent,
    StreamError,
    ThinkingDelta,
    ToolCallComplete,
    Usage,
)
from kiro_core.stream import CollectedAnswer, gateway_error

_dumps = json.dumps
STOP_REASONS = {"stop": "end_turn", "tool_calls": "tool_use", "length": "max_tokens"}
PING = b'event: ping\ndata: {"type": "ping"}\n\n'
_STOP_BLOCK = 'event: content_block_stop\ndata: {"type":"content_block_stop","index":%d}\n\n'
_DELTAS = (ContentDelta, ThinkingDelta)
_MESSAGE_STOP = 'event: message_stop\ndata: {"type":"message_stop"}\n\n'
# (upstream signature, reasoning text the client was not shown or None) -> the signature the client gets
Signer = Callable[[str, str | None], str]


def placeholder_signature(message_id: str) -> str:
    """`sig_` + 32 hex, stable for a message so a stream and its retry agree."""
    return "sig_" + hashlib.sha256(message_id.encode()).hexdigest()[:32]


def usage_body(usage: Usage) -> dict[str, Any]:
    """Anthropic `usage`: `input_tokens` excludes cache reads and writes, which have their own fields (present only
    when the upstream reported them); `credits_used` (non-standard) is what Kiro metered for the answer."""
    body: dict[str, Any] = {
        "input_tokens": max(0, usage.input_tokens - usage.cache_read_input_tokens),
        "output_tokens": usage.output_tokens,
    }
    if usage.reports_cache:
        body["cache_creation_input_tokens"] = usage.cache_creation_input_tokens
        body["cache_read_input_tokens"] = usage.cache_read_input_tokens
    if usage.credits is not None:
        body["credits_used"] = usage.credits
    return body


def _sse(event_type: str, data: dict[str, Any]) -> str:
    return f"event: {event_type}\ndata: {_dumps(data, separators=(',', ':'))}\n\n"


class AnthropicStreamFormatter:
    """Turns batches of output events into Anthropic SSE bytes, one write per batch."""

    def __init__(self, model: str, message_id: str, input_tokens: int, *, omit_thinking: bool = False,
                 sign: Signer | None = None) -> None:
        self._omit_thinking = omit_thinking
        self._sign = sign
        self._hidden: list[str] = []  # thinking text not shown (omit_thinking), for the signature
        self._replay_text: str | None = None
        self._model = model
        self._message_id = message_id
        self._input_tokens = input_tokens
        self._index = -1  # index of the newest block
        self._open: type | None = None  # ThinkingDelta / ContentDelta while such a block is open
        self._delta_head = ""
        self._signature: str | None = None
        self._done = False

    def start(self) -> bytes:
        """`message_start`, with the request's input-token estimate."""
        message = {
            "id": self._message_id,
            "type": "message",
            "role": "assistant",
            "content": [],
            "model": self._model,
            "stop_reason": None,
            "stop_sequence": None,
            "usage": {"input_tokens": self._input_tokens, "output_tokens": 0},  # cache figures are not known yet
        }
        return _sse("message_start", {"type": "message_start", "message": message}).encode()

    @staticmethod
    def ping() -> bytes:
        """Keep-alive event for long silent stretches (clients with idle timeouts)."""
        return PING

    def format(self, events: list[OutputEvent]) -> bytes:
        """SSE for a batch of events; nothing after the answer has finished or failed."""
        if self._done:
            return b""
        parts: list[str] = []
        append = parts.append
        for event in events:
            if isinstance(event, _DELTAS):
                kind = event.__class__
                text = event.text
                if isinstance(event, ThinkingDelta) and self._omit_thinking and (text or event.signature):
                    if self._open is not ThinkingDelta:
                        self._open_block(ThinkingDelta, parts)
                    if text:
                        self._hidden.append(text)
                        text = ""
                if isinstance(event, ThinkingDelta) and (event.signature or event.redacted):
                    if event.redacted:
                        self._redacted_block(event.redacted, parts)
                    elif self._open is ThinkingDelta or text:  # else no thinking block to carry it
                        self._signature = event.signature
                        self._replay_text = event.replay_text
                if not text:
                    continue
                if self._open is not kind:
                    self._open_block(kind, parts)
                append(self._delta_head + _dumps(text) + "}}\n\n")
            elif isinstance(event, ToolCallComplete):
                self._close_block(parts)
                self._index += 1
                block = {"type": "tool_use", "id": event.id, "name": event.name, "input": {}}
                append(_sse("content_block_start", {"type": "content_block_start", "index": self._index,
                                                    "content_block": block}))
                delta = {"type": "input_json_delta", "partial_json": event.arguments}
                append(_sse("content_block_delta", {"type": "content_block_delta", "index": self._index,
                                                    "delta": delta}))
                append(_STOP_BLOCK % self._index)
            elif isinstance(event, Finish):
                self._close_block(parts)
                delta = {"stop_reason": STOP_REASONS.get(event.reason, "end_turn"), "stop_sequence": None}
                append(_sse("message_delta", {"type": "message_delta", "delta": delta,
                                              "usage": usage_body(event.usage)}))
                append(_MESSAGE_STOP)
                self._done = True
                break
            elif isinstance(event, StreamError):
                append(_sse("error", anthropic_error_body(gateway_error(event))))
                self._done = True
                break
        return "".join(parts).encode()

    def _open_block(self, kind: type, parts: list[str]) -> None:
        self._close_block(parts)
        self._index += 1
        self._open = kind
        if kind is ThinkingDelta:
            block: dict[str, Any] = {"type": "thinking", "thinking": "", "signature": ""}
            delta_type, field = "thinking_delta", "thinking"
        else:
            block = {"type": "text", "text": ""}
            delta_type, field = "text_delta", "text"
        parts.append(_sse("content_block_start", {"type": "content_block_start", "index": self._index,
                                                  "content_block": block}))
        self._delta_head = (
            f'event: content_block_delta\ndata: {{"type":"content_block_delta","index":{self._index},'
            f'"delta":{{"type":"{delta_type}","{field}":'
        )

    def _redacted_block(self, data: str, parts: list[str]) -> None:
        self._close_block(parts)
        self._index += 1
        block = {"type": "redacted_thinking", "data": data}
        parts.append(_sse("content_block_start", {"type": "content_block_start", "index": self._index,
                                                  "content_block": block}))
        parts.append(_STOP_BLOCK % self._index)

    def _close_block(self, parts: list[str]) -> None:
        if self._open is None:
            return
        if self._open is ThinkingDelta:
            signature = self._signature
            if signature and self._sign is not None:
                hidden = (self._replay_text or "".join(self._hidden)) if self._omit_thinking else None
                signature = self._sign(signature, hidden)
            signature = signature or placeholder_signature(self._message_id)
            self._signature, self._replay_text, self._hidden = None, None, []
            delta = {"type": "signature_delta", "signature": signature}
            parts.append(_sse("content_block_delta", {"type": "content_block_delta", "index": self._index,
                                                      "delta": delta}))
        parts.append(_STOP_BLOCK % self._index)
        self._open = None


def anthropic_message(answer: CollectedAnswer, model: str, message_id: str, input_tokens: int, *,
                      omit_thinking: bool = False, sign: Signer | None = None) -> dict[str, Any]:
    """A whole `message` body; an answer that failed raises its `GatewayError` instead.

    `input_tokens` (the request estimate) stands in only if the answer's usage has no input figure; `omit_thinking`
    and `sign` as for the stream.
    """
    if answer.error is not None:
        raise gateway_error(answer.error)
    finish = answer.finish
    if finish is None:
        raise GatewayError(ErrorKind.INTERNAL, "The answer ended without a finish event.")
    content: list[dict[str, Any]] = []
    if answer.thinking or (omit_thinking and answer.signature):
        signature = answer.signature
        if signature and sign is not None:
            signature = sign(signature, (answer.replay_text or answer.thinking) if omit_thinking else None)
        signature = signature or placeholder_signature(message_id)
        shown = "" if omit_thinking else answer.thinking
        content.append({"type": "thinking", "thinking": shown, "signature": signature})
    content.extend({"type": "redacted_thinking", "data": data} for data in answer.redacted)
    if answer.content:
        content.append({"type": "text", "text": answer.content})
    for call in answer.tool_calls:
        content.append({"type": "tool_use", "id": call.id, "name": call.name, "input": json.loads(call.arguments)})
    usage = usage_body(finish.usage)
    if not finish.usage.input_tokens:
        usage["input_tokens"] = input_tokens
    return {
        "id": message_id,
        "type": "message",
        "role": "assistant",
        "content": content,
        "model": model,
        "stop_reason": STOP_REASONS.get(finish.reason, "end_turn"),
        "stop_sequence": None,
        "usage": usage,
    }
