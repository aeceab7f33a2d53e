"""Request shapes of Anthropic's `/v1/messages` and `/v1/messages/count_tokens`, as Claude Code and the SDKs send them.

Known content blocks are validated (a `tool_use` without an id is a client bug worth a precise 422); block types
we do not translate (server_tool_use, web_search_tool_result, ...) are accepted and dropped later, because Claude
Code replays them in history and a 422 would break it outright. Claude Code also puts `role: "system"` entries
inside `messages` (with their own `output_config`, per-turn control); they are accepted here and kept in place
downstream. `tool_reference` blocks in tool results (the answer to a tool search) are read: they load a deferred tool.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import Discriminator, Field, Tag, model_validator

from kiro_core.models.common import OpenModel, is_base64, str_or_list


class ImageSource(OpenModel):
    """`base64` (media_type + data) or `url`; other source kinds (e.g. `file`) are kept and skipped later."""

    type: str
    media_type: str | None = None
    data: str | None = None
    url: str | None = None

    @model_validator(mode="after")
    def _check_fields(self) -> ImageSource:
        if self.type == "base64" and (not self.media_type or self.data is None):
            raise ValueError("a base64 image source needs 'media_type' and 'data'")
        if self.type == "base64" and not is_base64(self.data or ""):
            raise ValueError("the base64 image source's 'data' is not valid base64")  # Anthropic's API refuses it too
        if self.type == "url" and not self.url:
            raise ValueError("a url image source needs 'url'")
        return self


class TextBlock(OpenModel):
    type: Literal["text"] = "text"
    text: str


class ImageBlock(OpenModel):
    type: Literal["image"] = "image"
    source: ImageSource


class ToolUseBlock(OpenModel):
    type: Literal["tool_use"] = "tool_use"
    id: str
    name: str
    input: dict[str, Any] = Field(default_factory=dict)


class ThinkingBlock(OpenModel):
    """Replayed reasoning; with an upstream signature it goes back to Kiro as `reasoningContent`."""

    type: Literal["thinking"] = "thinking"
    thinking: str = ""
    signature: str | None = None


class RedactedThinkingBlock(OpenModel):
    type: Literal["redacted_thinking"] = "redacted_thinking"
    data: str = ""


class DocumentSource(OpenModel):
    """`base64` (media_type + data), `text` (plain text in `data`), or a kind Kiro cannot take (`url`, `file`...),
    which the adapter refuses with a clear 400."""

    type: str
    media_type: str | None = None
    data: str | None = None
    url: str | None = None
    file_id: str | None = None


class DocumentBlock(OpenModel):
    type: Literal["document"] = "document"
    source: DocumentSource
    title: str | None = None


class ToolReferenceBlock(OpenModel):
    """A tool search's answer inside a tool result: from now on the named (deferred) tool is loaded."""

    type: Literal["tool_reference"] = "tool_reference"
    tool_name: str = ""


class OtherBlock(OpenModel):
    """Any block type this gateway does not translate; tolerated and dropped."""

    type: str


def _block_tag(known: frozenset[str]) -> Any:
    """A discriminator that routes known `type`s to their model and everything else to `other`."""

    def pick(value: Any) -> str:
        kind = value.get("type") if isinstance(value, dict) else getattr(value, "type", None)
        # A non-string `type` (an object, a list) goes to `other`, whose `type: str` refuses it with a 400.
        return kind if isinstance(kind, str) and kind in known else "other"

    return pick


ToolResultContentBlock = Annotated[
    Annotated[TextBlock, Tag("text")]
    | Annotated[ImageBlock, Tag("image")]
    | Annotated[DocumentBlock, Tag("document")]
    | Annotated[ToolReferenceBlock, Tag("tool_reference")]
    | Annotated[OtherBlock, Tag("other")],
    Discriminator(_block_tag(frozenset({"text", "image", "document", "tool_reference"}))),
]
ToolResultContent = str_or_list(
    ToolResultContentBlock, "tool_result content must be a string or a list of content blocks", list_tag="blocks"
)


