"""OpenAI chat request → unified Conversation (and, end to end, → Kiro payload)."""

from __future__ import annotations

import json
import logging
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from kiro_core.convert.kiro import build_kiro_request
from kiro_core.convert.openai import openai_to_conversation
from kiro_core.convert.options import ConversionOptions
from kiro_core.errors import InvalidRequestError
from kiro_core.models.openai import ChatCompletionRequest
from kiro_core.unified import Image, Message, ThinkingRequest, ToolCall, ToolResult, ToolSpec
from tests.unit.test_convert_kiro import check_invariants

OPTS = ConversionOptions()
PNG = "iVBORw0KGgoAAAANSUhEUg=="


def convert(options: ConversionOptions = OPTS, **body: Any) -> Any:
    body.setdefault("model", "gpt-4o")
    return openai_to_conversation(ChatCompletionRequest.model_validate(body), options)


def call(call_id: str, name: str, arguments: Any) -> dict[str, Any]:
    return {"id": call_id, "type": "function", "function": {"name": name, "arguments": arguments}}


def test_system_and_developer_messages_become_the_system_prompt() -> None:
    c = convert(
        messages=[
            {"role": "system", "content": "one"},
            {"role": "user", "content": "q"},
            {"role": "developer", "content": [{"type": "text", "text": "two"}]},
            {"role": "system", "content": ""},
        ]
    )
    assert c.system == "one\ntwo"
    assert c.messages == [Message(role="user", text="q")]


def test_model_stream_and_max_tokens_are_carried() -> None:
    c = convert(messages=[{"role": "user", "content": "x"}], stream=True, max_tokens=50, max_completion_tokens=70)
    assert (c.model, c.stream, c.max_tokens) == ("gpt-4o", True, 70)


def test_text_parts_are_joined_with_newline() -> None:
    c = convert(messages=[{"role": "user", "content": [{"type": "text", "text": "a"}, {"type": "text", "text": "b"}]}])
    assert c.messages[0].text == "a\nb"


def test_null_content_is_empty_text() -> None:
    assert convert(messages=[{"role": "user", "content": None}]).messages[0].text == ""


def test_unknown_role_is_treated_as_user() -> None:
    c = convert(messages=[{"role": "critic", "content": "x"}])
    assert c.messages == [Message(role="user", text="x")]


def test_unknown_part_types_are_skipped_with_a_warning(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.WARNING, logger="kiro_core.convert.openai"):
        c = convert(messages=[{"role": "user", "content": [{"type": "input_audio"}, {"type": "text", "text": "t"}]}])
    assert c.messages[0].text == "t"
    assert "input_audio" in caplog.text


def test_consecutive_tool_messages_become_one_user_message() -> None:
    c = convert(
        messages=[
            {"role": "user", "content": "go"},
            {"role": "assistant", "content": None, "tool_calls": [call("a", "f", "{}"), call("b", "g", "{}")]},
            {"role": "tool", "tool_call_id": "a", "content": "ra"},
            {
                "role": "tool",
                "tool_call_id": "b",
                "content": [{"type": "text", "text": "rb1"}, {"type": "text", "text": "rb2"}],
            },
            {"role": "user", "content": "thanks"},
        ]
    )
    assert [m.role for m in c.messages] == ["user", "assistant", "user", "user"]
    assert c.messages[2].tool_results == [ToolResult("a", "ra"), ToolResult("b", "rb1\nrb2")]
    assert c.messages[2].text == "" and c.messages[3].text == "thanks"


def test_tool_messages_at_the_end_are_flushed() -> None:
    c = convert(
        messages=[
            {"role": "assistant", "tool_calls": [call("a", "f", "{}")]},
            {"role": "tool", "tool_call_id": "a", "content": "r"},
        ]
    )
    assert c.messages[-1].tool_results == [ToolResult("a", "r")]


def test_images_inside_tool_messages_are_kept() -> None:
    c = convert(
        messages=[
            {"role": "assistant", "tool_calls": [call("s", "screenshot", "{}")]},
            {
                "role": "tool",
                "tool_call_id": "s",
                "content": [
                    {"type": "text", "text": "shot"},
                    {"type": "image_url", "image_url": {"url": f"data:image/png;base64,{PNG}"}},
                ],
            },
        ]
    )
    assert c.messages[1].images == [Image("image/png", PNG)]
    assert c.messages[1].tool_results == [ToolResult("s", "shot")]


def test_assistant_tool_call_arguments_are_parsed() -> None:
    c = convert(
        messages=[
            {
                "role": "assistant",
                "content": "calling",
                "tool_calls": [
                    call("1", "f", '{"path": "/a", "n": [1, 2]}'),
                    call("2", "g", {"x": 1}),
                    call("3", "h", ""),
                    call("4", "i", "null"),
                ],
            }
        ]
    )
    assert c.messages[0] == Message(
        role="assistant",
        text="calling",
        tool_calls=[
            ToolCall("1", "f", {"path": "/a", "n": [1, 2]}),
            ToolCall("2", "g", {"x": 1}),
            ToolCall("3", "h", {}),
            ToolCall("4", "i", {}),
        ],
    )


