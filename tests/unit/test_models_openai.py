"""`ChatCompletionRequest`: what it accepts from real clients and what it rejects, with which message."""

from __future__ import annotations

from typing import Any

import pytest
from pydantic import ValidationError

from kiro_core.models.openai import ChatCompletionRequest, ChatTool, ContentPart, ImageUrl


def make(**overrides: Any) -> ChatCompletionRequest:
    body: dict[str, Any] = {"model": "claude-sonnet-4-5", "messages": [{"role": "user", "content": "hi"}]}
    body.update(overrides)
    return ChatCompletionRequest.model_validate(body)


def errors_of(**overrides: Any) -> list[Any]:
    with pytest.raises(ValidationError) as info:
        make(**overrides)
    return info.value.errors()


def test_minimal_request() -> None:
    req = make()
    assert req.model == "claude-sonnet-4-5"
    assert req.messages[0].content == "hi"
    assert req.stream is False and req.tools is None and req.reasoning_effort is None


def test_missing_messages_is_rejected() -> None:
    with pytest.raises(ValidationError) as info:
        ChatCompletionRequest.model_validate({"model": "m"})
    assert info.value.errors()[0]["loc"] == ("messages",)
    assert info.value.errors()[0]["type"] == "missing"


def test_empty_messages_is_rejected() -> None:
    (error,) = errors_of(messages=[])
    assert error["loc"] == ("messages",) and error["type"] == "too_short"


def test_missing_or_empty_model_is_rejected() -> None:
    with pytest.raises(ValidationError) as info:
        ChatCompletionRequest.model_validate({"messages": [{"role": "user", "content": "x"}]})
    assert info.value.errors()[0]["loc"] == ("model",)
    (error,) = errors_of(model="")
    assert error["loc"] == ("model",)


def test_message_without_role_is_rejected() -> None:
    (error,) = errors_of(messages=[{"content": "x"}])
    assert error["loc"] == ("messages", 0, "role")


@pytest.mark.parametrize(
    ("content", "expected"),
    [
        ("text", "text"),
        (None, None),
        ([], []),
        ([{"type": "text", "text": "a"}], [ContentPart(type="text", text="a")]),
    ],
)
def test_content_string_null_or_parts(content: Any, expected: Any) -> None:
    assert make(messages=[{"role": "user", "content": content}]).messages[0].content == expected


@pytest.mark.parametrize("content", [42, {"text": "a"}, True])
def test_content_of_wrong_type_gets_one_precise_error(content: Any) -> None:
    (error,) = errors_of(messages=[{"role": "user", "content": content}])
    assert error["loc"] == ("messages", 0, "content")
    assert error["msg"] == "content must be a string, null, or a list of content parts"


def test_text_part_without_text_is_rejected() -> None:
    (error,) = errors_of(messages=[{"role": "user", "content": [{"type": "text"}]}])
    assert error["loc"] == ("messages", 0, "content", "parts", 0)
    assert "needs a string 'text'" in error["msg"]


def test_image_part_without_url_is_rejected() -> None:
    (error,) = errors_of(messages=[{"role": "user", "content": [{"type": "image_url"}]}])
    assert "'image_url'" in error["msg"]


def test_image_url_as_object_or_string() -> None:
    req = make(
        messages=[
            {
                "role": "user",
                "content": [
                    {"type": "image_url", "image_url": {"url": "data:image/png;base64,AA", "detail": "high"}},
                    {"type": "image_url", "image_url": "https://example.com/a.png"},
                ],
            }
        ]
    )
    parts = req.messages[0].content
    assert isinstance(parts, list)
    assert isinstance(parts[0].image_url, ImageUrl) and parts[0].url == "data:image/png;base64,AA"
    assert parts[1].url == "https://example.com/a.png"


def test_unknown_part_type_is_tolerated() -> None:
    req = make(messages=[{"role": "user", "content": [{"type": "input_audio", "input_audio": {"data": "x"}}]}])
    assert isinstance(req.messages[0].content, list)
    part = req.messages[0].content[0]
    assert part.type == "input_audio" and part.model_extra == {"input_audio": {"data": "x"}}


@pytest.mark.parametrize("role", ["system", "developer", "user", "assistant", "function", "critic"])
def test_roles_including_unknown_ones_are_accepted(role: str) -> None:
    assert make(messages=[{"role": role, "content": "x"}]).messages[0].role == role


def test_tool_message_needs_tool_call_id() -> None:
    (error,) = errors_of(messages=[{"role": "tool", "content": "result"}])
    assert error["loc"] == ("messages", 0) and "tool_call_id" in error["msg"]
    assert make(messages=[{"role": "tool", "content": "r", "tool_call_id": "c1"}]).messages[0].tool_call_id == "c1"


