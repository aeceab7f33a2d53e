"""Anthropic Messages request → unified `Conversation`.

What happens to each piece:
* `system` (string, or text blocks whose `cache_control` is dropped) plus any `role: "system"` messages Claude
  Code puts inside `messages` become one system prompt, joined with a blank line.
* `tool_use` → tool calls; `tool_result` → tool results, list content flattened to text, images inside a result
  kept as images of that user turn, an empty result given a placeholder.
* `thinking` blocks with an upstream signature and `redacted_thinking` blocks of an assistant turn become its
  reasoning replay (the last one wins: Kiro has one slot per message); unsigned thinking (or our placeholder
  signature) is dropped, never folded into text. Block types this gateway does not translate (tool_reference...)
  are dropped too; replayed web search blocks (server_tool_use, web_search_tool_result) become a short text: the
  query, result titles and URLs.
* `document` blocks (base64 or plain text) become documents, also from inside tool results (lifted to the turn,
  like images); documents by URL or file id are refused with a 400 (Kiro takes inline bytes only).
* Server tools (a `type` like `web_search_20250305`, no `input_schema`) are skipped here: Kiro cannot run them
  (hosted web search is served by the gateway itself, `gateway.web_search`).
* Thinking: `enabled` → its budget (capped); `disabled` → off; `adaptive`, absent, or a type newer than this
  gateway → the configured default. The same `thinking` and `output_config.effort` also give the native reasoning
  intent (`kiro_core.convert.reasoning`), used instead of tags for models whose schema allows it.

URL images (`source.type == "url"`, or any non-base64 source): Kiro only accepts inline bytes and kiro_core does
no I/O, so they are **skipped with a warning** and a short note takes their place in the text, so the model knows
an image was there. Refusing instead would make the conversation unusable for good, since the same history is
resent every turn.
"""

from __future__ import annotations

import logging

from kiro_core.convert import documents, reasoning
from kiro_core.convert.options import ConversionOptions
from kiro_core.models.anthropic import (
    AnthropicMessage,
    CountTokensRequest,
    DocumentBlock,
    ImageBlock,
    MessagesRequest,
    RedactedThinkingBlock,
    TextBlock,
    ThinkingBlock,
    ToolResultBlock,
    ToolUseBlock,
)
from kiro_core.unified import (
    Conversation,
    Document,
    Image,
    Message,
    ReasoningIntent,
    ReasoningReplay,
    Role,
    ThinkingRequest,
    ToolCall,
    ToolResult,
    ToolSpec,
)
from kiro_core.web_search import replayed_block_text

logger = logging.getLogger(__name__)

REPLAYED_SEARCH_BLOCKS = frozenset({"server_tool_use", "web_search_tool_result"})  # the gateway's web searches


def anthropic_to_conversation(req: MessagesRequest | CountTokensRequest, options: ConversionOptions) -> Conversation:
    """Translate a validated Messages (or count_tokens) request into the unified form."""
    top_level = _system_text(req)
    system_parts = [top_level] if top_level else []
    messages: list[Message] = []
    for index, msg in enumerate(req.messages):
        if msg.role == "system":
            text = _hoisted_system_text(msg)
            if text:
                system_parts.append(text)
            continue
        messages.append(_message(msg, index, options))
    return Conversation(
        model=req.model,
        messages=messages,
        system="\n\n".join(system_parts),
        tools=_tools(req),
        thinking=_thinking(req, options),
        max_tokens=req.max_tokens,
        stream=req.stream,
        reasoning=_intent(req),
    )


def _system_text(req: MessagesRequest | CountTokensRequest) -> str:
    """Top-level `system`: a string, or text blocks joined with a newline."""
    if req.system is None:
        return ""
    if isinstance(req.system, str):
        return req.system
    return "\n".join(block.text for block in req.system if block.text)


def _hoisted_system_text(msg: AnthropicMessage) -> str:
    """Text of a `role: "system"` message; anything but text in it has no meaning for a system prompt."""
    if isinstance(msg.content, str):
        return msg.content
    return "\n".join(block.text for block in msg.content if isinstance(block, TextBlock) and block.text)


def _message(msg: AnthropicMessage, index: int, options: ConversionOptions) -> Message:
    """One user/assistant turn; text blocks are joined with a newline, untranslatable blocks dropped."""
    role: Role = "assistant" if msg.role == "assistant" else "user"
    if isinstance(msg.content, str):
        return Message(role=role, text=msg.content)
    out = Message(role=role)
    texts: list[str] = []
    for block in msg.content:
        if isinstance(block, TextBlock):
            texts.append(block.text)
        elif isinstance(block, ImageBlock):
            _add_image(block, out.images, texts, index)
        elif isinstance(block, ToolUseBlock):
            out.tool_calls.append(ToolCall(id=block.id, name=block.name, arguments=dict(block.input)))
        elif isinstance(block, ToolResultBlock):
            out.tool_results.append(_tool_result(block, out, index, options))
        elif isinstance(block, DocumentBlock):
            out.documents.append(_document(block, f"messages[{index}]"))
        elif isinstance(block, ThinkingBlock | RedactedThinkingBlock):
            if role == "assistant":
                out.reasoning = _replay(block) or out.reasoning
        elif block.type in REPLAYED_SEARCH_BLOCKS:
            if replayed := replayed_block_text(block.model_dump()):
                texts.append(replayed)
        else:
            logger.info("messages[%d]: content block of type %r dropped (not translatable to Kiro)", index, block.type)
    out.text = "\n".join(texts)
    return out


