"""Answers that contain gateway-run web searches, in both client shapes (docs/protocol.md §Web search).

The answer is the usual output events with `SearchEvent`s in between, in the order things happened. Anthropic:
each search is a `server_tool_use` block (its whole input in `content_block_start`, no `input_json_delta`) and a
`web_search_tool_result` block (every result in the upstream's order, or a `web_search_tool_result_error`), and the
usage carries `server_tool_use.web_search_requests` (on `message_delta` when streamed). Responses: each search is a
`web_search_call` item (`completed`, or `failed` when the search did not give results).

The stream formatters extend the plain ones; events without searches go through the parent's code unchanged.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator, Sequence
from typing import Any

from kiro_core.errors import ErrorKind, GatewayError
from kiro_core.events import Finish, OutputEvent, StreamError
from kiro_core.format.anthropic import STOP_REASONS, AnthropicStreamFormatter, placeholder_signature, usage_body
from kiro_core.format.responses import ResponsesStreamFormatter, response_output
from kiro_core.format.responses import usage_body as responses_usage
from kiro_core.stream import collect, gateway_error
from kiro_core.web_search import TOOL_NAME, SearchEvent, SearchFailure, SearchResults

AnswerEvent = OutputEvent | SearchEvent


def anthropic_tool_use_id() -> str:
    return f"srvtoolu_{uuid.uuid4().hex}"


def responses_call_id() -> str:
    return f"ws_{uuid.uuid4().hex}"


def _sse(event_type: str, data: dict[str, Any]) -> str:
    return f"event: {event_type}\ndata: {json.dumps(data, ensure_ascii=False, separators=(',', ':'))}\n\n"


def _searches(events: Sequence[AnswerEvent]) -> int:
    return sum(1 for event in events if isinstance(event, SearchEvent) and event.succeeded)


def _segments(events: Sequence[AnswerEvent]) -> Iterator[list[OutputEvent] | SearchEvent]:
    """Runs of plain output events, and the searches between them, in order."""
    run: list[OutputEvent] = []
    for event in events:
        if isinstance(event, SearchEvent):
            if run:
                yield run
                run = []
            yield event
        else:
            run.append(event)
    if run:
        yield run


# ------------------------------------------------------------------------------------------------ Anthropic


def anthropic_result_content(event: SearchEvent) -> list[dict[str, Any]] | dict[str, Any]:
    """`web_search_tool_result.content`: the results, or Anthropic's error object for a failed search."""
    outcome = event.outcome
    if isinstance(outcome, SearchFailure):
        return {"type": "web_search_tool_result_error", "error_code": outcome.code}
    return [{"type": "web_search_result", "url": r.url, "title": r.title, "encrypted_content": r.snippet,
             "page_age": r.page_age} for r in outcome.results]


def anthropic_search_blocks(event: SearchEvent) -> list[dict[str, Any]]:
    """The `server_tool_use` and `web_search_tool_result` blocks of one search."""
    return [
        {"type": "server_tool_use", "id": event.id, "name": TOOL_NAME, "input": {"query": event.query}},
        {"type": "web_search_tool_result", "tool_use_id": event.id, "content": anthropic_result_content(event)},
    ]


def anthropic_usage(finish: Finish, searches: int) -> dict[str, Any]:
    return {**usage_body(finish.usage), "server_tool_use": {"web_search_requests": searches}}


class AnthropicSearchStreamFormatter(AnthropicStreamFormatter):
    """The Anthropic SSE formatter, plus search blocks and the search count in the final usage."""

    def __init__(self, model: str, message_id: str, input_tokens: int) -> None:
        super().__init__(model, message_id, input_tokens)
        self._search_count = 0

    def format(self, events: Sequence[AnswerEvent]) -> bytes:  # type: ignore[override]
        if not any(isinstance(e, SearchEvent | Finish) for e in events):
            return super().format(events)  # type: ignore[arg-type]
        out: list[bytes] = []
        for segment in _segments(events):
            if self._done:
                break
            if isinstance(segment, SearchEvent):
                out.append(self._search(segment))
                continue
            cut = next((i for i, e in enumerate(segment) if isinstance(e, Finish)), None)
            out.append(super().format(segment if cut is None else segment[:cut]))
            if cut is not None and not self._done:
                out.append(self._finish(segment[cut]))  # type: ignore[arg-type]
        return b"".join(out)

    def _search(self, event: SearchEvent) -> bytes:
        parts: list[str] = []
        self._close_block(parts)
        if event.succeeded:
            self._search_count += 1
        for block in anthropic_search_blocks(event):
            self._index += 1
            parts.append(_sse("content_block_start", {"type": "content_block_start", "index": self._index,
                                                      "content_block": block}))
            parts.append(_sse("content_block_stop", {"type": "content_block_stop", "index": self._index}))
        return "".join(parts).encode()

    def _finish(self, finish: Finish) -> bytes:
        parts: list[str] = []
        self._close_block(parts)
        delta = {"stop_reason": STOP_REASONS.get(finish.reason, "end_turn"), "stop_sequence": None}
        parts.append(_sse("message_delta", {"type": "message_delta", "delta": delta,
                                            "usage": anthropic_usage(finish, self._search_count)}))
        parts.append(_sse("message_stop", {"type": "message_stop"}))
        self._done = True
        return "".join(parts).encode()


