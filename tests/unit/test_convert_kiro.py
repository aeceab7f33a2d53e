"""The Kiro payload builder: every normalisation rule, plus property tests of the payload invariants."""

from __future__ import annotations

import copy
import json
import re
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from kiro_core.convert.kiro import (
    MAX_TOOL_NAME,
    THINKING_SYSTEM_SECTION,
    KiroRequest,
    build_kiro_request,
    clean_schema,
    ensure_alternation,
    root_schema,
    tool_name_aliases,
)
from kiro_core.convert.options import ConversionOptions
from kiro_core.errors import ContextTooLongError, ErrorKind
from kiro_core.unified import (
    Conversation,
    Image,
    Message,
    Role,
    ThinkingRequest,
    ToolCall,
    ToolResult,
    ToolSpec,
)

OPTS = ConversionOptions()
VALID_NAME = re.compile(r"^[A-Za-z0-9_-]{1,64}$")
SCHEMA = {"type": "object", "properties": {"q": {"type": "string"}}, "required": ["q"]}


def build(
    conversation: Conversation, options: ConversionOptions = OPTS, model: str = "claude-sonnet-4.5"
) -> KiroRequest:
    return build_kiro_request(conversation, model, options, "conv-1")


def conv(*messages: Message, **kwargs: Any) -> Conversation:
    kwargs.setdefault("thinking", ThinkingRequest(enabled=False))
    return Conversation(model="m", messages=list(messages), **kwargs)


def user(text: str = "", **kw: Any) -> Message:
    return Message(role="user", text=text, **kw)


def assistant(text: str = "", **kw: Any) -> Message:
    return Message(role="assistant", text=text, **kw)


def tool(name: str = "search", description: str = "Searches.", schema: dict[str, Any] | None = None) -> ToolSpec:
    return ToolSpec(name=name, description=description, input_schema=schema if schema is not None else SCHEMA)


def state(req: KiroRequest) -> dict[str, Any]:
    result: dict[str, Any] = req.payload["conversationState"]
    return result


def current(req: KiroRequest) -> dict[str, Any]:
    result: dict[str, Any] = state(req)["currentMessage"]["userInputMessage"]
    return result


def history(req: KiroRequest) -> list[dict[str, Any]]:
    result: list[dict[str, Any]] = state(req).get("history", [])
    return result


def check_invariants(req: KiroRequest) -> None:
    """What Kiro requires of every payload; shared by the adapter tests."""
    st_ = state(req)
    assert st_["chatTriggerType"] == "MANUAL"
    assert "history" not in st_ or st_["history"], "empty history must be omitted"
    hist = st_.get("history", [])
    entries = [*hist, {"userInputMessage": st_["currentMessage"]["userInputMessage"]}]
    declared = {
        t["toolSpecification"]["name"] for t in current(req).get("userInputMessageContext", {}).get("tools", [])
    }
    for i, entry in enumerate(entries):
        assert len(entry) == 1
        role = "userInputMessage" if i % 2 == 0 else "assistantResponseMessage"
        assert role in entry, f"entry {i} breaks strict user/assistant alternation"
        body = entry[role]
        assert isinstance(body["content"], str) and body["content"].strip(), f"entry {i} has empty content"
        if role == "assistantResponseMessage":
            for use in body.get("toolUses", []):
                assert isinstance(use["input"], dict)
                assert VALID_NAME.match(use["name"])
            continue
        assert body["origin"] == "AI_EDITOR" and body["modelId"]
        if "images" in body:
            assert body["images"]
        context = body.get("userInputMessageContext")
        if context is not None:
            assert context, "empty userInputMessageContext must be omitted"
            if i < len(hist):
                assert "tools" not in context, "tools belong on the current message only"
        results = (context or {}).get("toolResults", [])
        if results:
            assert declared, "toolResults without tools"
            previous = entries[i - 1]["assistantResponseMessage"]
            call_ids = {u["toolUseId"] for u in previous.get("toolUses", [])}
            for result in results:
                assert result["toolUseId"] in call_ids, "toolResult without a preceding toolUse"
                assert result["status"] == "success"
                assert result["content"][0]["text"].strip()
    for name in declared:
        assert VALID_NAME.match(name)
    assert req.body == json.dumps(req.payload, ensure_ascii=False, separators=(",", ":")).encode()


