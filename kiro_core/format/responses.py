"""Output events → OpenAI Responses API: streamed semantic SSE events and whole `response` objects.

Every event is `event: <type>` plus `data: {"type", "sequence_number", ...}`; the SDK validates both. Codex builds
its history only from `response.output_item.done` (with the complete item) and treats a stream without
`response.completed` as failed, so each item is always closed with its full content before the terminal event.

Stream shape: `response.created`, `response.in_progress`, then per item in model order — reasoning (summary part
and text deltas), message (one `output_text` part and its deltas), each tool call (arguments or custom input as one
delta) — and finally `response.completed`, `response.incomplete` (finish reason `length`) or `response.failed`
(a `StreamError`: no item is closed after it, so a partial answer never looks finished).

When the client asked for `include: ["reasoning.encrypted_content"]`, a reasoning item also carries the upstream
signature (or redacted blob) in `encrypted_content`, sealed with the text Kiro needs back (`convert.reasoning.seal`);
reasoning with a signature but no readable summary (GPT models) then still gets an item, with an empty summary.

The per-delta events are built from strings prepared when their item opens, plus `json.dumps` of the text only;
consecutive deltas of one kind in a batch become one event. Lifecycle events (four per response) reuse a
pre-serialised envelope of the fields echoed from the request.
"""

from __future__ import annotations

import json
import logging
import uuid
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from kiro_core.convert.reasoning import seal
from kiro_core.error_text import printable
from kiro_core.errors import ErrorKind, GatewayError
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

logger = logging.getLogger(__name__)

_dumps = json.dumps
# Codex acts on these codes (compaction, quota message, retry); anything else is a generic server failure.
_FAILURE_CODES = {
    "RATE_LIMIT": "rate_limit_exceeded",
    "QUOTA": "insufficient_quota",
    "CONTEXT_TOO_LONG": "context_length_exceeded",
}
_INCOMPLETE = {"reason": "max_output_tokens"}
_DELTAS = (ContentDelta, ThinkingDelta)


def _new_id(prefix: str) -> str:
    return f"{prefix}_{uuid.uuid4().hex}"


def usage_body(usage: Usage) -> dict[str, Any]:
    """Responses `usage`; input tokens include cache reads and writes, as OpenAI counts them."""
    prompt = usage.input_tokens + usage.cache_creation_input_tokens
    body: dict[str, Any] = {"input_tokens": prompt}
    if usage.reports_cache:  # only what the upstream said: never an invented zero
        body["input_tokens_details"] = {"cached_tokens": usage.cache_read_input_tokens}
    body.update(output_tokens=usage.output_tokens, output_tokens_details={"reasoning_tokens": 0},
                total_tokens=prompt + usage.output_tokens)
    if usage.credits is not None:
        body["credits_used"] = usage.credits  # non-standard: the Kiro credits this answer cost (meteringEvent)
    return body


def failure_body(error: StreamError) -> dict[str, str]:
    """`response.error` for a failed answer."""
    return {"code": _FAILURE_CODES.get(error.kind_name, "server_error"), "message": printable(error.message)}


def reasoning_item(item_id: str, text: str, status: str = "completed", encrypted: str | None = None) -> dict[str, Any]:
    summary = [{"type": "summary_text", "text": text}] if text else []
    item: dict[str, Any] = {"id": item_id, "type": "reasoning", "summary": summary, "status": status}
    if encrypted:
        item["encrypted_content"] = encrypted
    return item


def _text_part(text: str) -> dict[str, Any]:
    return {"type": "output_text", "text": text, "annotations": [], "logprobs": []}


def message_item(item_id: str, text: str, status: str = "completed") -> dict[str, Any]:
    content = [_text_part(text)] if status != "in_progress" else []
    return {"id": item_id, "type": "message", "role": "assistant", "status": status, "content": content}


def custom_input(arguments: str) -> str:
    """The free text of a custom tool call: the `input` field the adapter wrapped it in (raw JSON if absent)."""
    try:
        parsed = json.loads(arguments)
    except ValueError:
        return arguments
    value = parsed.get("input") if isinstance(parsed, dict) else None
    return value if isinstance(value, str) else arguments


