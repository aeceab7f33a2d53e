"""Request shape of OpenAI's `/v1/responses` (the Responses API), as Codex CLI and the `openai` SDK send it.

`input` items are routed on their `type` (a role-only item is a message) so a malformed item gets one precise error
naming its index and field. Item kinds we cannot use (reasoning, web_search_call, local_shell_call...) are kept as
`OtherItem` and dropped by the adapter: Codex replays every item it ever received, and refusing one would break the
whole session. Unknown fields are kept (`extra="allow"`) for the same reason as in the chat model.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, Discriminator, Field, Tag, field_validator, model_validator

from kiro_core.models.common import OpenModel, str_or_list
from kiro_core.models.openai import ReasoningEffort


class InputPart(OpenModel):
    """One content part: `input_text` / `output_text` (text), `input_image`, `refusal`, or a type skipped later."""

    type: str
    text: str | None = None
    image_url: str | None = None
    file_id: str | None = None
    refusal: str | None = None
    filename: str | None = None  # input_file
    file_data: str | None = None
    file_url: str | None = None

    @model_validator(mode="after")
    def _check_known_types(self) -> InputPart:
        if self.type in ("input_text", "output_text", "text") and self.text is None:
            raise ValueError(f"an {self.type!r} content part needs a string 'text'")
        if self.type == "input_image" and self.image_url is None and self.file_id is None:
            raise ValueError("an 'input_image' content part needs 'image_url' (a data: URL)")
        return self


PartsOrText = str_or_list(InputPart, "must be a string or a list of content parts")


class MessageItem(OpenModel):
    """`{"type": "message", "role", "content"}` or the short form without `type`. Unknown roles count as user."""

    type: Literal["message"] | None = None
    role: str = Field(min_length=1)
    content: PartsOrText
    id: str | None = None
    status: str | None = None


class FunctionCallItem(OpenModel):
    """A function call the assistant made earlier; `call_id` links it to its `function_call_output`."""

    type: Literal["function_call"]
    call_id: str = Field(min_length=1)
    name: str = Field(min_length=1)
    # A JSON string per the spec; some clients send the object itself.
    arguments: str | dict[str, Any] = ""
    id: str | None = None
    status: str | None = None


class FunctionCallOutputItem(OpenModel):
    """The client's result for a function call: text, or parts (text and images)."""

    type: Literal["function_call_output"]
    call_id: str = Field(min_length=1)
    output: PartsOrText
    id: str | None = None


class CustomToolCallItem(OpenModel):
    """A call of a `custom` (free-text input) tool, e.g. Codex's `apply_patch`."""

    type: Literal["custom_tool_call"]
    call_id: str = Field(min_length=1)
    name: str = Field(min_length=1)
    input: str = ""
    id: str | None = None


class CustomToolCallOutputItem(OpenModel):
    type: Literal["custom_tool_call_output"]
    call_id: str = Field(min_length=1)
    output: PartsOrText
    id: str | None = None


class ReasoningItem(OpenModel):
    """Reasoning from an earlier answer; its `encrypted_content` (our envelope) goes back to Kiro."""

    type: Literal["reasoning"]
    id: str | None = None
    summary: Any = None  # shown to the user only; the envelope carries the text Kiro needs back
    encrypted_content: str | None = None


class OtherItem(OpenModel):
    """Any other item kind (reasoning, web_search_call, item_reference...): accepted, then dropped."""

    type: str


_ITEM_TAGS = {
    "message": "message",
    "function_call": "function_call",
    "function_call_output": "function_call_output",
    "custom_tool_call": "custom_tool_call",
    "custom_tool_call_output": "custom_tool_call_output",
    "reasoning": "reasoning",
}


def _item_tag(value: Any) -> str | None:
    """Which item model validates `value`: by `type`, a role-only item is a message, anything else has no tag."""
    if isinstance(value, BaseModel):  # serialisation hands over the validated model
        kind, has_role = getattr(value, "type", None), hasattr(value, "role")
    elif isinstance(value, dict):
        kind, has_role = value.get("type"), "role" in value
    else:
        return None
    if kind is None:
        return "message" if has_role else None
    if not isinstance(kind, str):
        return None
    return _ITEM_TAGS.get(kind, "other")


InputItem = Annotated[
    Annotated[MessageItem, Tag("message")]
    | Annotated[FunctionCallItem, Tag("function_call")]
    | Annotated[FunctionCallOutputItem, Tag("function_call_output")]
    | Annotated[CustomToolCallItem, Tag("custom_tool_call")]
    | Annotated[CustomToolCallOutputItem, Tag("custom_tool_call_output")]
    | Annotated[ReasoningItem, Tag("reasoning")]
    | Annotated[OtherItem, Tag("other")],
    Discriminator(
        _item_tag,
        custom_error_type="input_item",
        custom_error_message="each input item must be an object with a string 'type' (or a 'role' for a message)",
    ),
]

Input = str_or_list(
    InputItem, "input must be a string or a list of input items", list_tag="items", error_type="input_type"
)


class ResponsesTool(OpenModel):
    """`function` tools are forwarded; `custom` tools become a function with one string field `input`; every
    other type (namespace, web_search, file_search, mcp...) is kept here and skipped by the adapter."""

    type: str
    name: str | None = None
    description: str | None = None
    parameters: dict[str, Any] | None = None
    strict: bool | None = None
    format: dict[str, Any] | None = None

    @model_validator(mode="after")
    def _callable_tools_need_a_name(self) -> ResponsesTool:
        if self.type in ("function", "custom") and not self.name:
            raise ValueError(f"a {self.type!r} tool needs a 'name'")
        return self


class ReasoningConfig(OpenModel):
    effort: ReasoningEffort | None = None
    summary: str | None = None


class ResponsesRequest(OpenModel):
    """Body of `POST /v1/responses`. The gateway is stateless: the client sends the whole history each turn."""

    model: str = Field(min_length=1)
    input: Input
    instructions: str | None = None
    tools: list[ResponsesTool] | None = None
    tool_choice: str | dict[str, Any] | None = None
    parallel_tool_calls: bool | None = None
    stream: bool = False
    store: bool | None = None
    include: list[str] | None = None
    reasoning: ReasoningConfig | None = None
    max_output_tokens: int | None = Field(default=None, ge=1)
    text: dict[str, Any] | None = None
    previous_response_id: str | None = None
    metadata: dict[str, Any] | None = None
    temperature: float | None = None
    top_p: float | None = None
    user: str | None = None
    truncation: str | None = None

    @field_validator("input")
    @classmethod
    def _input_not_empty(cls, value: Any) -> Any:
        if isinstance(value, list) and not value:
            raise ValueError("'input' is an empty list; send at least one input item")
        return value

    def echo(self) -> dict[str, Any]:
        """The request fields a Response object repeats back (the SDK and Codex read them from there)."""
        reasoning = self.reasoning.model_dump(include={"effort", "summary"}) if self.reasoning else None
        return {
            "instructions": self.instructions,
            "max_output_tokens": self.max_output_tokens,
            "metadata": self.metadata or {},
            "parallel_tool_calls": self.parallel_tool_calls is not False,
            "previous_response_id": None,
            "reasoning": reasoning or {"effort": None, "summary": None},
            "store": bool(self.store),
            "temperature": self.temperature,
            "text": self.text or {"format": {"type": "text"}},
            "tool_choice": self.tool_choice if self.tool_choice is not None else "auto",
            "tools": [tool.model_dump(exclude_none=True) for tool in self.tools or []],
            "top_p": self.top_p,
            "truncation": self.truncation or "disabled",
            "user": self.user,
        }