class ToolResultBlock(OpenModel):
    type: Literal["tool_result"] = "tool_result"
    tool_use_id: str
    content: ToolResultContent | None = None
    is_error: bool | None = None


ContentBlock = Annotated[
    Annotated[TextBlock, Tag("text")]
    | Annotated[ImageBlock, Tag("image")]
    | Annotated[ToolUseBlock, Tag("tool_use")]
    | Annotated[ToolResultBlock, Tag("tool_result")]
    | Annotated[ThinkingBlock, Tag("thinking")]
    | Annotated[RedactedThinkingBlock, Tag("redacted_thinking")]
    | Annotated[DocumentBlock, Tag("document")]
    | Annotated[OtherBlock, Tag("other")],
    Discriminator(_block_tag(frozenset({"text", "image", "tool_use", "tool_result", "thinking", "redacted_thinking",
                                        "document"}))),
]


MessageContent = str_or_list(ContentBlock, "content must be a string or a list of content blocks", list_tag="blocks")


class AnthropicMessage(OpenModel):
    role: Literal["user", "assistant", "system"]
    content: MessageContent
    output_config: dict[str, Any] | None = None  # per-turn control: e.g. the effort of the turn this message is in


class SystemBlock(OpenModel):
    type: str = "text"
    text: str
    cache_control: dict[str, Any] | None = None


class AnthropicTool(OpenModel):
    """A custom tool (name + input_schema) or a server tool (`type` such as `web_search_20250305`, no schema)."""

    name: str = Field(min_length=1)
    description: str | None = None
    input_schema: dict[str, Any] | None = None
    type: str | None = None
    cache_control: dict[str, Any] | None = None
    defer_loading: bool | None = None  # sent to the model only once a `tool_reference` names it

    @model_validator(mode="after")
    def _custom_tools_need_a_schema(self) -> AnthropicTool:
        if self.type in (None, "custom") and self.input_schema is None:
            raise ValueError(f"custom tool {self.name!r} needs an 'input_schema'")
        return self

    @property
    def is_server_tool(self) -> bool:
        """Server tools run at Anthropic; Kiro has no equivalent, so they are skipped."""
        return self.input_schema is None


class ThinkingConfig(OpenModel):
    """`{type: enabled, budget_tokens}`, `{type: disabled}` or `{type: adaptive}`; a future type is tolerated
    (it gets the default budget) rather than breaking clients that are newer than this gateway."""

    type: str
    budget_tokens: int | None = Field(default=None, ge=1)
    display: str | None = None  # "omitted": thinking blocks carry their signature but no text

    @model_validator(mode="after")
    def _enabled_needs_budget(self) -> ThinkingConfig:
        if self.type == "enabled" and self.budget_tokens is None:
            raise ValueError("thinking of type 'enabled' needs 'budget_tokens'")
        return self


SystemContent = str_or_list(
    SystemBlock, "system must be a string or a list of text blocks", list_tag="blocks", error_type="system_type"
)


class _MessagesBase(OpenModel):
    model: str = Field(min_length=1)
    messages: list[AnthropicMessage] = Field(min_length=1)
    system: SystemContent | None = None
    tools: list[AnthropicTool] | None = None
    tool_choice: dict[str, Any] | None = None
    thinking: ThinkingConfig | None = None
    output_config: dict[str, Any] | None = None
    context_management: dict[str, Any] | None = None
    metadata: dict[str, Any] | None = None
    stop_sequences: list[str] | None = None
    temperature: float | None = None
    top_p: float | None = None
    top_k: int | None = None
    stream: bool = False


class MessagesRequest(_MessagesBase):
    """Body of `POST /v1/messages`; `max_tokens` is required, as in Anthropic's API."""

    max_tokens: int = Field(ge=1)


class CountTokensRequest(_MessagesBase):
    """Body of `POST /v1/messages/count_tokens`: the same request without the output limit."""

    max_tokens: int | None = Field(default=None, ge=1)