def call_item(call: ToolCallComplete, custom_tools: frozenset[str], item_id: str | None = None,
              done: bool = True) -> dict[str, Any]:
    """A `function_call`, or a `custom_tool_call` with its input unwrapped; empty payload while in progress."""
    if call.name in custom_tools:
        return {"id": item_id or _new_id("ctc"), "type": "custom_tool_call", "call_id": call.id, "name": call.name,
                "input": custom_input(call.arguments) if done else ""}
    return {"id": item_id or _new_id("fc"), "type": "function_call", "status": "completed" if done else "in_progress",
            "call_id": call.id, "name": call.name, "arguments": call.arguments if done else ""}


@dataclass(slots=True)
class _OpenItem:
    """A reasoning or message item whose deltas are still arriving."""

    id: str
    index: int
    delta_head: str  # a delta event up to its sequence number
    delta_mid: str  # from after the sequence number up to the delta text
    texts: list[str] = field(default_factory=list)
    encrypted: str | None = None  # reasoning only: the sealed signature / blob
    summary_open: bool = True  # reasoning only: its summary part was announced


class ResponsesStreamFormatter:
    """Turns batches of output events into Responses SSE bytes, one write per batch."""

    def __init__(self, model: str, response_id: str, created_at: int, request_echo: dict[str, Any], *,
                 custom_tools: frozenset[str] = frozenset(), parallel_tool_calls: bool = True,
                 include_encrypted: bool = False, minted: tuple[str, Sequence[str]] | None = None) -> None:
        base = {**request_echo, "id": response_id, "object": "response", "created_at": created_at, "model": model}
        self._include_encrypted = include_encrypted
        self._minted = minted  # (Kiro model id, tool names) sealed with the reasoning (convert.reasoning.seal)
        self._envelope = _dumps(base, separators=(",", ":"))[:-1]
        self._custom_tools = custom_tools
        self._parallel = parallel_tool_calls
        self._seq = 0
        self._output: list[dict[str, Any]] = []  # closed items, in output order
        self._next_index = 0
        self._reasoning: _OpenItem | None = None
        self._message: _OpenItem | None = None
        self._calls = 0
        self._done = False

    def start(self) -> bytes:
        """`response.created` and `response.in_progress`, both with an empty output."""
        return (self._lifecycle("response.created", "in_progress") +
                self._lifecycle("response.in_progress", "in_progress")).encode()

    def format(self, events: list[OutputEvent]) -> bytes:
        """SSE for a batch of events; nothing after the answer has finished or failed."""
        if self._done:
            return b""
        parts: list[str] = []
        run: list[str] = []  # texts of consecutive deltas of one kind, sent as one delta event
        run_kind: type | None = None
        for event in events:
            kind = event.__class__
            if run and kind is not run_kind:
                self._deltas(run_kind, run, parts)
                run = []
            if isinstance(event, _DELTAS):
                if event.text:
                    run.append(event.text)
                    run_kind = kind
                if self._include_encrypted and isinstance(event, ThinkingDelta) and (event.signature or event.redacted):
                    if run:
                        self._deltas(run_kind, run, parts)
                        run = []
                    self._seal(event, parts)
            elif isinstance(event, ToolCallComplete):
                self._tool_call(event, parts)
            elif isinstance(event, Finish):
                self._finish(event, parts)
                break
            elif isinstance(event, StreamError):
                self._fail(event, parts)
                break
        if run and not self._done:
            self._deltas(run_kind, run, parts)
        text = "".join(parts)
        try:
            return text.encode()
        except UnicodeEncodeError:  # a lone surrogate in the upstream's text: its JSON escape, as the other shapes send
            return text.encode("utf-8", "backslashreplace")

    # ------------------------------------------------------------------ events

    def _event(self, kind: str, fields: dict[str, Any]) -> str:
        seq = self._seq
        self._seq += 1
        body = _dumps(fields, ensure_ascii=False, separators=(",", ":"))
        return f'event: {kind}\ndata: {{"type":"{kind}","sequence_number":{seq},{body[1:]}\n\n'

    def _lifecycle(self, kind: str, status: str, *, output: list[dict[str, Any]] | None = None,
                   usage: Usage | None = None, error: dict[str, str] | None = None,
                   incomplete: dict[str, str] | None = None) -> str:
        seq = self._seq
        self._seq += 1
        tail = _dumps({"status": status, "output": output or [], "usage": usage_body(usage) if usage else None,
                       "error": error, "incomplete_details": incomplete}, ensure_ascii=False, separators=(",", ":"))
        return (f'event: {kind}\ndata: {{"type":"{kind}","sequence_number":{seq},"response":'
                f"{self._envelope},{tail[1:]}}}\n\n")

    def _open(self, prefix: str, delta_kind: str, extra: str) -> _OpenItem:
        item_id, index = _new_id(prefix), self._next_index
        self._next_index += 1
        head = f'event: {delta_kind}\ndata: {{"type":"{delta_kind}","sequence_number":'
        return _OpenItem(item_id, index, head, f',"item_id":"{item_id}","output_index":{index},{extra}"delta":')

    def _delta(self, item: _OpenItem, text: str, parts: list[str]) -> None:
        parts.append(f"{item.delta_head}{self._seq}{item.delta_mid}{_dumps(text, ensure_ascii=False)}}}\n\n")
        self._seq += 1
        item.texts.append(text)

    def _deltas(self, kind: type | None, texts: list[str], parts: list[str]) -> None:
        text = texts[0] if len(texts) == 1 else "".join(texts)
        if kind is ThinkingDelta:
            self._close_message(parts)
            if self._reasoning is None:
                self._reasoning = self._open_reasoning(parts)
            elif not self._reasoning.summary_open:
                self._add_summary_part(self._reasoning, parts)
            self._delta(self._reasoning, text, parts)
        else:
            self._close_reasoning(parts)
            if self._message is None:
                self._message = self._open_message(parts)
            self._delta(self._message, text, parts)

    def _open_reasoning(self, parts: list[str], summary: bool = True) -> _OpenItem:
        item = self._open("rs", "response.reasoning_summary_text.delta", '"summary_index":0,')
        parts.append(self._event("response.output_item.added",
                                 {"output_index": item.index, "item": reasoning_item(item.id, "", "in_progress")}))
        item.summary_open = False
        if summary:
            self._add_summary_part(item, parts)
        return item

    def _add_summary_part(self, item: _OpenItem, parts: list[str]) -> None:
        item.summary_open = True
        parts.append(self._event("response.reasoning_summary_part.added", {
            "item_id": item.id, "output_index": item.index, "summary_index": 0,
            "part": {"type": "summary_text", "text": ""}}))

    def _seal(self, event: ThinkingDelta, parts: list[str]) -> None:
        """Attach the sealed signature / blob to the reasoning item (opening one without a summary if needed)."""
        if self._reasoning is None:
            self._close_message(parts)
            self._reasoning = self._open_reasoning(parts, summary=False)
        self._reasoning.encrypted = seal(event.replay_text or "", event.signature, event.redacted, self._minted)

    def _close_reasoning(self, parts: list[str]) -> None:
        item, self._reasoning = self._reasoning, None
        if item is None:
            return
        text = "".join(item.texts)
        if item.summary_open:
            where = {"item_id": item.id, "output_index": item.index, "summary_index": 0}
            parts.append(self._event("response.reasoning_summary_text.done", {**where, "text": text}))
            parts.append(self._event("response.reasoning_summary_part.done",
                                     {**where, "part": {"type": "summary_text", "text": text}}))
        self._item_done(item.index, reasoning_item(item.id, text, encrypted=item.encrypted), parts)

    def _open_message(self, parts: list[str]) -> _OpenItem:
        item = self._open("msg", "response.output_text.delta", '"content_index":0,"logprobs":[],')
        parts.append(self._event("response.output_item.added",
                                 {"output_index": item.index, "item": message_item(item.id, "", "in_progress")}))
        parts.append(self._event("response.content_part.added", {
            "item_id": item.id, "output_index": item.index, "content_index": 0, "part": _text_part("")}))
        return item

    def _close_message(self, parts: list[str]) -> None:
        item, self._message = self._message, None
        if item is None:
            return
        text = "".join(item.texts)
        where = {"item_id": item.id, "output_index": item.index, "content_index": 0}
        parts.append(self._event("response.output_text.done", {**where, "text": text, "logprobs": []}))
        parts.append(self._event("response.content_part.done", {**where, "part": _text_part(text)}))
        self._item_done(item.index, message_item(item.id, text), parts)

    def _item_done(self, index: int, item: dict[str, Any], parts: list[str]) -> None:
        self._output.append(item)
        parts.append(self._event("response.output_item.done", {"output_index": index, "item": item}))

    def _tool_call(self, call: ToolCallComplete, parts: list[str]) -> None:
        self._close_reasoning(parts)
        self._close_message(parts)
        if self._calls and not self._parallel:
            logger.info("tool call %s (%s) dropped: the client asked for parallel_tool_calls=false", call.id, call.name)
            return
        self._calls += 1
        index = self._next_index
        self._next_index += 1
        done = call_item(call, self._custom_tools)
        where = {"item_id": done["id"], "output_index": index}
        added = call_item(call, self._custom_tools, done["id"], done=False)
        parts.append(self._event("response.output_item.added", {"output_index": index, "item": added}))
        if done["type"] == "custom_tool_call":
            parts.append(self._event("response.custom_tool_call_input.delta", {**where, "delta": done["input"]}))
            parts.append(self._event("response.custom_tool_call_input.done", {**where, "input": done["input"]}))
        else:
            parts.append(self._event("response.function_call_arguments.delta", {**where, "delta": call.arguments}))
            parts.append(self._event("response.function_call_arguments.done",
                                     {**where, "name": call.name, "arguments": call.arguments}))
        self._item_done(index, done, parts)

    def _finish(self, finish: Finish, parts: list[str]) -> None:
        self._close_reasoning(parts)
        self._close_message(parts)
        self._done = True
        if finish.reason == "length":
            parts.append(self._lifecycle("response.incomplete", "incomplete", output=self._output,
                                         usage=finish.usage, incomplete=_INCOMPLETE))
        else:
            parts.append(self._lifecycle("response.completed", "completed", output=self._output, usage=finish.usage))

    def _fail(self, error: StreamError, parts: list[str]) -> None:
        """The terminal `response.failed`; unfinished items appear in its output as incomplete, never as done."""
        self._done = True
        output = list(self._output)
        for item, build in ((self._reasoning, reasoning_item), (self._message, message_item)):
            if item is not None:
                output.append(build(item.id, "".join(item.texts), "incomplete"))
        parts.append(self._lifecycle("response.failed", "failed", output=output, error=failure_body(error)))


