"""What the fake Kiro says on `generateAssistantResponse`: script steps and builders of common streams.

A script is a list of steps played in order: frame bytes, `Pause` (silence), `Drop` (connection cut mid-stream),
`Status` (an HTTP error instead of a stream; only before any frame), `Corrupt` (a frame with a bad CRC), `Together`
(frames in one network write, to pin down what the gateway receives in one read). The builders return scripts shaped
like the real stream (docs/protocol.md §Event stream): JSON keys in alphabetical order, tool
input as string fragments, metering and context usage at the end. Scripts are lists, so they concatenate with `+`.
"""

from __future__ import annotations

import json
import struct
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

from tests.support import frames
from tests.support.fake_signatures import fake_signature


@dataclass(frozen=True)
class Pause:
    """Silence on the wire for `seconds` (already-queued bytes are flushed first)."""

    seconds: float


@dataclass(frozen=True)
class Drop:
    """Cut the connection without finishing the chunked body; `reset=True` sends a TCP RST instead of a FIN."""

    reset: bool = False


@dataclass(frozen=True)
class Status:
    """Answer with an HTTP error instead of a stream. `body`: dict/list → JSON, str/bytes sent as is."""

    code: int
    body: Any = None
    headers: Mapping[str, str] = field(default_factory=dict)

    def encoded_body(self) -> tuple[bytes, str]:
        if isinstance(self.body, bytes):
            return self.body, "application/octet-stream"
        if isinstance(self.body, str):
            return self.body.encode(), "text/plain; charset=utf-8"
        body = self.body if self.body is not None else {"message": f"Fake Kiro error {self.code}", "reason": None}
        return json.dumps(body).encode(), "application/json"


@dataclass(frozen=True)
class Corrupt:
    """A frame whose message CRC (or prelude CRC) is wrong, so a strict decoder must reject it."""

    frame: bytes = field(default_factory=lambda: frames.text("this frame is corrupt"))
    part: Literal["message", "prelude"] = "message"

    def encode(self) -> bytes:
        raw = bytearray(self.frame)
        if self.part == "prelude":
            (crc,) = struct.unpack_from(">I", raw, 8)
            struct.pack_into(">I", raw, 8, crc ^ 0xFFFFFFFF)
        else:
            raw[-1] ^= 0xFF
        return bytes(raw)


@dataclass(frozen=True)
class Together:
    """`frames` leave as one HTTP chunk in one network write, whatever `piece_sizes` says (bytes already queued
    are flushed first), so the gateway reads them together. `close=True` puts the end of the chunked body in that
    same write: the last frames and the end of the stream arrive at once."""

    frames: tuple[bytes, ...]
    close: bool = False


Step = bytes | Pause | Drop | Status | Corrupt | Together
Script = list[Step]

DEFAULT_CREDITS = 0.0169  # a real metering value seen on a short Sonnet answer
DEFAULT_CONTEXT = 12.5


def split_text(text: str, pieces: int) -> list[str]:
    """`text` cut into at most `pieces` non-empty consecutive parts."""
    if not text:
        return []
    pieces = max(1, min(pieces, len(text)))
    size, extra = divmod(len(text), pieces)
    out, start = [], 0
    for i in range(pieces):
        end = start + size + (1 if i < extra else 0)
        out.append(text[start:end])
        start = end
    return out


def finish_frames(credits: float = DEFAULT_CREDITS, context: float = DEFAULT_CONTEXT) -> list[bytes]:
    """The metering and context-usage frames that close a normal stream."""
    return [frames.metering(credits), frames.context_usage(context)]


def tool_call_frames(name: str, arguments: Mapping[str, Any] | str, *, tool_use_id: str = "tooluse_fake0001",
                     fragment_size: int = 7, stop: bool = True, keep: float = 1.0) -> list[bytes]:
    """Start frame, input fragments (`keep` < 1 cuts the JSON), then a stop frame if `stop`."""
    raw = arguments if isinstance(arguments, str) else json.dumps(arguments)
    raw = raw[: int(len(raw) * keep)] if keep < 1.0 else raw
    out = [frames.tool_start(tool_use_id, name)]
    out += [frames.tool_input(tool_use_id, name, raw[i:i + fragment_size]) for i in range(0, len(raw), fragment_size)]
    if stop:
        out.append(frames.tool_stop(tool_use_id, name))
    return out


def text_stream(text: str, *, thinking: str | None = None, pieces: int = 3, credits: float = DEFAULT_CREDITS,
                context: float = DEFAULT_CONTEXT) -> Script:
    """A plain answer in `pieces` text events; with `thinking`, a leading <thinking> block split mid-tag."""
    out: Script = []
    if thinking is not None:
        block = f"<thinking>{thinking}</thinking>\n\n"
        out += [frames.text(block[:5]), frames.text(block[5:])]
    out += [frames.text(part) for part in split_text(text, pieces)]
    return out + finish_frames(credits, context)