def test_invalid_json_arguments_name_the_call() -> None:
    with pytest.raises(InvalidRequestError) as info:
        convert(
            messages=[
                {"role": "user", "content": "q"},
                {"role": "assistant", "tool_calls": [call("call_9", "write", '{"a": ')]},
            ]
        )
    assert "call_9" in info.value.message and "write" in info.value.message and "messages[1]" in info.value.message
    assert info.value.status == 400


def test_non_object_json_arguments_are_rejected() -> None:
    with pytest.raises(InvalidRequestError, match="not an object"):
        convert(messages=[{"role": "assistant", "tool_calls": [call("c", "f", "[1, 2]")]}])


def test_data_url_image_becomes_inline_image() -> None:
    c = convert(
        messages=[
            {
                "role": "user",
                "content": [
                    {"type": "text", "text": "what is this"},
                    {"type": "image_url", "image_url": {"url": f"data:image/JPEG;base64,{PNG}"}},
                ],
            }
        ]
    )
    assert c.messages[0].images == [Image("image/jpeg", PNG)]
    assert c.messages[0].text == "what is this"


@pytest.mark.parametrize(
    "url",
    ["data:image/png,rawbytes", "data:text/plain;base64,QUFB", "data:image/png;base64", "data:image/png;base64,@@@"],
)
def test_malformed_data_urls_are_rejected(url: str) -> None:
    with pytest.raises(InvalidRequestError, match=r"messages\[0\]"):
        convert(messages=[{"role": "user", "content": [{"type": "image_url", "image_url": {"url": url}}]}])


def test_http_image_is_skipped_with_a_warning_and_a_note(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.WARNING, logger="kiro_core.convert.openai"):
        c = convert(
            messages=[
                {
                    "role": "user",
                    "content": [
                        {"type": "text", "text": "look"},
                        {"type": "image_url", "image_url": "https://example.com/cat.png"},
                    ],
                }
            ]
        )
    assert c.messages[0].images == []
    assert c.messages[0].text.startswith("look\n[Image not shown")
    assert "https://example.com/cat.png" in c.messages[0].text
    assert "inline" in caplog.text


def test_standard_and_cursor_flat_tools_non_function_skipped() -> None:
    c = convert(
        messages=[{"role": "user", "content": "x"}],
        tools=[
            {"type": "function", "function": {"name": "std", "description": "S", "parameters": {"type": "object"}}},
            {
                "type": "function",
                "name": "flat",
                "description": "F",
                "input_schema": {"type": "object", "properties": {}},
            },
            {"type": "function", "name": "flat2", "parameters": {"type": "object"}},
            {"type": "web_search"},
        ],
    )
    assert c.tools == [
        ToolSpec("std", "S", {"type": "object"}),
        ToolSpec("flat", "F", {"type": "object", "properties": {}}),
        ToolSpec("flat2", "", {"type": "object"}),
    ]


# ---------------------------------------------------------------- thinking


@pytest.mark.parametrize(
    ("effort", "expected"),
    [("minimal", 800), ("low", 1600), ("medium", 4000), ("high", 6400), ("xhigh", 7600), ("max", 8000)],
)
def test_reasoning_effort_ratios(effort: str, expected: int) -> None:
    c = convert(messages=[{"role": "user", "content": "x"}], reasoning_effort=effort, max_tokens=8000)
    assert c.thinking == ThinkingRequest(True, expected)


def test_reasoning_effort_uses_max_completion_tokens_then_4096() -> None:
    c = convert(
        messages=[{"role": "user", "content": "x"}],
        reasoning_effort="medium",
        max_completion_tokens=1000,
        max_tokens=9000,
    )
    assert c.thinking.budget_tokens == 500
    assert (
        convert(messages=[{"role": "user", "content": "x"}], reasoning_effort="medium").thinking.budget_tokens == 2048
    )


def test_reasoning_budget_is_capped() -> None:
    c = convert(messages=[{"role": "user", "content": "x"}], reasoning_effort="max", max_tokens=64000)
    assert c.thinking.budget_tokens == 10000
    uncapped = convert(
        ConversionOptions(fake_reasoning_budget_cap=0),
        messages=[{"role": "user", "content": "x"}],
        reasoning_effort="max",
        max_tokens=64000,
    )
    assert uncapped.thinking.budget_tokens == 64000


def test_reasoning_effort_none_turns_thinking_off() -> None:
    assert convert(messages=[{"role": "user", "content": "x"}], reasoning_effort="none").thinking == ThinkingRequest(
        False
    )


