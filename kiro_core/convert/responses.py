"""OpenAI Responses request → unified `Conversation`.

What happens to each piece:
* `instructions`, then `system` / `developer` messages (Codex sends its prompt as one), become the system prompt.
* `function_call` / `custom_tool_call` items become assistant tool calls; consecutive ones (and the assistant text
  just before them) form one assistant turn, as the model produced them.
* A run of `function_call_output` / `custom_tool_call_output` items becomes one user message of tool results.
* A custom tool (free-text input, e.g. Codex's `apply_patch`) is declared to Kiro as a function with one string
  field `input`; `custom_tool_names` tells the formatter which calls to unwrap back into `custom_tool_call` items.
* `reasoning` items and every other item kind are dropped: Kiro cannot take them back, and refusing them would
  break a client that replays its whole history each turn.
* `reasoning.effort` → thinking budget as a share of `max_output_tokens`, exactly like chat's `reasoning_effort`.

The gateway keeps no state, so `previous_response_id` (server-side history) is refused with a 400 that says what
to do instead. URL images cannot be sent (Kiro takes inline bytes only): they are replaced by a short note, as in
the chat adapter.
"""

from __future__ import annotations

import base64
import binascii
import json
import logging
from typing import Any

from kiro_core.convert.openai import DEFAULT_OUTPUT_LIMIT, EFFORT_RATIOS, SYSTEM_ROLES
from kiro_core.convert.options import ConversionOptions
from kiro_core.errors import InvalidRequestError
from kiro_core.models.responses import (
    CustomToolCallItem,
    CustomToolCallOutputItem,
    FunctionCallItem,
    FunctionCallOutputItem,
    InputPart,
    MessageItem,
    ResponsesRequest,
    ResponsesTool,
)
from kiro_core.unified import Conversation, Image, Message, ThinkingRequest, ToolCall, ToolResult, ToolSpec

logger = logging.getLogger(__name__)

TEXT_PARTS = frozenset({"input_text", "output_text", "text"})
CUSTOM_INPUT_FIELD = "input"
STATELESS_HINT = (
    "this gateway keeps no conversation state: send the full history in 'input' on every request "
    "(store=false, no previous_response_id)"
)


def responses_to_conversation(req: ResponsesRequest, options: ConversionOptions) -> Conversation:
    """Translate a validated Responses request; raises InvalidRequestError for untranslatable content."""
    if req.previous_response_id:
        raise InvalidRequestError(f"'previous_response_id' is not supported: {STATELESS_HINT}.",
                                  param="previous_response_id")
    if (req.model_extra or {}).get("conversation"):
        raise InvalidRequestError(f"'conversation' is not supported: {STATELESS_HINT}.", param="conversation")

    system_parts = [req.instructions] if req.instructions else []
    messages: list[Message] = []
    results: list[ToolResult] = []
    result_images: list[Image] = []

    def flush_results() -> None:
        if results or result_images:
            messages.append(Message(role="user", tool_results=list(results), images=list(result_images)))
            results.clear()
            result_images.clear()

    def add_call(call: ToolCall) -> None:
        flush_results()
        if messages and messages[-1].role == "assistant":
            messages[-1].tool_calls.append(call)
        else:
            messages.append(Message(role="assistant", tool_calls=[call]))

    items = [MessageItem(role="user", content=req.input)] if isinstance(req.input, str) else req.input
    for index, item in enumerate(items):
        where = f"input[{index}]"
        if isinstance(item, FunctionCallItem):
            add_call(ToolCall(id=item.call_id, name=item.name, arguments=_arguments(item, where)))
        elif isinstance(item, CustomToolCallItem):
            add_call(ToolCall(id=item.call_id, name=item.name, arguments={CUSTOM_INPUT_FIELD: item.input}))
        elif isinstance(item, FunctionCallOutputItem | CustomToolCallOutputItem):
            text, images = _parts(item.output, where)
            results.append(ToolResult(tool_use_id=item.call_id, content=text))
            result_images.extend(images)
        elif isinstance(item, MessageItem):
            flush_results()
            text, images = _parts(item.content, where)
            if item.role in SYSTEM_ROLES:
                if text:
                    system_parts.append(text)
            elif item.role == "assistant":
                messages.append(Message(role="assistant", text=text))
            else:
                messages.append(Message(role="user", text=text, images=images))
        else:
            logger.debug("%s: item of type %r dropped (not forwarded to Kiro)", where, getattr(item, "type", None))
    flush_results()

    return Conversation(
        model=req.model,
        messages=messages,
        system="\n".join(system_parts),
        tools=_tools(req.tools or []),
        thinking=_thinking(req, options),
        max_tokens=req.max_output_tokens,
        stream=req.stream,
    )