def _add_image(block: ImageBlock, images: list[Image], texts: list[str], index: int) -> None:
    """Append an inline image, or a note in its place for a source Kiro cannot take (see module docstring)."""
    source = block.source
    if source.type == "base64" and source.media_type and source.data is not None:
        data = source.data.split(",", 1)[1] if source.data.startswith("data:") else source.data
        data = "".join(data.split())  # line-wrapped base64 is still base64 (validated by the request model)
        images.append(Image(media_type=source.media_type.lower(), data=data))
        return
    where = source.url or source.type
    logger.warning("messages[%d]: image with a %r source skipped, Kiro only accepts inline base64", index, source.type)
    texts.append(f"[Image not shown: only inline base64 images are supported, this one was: {where[:200]}]")


def _replay(block: ThinkingBlock | RedactedThinkingBlock) -> ReasoningReplay | None:
    """The reasoning Kiro can take back: signed thinking (upstream signatures only) or a redacted blob."""
    if isinstance(block, RedactedThinkingBlock):
        return ReasoningReplay(redacted=block.data) if block.data else None
    if block.signature and not reasoning.is_placeholder_signature(block.signature):
        return ReasoningReplay(text=block.thinking, signature=block.signature)
    return None


def _document(block: DocumentBlock, where: str) -> Document:
    """An inline document; a source Kiro cannot take is the client's error (see module docstring)."""
    source = block.source
    param = f"{where}.content"
    if source.type == "text" and source.data is not None:
        return documents.text_document(block.title, source.data)
    if source.type == "base64" and source.data is not None:
        media_type, data = documents.split_data_url(source.data)
        return documents.make_document(block.title, source.media_type or media_type, data, where, param)
    what = f"a document with a {source.type!r} source" + (f" ({source.url[:200]})" if source.url else "")
    raise documents.unsupported_document(where, param, what)


def _tool_result(block: ToolResultBlock, turn: Message, index: int, options: ConversionOptions) -> ToolResult:
    """A tool result flattened to text; its images and documents join the turn's; empty → placeholder."""
    if block.content is None:
        text = ""
    elif isinstance(block.content, str):
        text = block.content
    else:
        texts: list[str] = []
        for item in block.content:
            if isinstance(item, TextBlock):
                texts.append(item.text)
            elif isinstance(item, ImageBlock):
                _add_image(item, turn.images, texts, index)
            elif isinstance(item, DocumentBlock):
                turn.documents.append(_document(item, f"messages[{index}]"))
            else:
                logger.info("messages[%d]: %r inside a tool_result dropped", index, item.type)
        text = "\n".join(t for t in texts if t)
    if not text.strip():
        text = options.empty_result_placeholder
    return ToolResult(tool_use_id=block.tool_use_id, content=text, is_error=bool(block.is_error))


def _tools(req: MessagesRequest | CountTokensRequest) -> list[ToolSpec]:
    """Custom tools; server tools (no input_schema) are skipped."""
    specs: list[ToolSpec] = []
    for tool in req.tools or []:
        if tool.is_server_tool:
            # Hosted web search is served by the gateway (gateway.web_search), which adds its own function tool.
            logger.debug("server tool %r (%s) not sent to Kiro as a tool", tool.name, tool.type)
            continue
        specs.append(ToolSpec(name=tool.name, description=tool.description or "", input_schema=tool.input_schema or {}))
    return specs


def _intent(req: MessagesRequest | CountTokensRequest) -> ReasoningIntent:
    """Native reasoning intent from `thinking` and `output_config.effort`."""
    config = req.thinking
    effort = (req.output_config or {}).get("effort")
    return reasoning.anthropic_intent(config.type if config else None, config.budget_tokens if config else None,
                                      effort)


def _thinking(req: MessagesRequest | CountTokensRequest, options: ConversionOptions) -> ThinkingRequest:
    """`thinking` → per-request control; see the module docstring."""
    config = req.thinking
    if config is None:
        return options.default_thinking()
    if config.type == "disabled":
        return ThinkingRequest(enabled=False)
    if config.type == "enabled" and config.budget_tokens is not None:
        return ThinkingRequest(enabled=True, budget_tokens=options.cap_budget(config.budget_tokens))
    # adaptive, or a type newer than this gateway: thinking on, with the default budget.
    return ThinkingRequest(enabled=True, budget_tokens=options.cap_budget(options.fake_reasoning_max_tokens))