# ---------------------------------------------------------------- shape


def test_single_message_shape_and_omitted_fields() -> None:
    req = build(conv(user("hello")))
    assert req.payload == {
        "conversationState": {
            "chatTriggerType": "MANUAL",
            "conversationId": "conv-1",
            "agentTaskType": "vibe",
            "currentMessage": {
                "userInputMessage": {"content": "hello", "modelId": "claude-sonnet-4.5", "origin": "AI_EDITOR"}
            },
        }
    }
    assert req.tool_name_aliases == {}


def test_body_is_compact_utf8_json_of_payload() -> None:
    req = build(conv(user("héllo ✓")))
    assert req.body == json.dumps(req.payload, ensure_ascii=False, separators=(",", ":")).encode("utf-8")
    assert "héllo ✓".encode() in req.body and b'": ' not in req.body


def test_lone_surrogate_falls_back_to_ascii_escapes() -> None:
    req = build(conv(user("bad \ud800 text")))
    assert b"\\ud800" in req.body
    assert json.loads(req.body)["conversationState"]["currentMessage"]["userInputMessage"]["content"].startswith("bad")


def test_profile_arn_at_root_only_when_set() -> None:
    assert "profileArn" not in build(conv(user("x"))).payload
    req = build(conv(user("x")), ConversionOptions(profile_arn="arn:aws:codewhisperer:us-east-1:1:profile/A"))
    assert req.payload["profileArn"] == "arn:aws:codewhisperer:us-east-1:1:profile/A"


def test_model_id_on_every_user_entry() -> None:
    req = build(conv(user("a"), assistant("b"), user("c")), model="claude-opus-4.8")
    assert current(req)["modelId"] == "claude-opus-4.8"
    assert history(req)[0]["userInputMessage"]["modelId"] == "claude-opus-4.8"


def test_input_conversation_is_not_mutated() -> None:
    c = conv(
        assistant("a", tool_calls=[ToolCall("1", "x" * 70, {"k": 1})]),
        user("", tool_results=[ToolResult("1", "")]),
        user("again"),
        tools=[tool("x" * 70, "d" * 20)],
        system="sys",
        thinking=ThinkingRequest(True, 100),
    )
    before = copy.deepcopy(c)
    build(c, ConversionOptions(tool_description_max_length=5))
    assert c == before


# ---------------------------------------------------------------- system prompt placement


def test_system_goes_into_current_message_without_history() -> None:
    req = build(conv(user("question"), system="SYS"))
    assert current(req)["content"] == "SYS\n\nquestion"


def test_system_goes_into_first_history_user_message() -> None:
    req = build(conv(user("first"), assistant("reply"), user("second"), system="SYS"))
    assert history(req)[0]["userInputMessage"]["content"] == "SYS\n\nfirst"
    assert current(req)["content"] == "second"


def test_system_with_empty_first_message_uses_placeholder() -> None:
    req = build(conv(user(""), system="SYS"))
    assert current(req)["content"] == "SYS\n\n(empty)"


# ---------------------------------------------------------------- role normalisation


def test_adjacent_same_role_messages_are_merged() -> None:
    req = build(
        conv(
            user("a", images=[Image("image/png", "AAA")]),
            user("b", images=[Image("image/png", "BBB")]),
            assistant("c"),
            assistant("d"),
            user("e"),
        )
    )
    hist = history(req)
    assert len(hist) == 2
    assert hist[0]["userInputMessage"]["content"] == "a\nb"
    assert [i["source"]["bytes"] for i in hist[0]["userInputMessage"]["images"]] == ["AAA", "BBB"]
    assert hist[1]["assistantResponseMessage"]["content"] == "c\nd"


def test_merged_tool_results_are_concatenated() -> None:
    calls = [ToolCall("1", "search", {}), ToolCall("2", "search", {})]
    req = build(
        conv(
            user("go"),
            assistant(tool_calls=calls),
            user(tool_results=[ToolResult("1", "r1")]),
            user(tool_results=[ToolResult("2", "r2")]),
            tools=[tool()],
        )
    )
    ids = [r["toolUseId"] for r in current(req)["userInputMessageContext"]["toolResults"]]
    assert ids == ["1", "2"]