def response_output(answer: CollectedAnswer, custom_tools: frozenset[str] = frozenset(),
                    parallel_tool_calls: bool = True, include_encrypted: bool = False,
                    minted: tuple[str, Sequence[str]] | None = None) -> list[dict[str, Any]]:
    """The output items of a whole answer: reasoning, message, then the tool calls."""
    output: list[dict[str, Any]] = []
    encrypted = None
    if include_encrypted and (answer.signature or answer.redacted):
        redacted = answer.redacted[-1] if answer.redacted else None
        encrypted = seal(answer.replay_text or "", None if redacted else answer.signature, redacted, minted)
    if answer.thinking or encrypted:
        output.append(reasoning_item(_new_id("rs"), answer.thinking, encrypted=encrypted))
    if answer.content:
        output.append(message_item(_new_id("msg"), answer.content))
    calls: Iterable[ToolCallComplete] = answer.tool_calls if parallel_tool_calls else answer.tool_calls[:1]
    output.extend(call_item(call, custom_tools) for call in calls)
    return output


def responses_object(answer: CollectedAnswer, model: str, response_id: str, created_at: int,
                     request_echo: dict[str, Any], *, custom_tools: frozenset[str] = frozenset(),
                     parallel_tool_calls: bool = True, include_encrypted: bool = False,
                     minted: tuple[str, Sequence[str]] | None = None) -> dict[str, Any]:
    """A whole `response` object; an answer that failed raises its `GatewayError` instead (an HTTP error)."""
    if answer.error is not None:
        raise gateway_error(answer.error)
    if answer.finish is None:
        raise GatewayError(ErrorKind.INTERNAL, "The answer ended without a finish event.")
    incomplete = answer.finish.reason == "length"
    return {
        **request_echo,
        "id": response_id,
        "object": "response",
        "created_at": created_at,
        "model": model,
        "status": "incomplete" if incomplete else "completed",
        "error": None,
        "incomplete_details": dict(_INCOMPLETE) if incomplete else None,
        "output": response_output(answer, custom_tools, parallel_tool_calls, include_encrypted, minted),
        "usage": usage_body(answer.finish.usage),
    }
