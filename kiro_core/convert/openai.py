"""OpenAI chat-completions request → unified `Conversation`.

What happens to each piece:
* `system` / `developer` messages, wherever they sit, become the system prompt (joined with a newline).
* A run of `tool` messages becomes one user message holding their tool results (and any images they carry,
  e.g. MCP screenshots), because Kiro takes tool results on a user turn.
* Assistant `tool_calls` keep their ids; the `arguments` JSON string is parsed to the object Kiro wants.
* Unknown roles count as `user` (clients invent roles; rejecting them helps no one).
* Thinking comes from `reasoning_effort` as a share of the output limit, else the configured default.

URL images: Kiro only accepts inline bytes and kiro_core does no I/O, so an `http(s)` image cannot be sent.
Such an image is **skipped with a warning**, and a short note takes its place in the message text so the model
knows an image was there and can say it cannot see it. Refusing the request instead would make the whole
conversation unusable for good, since clients resend the same history on every turn.
"""

from __future__ import annotations

import base64
import binascii
import json
import logging
from typing import Any

from kiro_core.convert.options import ConversionOptions
from kiro_core.errors import InvalidRequestError
from kiro_core.models.openai import ChatCompletionRequest, ChatMessage, ContentPart, ToolCallItem
from kiro_core.unified import Conversation, Image, Message, ThinkingRequest, ToolCall, ToolResult, ToolSpec

logger = logging.getLogger(__name__)

SYSTEM_ROLES = frozenset({"system", "developer"})
# Share of the output limit given to thinking, per reasoning effort (the reference gateway's table).
EFFORT_RATIOS: dict[str, float] = {
    "minimal": 0.10,
    "low": 0.20,
    "medium": 0.50,
    "high": 0.80,
    "xhigh": 0.95,
    "max": 1.0,
}
DEFAULT_OUTPUT_LIMIT = 4096  # the budget base when the client gives no max_tokens


def openai_to_conversation(req: ChatCompletionRequest, options: ConversionOptions) -> Conversation:
    """Translate a validated chat-completions request; raises InvalidRequestError for untranslatable content."""
    system_parts: list[str] = []
    messages: list[Message] = []
    pending_results: list[ToolResult] = []
    pending_images: list[Image] = []

    def flush_tool_results() -> None:
        if pending_results or pending_images:
            messages.append(Message(role="user", tool_results=list(pending_results), images=list(pending_images)))
            pending_results.clear()
            pending_images.clear()

    for index, msg in enumerate(req.messages):
        if msg.role == "tool":
            text, images = _content(msg, index)
            pending_results.append(ToolResult(tool_use_id=msg.tool_call_id or "", content=text))
            pending_images.extend(images)
            continue
        flush_tool_results()
        if msg.role in SYSTEM_ROLES:
            text, _ = _content(msg, index)
            if text:
                system_parts.append(text)
        elif msg.role == "assistant":
            text, _ = _content(msg, index)
            calls = [_tool_call(call, index) for call in msg.tool_calls or []]
            messages.append(Message(role="assistant", text=text, tool_calls=calls))
        else:
            text, images = _content(msg, index)
            messages.append(Message(role="user", text=text, images=images))
    flush_tool_results()

    return Conversation(
        model=req.model,
        messages=messages,
        system="\n".join(system_parts),
        tools=_tools(req),
        thinking=_thinking(req, options),
        max_tokens=req.output_limit,
        stream=req.stream,
    )


def _content(msg: ChatMessage, index: int) -> tuple[str, list[Image]]:
    """Text (parts joined with a newline) and inline images of one message."""
    if msg.content is None:
        return "", []
    if isinstance(msg.content, str):
        return msg.content, []
    texts: list[str] = []
    images: list[Image] = []
    for part in msg.content:
        if part.type == "text":
            texts.append(part.text or "")
        elif part.type == "image_url":
            image, note = _image(part, index)
            if image is not None:
                images.append(image)
            if note:
                texts.append(note)
        else:
            logger.warning("messages[%d]: content part of type %r is not supported and was skipped", index, part.type)
    return "\n".join(texts), images


def _image(part: ContentPart, index: int) -> tuple[Image | None, str]:
    """An inline image from a `data:` URL, or (None, note) for a URL Kiro cannot take (see module docstring)."""
    url = (part.url or "").strip()
    if not url.startswith("data:"):
        logger.warning("messages[%d]: image by URL skipped, Kiro only accepts inline (base64) images", index)
        return None, f"[Image not shown: only inline base64 images are supported, this one was a URL: {url[:200]}]"
    header, sep, data = url[5:].partition(",")
    media_type, _, encoding = header.partition(";")
    if not sep or encoding.lower() != "base64" or not media_type.startswith("image/"):
        raise InvalidRequestError(
            f"messages[{index}]: image data URLs must look like 'data:image/<type>;base64,<data>'",
            param=f"messages[{index}].content",
        )
    data = "".join(data.split())  # line-wrapped base64 is still base64
    try:
        base64.b64decode(data, validate=True)
    except (binascii.Error, ValueError) as exc:
        raise InvalidRequestError(
            f"messages[{index}]: the image data URL is not valid base64", param=f"messages[{index}].content"
        ) from exc
    return Image(media_type=media_type.lower(), data=data), ""


def _tool_call(call: ToolCallItem, index: int) -> ToolCall:
    """A history tool call with its arguments parsed to the JSON object Kiro wants."""
    raw = call.function.arguments
    if raw is None or isinstance(raw, dict):
        return ToolCall(id=call.id, name=call.function.name, arguments=raw or {})
    if not raw.strip():
        return ToolCall(id=call.id, name=call.function.name, arguments={})
    try:
        parsed: Any = json.loads(raw)
    except json.JSONDecodeError as exc:
        raise InvalidRequestError(
            f"messages[{index}]: tool call {call.id!r} ({call.function.name}) has arguments that are not valid "
            f"JSON: {exc.msg} at position {exc.pos}",
            param=f"messages[{index}].tool_calls",
        ) from exc
    if parsed is None:
        parsed = {}
    if not isinstance(parsed, dict):
        raise InvalidRequestError(
            f"messages[{index}]: tool call {call.id!r} ({call.function.name}) has arguments that are JSON but "
            f"not an object",
            param=f"messages[{index}].tool_calls",
        )
    return ToolCall(id=call.id, name=call.function.name, arguments=parsed)


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
    effort = req.reasoning_effort
    if effort is None:
        return options.default_thinking()
    if effort == "none":
        return ThinkingRequest(enabled=False)
    base = req.output_limit or DEFAULT_OUTPUT_LIMIT
    return ThinkingRequest(enabled=True, budget_tokens=options.cap_budget(int(base * EFFORT_RATIOS[effort])))
