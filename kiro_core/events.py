"""Typed events at the two stages of the response pipeline.

Stage 1, `KiroEvent`: what the event-stream decoder (`kiro_core.eventstream`) reads off Kiro's binary frames, one
event per frame, routed on `:message-type` / `:event-type`.

Stage 2, `OutputEvent`: what the response assembler (`kiro_core.stream`) makes of them — thinking separated from
text, tool calls accumulated per `toolUseId` and validated, usage resolved — ready for the OpenAI and Anthropic
formatters (`kiro_core.format`). Streaming and whole answers consume the same stage-2 events.

These are small slotted dataclasses: one is built per frame on the hot path, so nothing here validates.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import Enum
from typing import Any, Literal

# ---------------------------------------------------------------- stage 1: Kiro events (decoder output)


@dataclass(slots=True)
class TextEvent:
    """`assistantResponseEvent`: a piece of the answer text."""

    content: str


@dataclass(slots=True)
class ToolUseEvent:
    """`toolUseEvent`: one frame of a tool call.

    `input` is a string fragment of the arguments JSON, a whole object (some endpoint versions), or None.
    """

    tool_use_id: str
    name: str
    input: str | dict[str, Any] | None
    stop: bool


@dataclass(slots=True)
class MeteringEvent:
    """`meteringEvent`: credits this request consumed."""

    usage: float
    unit: str = "credit"


@dataclass(slots=True)
class MetadataEvent:
    """`metadataEvent` without `tokenUsage` (what live streams send): carries nothing but ends the answer."""

    stop_reason: str | None = None


@dataclass(slots=True)
class ContextUsageEvent:
    """`contextUsageEvent`: how full the model's context is, 0–100; also a normal-completion signal."""

    percentage: float


@dataclass(slots=True)
class ReasoningEvent:
    """`reasoningContentEvent`: native reasoning text (and its signature, or redacted content)."""

    text: str
    signature: str | None = None
    redacted_content: str | None = None


@dataclass(slots=True)
class TokenUsageEvent:
    """`metadataEvent.tokenUsage`: the upstream's own token counts; preferred over any estimate."""

    input_tokens: int
    output_tokens: int
    cache_read_input_tokens: int = 0
    cache_write_input_tokens: int = 0
    cache_reported: bool = False  # the upstream sent a cache field (even a zero one)


class UpstreamErrorKind(Enum):
    EXCEPTION = "exception"  # :message-type exception (throttling, internal error, validation...)
    ERROR = "error"  # :message-type error
    INVALID_STATE = "invalid_state"  # invalidStateEvent
    CORRUPT_FRAME = "corrupt_frame"  # CRC mismatch, impossible lengths, undecodable payload
    TRUNCATED = "truncated"  # the stream ended inside a frame


@dataclass(slots=True)
class UpstreamErrorEvent:
    """Kiro reported a failure inside the stream, or the stream itself is damaged. Never silently dropped."""

    kind: UpstreamErrorKind
    code: str  # :exception-type / :error-code / reason, e.g. "ThrottlingException"
    message: str
    reason: str | None = None  # Kiro's `reason` from the frame's JSON payload, e.g. "USER_REQUEST_RATE_EXCEEDED"
    retry_after_ms: float | None = None  # Kiro's `retryAfterMilliseconds`, when the frame carries one


KiroEvent = (
    TextEvent
    | ToolUseEvent
    | MeteringEvent
    | MetadataEvent
    | ContextUsageEvent
    | ReasoningEvent
    | TokenUsageEvent
    | UpstreamErrorEvent
)

# ---------------------------------------------------------------- stage 2: output events (assembler output)


@dataclass(slots=True)
class ThinkingDelta:
    """Reasoning text to show. A delta that closes native reasoning also carries its `signature` (verbatim) or
    `redacted` blob, and `replay_text`: the whole reasoning text as Kiro sent it (placeholders included), which is
    what a client must send back with the signature."""

    text: str
    signature: str | None = None
    redacted: str | None = None
    replay_text: str | None = None


@dataclass(slots=True)
class ContentDelta:
    text: str


@dataclass(slots=True)
class ToolCallComplete:
    """A finished, validated tool call. `arguments` is compact JSON text of an object; `name` is the client's name
    (aliases for over-long names already mapped back). `index` counts tool calls from 0 within the answer."""

    index: int
    id: str
    name: str
    arguments: str


FinishReason = Literal["stop", "tool_calls", "length"]


@dataclass(slots=True)
class Usage:
    """Token counts and the credits Kiro metered. Cache figures exist only when the upstream sent them: formatters
    report cache fields only if `reports_cache`; `credits` is None when no `meteringEvent` came."""

    input_tokens: int
    output_tokens: int
    cache_read_input_tokens: int = 0
    cache_creation_input_tokens: int = 0
    credits: float | None = None
    cache_reported: bool = False

    @property
    def reports_cache(self) -> bool:
        """Whether the upstream said anything about the cache (a non-zero figure can only have come from it)."""
        return self.cache_reported or bool(self.cache_read_input_tokens or self.cache_creation_input_tokens)


@dataclass(slots=True)
class Finish:
    """The last event of a successful answer. `reason` uses the OpenAI vocabulary; Anthropic formatters map it
    (`stop`→`end_turn`, `tool_calls`→`tool_use`, `length`→`max_tokens`)."""

    reason: FinishReason
    usage: Usage
    notes: list[str] = field(default_factory=list)


@dataclass(slots=True)
class StreamError:
    """The answer failed after it began; formatters turn this into the client's own in-stream error event.

    `kind_name` is an `kiro_core.errors.ErrorKind` member name (e.g. "UPSTREAM", "RATE_LIMIT", "TRUNCATED")."""

    kind_name: str
    message: str
    retry_after: float | None = None  # seconds, from Kiro's own hint or its documented penalty window


OutputEvent = ThinkingDelta | ContentDelta | ToolCallComplete | Finish | StreamError
