"""The one conversation form that both client APIs are translated into before the Kiro payload is built.

OpenAI and Anthropic specifics stop at the adapters (`kiro_core.convert.openai`, `kiro_core.convert.anthropic`);
everything after them — normalisation, the Kiro payload, token estimates — speaks only these types.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

Role = Literal["user", "assistant"]


@dataclass(frozen=True, slots=True)
class SessionHints:
    """What a request says about its session. Empty strings mean "not given"."""

    session: str = ""  # the client's session: one Kiro conversation (the root, when sub-agents exist)
    agent: str = ""  # a sub-agent or child thread inside the session: its own conversation
    turn: str = ""  # a per-user-turn id, when the client sends one (Codex `client_metadata.turn_id`)
    source: str = ""  # where `session` came from, for the request log (a field name, never its value)
    scope: str = ""  # a hash of the client's key: conversations of different clients never meet


@dataclass(slots=True)
class ToolCall:
    """A call the assistant made; `arguments` is the parsed JSON object Kiro wants as `toolUses[].input`."""

    id: str
    name: str
    arguments: dict[str, Any]


@dataclass(slots=True)
class ToolResult:
    """The client's answer to a tool call, flattened to text (Kiro takes text only)."""

    tool_use_id: str
    content: str
    is_error: bool = False


@dataclass(slots=True)
class Image:
    """An inline image; `data` is base64 without any `data:` prefix, `media_type` e.g. `image/png`."""

    media_type: str
    data: str


@dataclass(slots=True)
class Document:
    """An inline document (`userInputMessage.documents`); `format` is one of Kiro's nine, `data` is base64 and
    `name` is the client's file name or title, made safe for Kiro only when the payload is rendered."""

    name: str
    format: str
    data: str


@dataclass(slots=True)
class ReasoningReplay:
    """Native reasoning of an earlier assistant turn, to send back as `reasoningContent`: either the summary text
    with its upstream signature (verbatim), or an opaque redacted blob (base64)."""

    text: str = ""
    signature: str | None = None
    redacted: str | None = None
    # Where it was minted, when the gateway's signature envelope says so (`kiro_core.convert.reasoning.bind`): the
    # Kiro model id and short digests of the tool names Kiro was given. Kiro refuses it under another model or once
    # one of those tools is gone; None: unknown, replayed as is.
    minted_model: str | None = None
    minted_tools: frozenset[str] | None = None


@dataclass(slots=True)
class Message:
    role: Role
    text: str = ""
    tool_calls: list[ToolCall] = field(default_factory=list)
    tool_results: list[ToolResult] = field(default_factory=list)
    images: list[Image] = field(default_factory=list)
    documents: list[Document] = field(default_factory=list)
    reasoning: ReasoningReplay | None = None  # assistant turns only; one slot per Kiro message


@dataclass(slots=True)
class ToolSpec:
    name: str
    description: str
    input_schema: dict[str, Any]


@dataclass(slots=True)
class ThinkingRequest:
    """Whether to ask the model for `<thinking>` reasoning, and with which budget (tokens)."""

    enabled: bool
    budget_tokens: int = 0


@dataclass(slots=True)
class ReasoningIntent:
    """What the client said about native reasoning; None means it said nothing (the service default applies).

    `effort` is a level of `none < low < medium < high < xhigh < max` (or `minimal`, read as low); `mode` is
    `adaptive` or `disabled` when the client named one.
    """

    effort: str | None = None
    mode: str | None = None
    display: str | None = None  # `summarized` or `omitted` when the client named one


@dataclass(slots=True)
class Conversation:
    """A client request in unified form.

    `model` is the client's model string, untouched (responses echo it); `system` is the whole system prompt.
    """

    model: str
    messages: list[Message]
    system: str = ""
    tools: list[ToolSpec] = field(default_factory=list)
    thinking: ThinkingRequest = field(default_factory=lambda: ThinkingRequest(enabled=False))
    max_tokens: int | None = None
    stream: bool = False
    reasoning: ReasoningIntent = field(default_factory=ReasoningIntent)
    session: SessionHints | None = None  # what the client said about its session (kiro_core.session), if anything
    body_bytes: int = 0  # size of the client body it came from: large ones are encoded off the event loop