def test_no_reasoning_effort_uses_the_default() -> None:
    assert convert(messages=[{"role": "user", "content": "x"}]).thinking == ThinkingRequest(True, 4000)
    custom = ConversionOptions(fake_reasoning_max_tokens=20000, fake_reasoning_budget_cap=12000)
    assert convert(custom, messages=[{"role": "user", "content": "x"}]).thinking == ThinkingRequest(True, 12000)
    off = ConversionOptions(fake_reasoning=False)
    assert convert(off, messages=[{"role": "user", "content": "x"}]).thinking == ThinkingRequest(False)
    assert convert(off, messages=[{"role": "user", "content": "x"}], reasoning_effort="low").thinking.enabled


def test_tiny_output_limit_still_gives_a_positive_budget() -> None:
    c = convert(messages=[{"role": "user", "content": "x"}], reasoning_effort="minimal", max_tokens=3)
    assert c.thinking.budget_tokens == 1


# ---------------------------------------------------------------- end to end


def test_cursor_flat_tools_request_end_to_end() -> None:
    long_name = "mcp_github_create_or_update_file_contents_in_a_repository_branch_x"
    body: dict[str, Any] = {
        "model": "claude-4.5-sonnet-low",
        "stream": True,
        "messages": [
            {"role": "system", "content": "You are a coding assistant in Cursor."},
            {"role": "user", "content": [{"type": "text", "text": "<user_query>fix the bug</user_query>"}]},
            {
                "role": "assistant",
                "content": "",
                "tool_calls": [
                    call("toolu_a", "read_file", '{"target_file": "main.py"}'),
                    call("toolu_b", long_name, '{"path": "x"}'),
                ],
            },
            {"role": "tool", "tool_call_id": "toolu_a", "content": "print('hi')"},
            {"role": "tool", "tool_call_id": "toolu_b", "content": ""},
        ],
        "tools": [
            {
                "type": "function",
                "name": "read_file",
                "description": "Read a file",
                "input_schema": {
                    "type": "object",
                    "properties": {"target_file": {"type": "string"}},
                    "required": ["target_file"],
                    "additionalProperties": False,
                    "$schema": "http://json-schema.org/draft-07/schema#",
                },
            },
            {
                "type": "function",
                "name": long_name,
                "description": "",
                "parameters": {"type": "object", "properties": {}},
            },
        ],
    }
    conversation = convert(**body)
    req = build_kiro_request(conversation, "claude-sonnet-4.5", OPTS, "cid")
    check_invariants(req)
    state = req.payload["conversationState"]
    current = state["currentMessage"]["userInputMessage"]
    tools = [t["toolSpecification"] for t in current["userInputMessageContext"]["tools"]]
    assert tools[0]["inputSchema"]["json"] == {
        "type": "object",
        "properties": {"target_file": {"type": "string"}},
        "required": ["target_file"],
    }
    alias = tools[1]["name"]
    assert req.tool_name_aliases == {alias: long_name} and tools[1]["description"] == f"Tool: {alias}"
    assert [r["toolUseId"] for r in current["userInputMessageContext"]["toolResults"]] == ["toolu_a", "toolu_b"]
    assert current["userInputMessageContext"]["toolResults"][1]["content"] == [{"text": "(empty result)"}]
    first = state["history"][0]["userInputMessage"]["content"]
    assert first.startswith("You are a coding assistant in Cursor.") and first.endswith(
        "<user_query>fix the bug</user_query>"
    )
    uses = state["history"][1]["assistantResponseMessage"]["toolUses"]
    assert uses == [
        {"name": "read_file", "input": {"target_file": "main.py"}, "toolUseId": "toolu_a"},
        {"name": alias, "input": {"path": "x"}, "toolUseId": "toolu_b"},
    ]


# ---------------------------------------------------------------- properties

ROLES = st.sampled_from(["system", "developer", "user", "assistant", "tool", "critic"])
IDS = st.sampled_from(["c1", "c2", "c3"])
TEXT = st.sampled_from(["", " ", "hi", "ok then"])


@st.composite
def openai_messages(draw: st.DrawFn) -> dict[str, Any]:
    role = draw(ROLES)
    msg: dict[str, Any] = {
        "role": role,
        "content": draw(
            st.one_of(st.none(), TEXT, st.lists(TEXT.map(lambda t: {"type": "text", "text": t}), max_size=2))
        ),
    }
    if role == "tool":
        msg["tool_call_id"] = draw(IDS)
    if role == "assistant" and draw(st.booleans()):
        args = draw(st.dictionaries(st.sampled_from(["a", "b"]), st.integers(), max_size=2))
        msg["tool_calls"] = [
            call(i, draw(st.sampled_from(["f", "g" * 70])), json.dumps(args))
            for i in draw(st.lists(IDS, max_size=2, unique=True))
        ]
    return msg


@settings(max_examples=200, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(openai_messages(), min_size=1, max_size=8), st.booleans())
def test_any_openai_request_gives_a_well_formed_payload(messages: list[dict[str, Any]], with_tools: bool) -> None:
    tools = [{"type": "function", "function": {"name": "f", "parameters": {"type": "object"}}}] if with_tools else None
    conversation = convert(messages=messages, tools=tools)
    check_invariants(build_kiro_request(conversation, "m", OPTS, "cid"))