def test_assistant_tool_calls() -> None:
    req = make(
        messages=[
            {
                "role": "assistant",
                "content": None,
                "tool_calls": [
                    {"id": "c1", "type": "function", "function": {"name": "f", "arguments": '{"a": 1}'}},
                    {"id": "c2", "type": "function", "function": {"name": "g", "arguments": {"b": 2}}},
                ],
            }
        ]
    )
    calls = req.messages[0].tool_calls
    assert calls is not None
    assert calls[0].function.arguments == '{"a": 1}' and calls[1].function.arguments == {"b": 2}


def test_tool_call_without_id_or_name_is_rejected() -> None:
    errors = errors_of(messages=[{"role": "assistant", "tool_calls": [{"function": {"arguments": "{}"}}]}])
    locs = {e["loc"] for e in errors}
    assert ("messages", 0, "tool_calls", 0, "id") in locs
    assert ("messages", 0, "tool_calls", 0, "function", "name") in locs


def test_standard_function_tool() -> None:
    req = make(
        tools=[
            {
                "type": "function",
                "function": {"name": "get_weather", "description": "d", "parameters": {"type": "object"}},
            }
        ]
    )
    assert req.tools is not None
    assert req.tools[0].as_function() == ("get_weather", "d", {"type": "object"})


@pytest.mark.parametrize("schema_key", ["input_schema", "parameters"])
def test_cursor_flat_tool(schema_key: str) -> None:
    tool = ChatTool.model_validate(
        {"type": "function", "name": "edit_file", "description": "Edit", schema_key: {"type": "object"}}
    )
    assert tool.as_function() == ("edit_file", "Edit", {"type": "object"})


def test_function_tool_without_schema_gets_empty_schema() -> None:
    assert ChatTool.model_validate({"type": "function", "function": {"name": "f"}}).as_function() == ("f", "", {})


def test_non_function_tools_are_tolerated() -> None:
    req = make(tools=[{"type": "web_search"}, {"type": "namespace", "name": "ns", "tools": []}])
    assert req.tools is not None and all(t.as_function() is None for t in req.tools)


def test_function_tool_without_any_name_is_rejected() -> None:
    (error,) = errors_of(tools=[{"type": "function", "description": "nameless"}])
    assert error["loc"] == ("tools", 0) and "name" in error["msg"]


def test_tool_without_type_defaults_to_function() -> None:
    assert ChatTool.model_validate({"function": {"name": "f"}}).as_function() == ("f", "", {})


@pytest.mark.parametrize("effort", ["none", "minimal", "low", "medium", "high", "xhigh", "max"])
def test_reasoning_effort_values(effort: str) -> None:
    assert make(reasoning_effort=effort).reasoning_effort == effort


def test_unknown_reasoning_effort_is_rejected() -> None:
    (error,) = errors_of(reasoning_effort="extreme")
    assert error["loc"] == ("reasoning_effort",)


@pytest.mark.parametrize("field", ["max_tokens", "max_completion_tokens"])
def test_output_limits_must_be_positive(field: str) -> None:
    (error,) = errors_of(**{field: 0})
    assert error["loc"] == (field,)


def test_output_limit_prefers_max_completion_tokens() -> None:
    assert make(max_tokens=100, max_completion_tokens=200).output_limit == 200
    assert make(max_tokens=100).output_limit == 100
    assert make().output_limit is None


def test_optional_parameters_and_extra_fields_are_accepted() -> None:
    req = make(
        stream=True,
        stream_options={"include_usage": True},
        temperature=0.2,
        top_p=0.9,
        n=1,
        stop=["END"],
        presence_penalty=0,
        frequency_penalty=0,
        seed=7,
        user="u",
        tool_choice={"type": "function", "function": {"name": "f"}},
        parallel_tool_calls=False,
        response_format={"type": "json_object"},
        logit_bias={"50256": -100},
        logprobs=False,
        top_logprobs=None,
        store=False,
        metadata={"k": "v"},
    )
    assert req.stream_options is not None and req.stream_options.include_usage is True
    assert req.tool_choice == {"type": "function", "function": {"name": "f"}}
    assert req.model_extra == {"store": False, "metadata": {"k": "v"}}
    assert make(tool_choice="auto").tool_choice == "auto"
    assert make(stop="x").stop == "x"


def test_extra_fields_on_messages_are_kept() -> None:
    req = make(messages=[{"role": "assistant", "content": "a", "reasoning_content": "thought", "refusal": None}])
    assert req.messages[0].model_extra == {"reasoning_content": "thought", "refusal": None}
