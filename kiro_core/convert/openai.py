"""OpenAI chat-completions request → unified `Conversation`.

What happens to each piece:
* `system` / `developer` messages, wherever they sit, become the system prompt (joined with a newline).
* A run of `tool` messages becomes one user message holding their tool results (and any images they carry,
  e.g. MCP screenshots), because Kiro takes tool results on a user turn.
* Assistant `tool_calls` keep their ids; the `arguments` JSON string is parsed to the object Kiro wants.
* Unknown roles count as `user` (clients invent roles; rejecting them helps no one).
* Thinking comes from `reasoning_effort` as a share of the output limit, else the configured default; the same
  field is the native reasoning intent for models whose schema allows it.
* `file` parts with inline `file_data` become documents (also in tool messages, lifted to the turn); a `file_id`
  cannot be resolved by a stateless gateway and is refused with a 400.

URL images: Kiro only accepts inline bytes and kiro_core does no I/O, so an `http(s)` image cannot be sent.
Such an image is **skipped with a warning**, and a short note takes its place in the message text so the model
knows an image was there and can say it cannot see it. Refusing the request instead would make the whole
conversation unusable for good, since clients resend the same history on every turn.
"""

from __future__ import annotations

import logging

from kiro_core.convert import common, reasoning
from kiro_core.convert.options import ConversionOptions
from kiro_core.models.openai import ChatCompletionRequest, ChatMessage, ContentPart, ToolCallItem
from kiro_core.unified import Conversation, Document, Image, Message, ThinkingRequest, ToolCall, ToolResult, ToolSpec

logger = logging.getLogger(__name__)


def openai_to_conversation(req: ChatCompletionRequest, options: ConversionOptions) -> Conversation:
    """Translate a validated chat-completions request; raises InvalidRequestError for untranslatable content."""
    system_parts: list[str] = []
    messages: list[Message] = []
    pending = common.PendingToolResults()
    for index, msg in enumerate(req.messages):
        if msg.role == "tool":
            text, images = _content(msg, index)
            pending.add(ToolResult(tool_use_id=msg.tool_call_id or "", content=text), images, _documents(msg, index))
            continue
        pending.flush_into(messages)
        if msg.role in common.SYSTEM_ROLES:
            text, _ = _content(msg, index)
            if text:
                system_parts.append(text)
        elif msg.role == "assistant":
            text, _ = _content(msg, index)
            calls = [_tool_call(call, index) for call in msg.tool_calls or []]
            messages.append(Message(role="assistant", text=text, tool_calls=calls))
        else:
            text, images = _content(msg, index)
            messages.append(Message(role="user", text=text, images=images, documents=_documents(msg, index)))
    pending.flush_into(messages)

    return Conversation(
        model=req.model,
        messages=messages,
        system="\n".join(system_parts),
        tools=_tools(req),
        thinking=_thinking(req, options),
        max_tokens=req.output_limit,
        stream=req.stream,
        reasoning=reasoning.openai_intent(req.reasoning_effort),
    )


def _content(msg: ChatMessage, index: int) -> tuple[str, list[Image]]:
    """Text (parts joined with a newline) and inline images of one message."""
    if msg.content is None:
        return "", []
    if isinstance(msg.content, str):
        return msg.content, []
    where = f"messages[{index}]"
    return common.text_and_images(msg.content, where, lambda part: _read_part(part, where), logger)


def _documents(msg: ChatMessage, index: int) -> list[Document]:
    """The message's `file` parts as documents."""
    if not isinstance(msg.content, list):
        return []
    where = f"messages[{index}]"
    return [common.file_document(p.file.filename, p.file.file_data, p.file.file_id, None, where, f"{where}.content")
            for p in msg.content if p.type == "file" and p.file is not None]


def _read_part(part: ContentPart, where: str) -> tuple[str | None, Image | None] | None:
    """A `text` part's text; an `image_url` part's inline image, or a note for a URL (see module docstring)."""
    if part.type == "text":
        return part.text or "", None
    if part.type == "file":
        return None, None  # read by `_documents`
    if part.type != "image_url":
        return None
    url = (part.url or "").strip()
    return common.image_part(
        url, where, param=f"{where}.content", skipped="image by URL", shown=f"a URL: {url[:200]}", log=logger
    )


def _tool_call(call: ToolCallItem, index: int) -> ToolCall:
    """A history tool call with its arguments parsed to the JSON object Kiro wants."""
    name = call.function.name
    where = f"messages[{index}]"
    arguments = common.parse_tool_arguments(
        call.function.arguments, where, call=f"tool call {call.id!r} ({name})", param=f"{where}.tool_calls"
    )
    return ToolCall(id=call.id, name=name, arguments=arguments)


def _tools(req: ChatCompletionRequest) -> list[ToolSpec]:
    """Function tools in either form; other tool types (web_search, namespace, ...) are skipped."""
    specs: list[ToolSpec] = []
    for tool in req.tools or []:
        fn = tool.as_function()
        if fn is None:
            logger.info("tool of type %r skipped: only function tools can be forwarded", tool.type)
            continue
        name, description, schema = fn
        specs.append(ToolSpec(name=name, description=description, input_schema=schema))
    return specs


def _thinking(req: ChatCompletionRequest, options: ConversionOptions) -> ThinkingRequest:
    """`reasoning_effort` → a budget that is a share of the output limit; absent → the configured default."""
    return common.thinking_from_effort(req.reasoning_effort, req.output_limit, options)
