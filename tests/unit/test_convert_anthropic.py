"""Anthropic Messages request → unified Conversation (and, end to end, → Kiro payload)."""

from __future__ import annotations

import logging
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from kiro_core.convert.anthropic import anthropic_to_conversation
from kiro_core.convert.kiro import build_kiro_request
from kiro_core.convert.options import ConversionOptions
from kiro_core.models.anthropic import CountTokensRequest, MessagesRequest
from kiro_core.unified import Image, Message, ReasoningReplay, ThinkingRequest, ToolCall, ToolResult, ToolSpec
from tests.unit.test_convert_kiro import check_invariants

OPTS = ConversionOptions()
PNG = "iVBORw0KGgoAAAANSUhEUg=="


def convert(options: ConversionOptions = OPTS, **body: Any) -> Any:
    body.setdefault("model", "claude-sonnet-4-5")
    body.setdefault("max_tokens", 1024)
    return anthropic_to_conversation(MessagesRequest.model_validate(body), options)


def user(*content: Any) -> dict[str, Any]:
    return {
        "role": "user",
        "content": list(content) if len(content) != 1 or not isinstance(content[0], str) else content[0],
    }


def image(data: str = PNG, media_type: str = "image/png") -> dict[str, Any]:
    return {"type": "image", "source": {"type": "base64", "media_type": media_type, "data": data}}


def result(tool_use_id: str, content: Any, **extra: Any) -> dict[str, Any]:
    return {"type": "tool_result", "tool_use_id": tool_use_id, "content": content, **extra}


# ---------------------------------------------------------------- system


def test_system_string() -> None:
    assert convert(system="S", messages=[user("x")]).system == "S"


def test_system_blocks_joined_and_cache_control_dropped() -> None:
    c = convert(
        system=[{"type": "text", "text": "A", "cache_control": {"type": "ephemeral"}}, {"type": "text", "text": "B"}],
        messages=[user("x")],
    )
    assert c.system == "A\nB"


def test_system_messages_keep_their_place_at_the_start_of_their_user_turn() -> None:
    c = convert(
        system="top",
        messages=[
            {"role": "system", "content": "first"},
            user("q"),
            {"role": "system", "content": [{"type": "text", "text": "second"}, {"type": "text", "text": "more"}]},
            {"role": "assistant", "content": "a"},
            {"role": "system", "content": "third"},
            user("q2"),
        ],
    )
    assert c.system == "top"
    assert [(m.role, m.text) for m in c.messages] == [
        ("user", "first\n\nsecond\nmore\n\nq"), ("assistant", "a"), ("user", "third\n\nq2")]


def test_a_system_message_without_a_user_turn_stands_alone() -> None:
    c = convert(messages=[user("q"), {"role": "assistant", "content": "a"}, {"role": "system", "content": "late"}])
    assert [(m.role, m.text) for m in c.messages] == [("user", "q"), ("assistant", "a"), ("user", "late")]
    assert convert(messages=[{"role": "system", "content": "only"}]).messages == [Message("user", "only")]


# ---------------------------------------------------------------- content


def test_string_and_text_block_content() -> None:
    c = convert(
        messages=[
            user("plain"),
            {"role": "assistant", "content": [{"type": "text", "text": "a"}, {"type": "text", "text": "b"}]},
        ]
    )
    assert c.messages == [Message("user", "plain"), Message("assistant", "a\nb")]


def test_tool_use_becomes_tool_call() -> None:
    c = convert(
        messages=[
            user("q"),
            {
                "role": "assistant",
                "content": [
                    {"type": "text", "text": "let me"},
                    {"type": "tool_use", "id": "toolu_1", "name": "Read", "input": {"file_path": "/a", "limit": 5}},
                ],
            },
        ]
    )
    assert c.messages[1] == Message(
        "assistant", "let me", tool_calls=[ToolCall("toolu_1", "Read", {"file_path": "/a", "limit": 5})]
    )


def test_tool_result_forms() -> None:
    c = convert(
        messages=[
            user(
                result("a", "plain"),
                result("b", [{"type": "text", "text": "x"}, {"type": "text", "text": "y"}]),
                result("c", ""),
                result("d", None),
                result("e", []),
                result("f", "boom", is_error=True),
                {"type": "text", "text": "after"},
            )
        ]
    )
    assert c.messages[0].tool_results == [
        ToolResult("a", "plain"),
        ToolResult("b", "x\ny"),
        ToolResult("c", "(empty result)"),
        ToolResult("d", "(empty result)"),
        ToolResult("e", "(empty result)"),
        ToolResult("f", "boom", is_error=True),
    ]
    assert c.messages[0].text == "after"