def test_first_message_assistant_gets_synthetic_user() -> None:
    req = build(conv(assistant("I start"), user("ok")))
    hist = history(req)
    assert hist[0] == {
        "userInputMessage": {"content": "(empty)", "modelId": "claude-sonnet-4.5", "origin": "AI_EDITOR"}
    }
    assert hist[1]["assistantResponseMessage"]["content"] == "I start"


def test_last_message_assistant_moves_to_history_and_current_is_continue() -> None:
    req = build(conv(user("q"), assistant("partial answer")))
    assert current(req)["content"] == "Continue"
    assert history(req)[-1]["assistantResponseMessage"]["content"] == "partial answer"


def test_only_assistant_message() -> None:
    req = build(conv(assistant("alone"), system="S"))
    assert [next(iter(e)) for e in history(req)] == ["userInputMessage", "assistantResponseMessage"]
    assert history(req)[0]["userInputMessage"]["content"] == "S\n\n(empty)"
    assert current(req)["content"] == "Continue"


def test_no_messages_at_all_gives_placeholder_current() -> None:
    req = build(conv(system="only a system prompt"))
    assert current(req)["content"] == "only a system prompt\n\n(empty)"
    check_invariants(req)


def test_custom_placeholders_are_used() -> None:
    options = ConversionOptions(empty_placeholder="(nothing)", continue_text="Go on")
    req = build(conv(assistant(""), user(""), assistant("x")), options)
    assert history(req)[0]["userInputMessage"]["content"] == "(nothing)"
    assert history(req)[1]["assistantResponseMessage"]["content"] == "(nothing)"
    assert current(req)["content"] == "Go on"


# ---------------------------------------------------------------- empty content


def test_empty_history_contents_get_placeholders() -> None:
    req = build(conv(user("  "), assistant(""), user("")))
    assert history(req)[0]["userInputMessage"]["content"] == "(empty)"
    assert history(req)[1]["assistantResponseMessage"]["content"] == "(empty)"
    assert current(req)["content"] == "(empty)"


def test_empty_tool_result_gets_placeholder() -> None:
    req = build(
        conv(
            user("q"),
            assistant(tool_calls=[ToolCall("1", "search", {})]),
            user(tool_results=[ToolResult("1", " ")]),
            tools=[tool()],
        )
    )
    assert current(req)["userInputMessageContext"]["toolResults"][0]["content"] == [{"text": "(empty result)"}]


def test_tool_results_status_success_and_error_marked_in_text() -> None:
    req = build(
        conv(
            user("q"),
            assistant(tool_calls=[ToolCall("1", "search", {}), ToolCall("2", "search", {})]),
            user(tool_results=[ToolResult("1", "fine"), ToolResult("2", "boom", is_error=True)]),
            tools=[tool()],
        )
    )
    results = current(req)["userInputMessageContext"]["toolResults"]
    assert [r["status"] for r in results] == ["success", "success"]
    assert results[0]["content"] == [{"text": "fine"}]
    assert results[1]["content"] == [{"text": "[tool error] boom"}]


# ---------------------------------------------------------------- tools


def test_tools_only_on_current_message_and_history_has_only_tool_results() -> None:
    req = build(
        conv(
            user("q"),
            assistant(tool_calls=[ToolCall("1", "search", {"q": "a"})]),
            user(tool_results=[ToolResult("1", "r")]),
            assistant("done"),
            user("next"),
            tools=[tool()],
        )
    )
    hist = history(req)
    assert hist[2]["userInputMessage"]["userInputMessageContext"] == {
        "toolResults": [{"content": [{"text": "r"}], "status": "success", "toolUseId": "1"}]
    }
    assert hist[1]["assistantResponseMessage"]["toolUses"] == [
        {"name": "search", "input": {"q": "a"}, "toolUseId": "1"}
    ]
    assert current(req)["userInputMessageContext"] == {
        "tools": [
            {
                "toolSpecification": {
                    "name": "search",
                    "description": "Searches.",
                    "inputSchema": {"json": SCHEMA},
                }
            }
        ]
    }
    check_invariants(req)


