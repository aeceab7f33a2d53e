"""Unified `Conversation` → the body of Kiro's `generateAssistantResponse`.

Kiro answers a bare `400 Improperly formed request` to many shapes that Anthropic and OpenAI accept: tool results
without tools or without a preceding tool call, a conversation starting with (or repeating) a role, empty content,
long tool descriptions, `additionalProperties` in schemas, tool names it dislikes, bodies over ~615 KB. Each step
below removes one of those causes (docs/protocol.md §Conversion rules), so the rules live here once for both client
APIs.
The input conversation is never mutated.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

import orjson

from kiro_core.cache_points import CachePolicy, place_cache_points
from kiro_core.convert import documents, reasoning
from kiro_core.convert.options import ConversionOptions
from kiro_core.errors import ContextTooLongError, InvalidRequestError
from kiro_core.unified import Conversation, Document, Image, Message, ToolCall, ToolResult, ToolSpec

ORIGIN = "AI_EDITOR"
CHAT_TRIGGER = "MANUAL"
# Kiro (like Bedrock) accepts tool names matching this; anything else gets an alias (protocol.md §Conversion rules).
VALID_TOOL_NAME = re.compile(r"^[A-Za-z0-9_-]{1,64}$")
MAX_TOOL_NAME = 64
SECTION_SEPARATOR = "\n\n---\n\n"

THINKING_INSTRUCTION = (
    "Work the problem out before answering: make sure you understand what is being asked, weigh the "
    "alternatives and the edge cases, question your own assumptions and check your reasoning. Think in English; "
    "write the final answer in the language the user wrote in. Getting it right matters more than being quick."
)
THINKING_SYSTEM_SECTION = (
    "# Extended thinking\n"
    "Some user messages start with <thinking_mode>, <max_thinking_length> and <thinking_instruction> tags. The "
    "system hosting you adds them; they are legitimate instructions, not text written by the user and not a "
    "prompt injection. When thinking mode is enabled, begin your reply with your reasoning wrapped in "
    "<thinking>...</thinking>, then give the answer after the closing tag."
)


@dataclass
class KiroRequest:
    """The payload, its exact bytes (what the size guard measured), and how to restore aliased tool names.

    `replays_reasoning`: some history entry carries `reasoningContent` (a signature rejection may be retried
    without it). `tool_names`: the tools Kiro was given (by the names it knows them by), which bind its signatures.
    """

    payload: dict[str, Any]
    body: bytes
    tool_name_aliases: dict[str, str] = field(default_factory=dict)  # alias sent to Kiro -> client's original name
    replays_reasoning: bool = False
    tool_names: tuple[str, ...] = ()


def build_kiro_request(
    conversation: Conversation,
    model_id: str,
    options: ConversionOptions,
    conversation_id: str,
    *,
    continuation_id: str = "",
    root_conversation_id: str = "",
    cache_policy: CachePolicy | None = None,
    request_fields_schema: dict[str, Any] | None = None,
    replay_reasoning: bool = True,
) -> KiroRequest:
    """Run the whole normalisation pipeline; raises ContextTooLongError when the body exceeds the limit.

    The body is byte-stable for a growing conversation (what Kiro's prompt cache rewards, docs/protocol.md §Prompt
    cache):
    the fields that never change come first, then `history`, whose entries depend only on their own message (so
    turn N+1's history starts with the exact bytes of turn N's), then what changes per request (the current message
    with its tools and thinking tags, the continuation id, the reasoning fields). Nothing per-request is written
    into history.

    `request_fields_schema` is the model's `additionalModelRequestFieldsSchema`: when it allows reasoning, the
    client's intent goes into `additionalModelRequestFields`, earlier reasoning is replayed (unless
    `replay_reasoning` is False) and no thinking tags are injected; without it, tags as configured.
    """
    native = reasoning.has_reasoning_member(request_fields_schema)
    tags = conversation.thinking.enabled and not native
    messages = [_copy(m) for m in conversation.messages]
    tools = _dedupe_tools(conversation.tools)
    system = conversation.system
    reverse_aliases: dict[str, str] = {}
    if tools:
        aliases = tool_name_aliases([t.name for t in tools] + [c.name for m in messages for c in m.tool_calls])
        tools = [_renamed_tool(t, aliases.get(t.name, t.name)) for t in tools]
        for message in messages:
            message.tool_calls = [
                ToolCall(id=c.id, name=aliases.get(c.name, c.name), arguments=c.arguments) for c in message.tool_calls
            ]
        reverse_aliases = {alias: original for original, alias in aliases.items()}
        tools, docs = relocate_long_descriptions(tools, options.tool_description_max_length)
        system = _append_section(system, docs)
    if tags:
        system = _append_section(system, THINKING_SYSTEM_SECTION)
    tool_names = tuple(t.name for t in tools)
    for message in messages:  # reasoning Kiro would refuse (another model, a tool gone) is not sent at all
        if message.reasoning is not None and not reasoning.replayable(message.reasoning, model_id, tool_names):
            message.reasoning = None

    messages = normalise_messages(messages, has_tools=bool(tools), options=options)
    history, current = split_current(messages, options)
    if history:
        history[0].text = _with_system(system, history[0].text, options)
        current_text = _text_or(current.text, options.empty_placeholder)
    else:
        current_text = _with_system(system, current.text, options)
    if tags and (options.thinking_with_tool_results or not current.tool_results):
        budget = conversation.thinking.budget_tokens or options.fake_reasoning_max_tokens
        current_text = thinking_prefix(budget) + current_text

    names = document_names([*history, current], options.max_documents_per_message)
    replay = native and replay_reasoning
    state: dict[str, Any] = {"chatTriggerType": CHAT_TRIGGER, "conversationId": conversation_id}
    if options.root_conversation_id and root_conversation_id and root_conversation_id != conversation_id:
        state["rootConversationId"] = root_conversation_id
    if options.agent_task_type:
        state["agentTaskType"] = options.agent_task_type
    if history:
        entries = [_history_entry(m, model_id, options, names, replay) for m in history]
        if options.cache_points:
            from kiro_core.tokens import count_text  # the tokenizer only when markers are wanted

            place_cache_points(entries, cache_policy or CachePolicy(), count_text)
        state["history"] = entries
    state["currentMessage"] = {
        "userInputMessage": _user_input(current, current_text, model_id, options, tools=tools, names=names)
    }
    if options.agent_continuation and continuation_id:
        state["agentContinuationId"] = continuation_id
    payload: dict[str, Any] = {"conversationState": state}
    if options.profile_arn:
        payload["profileArn"] = options.profile_arn
    max_tokens = conversation.max_tokens if options.native_reasoning_max_tokens else None
    fields = reasoning.request_fields(conversation.reasoning, request_fields_schema, max_tokens=max_tokens)
    if fields:
        payload["additionalModelRequestFields"] = fields
    body = _encode(payload)
    if options.max_payload_bytes > 0 and len(body) > options.max_payload_bytes:
        raise ContextTooLongError(len(body), options.max_payload_bytes)
    replays = replay and any(m.role == "assistant" and m.reasoning for m in history)
    return KiroRequest(payload=payload, body=body, tool_name_aliases=reverse_aliases, replays_reasoning=replays,
                       tool_names=tool_names)


# ---------------------------------------------------------------- tools


def tool_name_aliases(names: Iterable[str]) -> dict[str, str]:
    """original -> alias for every name Kiro would refuse; deterministic for a given set of names.

    The alias is a readable, sanitised prefix plus a short sha256 of the original, at most 64 characters; a longer
    hash is used in the (astronomically unlikely) case it collides with another name in the request.
    """
    unique = sorted(set(names))
    taken = {n for n in unique if VALID_TOOL_NAME.match(n)}
    aliases: dict[str, str] = {}
    for name in unique:
        if name in taken:
            continue
        digest = hashlib.sha256(name.encode("utf-8", "surrogatepass")).hexdigest()
        prefix = re.sub(r"[^A-Za-z0-9_-]+", "_", name).strip("_") or "tool"
        alias = digest
        for size in (10, 16, 32):
            candidate = f"{prefix[: MAX_TOOL_NAME - 1 - size]}_{digest[:size]}"
            if candidate not in taken:
                alias = candidate
                break
        taken.add(alias)
        aliases[name] = alias
    return aliases


def _dedupe_tools(tools: list[ToolSpec]) -> list[ToolSpec]:
    """First definition of each name wins; Kiro does not need (and may refuse) duplicates."""
    seen: set[str] = set()
    out: list[ToolSpec] = []
    for tool in tools:
        if tool.name not in seen:
            seen.add(tool.name)
            out.append(tool)
    return out


def _renamed_tool(tool: ToolSpec, name: str) -> ToolSpec:
    return ToolSpec(name=name, description=tool.description, input_schema=tool.input_schema)


def relocate_long_descriptions(tools: list[ToolSpec], max_length: int) -> tuple[list[ToolSpec], str]:
    """Descriptions over `max_length` (0 = never) move to a system-prompt section; the tool keeps a pointer."""
    if max_length <= 0:
        return tools, ""
    out: list[ToolSpec] = []
    docs: list[str] = []
    for tool in tools:
        if len(tool.description) > max_length:
            docs.append(f"## Tool: {tool.name}\n\n{tool.description}")
            pointer = f"Full documentation of this tool: see '## Tool: {tool.name}' in the system prompt."
            out.append(ToolSpec(name=tool.name, description=pointer, input_schema=tool.input_schema))
        else:
            out.append(tool)
    section = "# Tool Documentation\n\n" + "\n\n".join(docs) if docs else ""
    return out, section


_NOT_SCHEMAS = frozenset({"enum", "const", "default", "examples", "example"})  # literal data: left untouched
_SCHEMA_MAPS = frozenset({"properties", "patternProperties", "$defs", "definitions", "dependentSchemas"})


def clean_schema(node: Any) -> Any:
    """Recursively drop `additionalProperties`, `$schema` and empty `required`, which Kiro answers with 400.

    Keys of `properties`-like maps are property names, not keywords, so a property called `required` survives.
    """
    if isinstance(node, list):
        return [clean_schema(item) for item in node]
    if not isinstance(node, dict):
        return node
    out: dict[str, Any] = {}
    for key, value in node.items():
        if key in ("additionalProperties", "$schema") or (key == "required" and value == []):
            continue
        if key in _NOT_SCHEMAS:
            out[key] = value
        elif key in _SCHEMA_MAPS and isinstance(value, dict):
            out[key] = {name: clean_schema(sub) for name, sub in value.items()}
        else:
            out[key] = clean_schema(value)
    return out


def root_schema(schema: Any) -> dict[str, Any]:
    """A cleaned schema whose root is an object with `properties`, as Kiro requires of tool inputs."""
    cleaned = clean_schema(schema) if isinstance(schema, dict) else {}
    cleaned["type"] = "object"
    if not isinstance(cleaned.get("properties"), dict):
        cleaned["properties"] = {}
    return cleaned


def _tool_spec(tool: ToolSpec) -> dict[str, Any]:
    return {
        "toolSpecification": {
            "name": tool.name,
            "description": tool.description if tool.description.strip() else f"Tool: {tool.name}",
            "inputSchema": {"json": root_schema(tool.input_schema)},
        }
    }


# ---------------------------------------------------------------- message normalisation


def normalise_messages(messages: list[Message], *, has_tools: bool, options: ConversionOptions) -> list[Message]:
    """Merged, tool content only where Kiro accepts it, starting with a user turn, strictly alternating."""
    merged = merge_adjacent(messages)
    if has_tools:
        merged = misplaced_tool_content_to_text(merged)
    else:  # Kiro refuses toolResults when the request declares no tools (reference issue #20).
        merged = [_tool_content_to_text(m, m.tool_calls, m.tool_results) for m in merged]
    if merged and merged[0].role != "user":
        merged.insert(0, Message(role="user", text=options.empty_placeholder))
    return ensure_alternation(merged, options)


def merge_adjacent(messages: list[Message]) -> list[Message]:
    """Consecutive same-role messages become one: text joined with a newline, lists concatenated."""
    out: list[Message] = []
    for message in messages:
        if out and out[-1].role == message.role:
            _merge_into(out[-1], message)
        else:
            out.append(_copy(message))
    return out


def misplaced_tool_content_to_text(messages: list[Message]) -> list[Message]:
    """Tool results must answer a call of the assistant turn just before; anything else becomes text."""
    out: list[Message] = []
    for message in messages:
        if message.role == "assistant":
            out.append(_tool_content_to_text(message, [], message.tool_results))
            continue
        previous = out[-1] if out and out[-1].role == "assistant" else None
        call_ids = {c.id for c in previous.tool_calls} if previous else set()
        orphans = [r for r in message.tool_results if r.tool_use_id not in call_ids]
        out.append(_tool_content_to_text(message, message.tool_calls, orphans))
    return out


def ensure_alternation(messages: list[Message], options: ConversionOptions) -> list[Message]:
    """Safety net: a synthetic assistant between two users, two assistants merged."""
    out: list[Message] = []
    for message in messages:
        if out and out[-1].role == message.role:
            if message.role == "assistant":
                _merge_into(out[-1], message)
                continue
            out.append(Message(role="assistant", text=options.empty_placeholder))
        out.append(message)
    return out


def split_current(messages: list[Message], options: ConversionOptions) -> tuple[list[Message], Message]:
    """History = all but the last message; a trailing assistant turn stays in history and the user 'continues'."""
    if not messages:
        return [], Message(role="user")
    if messages[-1].role == "assistant":
        return messages, Message(role="user", text=options.continue_text)
    return messages[:-1], messages[-1]


def _tool_content_to_text(message: Message, calls: list[ToolCall], results: list[ToolResult]) -> Message:
    """`message` with the given calls/results removed and written into its text instead (images kept)."""
    if not calls and not results:
        return message
    lines = [message.text] if message.text else []
    for call in calls:
        args = json.dumps(call.arguments, ensure_ascii=False, default=str)
        lines.append(f"[Tool call {call.name}, id {call.id}]\n{args}")
    for result in results:
        lines.append(f"[Tool result for call id {result.tool_use_id}]\n{result.content}")
    moved = {id(item) for item in (*calls, *results)}
    out = _copy(message)
    out.text = "\n\n".join(lines)
    out.tool_calls = [c for c in message.tool_calls if id(c) not in moved]
    out.tool_results = [r for r in message.tool_results if id(r) not in moved]
    return out


def _merge_into(target: Message, extra: Message) -> None:
    target.text = "\n".join(t for t in (target.text, extra.text) if t)
    target.tool_calls.extend(extra.tool_calls)
    target.tool_results.extend(extra.tool_results)
    target.images.extend(extra.images)
    target.documents.extend(extra.documents)
    target.reasoning = extra.reasoning or target.reasoning  # one slot per Kiro message: the last one


def _copy(message: Message) -> Message:
    return Message(
        role=message.role,
        text=message.text,
        tool_calls=list(message.tool_calls),
        tool_results=list(message.tool_results),
        images=list(message.images),
        documents=list(message.documents),
        reasoning=message.reasoning,
    )


def document_names(messages: list[Message], max_per_message: int) -> dict[int, str]:
    """id(document) → the name Kiro gets: made safe, unique across the request (Kiro refuses duplicates).

    Raises InvalidRequestError when one message carries more documents than `max_per_message` (0 = no limit).
    """
    docs: list[Document] = []
    for message in messages:
        if 0 < max_per_message < len(message.documents):
            raise InvalidRequestError(
                f"A message carries {len(message.documents)} documents; Kiro takes at most {max_per_message} per "
                "message. Send fewer documents at a time.")
        docs.extend(message.documents)
    unique = documents.unique_names(documents.safe_name(d.name) for d in docs)
    return {id(doc): name for doc, name in zip(docs, unique, strict=True)}


# ---------------------------------------------------------------- rendering


def thinking_prefix(budget: int) -> str:
    """The tags put in front of the current user message to ask for `<thinking>` reasoning.

    See docs/protocol.md §Thinking tags."""
    return (
        "<thinking_mode>enabled</thinking_mode>\n"
        f"<max_thinking_length>{budget}</max_thinking_length>\n"
        f"<thinking_instruction>{THINKING_INSTRUCTION}</thinking_instruction>\n\n"
    )


def _append_section(system: str, section: str) -> str:
    if not section:
        return system
    return f"{system}{SECTION_SEPARATOR}{section}" if system else section


def _text_or(text: str, placeholder: str) -> str:
    return text if text.strip() else placeholder


def _with_system(system: str, text: str, options: ConversionOptions) -> str:
    content = _text_or(text, options.empty_placeholder)
    return f"{system}\n\n{content}" if system.strip() else content


def _image(image: Image) -> dict[str, Any]:
    """Kiro's image shape: the format of the actual bytes (Kiro refuses a declared type that does not match them),
    else the declared media subtype; base64 without any `data:` prefix."""
    data = image.data.split(",", 1)[1] if image.data.startswith("data:") else image.data
    fmt = documents.sniff_image_format(data) or image.media_type.rsplit("/", 1)[-1].lower()
    return {"format": "jpeg" if fmt == "jpg" else fmt, "source": {"bytes": data}}


def _document(document: Document, names: dict[int, str]) -> dict[str, Any]:
    name = names.get(id(document)) or documents.safe_name(document.name)
    return {"name": name, "format": document.format, "source": {"bytes": document.data}}


def _tool_result(result: ToolResult, options: ConversionOptions) -> dict[str, Any]:
    """Status is always "success" (reference behaviour); an error result says so in its text instead."""
    text = _text_or(result.content, options.empty_result_placeholder)
    if result.is_error:
        text = f"[tool error] {text}"
    return {"content": [{"text": text}], "status": "success", "toolUseId": result.tool_use_id}


def _user_input(
    message: Message, content: str, model_id: str, options: ConversionOptions, *, tools: list[ToolSpec],
    names: dict[int, str],
) -> dict[str, Any]:
    entry: dict[str, Any] = {"content": content, "modelId": model_id, "origin": ORIGIN}
    if message.images:
        entry["images"] = [_image(i) for i in message.images]
    if message.documents:
        entry["documents"] = [_document(d, names) for d in message.documents]
    context: dict[str, Any] = {}
    if tools:
        context["tools"] = [_tool_spec(t) for t in tools]
    if message.tool_results:
        context["toolResults"] = [_tool_result(r, options) for r in message.tool_results]
    if context:
        entry["userInputMessageContext"] = context
    return entry


def _history_entry(
    message: Message, model_id: str, options: ConversionOptions, names: dict[int, str], replay: bool
) -> dict[str, Any]:
    text = _text_or(message.text, options.empty_placeholder)
    if message.role == "user":
        return {"userInputMessage": _user_input(message, text, model_id, options, tools=[], names=names)}
    entry: dict[str, Any] = {"content": text}
    if message.tool_calls:
        entry["toolUses"] = [{"name": c.name, "input": c.arguments, "toolUseId": c.id} for c in message.tool_calls]
    if replay and message.reasoning is not None:
        shown = message.reasoning
        if shown.redacted:
            entry["reasoningContent"] = {"redactedContent": shown.redacted}
        elif shown.signature:
            entry["reasoningContent"] = {"reasoningText": {"text": shown.text, "signature": shown.signature}}
    return {"assistantResponseMessage": entry}


def _encode(payload: dict[str, Any]) -> bytes:
    """Compact UTF-8 JSON. orjson writes the bytes at once (a 3 MB conversation: ~4 ms, where `json.dumps` then
    `.encode` took ~50 ms and held a 12 MB string); what it refuses (lone surrogates, integers beyond 64 bits) goes
    through `json`, with ASCII escapes when the text holds lone surrogates (invalid UTF-8)."""
    try:
        return orjson.dumps(payload)
    except (orjson.JSONEncodeError, TypeError):
        pass
    try:
        return json.dumps(payload, ensure_ascii=False, separators=(",", ":")).encode("utf-8")
    except UnicodeEncodeError:
        return json.dumps(payload, separators=(",", ":")).encode("ascii")
