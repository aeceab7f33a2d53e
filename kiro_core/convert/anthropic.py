"""Anthropic Messages request → unified `Conversation`.

What happens to each piece:
* `system` (string, or text blocks whose `cache_control` is dropped) is the system prompt. A `role: "system"`
  message inside `messages` keeps its place: its text opens the user turn it falls in (the user messages between
  two assistant turns), so the history before it stays byte-identical from turn to turn (docs/protocol.md
  §Prompt cache); a message-level `output_config.effort` in the last turn governs this request.
* `tool_use` → tool calls; `tool_result` → tool results, list content flattened to text, images inside a result
  kept as images of that user turn, an empty result given a placeholder.
* `thinking` blocks with an upstream signature and `redacted_thinking` blocks of an assistant turn become its
  reasoning replay (the last one wins: Kiro has one slot per message); unsigned thinking (or our placeholder
  signature) is dropped, never folded into text; a signature this gateway wrapped says where it was minted
  (`reasoning.unbind_signature`). `context_management` edits `clear_thinking_*` are applied here (they only remove
  reasoning: the newest `keep` turns keep theirs); other edits are accepted and ignored. Block types this gateway
  does not translate are dropped; replayed web search blocks (server_tool_use, web_search_tool_result) become a
  short text: the query, result titles and URLs.
* `document` blocks (base64 or plain text) become documents, also from inside tool results (lifted to the turn,
  like images); documents by URL or file id are refused with a 400 (Kiro takes inline bytes only).
* Server tools (a `type` like `web_search_20250305`, no `input_schema`) are skipped here: Kiro cannot run them
  (hosted web search is served by the gateway itself, `gateway.web_search`). A tool with `defer_loading: true` is
  sent only once a `tool_reference` to it (a tool search's answer inside a tool result) is in the conversation;
  the reference itself becomes a line of the tool result's text.
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
from typing import Any

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
    ToolReferenceBlock,
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
    turn = _UserTurn()
    messages: list[Message] = []
    for index, msg in enumerate(req.messages):
        if msg.role == "system":
            turn.add_system(_system_message_text(msg), _message_effort(msg))
            continue
        message = _message(msg, index, options)
        if message.role == "assistant":
            turn.close(messages)
            turn = _UserTurn()
        else:
            turn.add_user(message, _message_effort(msg))
        messages.append(message)
    turn.close(messages)
    _clear_thinking(messages, req.context_management)
    return Conversation(
        model=req.model,
        messages=messages,
        system=_system_text(req),
        tools=_tools(req, _referenced_tools(req)),
        thinking=_thinking(req, options),
        max_tokens=req.max_tokens,
        stream=req.stream,
        reasoning=_intent(req, turn.effort),
    )


class _UserTurn:
    """The client messages between two assistant turns: its system messages' text opens its first user message
    (or stands alone when it has none), and the last message-level effort in it is the turn's."""

    def __init__(self) -> None:
        self.first: Message | None = None
        self.system: list[str] = []
        self.effort: str | None = None

    def add_system(self, text: str, effort: str | None) -> None:
        if text:
            self.system.append(text)
        self.effort = effort or self.effort

    def add_user(self, message: Message, effort: str | None) -> None:
        self.first = self.first or message
        self.effort = effort or self.effort

    def close(self, messages: list[Message]) -> None:
        """Put the system text in place: before the first user message's text, or as a user message of its own."""
        if not self.system:
            return
        prefix = "\n\n".join(self.system)
        if self.first is None:
            messages.append(Message(role="user", text=prefix))
        else:
            self.first.text = f"{prefix}\n\n{self.first.text}" if self.first.text else prefix


def _message_effort(msg: AnthropicMessage) -> str | None:
    """A message-level `output_config.effort` (per-turn control), if any."""
    effort = (msg.output_config or {}).get("effort")
    return effort if isinstance(effort, str) and effort else None


def _system_text(req: MessagesRequest | CountTokensRequest) -> str:
    """Top-level `system`: a string, or text blocks joined with a newline."""
    if req.system is None:
        return ""
    if isinstance(req.system, str):
        return req.system
    return "\n".join(block.text for block in req.system if block.text)


def _system_message_text(msg: AnthropicMessage) -> str:
    """Text of a `role: "system"` message; anything but text in it has no meaning for a system instruction."""
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
        return reasoning.unbind_signature(block.signature, block.thinking)
    return None


def _clear_thinking(messages: list[Message], context_management: dict[str, Any] | None) -> None:
    """Apply `clear_thinking_*` edits: only the newest `keep` assistant turns with reasoning keep it (`keep: "all"`
    keeps everything; absent means 1, as Anthropic's API). Other edits need the service's own bookkeeping
    (`clear_tool_uses_*` clears by token thresholds) and are accepted and ignored."""
    edits = (context_management or {}).get("edits")
    for edit in edits if isinstance(edits, list) else []:
        kind = edit.get("type") if isinstance(edit, dict) else None
        if not isinstance(kind, str) or not kind.startswith("clear_thinking"):
            continue
        keep = edit.get("keep", {"type": "thinking_turns", "value": 1})
        if keep == "all":
            continue
        value = keep.get("value") if isinstance(keep, dict) else None
        if not isinstance(value, int) or isinstance(value, bool) or value < 0:
            continue  # a shape this gateway does not know: clear nothing rather than guess
        thinking_turns = [m for m in messages if m.role == "assistant" and m.reasoning is not None]
        for message in thinking_turns[:max(0, len(thinking_turns) - value)]:
            message.reasoning = None


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
            elif isinstance(item, ToolReferenceBlock):
                if item.tool_name:
                    texts.append(f"Tool loaded: {item.tool_name}")
            else:
                logger.info("messages[%d]: %r inside a tool_result dropped", index, item.type)
        text = "\n".join(t for t in texts if t)
    if not text.strip():
        text = options.empty_result_placeholder
    return ToolResult(tool_use_id=block.tool_use_id, content=text, is_error=bool(block.is_error))


def _referenced_tools(req: MessagesRequest | CountTokensRequest) -> set[str]:
    """Names of the tools a `tool_reference` in some tool result has loaded."""
    names: set[str] = set()
    for msg in req.messages:
        for block in msg.content if isinstance(msg.content, list) else []:
            if isinstance(block, ToolResultBlock) and isinstance(block.content, list):
                names.update(item.tool_name for item in block.content if isinstance(item, ToolReferenceBlock))
    return names


def _tools(req: MessagesRequest | CountTokensRequest, referenced: set[str]) -> list[ToolSpec]:
    """Custom tools; server tools (no input_schema) are skipped, deferred tools until a reference loads them."""
    specs: list[ToolSpec] = []
    for tool in req.tools or []:
        if tool.is_server_tool:
            # Hosted web search is served by the gateway (gateway.web_search), which adds its own function tool.
            logger.debug("server tool %r (%s) not sent to Kiro as a tool", tool.name, tool.type)
            continue
        if tool.defer_loading and tool.name not in referenced:
            continue
        specs.append(ToolSpec(name=tool.name, description=tool.description or "", input_schema=tool.input_schema or {}))
    return specs


def _intent(req: MessagesRequest | CountTokensRequest, turn_effort: str | None) -> ReasoningIntent:
    """Native reasoning intent from `thinking` and the effort: the last turn's message-level one, else the
    top-level `output_config.effort` (both clamped to the model's schema later)."""
    config = req.thinking
    effort = turn_effort or (req.output_config or {}).get("effort")
    return reasoning.anthropic_intent(config.type if config else None, config.budget_tokens if config else None,
                                      effort, config.display if config else None)


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