def test_no_tools_turns_all_tool_content_into_text_and_keeps_images() -> None:
    req = build(
        conv(
            user("q"),
            assistant("let me look", tool_calls=[ToolCall("c1", "search", {"q": "cats"})]),
            user(tool_results=[ToolResult("c1", "found cats")], images=[Image("image/png", "IMG")]),
        )
    )
    assert "userInputMessageContext" not in current(req)
    assert "toolUses" not in history(req)[1]["assistantResponseMessage"]
    call_text = history(req)[1]["assistantResponseMessage"]["content"]
    assert call_text.startswith("let me look") and "search" in call_text and "c1" in call_text
    assert '{"q": "cats"}' in call_text
    assert "found cats" in current(req)["content"] and "c1" in current(req)["content"]
    assert current(req)["images"] == [{"format": "png", "source": {"bytes": "IMG"}}]
    check_invariants(req)


def test_orphan_tool_results_become_text() -> None:
    req = build(
        conv(
            user(tool_results=[ToolResult("ghost", "lost result")]),
            assistant("hm"),
            user("next", tool_results=[ToolResult("ghost2", "also lost")]),
            tools=[tool()],
        )
    )
    assert "userInputMessageContext" not in history(req)[0]["userInputMessage"]
    assert "lost result" in history(req)[0]["userInputMessage"]["content"]
    assert "toolResults" not in current(req)["userInputMessageContext"]
    assert "also lost" in current(req)["content"]
    check_invariants(req)


def test_results_for_unknown_ids_become_text_while_matched_ones_stay() -> None:
    req = build(
        conv(
            user("q"),
            assistant(tool_calls=[ToolCall("1", "search", {})]),
            user("note", tool_results=[ToolResult("1", "good"), ToolResult("9", "stale")]),
            tools=[tool()],
        )
    )
    assert [r["toolUseId"] for r in current(req)["userInputMessageContext"]["toolResults"]] == ["1"]
    assert current(req)["content"].startswith("note") and "stale" in current(req)["content"]


def test_user_tool_calls_and_assistant_tool_results_become_text() -> None:
    req = build(
        conv(
            user("q", tool_calls=[ToolCall("u1", "search", {"a": 1})]),
            assistant("a", tool_results=[ToolResult("x", "weird")]),
            user("z"),
            tools=[tool()],
        )
    )
    assert "u1" in history(req)[0]["userInputMessage"]["content"]
    assert "weird" in history(req)[1]["assistantResponseMessage"]["content"]
    check_invariants(req)


def test_duplicate_tool_names_are_deduplicated() -> None:
    req = build(conv(user("q"), tools=[tool("a", "first"), tool("a", "second"), tool("b")]))
    specs = [t["toolSpecification"] for t in current(req)["userInputMessageContext"]["tools"]]
    assert [(s["name"], s["description"]) for s in specs] == [("a", "first"), ("b", "Searches.")]


def test_empty_tool_description_gets_placeholder() -> None:
    req = build(conv(user("q"), tools=[tool("grep", "  ")]))
    assert current(req)["userInputMessageContext"]["tools"][0]["toolSpecification"]["description"] == "Tool: grep"


def test_long_tool_description_moves_to_system_prompt() -> None:
    long = "word " * 30
    req = build(
        conv(user("q"), tools=[tool("big", long), tool("small", "short")], system="SYS"),
        ConversionOptions(tool_description_max_length=50),
    )
    specs = {
        t["toolSpecification"]["name"]: t["toolSpecification"] for t in current(req)["userInputMessageContext"]["tools"]
    }
    assert specs["small"]["description"] == "short"
    assert "## Tool: big" in specs["big"]["description"] and long not in specs["big"]["description"]
    content = current(req)["content"]
    assert content.startswith("SYS")
    assert "# Tool Documentation" in content and f"## Tool: big\n\n{long}" in content


def test_description_exactly_at_limit_stays() -> None:
    req = build(conv(user("q"), tools=[tool("t", "x" * 50)]), ConversionOptions(tool_description_max_length=50))
    assert current(req)["userInputMessageContext"]["tools"][0]["toolSpecification"]["description"] == "x" * 50


def test_description_limit_zero_disables_relocation() -> None:
    long = "y" * 20000
    req = build(conv(user("q"), tools=[tool("t", long)]), ConversionOptions(tool_description_max_length=0))
    assert current(req)["userInputMessageContext"]["tools"][0]["toolSpecification"]["description"] == long
    assert "Tool Documentation" not in current(req)["content"]


