"""OpenAI Responses request → unified `Conversation`.

What happens to each piece:
* `instructions`, then `system` / `developer` messages (Codex sends its prompt as one), become the system prompt.
* `function_call` / `custom_tool_call` items become assistant tool calls; consecutive ones (and the assistant text
  just before them) form one assistant turn, as the model produced them.
* A run of `function_call_output` / `custom_tool_call_output` items becomes one user message of tool results.
* A custom tool (free-text input, e.g. Codex's `apply_patch`) is declared to Kiro as a function with one string
  field `input`; `custom_tool_names` tells the formatter which calls to unwrap back into `custom_tool_call` items.
* `reasoning` items whose `encrypted_content` is this gateway's envelope go back to Kiro as the reasoning of the
  assistant turn they belong to (the one being built, or the next one); other reasoning items and every other
  item kind are dropped: refusing them would break a client that replays its whole history each turn.
* `input_file` parts with inline `file_data` become documents; a `file_id` or `file_url` is refused with a 400.
* `reasoning.effort` → thinking budget as a share of `max_output_tokens`, exactly like chat's `reasoning_effort`,
  and the native reasoning intent.

The gateway keeps no state, so `previous_response_id` (server-side history) is refused with a 400 that says what
to do instead. URL images cannot be sent (Kiro takes inline bytes only): they are replaced by a short note, as in
the chat adapter.
"""

from __future__ import annotations

import logging
from typing import Any

from kiro_core.convert import common, reasoning
from kiro_core.convert.options import ConversionOptions
from kiro_core.errors import InvalidRequestError
from kiro_core.models.responses import (
    CustomToolCallItem,
    CustomToolCallOutputItem,
    FunctionCallItem,
    FunctionCallOutputItem,
    InputPart,
    MessageItem,
    ReasoningItem,
    ResponsesRequest,
    ResponsesTool,
)
from kiro_core.unified import (
    Conversation,
    Document,
    Image,
    Message,
    ReasoningReplay,
    ThinkingRequest,
    ToolCall,
    ToolResult,
    ToolSpec,
)

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
    pending = common.PendingToolResults()
    held: list[ReasoningReplay] = []  # reasoning that precedes the assistant turn it belongs to

    def assistant(message: Message) -> None:
        if held:
            message.reasoning = held.pop()
            held.clear()
        messages.append(message)

    def add_call(call: ToolCall) -> None:
        pending.flush_into(messages)
        if messages and messages[-1].role == "assistant":
            messages[-1].tool_calls.append(call)
        else:
            assistant(Message(role="assistant", tool_calls=[call]))

    items = [MessageItem(role="user", content=req.input)] if isinstance(req.input, str) else req.input
    for index, item in enumerate(items):
        where = f"input[{index}]"
        if isinstance(item, FunctionCallItem):
            add_call(ToolCall(id=item.call_id, name=item.name, arguments=_arguments(item, where)))
        elif isinstance(item, CustomToolCallItem):
            add_call(ToolCall(id=item.call_id, name=item.name, arguments={CUSTOM_INPUT_FIELD: item.input}))
        elif isinstance(item, FunctionCallOutputItem | CustomToolCallOutputItem):
            text, images = _parts(item.output, where)
            pending.add(ToolResult(tool_use_id=item.call_id, content=text), images, _documents(item.output, where))
        elif isinstance(item, ReasoningItem):
            replay = reasoning.unseal(item.encrypted_content or "")
            if replay is None:
                continue
            if messages and messages[-1].role == "assistant" and not pending.results and not held:
                messages[-1].reasoning = replay  # reasoning sent after the turn's text or calls (GPT)
            else:
                held.append(replay)
        elif isinstance(item, MessageItem):
            pending.flush_into(messages)
            text, images = _parts(item.content, where)
            if item.role in common.SYSTEM_ROLES:
                if text:
                    system_parts.append(text)
            elif item.role == "assistant":
                assistant(Message(role="assistant", text=text))
            else:
                held.clear()  # reasoning must sit on an assistant turn
                messages.append(Message(role="user", text=text, images=images,
                                        documents=_documents(item.content, where)))
        else:
            logger.debug("%s: item of type %r dropped (not forwarded to Kiro)", where, getattr(item, "type", None))
    pending.flush_into(messages)

    return Conversation(
        model=req.model,
        messages=messages,
        system="\n".join(system_parts),
        tools=_tools(req.tools or []),
        thinking=_thinking(req, options),
        max_tokens=req.max_output_tokens,
        stream=req.stream,
        reasoning=reasoning.openai_intent(req.reasoning.effort if req.reasoning else None),
    )


def custom_tool_names(req: ResponsesRequest) -> frozenset[str]:
    """Names of the request's `custom` tools, whose calls go back to the client as `custom_tool_call` items."""
    return frozenset(tool.name for tool in req.tools or [] if tool.type == "custom" and tool.name)


def _parts(content: str | list[InputPart], where: str) -> tuple[str, list[Image]]:
    """Text (parts joined with a newline) and inline images of a message or tool output."""
    if isinstance(content, str):
        return content, []
    return common.text_and_images(content, where, lambda part: _read_part(part, where), logger)


def _documents(content: str | list[InputPart], where: str) -> list[Document]:
    """The `input_file` parts as documents."""
    if isinstance(content, str):
        return []
    return [common.file_document(p.filename, p.file_data, p.file_id, p.file_url, where, where)
            for p in content if p.type == "input_file"]


def _read_part(part: InputPart, where: str) -> tuple[str | None, Image | None] | None:
    """A text or refusal part's text; an `input_image` part's inline image, or a note for a URL or file id."""
    if part.type in TEXT_PARTS:
        return part.text or "", None
    if part.type == "input_file":
        return None, None  # read by `_documents`
    if part.type == "refusal":
        return part.refusal or "", None
    if part.type != "input_image":
        return None
    url = (part.image_url or "").strip()
    shown = url[:200] or f"file {part.file_id}"
    return common.image_part(url, where, param=where, skipped="image by URL or file id", shown=shown, log=logger)


def _arguments(item: FunctionCallItem, where: str) -> dict[str, Any]:
    """A history call's arguments as the JSON object Kiro wants; bad JSON is the client's error, said precisely."""
    call = f"function_call {item.call_id!r} ({item.name})"
    return common.parse_tool_arguments(item.arguments, where, call=call, param=f"{where}.arguments")


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
    return common.thinking_from_effort(req.reasoning.effort if req.reasoning else None, req.max_output_tokens, options)