def anthropic_search_message(events: Sequence[AnswerEvent], model: str, message_id: str,
                             input_tokens: int) -> dict[str, Any]:
    """A whole `message` whose content follows the order of events; a failed answer raises its GatewayError."""
    finish: Finish | None = None
    content: list[dict[str, Any]] = []
    for segment in _segments(events):
        if isinstance(segment, SearchEvent):
            content.extend(anthropic_search_blocks(segment))
            continue
        answer = collect(segment)
        if answer.error is not None:
            raise gateway_error(answer.error)
        if answer.thinking:
            content.append({"type": "thinking", "thinking": answer.thinking,
                            "signature": answer.signature or placeholder_signature(message_id)})
        if answer.content:
            content.append({"type": "text", "text": answer.content})
        content.extend({"type": "tool_use", "id": c.id, "name": c.name, "input": json.loads(c.arguments)}
                       for c in answer.tool_calls)
        finish = answer.finish or finish
    if finish is None:
        raise GatewayError(ErrorKind.INTERNAL, "The answer ended without a finish event.")
    usage = anthropic_usage(finish, _searches(events))
    if not finish.usage.input_tokens:
        usage["input_tokens"] = input_tokens
    return {"id": message_id, "type": "message", "role": "assistant", "content": content, "model": model,
            "stop_reason": STOP_REASONS.get(finish.reason, "end_turn"), "stop_sequence": None, "usage": usage}


# ------------------------------------------------------------------------------------------------ Responses


def web_search_call_item(event: SearchEvent, status: str | None = None) -> dict[str, Any]:
    """A `web_search_call` output item: `completed` when the search gave results (even none), else `failed`."""
    final = "completed" if isinstance(event.outcome, SearchResults) else "failed"
    return {"id": event.id, "type": "web_search_call", "status": status or final,
            "action": {"type": "search", "query": event.query}}


class ResponsesSearchStreamFormatter(ResponsesStreamFormatter):
    """The Responses SSE formatter, plus `web_search_call` items (added, in_progress, searching, completed, done)."""

    def format(self, events: Sequence[AnswerEvent]) -> bytes:  # type: ignore[override]
        if not any(isinstance(e, SearchEvent) for e in events):
            return super().format(events)  # type: ignore[arg-type]
        out: list[bytes] = []
        for segment in _segments(events):
            if self._done:
                break
            out.append(self._search(segment) if isinstance(segment, SearchEvent) else super().format(segment))
        return b"".join(out)

    def _search(self, event: SearchEvent) -> bytes:
        parts: list[str] = []
        self._close_reasoning(parts)
        self._close_message(parts)
        index = self._next_index
        self._next_index += 1
        where = {"item_id": event.id, "output_index": index}
        parts.append(self._event("response.output_item.added",
                                 {"output_index": index, "item": web_search_call_item(event, "in_progress")}))
        parts.append(self._event("response.web_search_call.in_progress", where))
        parts.append(self._event("response.web_search_call.searching", where))
        if event.succeeded:
            parts.append(self._event("response.web_search_call.completed", where))
        self._item_done(index, web_search_call_item(event), parts)
        return "".join(parts).encode()


def responses_search_output(events: Sequence[AnswerEvent], custom_tools: frozenset[str] = frozenset(),
                            parallel_tool_calls: bool = True) -> tuple[list[dict[str, Any]], Finish]:
    """The output items of a whole answer, searches in place; a failed answer raises its GatewayError."""
    output: list[dict[str, Any]] = []
    finish: Finish | None = None
    for segment in _segments(events):
        if isinstance(segment, SearchEvent):
            output.append(web_search_call_item(segment))
            continue
        answer = collect(segment)
        if answer.error is not None:
            raise gateway_error(answer.error)
        output.extend(response_output(answer, custom_tools, parallel_tool_calls))
        finish = answer.finish or finish
    if finish is None:
        raise GatewayError(ErrorKind.INTERNAL, "The answer ended without a finish event.")
    return output, finish


def responses_search_object(events: Sequence[AnswerEvent], model: str, response_id: str, created_at: int,
                            request_echo: dict[str, Any], *, custom_tools: frozenset[str] = frozenset(),
                            parallel_tool_calls: bool = True) -> dict[str, Any]:
    """A whole `response` object with its `web_search_call` items."""
    output, finish = responses_search_output(events, custom_tools, parallel_tool_calls)
    incomplete = finish.reason == "length"
    return {**request_echo, "id": response_id, "object": "response", "created_at": created_at, "model": model,
            "status": "incomplete" if incomplete else "completed", "error": None,
            "incomplete_details": {"reason": "max_output_tokens"} if incomplete else None,
            "output": output, "usage": responses_usage(finish.usage)}


def stream_error(error: GatewayError) -> StreamError:
    """A classified failure as the in-stream error event (keeps `Retry-After`'s figure)."""
    return StreamError(error.kind.name, error.message, retry_after=error.retry_after)