def test_default_limit_is_ten_thousand() -> None:
    req = build(conv(user("q"), tools=[tool("t", "z" * 10001)]))
    assert "Tool Documentation" in current(req)["content"]


# ---------------------------------------------------------------- tool names


def test_name_of_64_chars_is_kept_and_65_is_aliased() -> None:
    ok, long = "a" * 64, "b" * 65
    aliases = tool_name_aliases([ok, long])
    assert ok not in aliases
    assert len(aliases[long]) <= MAX_TOOL_NAME and VALID_NAME.match(aliases[long])
    assert aliases[long].startswith("bbbb")


def test_invalid_characters_are_aliased() -> None:
    aliases = tool_name_aliases(["mcp.server/tool name"])
    alias = aliases["mcp.server/tool name"]
    assert VALID_NAME.match(alias) and alias.startswith("mcp_server_tool_name_")


def test_aliases_are_deterministic_and_distinct_for_similar_names() -> None:
    names = ["x" * 80 + "1", "x" * 80 + "2"]
    first, second = tool_name_aliases(names), tool_name_aliases(list(reversed(names)))
    assert first == second
    assert len(set(first.values())) == 2


def test_alias_never_collides_with_a_real_name() -> None:
    long = "c" * 70
    alias = tool_name_aliases([long])[long]
    again = tool_name_aliases([long, alias])
    assert again[long] != alias and VALID_NAME.match(again[long])


def test_empty_name_gets_an_alias() -> None:
    assert VALID_NAME.match(tool_name_aliases([""])[""])


def test_long_names_aliased_in_tools_and_history_and_returned() -> None:
    long = "mcp__very_long_server_name__" + "do_something_" * 5
    req = build(
        conv(
            user("q"),
            assistant(tool_calls=[ToolCall("1", long, {"a": 1})]),
            user(tool_results=[ToolResult("1", "ok")]),
            tools=[tool(long)],
        )
    )
    sent = current(req)["userInputMessageContext"]["tools"][0]["toolSpecification"]["name"]
    assert sent != long and len(sent) <= 64
    assert history(req)[1]["assistantResponseMessage"]["toolUses"][0]["name"] == sent
    assert req.tool_name_aliases == {sent: long}
    check_invariants(req)


def test_invalid_name_only_in_history_is_aliased_too() -> None:
    req = build(
        conv(
            user("q"),
            assistant(tool_calls=[ToolCall("1", "old tool", {})]),
            user(tool_results=[ToolResult("1", "ok")]),
            tools=[tool()],
        )
    )
    used = history(req)[1]["assistantResponseMessage"]["toolUses"][0]["name"]
    assert VALID_NAME.match(used) and req.tool_name_aliases[used] == "old tool"


def test_relocated_description_refers_to_the_alias() -> None:
    long_name = "n" * 70
    req = build(conv(user("q"), tools=[tool(long_name, "d" * 30)]), ConversionOptions(tool_description_max_length=10))
    alias = next(iter(req.tool_name_aliases))
    assert f"## Tool: {alias}" in current(req)["content"]


# ---------------------------------------------------------------- JSON schema cleaning


def test_schema_cleaning_is_recursive() -> None:
    schema = {
        "$schema": "http://json-schema.org/draft-07/schema#",
        "type": "object",
        "additionalProperties": False,
        "required": [],
        "properties": {
            "opts": {
                "type": "object",
                "additionalProperties": {"type": "string"},
                "required": [],
                "properties": {"deep": {"type": "array", "items": {"type": "object", "additionalProperties": True}}},
            },
            "name": {"type": "string"},
        },
        "anyOf": [{"required": ["name"], "additionalProperties": False}],
    }
    assert clean_schema(schema) == {
        "type": "object",
        "properties": {
            "opts": {"type": "object", "properties": {"deep": {"type": "array", "items": {"type": "object"}}}},
            "name": {"type": "string"},
        },
        "anyOf": [{"required": ["name"]}],
    }


def test_non_empty_required_is_kept() -> None:
    assert clean_schema({"type": "object", "required": ["a"], "properties": {"a": {}}})["required"] == ["a"]


def test_properties_named_like_keywords_survive() -> None:
    schema = {
        "type": "object",
        "properties": {"required": {"type": "boolean"}, "additionalProperties": {"type": "string"}},
    }
    assert clean_schema(schema) == schema


