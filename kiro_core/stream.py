"""Stage-1 Kiro events → stage-2 output events: the one place an answer's meaning is decided.

`ResponseAssembler` separates thinking from text, accumulates tool calls per `toolUseId` and validates them, resolves
usage and turns upstream failures into `StreamError`. The formatters then only change shape, so OpenAI and Anthropic
clients, streaming or not, always see the same answer.

Decisions worth knowing (docs/protocol.md §Event stream, §Credits and usage):
* A tool call is emitted when its `stop` frame arrives, with compact JSON arguments. One still open at the end is
  emitted if its arguments parse; otherwise (the upstream cuts large calls mid-stream, issue #56) it is *not* passed
  on with broken or empty arguments — clients would run it and loop — but reported in a notice and the answer ends
  with reason "length". An open call with no arguments at all counts as cut, for the same reason.
* Output tokens are estimated from everything the model generated: thinking, text and tool-call arguments (a large
  `Write` call is most of an answer's tokens). Input tokens: the upstream's `tokenUsage` when sent, else the larger
  of the context-usage percentage of the model's window (not reduced by the output: an estimate that errs high is
  what context accounting needs) and the caller's local estimate.
* `Usage.input_tokens` counts uncached plus cache-read tokens (as the upstream's own figure is read); cache writes are
  only in `cache_creation_input_tokens`. Cache figures are marked as reported only when the upstream sent them.
* Kiro closes a complete answer with trailer events (metadata, context usage, metering; in any order). A stream
  that ends without any of them was cut: the answer ends with a `TRUNCATED` stream error (an error event in every
  client shape), never with a clean stop. Credits are the sum of every `meteringEvent`.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any

from kiro_core import strict_json
from kiro_core.errors import ErrorKind, GatewayError
from kiro_core.events import (
    ContentDelta,
    ContextUsageEvent,
    Finish,
    KiroEvent,
    MetadataEvent,
    MeteringEvent,
    OutputEvent,
    ReasoningEvent,
    StreamError,
    TextEvent,
    ThinkingDelta,
    TokenUsageEvent,
    ToolCallComplete,
    ToolUseEvent,
    UpstreamErrorEvent,
    UpstreamErrorKind,
    Usage,
)
from kiro_core.thinking import ThinkingExtractor
from kiro_core.tokens import claude_tokens
from kiro_core.upstream_reasons import FailureClass, classify

THINKING_HANDLING_MODES: tuple[str, ...] = ("as_reasoning_content", "remove", "pass", "strip_tags")

NOTE_NO_COMPLETION_SIGNAL = (
    "no completion signal: the upstream sent no usage or context-usage event, so the answer may be truncated"
)
# Kiro ends every complete answer with trailer events (metadata, context usage, metering: 351 of 352 audited
# responses, docs/protocol.md §Event stream). A stream that stops at a frame boundary without any of them was cut,
# not finished.
NO_TRAILER_MESSAGE = (
    "The upstream stream ended without its completion events (metadata, context usage, metering): the answer is "
    "incomplete. Please retry."
)
_NO_ALIASES: Mapping[str, str] = MappingProxyType({})
_PASS_OPEN, _PASS_CLOSE = "<thinking>", "</thinking>\n\n"  # native reasoning shown inline in "pass" mode
# GPT models send this instead of readable reasoning (docs/protocol.md §Native reasoning); never shown as reasoning.
GPT_PLACEHOLDER = "..."


# Tool arguments must reach the client as strict JSON: NaN, Infinity and overflowing numbers make them unusable.
_strict_loads = strict_json.loads


def _compact(value: dict[str, Any]) -> str:
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"), allow_nan=False)


def _looks_truncated(text: str) -> bool:
    """Unterminated string or unbalanced braces/brackets: JSON that stopped early, not JSON that is wrong."""
    depth = 0
    in_string = escaped = False
    for char in text:
        if in_string:
            if escaped:
                escaped = False
            elif char == "\\":
                escaped = True
            elif char == '"':
                in_string = False
        elif char == '"':
            in_string = True
        elif char in "{[":
            depth += 1
        elif char in "}]":
            depth -= 1
    return in_string or depth > 0


def _arguments(raw: str, merged: dict[str, Any] | None, stopped: bool) -> tuple[str | None, bool]:
    """(compact JSON object text, None) for usable arguments, else (None, looks_truncated)."""
    text = raw.strip()
    if not text:
        if merged is None and not stopped:
            return None, True  # cut before a single argument byte arrived
        text = "{}"
    try:
        parsed = _strict_loads(text)
        if isinstance(parsed, str) and parsed.lstrip().startswith("{"):
            parsed = _strict_loads(parsed)  # arguments sent as a JSON string holding the object
    except ValueError:
        return None, not stopped or _looks_truncated(text)
    if not isinstance(parsed, dict):
        return None, not stopped
    if merged:
        parsed = {**merged, **parsed}
    try:
        return _compact(parsed), False
    except ValueError:  # a non-finite number in `merged` (decoded from an event): not strict JSON
        return None, False


@dataclass(slots=True)
class _OpenCall:
    id: str
    name: str
    fragments: list[str] = field(default_factory=list)
    merged: dict[str, Any] | None = None  # object-shaped inputs, merged in arrival order


def _stream_error(event: UpstreamErrorEvent) -> StreamError:
    kind, code, message = event.kind, event.code, event.message
    if kind is UpstreamErrorKind.CORRUPT_FRAME:
        return StreamError("UPSTREAM", f"The upstream stream is corrupt; the answer is incomplete ({message}).")
    if kind is UpstreamErrorKind.TRUNCATED:
        return StreamError("UPSTREAM", f"The upstream stream stopped mid-frame; the answer is incomplete ({message}).")
    if kind is UpstreamErrorKind.INVALID_STATE:
        return StreamError("UPSTREAM", f"The upstream reported an invalid state ({code}): {message}")
    read = classify(0, event.reason, message, event.retry_after_ms)
    named = _STREAM_KINDS.get(read.failure)
    said = f"{message} (reason: {event.reason})" if event.reason else message
    if named is not None:
        kind_name, what = named
        wait = read.retry_after if kind_name == "THROTTLED" else None
        return StreamError(kind_name, f"{what} ({code}): {said}", wait)
    if code.rsplit("#", 1)[-1] == "ThrottlingException":  # also "com.amazon...#ThrottlingException"
        return StreamError("RATE_LIMIT", f"The upstream is throttling requests ({code}): {said}", read.retry_after)
    return StreamError("UPSTREAM", f"The upstream failed mid-answer ({code}): {said}")


# In-stream failures Kiro names with a reason (docs/protocol.md §Errors): the ErrorKind they become, and what it means.
_STREAM_KINDS: dict[FailureClass, tuple[str, str]] = {
    FailureClass.THROTTLED: ("THROTTLED", "Kiro is throttling this account; wait before the next request"),
    FailureClass.BUSY: ("RATE_LIMIT", "Kiro is busy"),
    FailureClass.CAPACITY: ("OVERLOADED", "Kiro has no capacity for this model right now"),
    FailureClass.QUOTA: ("QUOTA", "The Kiro account's usage limit is reached"),
    FailureClass.SUSPENDED: ("PERMISSION", "The Kiro account is suspended"),
    FailureClass.CONTEXT: ("CONTEXT_TOO_LONG", "The conversation is too large for Kiro; compact it"),
    FailureClass.VALIDATION: ("INVALID_REQUEST", "Kiro refused the request"),
    FailureClass.SIGNATURE: ("INVALID_REQUEST", "Kiro refused the replayed reasoning"),
    FailureClass.MODEL: ("INVALID_REQUEST", "Kiro does not offer this model to this account"),
}


class ResponseAssembler:
    """Feed every decoded Kiro event, then call `finish()` once; stops by itself after an upstream error."""

    def __init__(
        self,
        *,
        input_tokens: int | Callable[[], int],
        max_input_tokens: int = 200_000,
        tool_name_aliases: Mapping[str, str] = _NO_ALIASES,
        thinking_handling: str = "as_reasoning_content",
        detect_thinking: bool = True,
    ) -> None:
        if thinking_handling not in THINKING_HANDLING_MODES:
            raise ValueError(f"thinking_handling must be one of {THINKING_HANDLING_MODES}, not {thinking_handling!r}")
        # An int, or a callable read only when usage is reported (the gateway counts while the upstream works).
        self._input_estimate = input_tokens
        self._max_input = max_input_tokens
        self._aliases = tool_name_aliases
        self._mode = thinking_handling
        # "pass" keeps the tags in the text, which is exactly the text unparsed.
        self._extractor = ThinkingExtractor() if detect_thinking and thinking_handling != "pass" else None
        self._tag_open = False  # "pass": native reasoning shown as <thinking> text that is not closed yet
        self._separate = False  # "strip_tags": thinking went out as text; put a blank line before the answer
        self._plain = self._extractor is None  # fast path: text needs no processing at all
        self._native = False  # a reasoningContentEvent arrived: <thinking> text is plain text from then on
        self._reasoning_raw: list[str] = []  # native reasoning text as sent, placeholders included
        self._reasoning_shown = False
        self._held_placeholder = False  # a leading "..." not shown unless real reasoning text follows
        self._generated: list[str] = []  # thinking, text and arguments the model produced, for output tokens
        self._content_seen = False
        self._open: dict[str, _OpenCall] = {}
        self._closed_ids: set[str] = set()
        self._tool_count = 0
        self._truncated = False
        self._notes: list[str] = []
        self._token_usage: TokenUsageEvent | None = None
        self._context_percentage = 0.0
        self._credits: float | None = None
        self._completion_signal = False
        self._done = False

    @property
    def credits(self) -> float | None:
        """The credits Kiro metered so far (None before any `meteringEvent`): what an answer cut short cost."""
        return self._credits

    def feed(self, event: KiroEvent) -> list[OutputEvent]:
        """Output events this Kiro event completes (often exactly one, sometimes none)."""
        if self._done:
            return []
        if isinstance(event, TextEvent):
            if self._plain:
                text = event.content
                self._generated.append(text)
                self._content_seen = True
                return [ContentDelta(text)]
            return self._text(event.content)
        if isinstance(event, ToolUseEvent):
            return self._tool_use(event)
        if isinstance(event, ReasoningEvent):
            out: list[OutputEvent] = []
            self._reasoning(event, out)
            return out
        if isinstance(event, MeteringEvent):
            self._credits = (self._credits or 0.0) + event.usage
        elif isinstance(event, MetadataEvent):
            pass  # a trailer event: only its arrival matters
        elif isinstance(event, ContextUsageEvent):
            self._context_percentage = event.percentage
        elif isinstance(event, TokenUsageEvent):
            self._token_usage = event
        elif isinstance(event, UpstreamErrorEvent):
            out = []
            self._flush_text(out)  # what was already said is real; then the failure
            out.append(_stream_error(event))
            self._done = True
            return out
        else:
            return []
        self._completion_signal = True
        return []

    def finish(self) -> list[OutputEvent]:
        """Flush buffered text and open tool calls, then the `Finish` with reason and usage."""
        if self._done:
            return []
        self._done = True
        out: list[OutputEvent] = []
        self._flush_text(out)
        for call in self._open.values():
            self._complete(call, False, out)
        self._open.clear()
        notes = self._notes
        if not self._completion_signal:
            notes.append(NOTE_NO_COMPLETION_SIGNAL)
            if not self._truncated:  # a cut tool call already ends the answer with "length" and says why
                out.append(StreamError("TRUNCATED", NO_TRAILER_MESSAGE))
                return out
        reason = "length" if self._truncated else "tool_calls" if self._tool_count else "stop"
        out.append(Finish(reason=reason, usage=self._usage(), notes=notes))
        return out

    # ------------------------------------------------------------------ text and thinking

    def _text(self, text: str) -> list[OutputEvent]:
        out: list[OutputEvent] = []
        if self._tag_open:
            self._close_tag(out)
        extractor = self._extractor
        if extractor is None:
            self._content(text, out)
        else:
            thinking, content = extractor.feed(text)
            if thinking:
                self._thinking(thinking, None, out)
            if content:
                self._content(content, out)
            if extractor.passthrough:
                self._extractor = None
        self._plain = self._extractor is None and not self._tag_open and not self._separate
        return out

    def _content(self, text: str, out: list[OutputEvent]) -> None:
        self._generated.append(text)
        self._content_seen = True
        if self._separate:
            self._separate = False
            text = "\n\n" + text
        out.append(ContentDelta(text))

    def _reasoning(self, event: ReasoningEvent, out: list[OutputEvent]) -> None:
        """Native reasoning: stop tag parsing, hide GPT placeholders, pass signatures and blobs verbatim (see
        docs/protocol.md §Native reasoning)."""
        if not self._native:
            self._native = True
            extractor, self._extractor = self._extractor, None
            if extractor is not None:
                thinking, content = extractor.finish()
                if thinking:
                    self._thinking(thinking, None, out)
                if content:
                    self._content(content, out)
                self._plain = not self._tag_open and not self._separate
        text = event.text
        if text:
            self._reasoning_raw.append(text)
            if not self._reasoning_shown and text == GPT_PLACEHOLDER:
                self._held_placeholder, text = True, ""
            elif self._held_placeholder:
                self._held_placeholder, text = False, GPT_PLACEHOLDER + text
            self._reasoning_shown = self._reasoning_shown or bool(text)
        sealed = event.signature is not None or event.redacted_content is not None
        replay_text = "".join(self._reasoning_raw) if sealed else None
        self._thinking(text, event.signature, out, event.redacted_content, replay_text)

    def _thinking(self, text: str, signature: str | None, out: list[OutputEvent], redacted: str | None = None,
                  replay_text: str | None = None) -> None:
        if text:
            self._generated.append(text)
        mode = self._mode
        if mode == "as_reasoning_content":
            if text or signature or redacted:
                out.append(ThinkingDelta(text, signature, redacted, replay_text))
        elif text and mode == "strip_tags":
            out.append(ContentDelta(text))
            self._separate = True
            self._plain = False
        elif text and mode == "pass":  # only native reasoning gets here: tag text is never extracted in "pass"
            if not self._tag_open:
                self._tag_open = True
                self._plain = False
                text = _PASS_OPEN + text
            out.append(ContentDelta(text))

    def _close_tag(self, out: list[OutputEvent]) -> None:
        self._tag_open = False
        out.append(ContentDelta(_PASS_CLOSE))

    def _flush_text(self, out: list[OutputEvent]) -> None:
        """Nothing more will come before a tool call or the end: empty the extractor and close inline tags."""
        if self._tag_open:
            self._close_tag(out)
        extractor = self._extractor
        if extractor is not None:
            self._extractor = None
            thinking, content = extractor.finish()
            if thinking:
                self._thinking(thinking, None, out)
            if content:
                self._content(content, out)
        self._separate = False
        self._plain = True

    # ------------------------------------------------------------------ tool calls

    def _tool_use(self, event: ToolUseEvent) -> list[OutputEvent]:
        key = event.tool_use_id
        if key in self._closed_ids:
            return []  # frames repeated after the stop: the call is already out
        call = self._open.get(key)
        if call is None:
            call = self._open[key] = _OpenCall(key, event.name)
        elif event.name and not call.name:
            call.name = event.name
        value = event.input
        if isinstance(value, str):
            if value:
                call.fragments.append(value)
        elif value:  # a non-empty object; an empty `{}` start input must not become text "{}" (PR #158)
            if call.merged is None:
                call.merged = dict(value)
            else:
                call.merged.update(value)
        if not event.stop:
            return []
        del self._open[key]
        if key:  # id-less calls cannot be told apart from a repeat: let a later one start afresh
            self._closed_ids.add(key)
        out: list[OutputEvent] = []
        self._flush_text(out)
        self._complete(call, True, out)
        return out

    def _complete(self, call: _OpenCall, stopped: bool, out: list[OutputEvent]) -> None:
        raw = "".join(call.fragments)
        arguments, truncated = _arguments(raw, call.merged, stopped)
        name = self._aliases.get(call.name, call.name)
        if arguments is not None:
            self._generated.append(call.name)
            self._generated.append(arguments)
            index = self._tool_count
            self._tool_count += 1
            call_id = call.id or f"tooluse_kiro_{index}"
            out.append(ToolCallComplete(index=index, id=call_id, name=name, arguments=arguments))
            return
        size = len(raw.encode())
        self._generated.append(raw)
        if truncated:
            self._truncated = True
            self._notes.append(f"truncated tool call: name={name} id={call.id} bytes={size}")
            notice = (
                f"\n\n[Gateway notice: the upstream cut off the tool call `{name}` after {size} bytes of arguments, "
                "so it was not passed on. The upstream limits how much one answer can produce: split large outputs "
                "(for example, write a big file in several smaller parts) and try again.]"
            )
        else:
            self._notes.append(f"invalid tool call arguments: name={name} id={call.id} bytes={size}")
            notice = (
                f"\n\n[Gateway notice: the tool call `{name}` came with {size} bytes of arguments that are not a "
                "JSON object, so it was not passed on.]"
            )
        self._content_seen = True
        out.append(ContentDelta(notice))

    # ------------------------------------------------------------------ usage

    def _usage(self) -> Usage:
        output_tokens = claude_tokens("".join(self._generated))
        upstream = self._token_usage
        if upstream is not None and upstream.input_tokens > 0:
            return Usage(
                input_tokens=upstream.input_tokens,
                output_tokens=upstream.output_tokens or output_tokens,
                cache_read_input_tokens=upstream.cache_read_input_tokens,
                cache_creation_input_tokens=upstream.cache_write_input_tokens,
                credits=self._credits,
                cache_reported=upstream.cache_reported,
            )
        # The larger of the upstream-derived figure and the local estimate (docs/protocol.md §Credits and usage): the
        # percentage's denominator can be stale and it saturates at 100%, and Claude Code compacts on what it is told.
        from_upstream = int(self._context_percentage / 100 * self._max_input + 0.5)
        estimate = self._input_estimate
        input_tokens = max(from_upstream, estimate if isinstance(estimate, int) else estimate())
        return Usage(input_tokens=input_tokens, output_tokens=output_tokens, credits=self._credits)


def gateway_error(error: StreamError) -> GatewayError:
    """The classified error a `StreamError` stands for (an unknown kind name counts as an upstream failure)."""
    return GatewayError(ErrorKind.__members__.get(error.kind_name, ErrorKind.UPSTREAM), error.message)


@dataclass(slots=True)
class CollectedAnswer:
    """A whole answer gathered from output events (non-streaming responses)."""

    thinking: str = ""
    signature: str | None = None
    redacted: list[str] = field(default_factory=list)  # redactedContent blobs, in order
    replay_text: str | None = None  # native reasoning text as Kiro sent it (see ThinkingDelta)
    content: str = ""
    tool_calls: list[ToolCallComplete] = field(default_factory=list)
    finish: Finish | None = None
    error: StreamError | None = None


def collect(events: Iterable[OutputEvent]) -> CollectedAnswer:
    """Gather output events into one answer; the last signature wins, an error ends the collection."""
    thinking: list[str] = []
    content: list[str] = []
    answer = CollectedAnswer()
    for event in events:
        if isinstance(event, ContentDelta):
            content.append(event.text)
        elif isinstance(event, ThinkingDelta):
            thinking.append(event.text)
            if event.signature:
                answer.signature = event.signature
            if event.redacted:
                answer.redacted.append(event.redacted)
            if event.replay_text is not None:
                answer.replay_text = event.replay_text
        elif isinstance(event, ToolCallComplete):
            answer.tool_calls.append(event)
        elif isinstance(event, Finish):
            answer.finish = event
        elif isinstance(event, StreamError):
            answer.error = event
            break
    answer.thinking = "".join(thinking)
    answer.content = "".join(content)
    return answer