def custom_tool_names(req: ResponsesRequest) -> frozenset[str]:
    """Names of the request's `custom` tools, whose calls go back to the client as `custom_tool_call` items."""
    return frozenset(tool.name for tool in req.tools or [] if tool.type == "custom" and tool.name)


def _parts(content: str | list[InputPart], where: str) -> tuple[str, list[Image]]:
    """Text (parts joined with a newline) and inline images of a message or tool output."""
    if isinstance(content, str):
        return content, []
    texts: list[str] = []
    images: list[Image] = []
    for part in content:
        if part.type in TEXT_PARTS:
            texts.append(part.text or "")
        elif part.type == "refusal":
            texts.append(part.refusal or "")
        elif part.type == "input_image":
            image, note = _image(part, where)
            if image is not None:
                images.append(image)
            if note:
                texts.append(note)
        else:
            logger.warning("%s: content part of type %r is not supported and was skipped", where, part.type)
    return "\n".join(texts), images


def _image(part: InputPart, where: str) -> tuple[Image | None, str]:
    """An inline image from a `data:` URL, or (None, note) for one Kiro cannot take (a URL or a file id)."""
    url = (part.image_url or "").strip()
    if not url.startswith("data:"):
        logger.warning("%s: image by URL or file id skipped, Kiro only accepts inline (base64) images", where)
        shown = url[:200] or f"file {part.file_id}"
        return None, f"[Image not shown: only inline base64 images are supported, this one was {shown}]"
    header, sep, data = url[5:].partition(",")
    media_type, _, encoding = header.partition(";")
    if not sep or encoding.lower() != "base64" or not media_type.startswith("image/"):
        raise InvalidRequestError(f"{where}: image data URLs must look like 'data:image/<type>;base64,<data>'",
                                  param=where)
    data = "".join(data.split())  # line-wrapped base64 is still base64
    try:
        base64.b64decode(data, validate=True)
    except (binascii.Error, ValueError) as exc:
        raise InvalidRequestError(f"{where}: the image data URL is not valid base64", param=where) from exc
    return Image(media_type=media_type.lower(), data=data), ""


def _arguments(item: FunctionCallItem, where: str) -> dict[str, Any]:
    """A history call's arguments as the JSON object Kiro wants; bad JSON is the client's error, said precisely."""
    raw = item.arguments
    if isinstance(raw, dict):
        return raw
    if not raw.strip():
        return {}
    try:
        parsed: Any = json.loads(raw)
    except json.JSONDecodeError as exc:
        raise InvalidRequestError(
            f"{where}: function_call {item.call_id!r} ({item.name}) has arguments that are not valid JSON: "
            f"{exc.msg} at position {exc.pos}",
            param=f"{where}.arguments",
        ) from exc
    if parsed is None:
        return {}
    if not isinstance(parsed, dict):
        raise InvalidRequestError(
            f"{where}: function_call {item.call_id!r} ({item.name}) has arguments that are JSON but not an object",
            param=f"{where}.arguments",
        )
    return parsed


def _tools(tools: list[ResponsesTool]) -> list[ToolSpec]:
    """Function tools as given, custom tools wrapped; namespace, web_search and other kinds skipped."""
    specs: list[ToolSpec] = []
    for tool in tools:
        if tool.type == "function":
            specs.append(ToolSpec(name=tool.name or "", description=tool.description or "",
                                  input_schema=tool.parameters or {"type": "object", "properties": {}}))
        elif tool.type == "custom":
            specs.append(_custom_tool(tool))
        else:
            logger.info("tool of type %r skipped: only function and custom tools can be forwarded", tool.type)
    return specs


def _custom_tool(tool: ResponsesTool) -> ToolSpec:
    """A free-text tool as a function taking one string; its grammar, if any, goes into the description."""
    description = tool.description or ""
    fmt = tool.format or {}
    if fmt.get("type") == "grammar" and fmt.get("definition"):
        description += (
            f"\n\nThe 'input' string must follow this {fmt.get('syntax', '')} grammar:\n{fmt['definition']}"
        )
    schema = {
        "type": "object",
        "properties": {
            CUSTOM_INPUT_FIELD: {"type": "string", "description": "The raw tool input, as free text (not JSON)."}
        },
        "required": [CUSTOM_INPUT_FIELD],
    }
    return ToolSpec(name=tool.name or "", description=description.strip(), input_schema=schema)


def _thinking(req: ResponsesRequest, options: ConversionOptions) -> ThinkingRequest:
    """`reasoning.effort` → a budget that is a share of the output limit; absent → the configured default."""
    effort = req.reasoning.effort if req.reasoning else None
    if effort is None:
        return options.default_thinking()
    if effort == "none":
        return ThinkingRequest(enabled=False)
    base = req.max_output_tokens or DEFAULT_OUTPUT_LIMIT
    return ThinkingRequest(enabled=True, budget_tokens=options.cap_budget(int(base * EFFORT_RATIOS[effort])))