def test_literal_values_are_not_cleaned() -> None:
    schema = {
        "type": "object",
        "properties": {"cfg": {"type": "object", "default": {"additionalProperties": 1, "required": []}}},
    }
    assert clean_schema(schema) == schema


@pytest.mark.parametrize(
    ("schema", "expected"),
    [
        ({}, {"type": "object", "properties": {}}),
        ({"type": "string"}, {"type": "object", "properties": {}}),
        ({"properties": {"a": {"type": "integer"}}}, {"properties": {"a": {"type": "integer"}}, "type": "object"}),
        ({"type": "object", "properties": None}, {"type": "object", "properties": {}}),
        ("not a dict", {"type": "object", "properties": {}}),
    ],
)
def test_root_schema_forced_to_object(schema: Any, expected: dict[str, Any]) -> None:
    assert root_schema(schema) == expected


def test_tool_schema_in_payload_is_cleaned() -> None:
    schema = {"type": "object", "$schema": "x", "additionalProperties": False, "properties": {}, "required": []}
    req = build(conv(user("q"), tools=[tool("t", "d", schema)]))
    assert current(req)["userInputMessageContext"]["tools"][0]["toolSpecification"]["inputSchema"] == {
        "json": {"type": "object", "properties": {}}
    }


# ---------------------------------------------------------------- images


def test_images_on_user_input_message_with_format_from_media_type() -> None:
    req = build(
        conv(
            user("see", images=[Image("image/jpeg", "J")]),
            assistant("ok"),
            user("and", images=[Image("image/jpg", "data:image/jpg;base64,K"), Image("image/webp", "W")]),
        )
    )
    assert history(req)[0]["userInputMessage"]["images"] == [{"format": "jpeg", "source": {"bytes": "J"}}]
    assert current(req)["images"] == [
        {"format": "jpeg", "source": {"bytes": "K"}},
        {"format": "webp", "source": {"bytes": "W"}},
    ]
    assert "userInputMessageContext" not in current(req)


# ---------------------------------------------------------------- thinking


def test_thinking_tags_prepended_to_current_message_only() -> None:
    req = build(conv(user("first"), assistant("a"), user("second"), thinking=ThinkingRequest(True, 1234)))
    content = current(req)["content"]
    assert content.startswith(
        "<thinking_mode>enabled</thinking_mode>\n<max_thinking_length>1234</max_thinking_length>\n<thinking_instruction>"
    )
    assert content.endswith("</thinking_instruction>\n\nsecond")
    assert "<thinking_mode>enabled" not in history(req)[0]["userInputMessage"]["content"]
    assert history(req)[0]["userInputMessage"]["content"].endswith("\n\nfirst")


def test_thinking_adds_system_section() -> None:
    req = build(conv(user("q"), system="SYS", thinking=ThinkingRequest(True, 10)))
    content = current(req)["content"]
    assert f"SYS\n\n---\n\n{THINKING_SYSTEM_SECTION}\n\nq" in content
    assert "<thinking>" in THINKING_SYSTEM_SECTION


def test_thinking_disabled_adds_nothing() -> None:
    req = build(conv(user("q"), system="SYS"))
    assert current(req)["content"] == "SYS\n\nq"


def test_thinking_without_budget_uses_default() -> None:
    req = build(conv(user("q"), thinking=ThinkingRequest(True, 0)))
    assert "<max_thinking_length>4000</max_thinking_length>" in current(req)["content"]


def test_thinking_tags_precede_system_prompt_without_history() -> None:
    req = build(conv(user("q"), system="SYS", thinking=ThinkingRequest(True, 10)))
    content = current(req)["content"]
    assert content.index("<thinking_mode>") < content.index("SYS")


def test_thinking_with_tool_results_can_be_switched_off() -> None:
    c = conv(
        user("q"),
        assistant(tool_calls=[ToolCall("1", "search", {})]),
        user(tool_results=[ToolResult("1", "r")]),
        tools=[tool()],
        thinking=ThinkingRequest(True, 10),
    )
    assert "<thinking_mode>" in current(build(c))["content"]
    assert "<thinking_mode>" not in current(build(c, ConversionOptions(thinking_with_tool_results=False)))["content"]


# ---------------------------------------------------------------- size guard