def test_images_inside_tool_results_are_kept_on_the_message() -> None:
    c = convert(
        messages=[
            user(result("s", [{"type": "text", "text": "screenshot"}, image("SHOT")]), image("USER", "image/jpeg"))
        ]
    )
    msg = c.messages[0]
    assert msg.tool_results == [ToolResult("s", "screenshot")]
    assert msg.images == [Image("image/png", "SHOT"), Image("image/jpeg", "USER")]


def test_image_only_tool_result_gets_placeholder_text() -> None:
    c = convert(messages=[user(result("s", [image("SHOT")]))])
    assert c.messages[0].tool_results == [ToolResult("s", "(empty result)")]
    assert c.messages[0].images == [Image("image/png", "SHOT")]


def test_base64_image_with_data_prefix_is_stripped() -> None:
    c = convert(messages=[user(image(f"data:image/png;base64,{PNG}"), {"type": "text", "text": "what?"})])
    assert c.messages[0].images == [Image("image/png", PNG)]


@pytest.mark.parametrize(
    "source",
    [{"type": "url", "url": "https://example.com/cat.png"}, {"type": "file", "file_id": "file_011"}],
)
def test_non_inline_images_are_skipped_with_warning_and_note(
    source: dict[str, Any], caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.WARNING, logger="kiro_core.convert.anthropic"):
        c = convert(messages=[user({"type": "text", "text": "look"}, {"type": "image", "source": source})])
    assert c.messages[0].images == []
    assert c.messages[0].text.startswith("look\n[Image not shown")
    assert (source.get("url") or "file") in c.messages[0].text
    assert "inline base64" in caplog.text


def test_url_image_inside_tool_result_becomes_note_in_result() -> None:
    c = convert(messages=[user(result("s", [{"type": "image", "source": {"type": "url", "url": "https://x/y.png"}}]))])
    assert "https://x/y.png" in c.messages[0].tool_results[0].content


def test_thinking_and_unknown_blocks_are_dropped() -> None:
    c = convert(
        messages=[
            user("q"),
            {
                "role": "assistant",
                "content": [
                    {"type": "thinking", "thinking": "secret", "signature": "sig"},
                    {"type": "redacted_thinking", "data": "xx"},
                    {"type": "server_tool_use", "id": "srvtoolu_1", "name": "web_search", "input": {"query": "q"}},
                    {"type": "web_search_tool_result", "tool_use_id": "srvtoolu_1", "content": []},
                    {"type": "text", "text": "answer"},
                ],
            },
            user(
                result("t", [{"type": "tool_reference", "tool_name": "Read"}, {"type": "text", "text": "r"}]),
                {"type": "tool_reference", "tool_name": "x"},
            ),
        ]
    )
    # The last reasoning block of the turn is kept for replay (one slot per Kiro message); replayed web search
    # blocks become a short note (issue 12); a tool_reference in a result says which tool it loaded (issue 19);
    # unknown blocks are dropped.
    assert c.messages[1] == Message("assistant", "[searched the web for: q]\n[the web search found nothing]\nanswer",
                                    reasoning=ReasoningReplay(redacted="xx"))
    assert c.messages[2].tool_results == [ToolResult("t", "Tool loaded: Read\nr")] and c.messages[2].text == ""


def test_tools_custom_kept_server_skipped() -> None:
    c = convert(
        messages=[user("q")],
        tools=[
            {"name": "Bash", "description": "Run", "input_schema": {"type": "object"}},
            {"name": "Nodesc", "input_schema": {"type": "object", "properties": {}}},
            {"type": "web_search_20250305", "name": "web_search"},
        ],
    )
    assert c.tools == [
        ToolSpec("Bash", "Run", {"type": "object"}),
        ToolSpec("Nodesc", "", {"type": "object", "properties": {}}),
    ]


def test_model_stream_and_max_tokens_are_carried() -> None:
    c = convert(messages=[user("q")], stream=True, max_tokens=777, model="claude-opus-4-8[1m]")
    assert (c.model, c.stream, c.max_tokens) == ("claude-opus-4-8[1m]", True, 777)


def test_count_tokens_request_converts() -> None:
    req = CountTokensRequest.model_validate(
        {"model": "m", "system": "S", "messages": [{"role": "user", "content": "q"}]}
    )
    c = anthropic_to_conversation(req, OPTS)
    assert c.system == "S" and c.max_tokens is None and c.messages == [Message("user", "q")]


# ---------------------------------------------------------------- thinking


def test_thinking_enabled_budget_is_capped() -> None:
    assert convert(
        messages=[user("q")], thinking={"type": "enabled", "budget_tokens": 31999}
    ).thinking == ThinkingRequest(True, 10000)
    assert convert(
        messages=[user("q")], thinking={"type": "enabled", "budget_tokens": 2048}
    ).thinking == ThinkingRequest(True, 2048)
    no_cap = ConversionOptions(fake_reasoning_budget_cap=0)
    assert (
        convert(
            no_cap, messages=[user("q")], thinking={"type": "enabled", "budget_tokens": 31999}
        ).thinking.budget_tokens
        == 31999
    )