def tool_call_stream(name: str, arguments: Mapping[str, Any] | str, *, tool_use_id: str = "tooluse_fake0001",
                     text: str = "", fragment_size: int = 7, credits: float = DEFAULT_CREDITS,
                     context: float = DEFAULT_CONTEXT) -> Script:
    """Optional text, then one tool call with its JSON input in `fragment_size`-character fragments."""
    out: Script = [frames.text(part) for part in split_text(text, 2)]
    out += tool_call_frames(name, arguments, tool_use_id=tool_use_id, fragment_size=fragment_size)
    return out + finish_frames(credits, context)


def truncated_tool_stream(name: str, arguments: Mapping[str, Any] | str, *, keep: float = 0.5,
                          tool_use_id: str = "tooluse_fake0001", fragment_size: int = 7) -> Script:
    """Kiro's output cap (issue #56): the input JSON stops part-way, no stop frame, no metering, no context usage."""
    out: Script = [*tool_call_frames(name, arguments, tool_use_id=tool_use_id, fragment_size=fragment_size,
                                     stop=False, keep=keep)]
    return out


def reasoning_stream(answer: str, summary: str, *, signature: str | None = None, pieces: int = 3,
                     credits: float = DEFAULT_CREDITS, context: float = DEFAULT_CONTEXT) -> Script:
    """Native reasoning as Kiro streams it (docs/protocol.md §Native reasoning): summary text deltas, one
    signature-only frame, then the answer.

    `signature` defaults to the fake's own signature of `summary`, which it accepts when replayed unchanged.
    """

    out: Script = [frames.reasoning(part) for part in split_text(summary, pieces)]
    out.append(frames.reasoning("", signature if signature is not None else fake_signature(summary)))
    return out + text_stream(answer, pieces=pieces, credits=credits, context=context)


def redacted_stream(answer: str, blob: str) -> Script:
    """Redacted reasoning (one `redactedContent` frame), then the answer."""
    return [frames.redacted(blob), *text_stream(answer)]


def gpt_reasoning_stream(answer: str) -> Script:
    """GPT-5.6 style: the answer first, then one reasoning frame of placeholder text "..." with the encrypted blob
    in `signature` (some captures place it at the end of the turn); the blob is the fake's signature of "..."."""

    return [frames.text(answer), frames.reasoning("...", fake_signature("...")), *finish_frames()]


def exception_stream(text: str = "Partial answer", *, exception_type: str = "ThrottlingException",
                     message: str = "Rate exceeded") -> Script:
    """Some text, then a mid-stream exception frame (the stream then ends cleanly, as the real one does)."""
    out: Script = [frames.text(part) for part in split_text(text, 2)]
    return [*out, frames.exception_frame(exception_type, message)]


def failure_timings(text: str = "Partial answer", *, exception_type: str = "ThrottlingException",
                    message: str = "Rate exceeded") -> dict[str, Script]:
    """One answer that fails mid-stream (text, then an exception frame), under each read split that matters: the
    failure in the same network write as the text, as the end of the stream, before or after trailer frames, and
    in the fake's usual odd-sized pieces. Every one is the same failed answer to whoever decodes it."""
    first, last = split_text(text, 2)
    failure = frames.exception_frame(exception_type, message)
    trailer = finish_frames()
    return {
        "all-in-one-write": [Together((frames.text(first), frames.text(last), failure), close=True)],
        "with-last-text": [frames.text(first), Together((frames.text(last), failure), close=True)],
        "with-the-close": [frames.text(first), frames.text(last), Together((failure,), close=True)],
        "before-trailer": [Together((frames.text(first), frames.text(last), failure, *trailer), close=True)],
        "after-trailer": [Together((frames.text(first), frames.text(last), *trailer, failure), close=True)],
        "in-pieces": exception_stream(text, exception_type=exception_type, message=message),
    }


def silent_stream(seconds: float, then: Script | None = None) -> Script:
    """HTTP 200 at once, then nothing for `seconds` before the first frame (a stalled model)."""
    return [Pause(seconds), *(then if then is not None else text_stream("Sorry for the wait."))]


def throttled(retry_after: int = 1) -> Script:
    """HTTP 429 with Retry-After, as Kiro throttles bursts."""
    body = {"message": "Too many requests, please wait before trying again.", "reason": None}
    return [Status(429, body, {"Retry-After": str(retry_after)})]


def reasoning_frames(summary: str, *, signature: str | None = None, pieces: int = 2) -> list[bytes]:
    """Native reasoning as Kiro streams it (docs/protocol.md §Native reasoning): summary text deltas, then one
    signature-only frame (by default the fake's own valid signature of the summary, so a client replaying it is
    accepted)."""
    signed = signature if signature is not None else fake_signature(summary)
    return [*(frames.reasoning(part) for part in split_text(summary, pieces)), frames.reasoning("", signed)]


