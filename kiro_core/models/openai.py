"""Request shape of OpenAI's `/v1/chat/completions`, as real clients (SDKs, Cursor, Cline, LiteLLM) send it.

Structure is validated so a malformed request gets a precise 422; nested blobs that clients fill differently
(tool_choice, response_format, JSON schemas) stay loose. Unknown fields are kept (`extra="allow"`): a gateway that
rejects a field it does not use breaks clients for nothing.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import Field, model_validator

from kiro_core.models.common import OpenModel, str_or_list

ReasoningEffort = Literal["none", "minimal", "low", "medium", "high", "xhigh", "max"]


class ImageUrl(OpenModel):
    url: str
    detail: str | None = None


class FileRef(OpenModel):
    """A `file` part's payload: inline `file_data` (data URL or base64) with its `filename`, or a `file_id`."""

    filename: str | None = None
    file_data: str | None = None
    file_id: str | None = None


class ContentPart(OpenModel):
    """One element of a list `content`: `text`, `image_url`, `file`, or a type we skip later (audio, refusal...)."""

    type: str
    text: str | None = None
    image_url: ImageUrl | str | None = None
    file: FileRef | None = None

    @model_validator(mode="after")
    def _check_known_types(self) -> ContentPart:
        if self.type == "text" and self.text is None:
            raise ValueError("a 'text' content part needs a string 'text'")
        if self.type == "image_url" and self.image_url is None:
            raise ValueError("an 'image_url' content part needs 'image_url' ({'url': ...})")
        if self.type == "file" and self.file is None:
            raise ValueError("a 'file' content part needs 'file' ({'filename': ..., 'file_data': ...})")
        return self

    @property
    def url(self) -> str | None:
        """The image URL whichever way the client spelled it (object or bare string)."""
        if isinstance(self.image_url, ImageUrl):
            return self.image_url.url
        return self.image_url


class FunctionCall(OpenModel):
    name: str
    # A JSON string per the spec; some clients send the object itself.
    arguments: str | dict[str, Any] | None = None


class ToolCallItem(OpenModel):
    id: str
    type: str = "function"
    function: FunctionCall


MessageContent = str_or_list(ContentPart, "content must be a string, null, or a list of content parts")


class ChatMessage(OpenModel):
    """One message. `role` is a free string: unknown roles are treated as user downstream, not rejected."""

    role: str
    content: MessageContent | None = None
    name: str | None = None
    tool_calls: list[ToolCallItem] | None = None
    tool_call_id: str | None = None

    @model_validator(mode="after")
    def _tool_message_needs_id(self) -> ChatMessage:
        if self.role == "tool" and not self.tool_call_id:
            raise ValueError("a 'tool' message needs 'tool_call_id' (the id of the call it answers)")
        return self


class FunctionDef(OpenModel):
    name: str = Field(min_length=1)
    description: str | None = None
    parameters: dict[str, Any] | None = None


class ChatTool(OpenModel):
    """A tool in the standard `{"type":"function","function":{...}}` form or Cursor's flat form
    `{"type":"function","name","description","input_schema"|"parameters"}`. Other types are kept and skipped."""

    type: str = "function"
    function: FunctionDef | None = None
    name: str | None = None
    description: str | None = None
    input_schema: dict[str, Any] | None = None
    parameters: dict[str, Any] | None = None

    @model_validator(mode="after")
    def _function_needs_a_name(self) -> ChatTool:
        if self.type == "function" and self.function is None and not self.name:
            raise ValueError("a function tool needs 'function' ({'name': ...}) or, in the flat form, 'name'")
        return self

    def as_function(self) -> tuple[str, str, dict[str, Any]] | None:
        """(name, description, JSON schema) for a function tool, whichever form; None for other tool types."""
        if self.type != "function":
            return None
        if self.function is not None:
            return self.function.name, self.function.description or "", self.function.parameters or {}
        schema = self.input_schema if self.input_schema is not None else self.parameters
        return self.name or "", self.description or "", schema or {}


class StreamOptions(OpenModel):
    include_usage: bool = False


class ChatCompletionRequest(OpenModel):
    """Body of `POST /v1/chat/completions`. Only model, messages, tools, stream and the thinking inputs
    (reasoning_effort, max tokens) influence the upstream call; the rest is accepted for compatibility."""

    model: str = Field(min_length=1)
    messages: list[ChatMessage] = Field(min_length=1)
    stream: bool = False
    stream_options: StreamOptions | None = None
    max_tokens: int | None = Field(default=None, ge=1)
    max_completion_tokens: int | None = Field(default=None, ge=1)
    reasoning_effort: ReasoningEffort | None = None
    temperature: float | None = None
    top_p: float | None = None
    n: int | None = None
    stop: str | list[str] | None = None
    presence_penalty: float | None = None
    frequency_penalty: float | None = None
    seed: int | None = None
    user: str | None = None
    tools: list[ChatTool] | None = None
    tool_choice: str | dict[str, Any] | None = None
    parallel_tool_calls: bool | None = None
    response_format: dict[str, Any] | None = None
    logit_bias: dict[str, Any] | None = None
    logprobs: bool | None = None
    top_logprobs: int | None = None

    @property
    def output_limit(self) -> int | None:
        """The client's cap on output tokens, whichever field it used."""
        return self.max_completion_tokens or self.max_tokens