def test_thinking_disabled() -> None:
    assert convert(messages=[user("q")], thinking={"type": "disabled"}).thinking == ThinkingRequest(False)


@pytest.mark.parametrize("thinking", [{"type": "adaptive"}, {"type": "future_mode"}])
def test_adaptive_or_unknown_thinking_gets_default_budget(thinking: dict[str, Any]) -> None:
    assert convert(messages=[user("q")], thinking=thinking).thinking == ThinkingRequest(True, 4000)
    off = ConversionOptions(fake_reasoning=False, fake_reasoning_max_tokens=3000)
    assert convert(off, messages=[user("q")], thinking=thinking).thinking == ThinkingRequest(True, 3000)


def test_absent_thinking_uses_default() -> None:
    assert convert(messages=[user("q")]).thinking == ThinkingRequest(True, 4000)
    assert convert(ConversionOptions(fake_reasoning=False), messages=[user("q")]).thinking == ThinkingRequest(False)


# ---------------------------------------------------------------- end to end: Claude Code


def claude_code_request() -> dict[str, Any]:
    schema = {
        "$schema": "http://json-schema.org/draft-07/schema#",
        "type": "object",
        "additionalProperties": False,
    }
    return {
        "model": "claude-opus-4-8",
        "max_tokens": 32000,
        "stream": True,
        "temperature": 1,
        "metadata": {"user_id": "user_x_session_y"},
        "context_management": {"edits": [{"type": "clear_thinking_20251015", "keep": "all"}]},
        "thinking": {"type": "enabled", "budget_tokens": 31999},
        "system": [
            {
                "type": "text",
                "text": "You are Claude Code, Anthropic's official CLI for Claude.",
                "cache_control": {"type": "ephemeral"},
            },
            {"type": "text", "text": "Working directory: /repo", "cache_control": {"type": "ephemeral"}},
        ],
        "tools": [
            {
                "name": "Bash",
                "description": "Executes a given bash command.",
                "input_schema": {
                    **schema,
                    "properties": {
                        "command": {"type": "string"},
                        "timeout": {"type": "number"},
                        "description": {"type": "string"},
                        "run_in_background": {"type": "boolean"},
                        "dangerouslyDisableSandbox": {"type": "boolean"},
                    },
                    "required": ["command"],
                },
            },
            {
                "name": "Read",
                "description": "Reads a file.",
                "input_schema": {**schema, "properties": {"file_path": {"type": "string"}}, "required": ["file_path"]},
            },
            {
                "name": "Edit",
                "description": "E" * 12000,
                "input_schema": {**schema, "properties": {"old_string": {"type": "string"}}, "required": []},
            },
            {
                "name": "TodoWrite",
                "description": "",
                "input_schema": {
                    **schema,
                    "properties": {
                        "todos": {"type": "array", "items": {"type": "object", "additionalProperties": False}}
                    },
                },
            },
            {
                "name": "mcp__plugin_context7_context7__resolve-library-id-and-fetch-documentation-v2",
                "description": "MCP",
                "input_schema": schema,
            },
            {"type": "web_search_20250305", "name": "web_search", "max_uses": 8},
        ],
        "messages": [
            {"role": "system", "content": "Output style: concise."},
            {
                "role": "user",
                "content": [
                    {
                        "type": "text",
                        "text": "<system-reminder>\nAs you answer, use the context below.\n</system-reminder>",
                    },
                    {"type": "text", "text": "list the repo and read README", "cache_control": {"type": "ephemeral"}},
                ],
            },
            {
                "role": "assistant",
                "content": [
                    {"type": "thinking", "thinking": "Run ls first.", "signature": "EqQBCkYIBxgCKkB"},
                    {"type": "text", "text": "Listing."},
                    {
                        "type": "tool_use",
                        "id": "toolu_01A",
                        "name": "Bash",
                        "input": {"command": "ls", "description": "List files"},
                    },
                ],
            },
            {
                "role": "user",
                "content": [{"type": "tool_result", "tool_use_id": "toolu_01A", "content": "README.md\nsrc"}],
            },
            {
                "role": "assistant",
                "content": [
                    {"type": "tool_use", "id": "toolu_01B", "name": "Read", "input": {"file_path": "/repo/README.md"}},
                    {"type": "tool_use", "id": "toolu_01C", "name": "Bash", "input": {"command": "true"}},
                ],
            },
            {
                "role": "user",
                "content": [
                    {
                        "type": "tool_result",
                        "tool_use_id": "toolu_01B",
                        "content": [{"type": "text", "text": "# Title"}],
                    },
                    {"type": "tool_result", "tool_use_id": "toolu_01C", "content": "(Bash completed with no output)"},
                    {"type": "text", "text": "<system-reminder>Todo list is empty.</system-reminder>"},
                ],
            },
        ],
    }