def probe_stream(text: str = "ok", *, reasoning: str | None = None, metering: bool = True, context: bool = True,
                 metadata: bool = True, credits: float = DEFAULT_CREDITS) -> Script:
    """A short answer with today's trailer (`metadataEvent` → `contextUsageEvent` → `meteringEvent`, docs/protocol.md
    §Event stream), each part optional, led by native reasoning frames when `reasoning` is given: every answer
    `kiro-gateway doctor` can see."""
    out: Script = [*(reasoning_frames(reasoning) if reasoning is not None else [])]
    out += [frames.text(part) for part in split_text(text, 2)]
    if metadata:
        out.append(frames.metadata_stop())
    if context:
        out.append(frames.context_usage(DEFAULT_CONTEXT))
    if metering:
        out.append(frames.metering(credits))
    return out


SUBAGENT_TOOLS = frozenset({"Agent", "Task"})


def default_answer(request: Any) -> Script:
    """`plain_answer`, led by native reasoning frames when the request asks for an effort (schema models)."""
    fields = request.get("additionalModelRequestFields") if isinstance(request, dict) else None
    lead = reasoning_frames("Weighing the request.") if isinstance(fields, dict) and fields else []
    return [*lead, *plain_answer(request)]


def plain_answer(request: Any) -> Script:
    """A plausible stream for a chat request: answer tool results, call the first tool (not a sub-agent launcher),
    or echo the user text."""
    message = _current_user_message(request)
    context = message.get("userInputMessageContext") or {}
    results = context.get("toolResults") or []
    tools = context.get("tools") or []
    if results:
        first = results[0]
        pieces = [c.get("text", "") for c in first.get("content") or [] if isinstance(c, dict)]
        return text_stream(f"The tool returned: {' '.join(pieces)[:200]}")
    if tools:
        # Not a sub-agent launcher when there is another tool: Claude Code 2.1.3xx offers `Agent` first and runs it
        # in the background, so a model that always launched it would recurse without end.
        plain = [t for t in tools if (t.get("toolSpecification") or {}).get("name") not in SUBAGENT_TOOLS]
        spec = (plain or tools)[0].get("toolSpecification") or {}
        schema = (spec.get("inputSchema") or {}).get("json") or {}
        return tool_call_stream(spec.get("name", "tool"), _example_for(schema), text="Let me check that.")
    content = str(message.get("content") or "")
    thinking = "The user wants an echo." if "<thinking_mode>enabled" in content else None
    last_line = content.strip().splitlines()[-1] if content.strip() else "(empty)"
    return text_stream(f"Echo: {last_line}", thinking=thinking)


def _current_user_message(request: Any) -> dict[str, Any]:
    if not isinstance(request, dict):
        return {}
    current = (request.get("conversationState") or {}).get("currentMessage") or {}
    message = current.get("userInputMessage") or {}
    return message if isinstance(message, dict) else {}


def _example_for(schema: Any) -> Any:
    """A value that satisfies simple JSON Schemas: required properties filled with placeholders by type."""
    if not isinstance(schema, dict):
        return "example"
    if schema.get("enum"):
        return schema["enum"][0]
    kind = schema.get("type")
    if kind == "object" or "properties" in schema:
        props = schema.get("properties") or {}
        wanted = schema.get("required") or list(props)
        return {key: _example_for(props.get(key)) for key in wanted}
    return {"integer": 1, "number": 1.5, "boolean": True, "array": [], "null": None}.get(str(kind), "example")


# ---------------------------------------------------------------------------------------------------- web search

FAKE_PUBLISHED_MS = 1_767_225_600_000  # 2026-01-01T00:00:00Z


def search_results(query: str, count: int = 3) -> list[dict[str, Any]]:
    """Results shaped like Kiro's (docs/protocol.md §Web search), made up from the query."""
    return [{"title": f"Fake Result {n} about {query}", "url": f"https://example.com/fake/{n}",
             "snippet": f"Snippet {n}: what the fake web says about {query}.",
             "publishedDate": FAKE_PUBLISHED_MS + (n - 1) * 86_400_000, "id": f"fake-{n}",
             "domain": "example.com", "maxVerbatimWordLimit": 30, "publicDomain": False}
            for n in range(1, count + 1)]


@dataclass(frozen=True)
class SearchReply:
    """What the fake MCP endpoint answers to one search (HTTP 200): `results` (None: made up from the query,
    [] an empty search), or `is_error` text (`result.isError`), or a JSON-RPC `rpc_error` (code, message)."""

    results: list[dict[str, Any]] | None = None
    is_error: str | None = None
    rpc_error: tuple[int, str] | None = None

    def envelope(self, request_id: Any, query: str) -> dict[str, Any]:
        if self.rpc_error is not None:
            return {"jsonrpc": "2.0", "id": request_id,
                    "error": {"code": self.rpc_error[0], "message": self.rpc_error[1]}}
        if self.is_error is not None:
            return {"jsonrpc": "2.0", "id": request_id,
                    "result": {"content": [{"type": "text", "text": self.is_error}], "isError": True}}
        results = search_results(query) if self.results is None else self.results
        inner = {"results": results, "totalResults": len(results), "query": query}
        return {"jsonrpc": "2.0", "id": request_id,
                "result": {"content": [{"type": "text", "text": json.dumps(inner)}], "isError": False}}
