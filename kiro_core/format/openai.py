"""Output events → OpenAI Chat Completions: streamed `chat.completion.chunk` SSE and whole `chat.completion` bodies.

Chunk JSON is assembled from a pre-serialised envelope plus `json.dumps` of just the delta text: this runs once per
streamed delta, and re-serialising the constant id/model/choices envelope each time would be most of the cost.
Consecutive deltas of one kind in a batch are merged into one chunk (fewer bytes and parser calls, same text).

An in-stream failure is a chunk carrying `error` (the OpenAI SDK raises on it) with no `finish_reason` and no
`[DONE]`: ending with `stop` would tell the client an incomplete answer was complete.
"""

from __future__ import annotations

import json
from typing import Any

from kiro_core.errors import ErrorKind, GatewayError, openai_error_body
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
_DONE = "data: [DONE]\n\n"
_DELTAS = (ContentDelta, ThinkingDelta)


def usage_body(usage: Usage) -> dict[str, Any]:
    """OpenAI `usage`; prompt tokens include cache reads and writes, like OpenAI's own `prompt_tokens`."""
    prompt = usage.input_tokens + usage.cache_creation_input_tokens
    body: dict[str, Any] = {
        "prompt_tokens": prompt,
        "completion_tokens": usage.output_tokens,
        "total_tokens": prompt + usage.output_tokens,
    }
    if usage.reports_cache:  # only what the upstream said: never an invented zero
        body["prompt_tokens_details"] = {"cached_tokens": usage.cache_read_input_tokens}
    if usage.credits is not None:
        body["credits_used"] = usage.credits  # non-standard: the Kiro credits this answer cost (meteringEvent)
    return body


def _tool_call(call: ToolCallComplete, with_index: bool) -> dict[str, Any]:
    body: dict[str, Any] = {"index": call.index} if with_index else {}
    body.update(id=call.id, type="function", function={"name": call.name, "arguments": call.arguments})
    return body


class OpenAIStreamFormatter:
    """Turns batches of output events into SSE bytes, one write per batch."""

    def __init__(self, model: str, completion_id: str, created: int, include_usage: bool = True) -> None:
        envelope = _dumps(
            {"id": completion_id, "object": "chat.completion.chunk", "created": created, "model": model},
            separators=(",", ":"),
        )
        self._head = "data: " + envelope[:-1] + ',"choices":[{"index":0,"delta":'
        self._content_head = self._head + '{"content":'
        self._reasoning_head = self._head + '{"reasoning_content":'
        self._tail = '},"finish_reason":null}]}\n\n'
        self._include_usage = include_usage
        self._done = False

    def start(self) -> bytes:
        """The opening chunk: the assistant role with empty content."""
        return (self._head + '{"role":"assistant","content":""' + self._tail).encode()

    def format(self, events: list[OutputEvent]) -> bytes:
        """SSE for a batch of events; nothing after the answer has finished or failed."""
        if self._done:
            return b""
        parts: list[str] = []
        append = parts.append
        run: list[str] = []  # texts of consecutive deltas of one kind, merged into one chunk
        run_kind: type | None = None
        calls: list[ToolCallComplete] = []
        for event in events:
            kind = event.__class__
            if kind is not run_kind and run:
                append(self._delta_chunk(run_kind, run))
                run = []
            if calls and kind is not ToolCallComplete:
                append(self._tool_chunk(calls))
                calls = []
            run_kind = kind
            if isinstance(event, _DELTAS):
                if event.text:
                    run.append(event.text)
            elif isinstance(event, ToolCallComplete):
                calls.append(event)
            elif isinstance(event, Finish):
                append(self._finish_chunk(event))
                append(_DONE)
                self._done = True
                break
            elif isinstance(event, StreamError):
                append("data: " + _dumps(openai_error_body(gateway_error(event))) + "\n\n")
                self._done = True
                break
        if run:
            append(self._delta_chunk(run_kind, run))
        if calls:
            append(self._tool_chunk(calls))
        return "".join(parts).encode()

    def _delta_chunk(self, kind: type | None, texts: list[str]) -> str:
        head = self._content_head if kind is ContentDelta else self._reasoning_head
        return head + _dumps(texts[0] if len(texts) == 1 else "".join(texts)) + self._tail

    def _tool_chunk(self, calls: list[ToolCallComplete]) -> str:
        return self._head + '{"tool_calls":' + _dumps([_tool_call(call, True) for call in calls]) + self._tail

    def _finish_chunk(self, finish: Finish) -> str:
        chunk = self._head + '{},"finish_reason":' + _dumps(finish.reason) + "}]"
        if self._include_usage:
            chunk += ',"usage":' + _dumps(usage_body(finish.usage))
        return chunk + "}\n\n"


def openai_completion(answer: CollectedAnswer, model: str, completion_id: str, created: int) -> dict[str, Any]:
    """A whole `chat.completion` body; an answer that failed raises its `GatewayError` instead."""
    if answer.error is not None:
        raise gateway_error(answer.error)
    if answer.finish is None:
        raise GatewayError(ErrorKind.INTERNAL, "The answer ended without a finish event.")
    message: dict[str, Any] = {"role": "assistant", "content": answer.content or None}
    if answer.thinking:
        message["reasoning_content"] = answer.thinking
    if answer.tool_calls:
        message["tool_calls"] = [_tool_call(call, False) for call in answer.tool_calls]
    elif message["content"] is None:
        message["content"] = ""
    return {
        "id": completion_id,
        "object": "chat.completion",
        "created": created,
        "model": model,
        "choices": [{"index": 0, "message": message, "finish_reason": answer.finish.reason, "logprobs": None}],
        "usage": usage_body(answer.finish.usage),
    }