def test_claude_code_request_end_to_end() -> None:
    conversation = convert(**claude_code_request())
    assert conversation.system.startswith("You are Claude Code") and "Output style" not in conversation.system
    assert conversation.messages[0].text.startswith("Output style: concise.\n\n<system-reminder>")  # kept in place
    assert conversation.thinking == ThinkingRequest(True, 10000)
    assert len(conversation.tools) == 5

    req = build_kiro_request(conversation, "claude-opus-4.8", ConversionOptions(profile_arn="arn:p"), "cid")
    check_invariants(req)
    state = req.payload["conversationState"]
    hist, current = state["history"], state["currentMessage"]["userInputMessage"]
    assert [next(iter(e)) for e in hist] == ["userInputMessage", "assistantResponseMessage"] * 2
    first = hist[0]["userInputMessage"]["content"]
    assert first.startswith("You are Claude Code") and "# Tool Documentation" in first and "## Tool: Edit" in first
    assert "<system-reminder>" in first and first.endswith("list the repo and read README")
    assert hist[1]["assistantResponseMessage"] == {
        "content": "Listing.",
        "toolUses": [
            {"name": "Bash", "input": {"command": "ls", "description": "List files"}, "toolUseId": "toolu_01A"}
        ],
    }
    assert "Run ls first." not in req.body.decode()
    assert current["content"].startswith("<thinking_mode>enabled</thinking_mode>\n<max_thinking_length>10000<")
    assert current["content"].endswith("<system-reminder>Todo list is empty.</system-reminder>")
    context = current["userInputMessageContext"]
    assert [r["toolUseId"] for r in context["toolResults"]] == ["toolu_01B", "toolu_01C"]
    specs = {t["toolSpecification"]["name"]: t["toolSpecification"] for t in context["tools"]}
    assert "web_search" not in specs and len(specs) == 5
    assert specs["Bash"]["inputSchema"]["json"]["required"] == ["command"]
    assert "additionalProperties" not in str(specs) and "$schema" not in str(specs)
    assert "required" not in specs["Edit"]["inputSchema"]["json"]
    assert specs["TodoWrite"]["description"] == "Tool: TodoWrite"
    (alias,) = req.tool_name_aliases
    assert req.tool_name_aliases[alias].startswith("mcp__plugin_context7") and len(alias) <= 64
    assert req.payload["profileArn"] == "arn:p"


def test_claude_code_title_side_request() -> None:
    body: dict[str, Any] = {
        "model": "claude-opus-4-8",
        "max_tokens": 512,
        "tools": [],
        "temperature": 1,
        "output_config": {"format": {"type": "json_schema", "schema": {"type": "object"}}},
        "system": [{"type": "text", "text": "Generate a title."}],
        "messages": [{"role": "user", "content": "hello there"}],
    }
    req = build_kiro_request(convert(**body), "claude-opus-4.8", OPTS, "cid")
    check_invariants(req)
    assert "userInputMessageContext" not in req.payload["conversationState"]["currentMessage"]["userInputMessage"]


# ---------------------------------------------------------------- properties

IDS = st.sampled_from(["t1", "t2", "t3"])
TEXT = st.sampled_from(["", "hi", "<system-reminder>r</system-reminder>"])
BLOCKS = st.one_of(
    TEXT.map(lambda t: {"type": "text", "text": t}),
    st.builds(
        lambda i, a: {"type": "tool_use", "id": i, "name": "Bash", "input": a},
        IDS,
        st.dictionaries(st.sampled_from(["command", "x"]), st.text(max_size=4), max_size=2),
    ),
    st.builds(
        lambda i, t: result(i, t),
        IDS,
        st.one_of(TEXT, st.lists(TEXT.map(lambda t: {"type": "text", "text": t}), max_size=2)),
    ),
    st.just({"type": "thinking", "thinking": "t", "signature": "s"}),
    st.just({"type": "server_tool_use", "id": "s", "name": "web_search", "input": {}}),
    st.just(image()),
)
MESSAGES = st.builds(
    lambda role, content: {"role": role, "content": content},
    st.sampled_from(["user", "assistant", "system"]),
    st.one_of(TEXT, st.lists(BLOCKS, max_size=3)),
)


@settings(max_examples=200, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(MESSAGES, min_size=1, max_size=8), st.booleans())
def test_any_anthropic_request_gives_a_well_formed_payload(messages: list[dict[str, Any]], with_tools: bool) -> None:
    tools = (
        [{"name": "Bash", "input_schema": {"type": "object"}}]
        if with_tools
        else [{"type": "web_search_20250305", "name": "web_search"}]
    )
    conversation = convert(messages=messages, tools=tools)
    check_invariants(build_kiro_request(conversation, "m", OPTS, "cid"))