def test_payload_over_limit_raises_context_too_long() -> None:
    with pytest.raises(ContextTooLongError) as info:
        build(conv(user("x" * 2000)), ConversionOptions(max_payload_bytes=1000))
    assert info.value.kind is ErrorKind.CONTEXT_TOO_LONG
    assert info.value.limit_bytes == 1000 and info.value.size_bytes > 2000


def test_payload_at_limit_passes_and_zero_disables_guard() -> None:
    size = len(build(conv(user("x" * 2000))).body)
    assert build(conv(user("x" * 2000)), ConversionOptions(max_payload_bytes=size)).body
    assert build(conv(user("x" * 700_000)), ConversionOptions(max_payload_bytes=0)).body


def test_no_local_limit_by_default() -> None:
    assert len(build(conv(user("x" * 900_000))).body) > 900_000  # Kiro decides (docs/protocol.md §Limits)


# ---------------------------------------------------------------- properties

IDS = st.sampled_from(["t1", "t2", "t3"])
TEXTS = st.sampled_from(["", " ", "hello", "<system-reminder>x</system-reminder>", "ünïcode ✓"])
JSON_VALUES = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(max_size=5),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=5), inner, max_size=3),
    max_leaves=8,
)
ARGS = st.dictionaries(st.text(max_size=8), JSON_VALUES, max_size=4)
NAMES = st.sampled_from(["search", "read_file", "x" * 70, "bad name.v2"])


@st.composite
def messages(draw: st.DrawFn) -> Message:
    role: Role = "user" if draw(st.booleans()) else "assistant"
    calls = draw(st.lists(st.builds(ToolCall, IDS, NAMES, ARGS), max_size=2))
    results = draw(st.lists(st.builds(ToolResult, IDS, TEXTS, st.booleans()), max_size=2))
    images = draw(st.lists(st.just(Image("image/png", "iVBORw0KGgo=")), max_size=1))
    return Message(role=role, text=draw(TEXTS), tool_calls=calls, tool_results=results, images=images)


CONVERSATIONS = st.builds(
    Conversation,
    model=st.just("m"),
    messages=st.lists(messages(), max_size=8),
    system=TEXTS,
    tools=st.lists(st.builds(ToolSpec, NAMES, TEXTS, st.just(SCHEMA)), max_size=3),
    thinking=st.builds(ThinkingRequest, st.booleans(), st.integers(0, 20000)),
)


@settings(max_examples=300, suppress_health_check=[HealthCheck.too_slow])
@given(CONVERSATIONS)
def test_any_conversation_gives_a_well_formed_payload(conversation: Conversation) -> None:
    check_invariants(build(conversation))


@given(ARGS)
def test_tool_call_arguments_survive_the_round_trip(args: dict[str, Any]) -> None:
    req = build(
        conv(
            user("q"),
            assistant(tool_calls=[ToolCall("1", "search", args)]),
            user(tool_results=[ToolResult("1", "r")]),
            tools=[tool()],
        )
    )
    sent = history(req)[1]["assistantResponseMessage"]["toolUses"][0]["input"]
    assert sent == args
    assert json.loads(req.body)["conversationState"]["history"][1]["assistantResponseMessage"]["toolUses"][0][
        "input"
    ] == json.loads(json.dumps(args))


@given(st.lists(st.text(min_size=0, max_size=120), min_size=1, max_size=5, unique=True))
def test_any_names_round_trip_through_the_alias_map(names: list[str]) -> None:
    req = build(conv(user("q"), tools=[tool(n) for n in names]))
    sent = [t["toolSpecification"]["name"] for t in current(req)["userInputMessageContext"]["tools"]]
    assert all(VALID_NAME.match(n) for n in sent)
    assert len(set(sent)) == len(names)
    assert [req.tool_name_aliases.get(s, s) for s in sent] == names


def test_alternation_safety_net_inserts_assistant_and_merges_assistants() -> None:
    out = ensure_alternation(
        [user("a"), user("b"), assistant("c"), assistant("d", tool_calls=[ToolCall("1", "f", {})])], OPTS
    )
    assert [(m.role, m.text) for m in out] == [
        ("user", "a"),
        ("assistant", "(empty)"),
        ("user", "b"),
        ("assistant", "c\nd"),
    ]
    assert out[-1].tool_calls == [ToolCall("1", "f", {})]
