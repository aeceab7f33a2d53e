"""`MessagesRequest` / `CountTokensRequest`: Claude Code and SDK shapes accepted, malformed ones rejected precisely."""

from __future__ import annotations

from typing import Any

import pytest
from pydantic import ValidationError

from kiro_core.models.anthropic import (
    CountTokensRequest,
    ImageBlock,
    MessagesRequest,
    OtherBlock,
    RedactedThinkingBlock,
    SystemBlock,
    TextBlock,
    ThinkingBlock,
    ToolResultBlock,
    ToolUseBlock,
)


def make(**overrides: Any) -> MessagesRequest:
    body: dict[str, Any] = {
        "model": "claude-opus-4-8",
        "max_tokens": 1024,
        "messages": [{"role": "user", "content": "hi"}],
    }
    body.update(overrides)
    return MessagesRequest.model_validate(body)


def errors_of(**overrides: Any) -> list[Any]:
    with pytest.raises(ValidationError) as info:
        make(**overrides)
    return info.value.errors()


def blocks(*content: dict[str, Any]) -> list[Any]:
    req = make(messages=[{"role": "user", "content": list(content)}])
    result = req.messages[0].content
    assert isinstance(result, list)
    return result


def test_minimal_request() -> None:
    req = make()
    assert req.max_tokens == 1024 and req.messages[0].content == "hi" and req.stream is False


def test_max_tokens_is_required_and_positive() -> None:
    with pytest.raises(ValidationError) as info:
        MessagesRequest.model_validate({"model": "m", "messages": [{"role": "user", "content": "x"}]})
    assert info.value.errors()[0]["loc"] == ("max_tokens",)
    (error,) = errors_of(max_tokens=0)
    assert error["loc"] == ("max_tokens",)


def test_count_tokens_request_needs_no_max_tokens() -> None:
    req = CountTokensRequest.model_validate({"model": "m", "messages": [{"role": "user", "content": "x"}]})
    assert req.max_tokens is None


def test_messages_required_and_non_empty() -> None:
    (error,) = errors_of(messages=[])
    assert error["loc"] == ("messages",) and error["type"] == "too_short"
    with pytest.raises(ValidationError):
        CountTokensRequest.model_validate({"model": "m", "messages": []})


def test_model_required() -> None:
    with pytest.raises(ValidationError) as info:
        MessagesRequest.model_validate({"max_tokens": 1, "messages": [{"role": "user", "content": "x"}]})
    assert info.value.errors()[0]["loc"] == ("model",)


def test_role_system_inside_messages_is_accepted() -> None:
    req = make(messages=[{"role": "system", "content": "be brief"}, {"role": "user", "content": "x"}])
    assert req.messages[0].role == "system"


def test_unknown_role_is_rejected() -> None:
    (error,) = errors_of(messages=[{"role": "tool", "content": "x"}])
    assert error["loc"] == ("messages", 0, "role")


@pytest.mark.parametrize("content", [5, None, {"type": "text", "text": "x"}])
def test_content_of_wrong_type_gets_one_precise_error(content: Any) -> None:
    (error,) = errors_of(messages=[{"role": "user", "content": content}])
    assert error["loc"] == ("messages", 0, "content")
    assert error["msg"] == "content must be a string or a list of content blocks"


def test_system_as_string_or_blocks_with_cache_control() -> None:
    assert make(system="You are helpful.").system == "You are helpful."
    req = make(
        system=[{"type": "text", "text": "A", "cache_control": {"type": "ephemeral"}}, {"type": "text", "text": "B"}]
    )
    assert req.system == [
        SystemBlock(type="text", text="A", cache_control={"type": "ephemeral"}),
        SystemBlock(type="text", text="B"),
    ]


def test_system_block_without_text_is_rejected() -> None:
    (error,) = errors_of(system=[{"type": "text"}])
    assert error["loc"] == ("system", "blocks", 0, "text")
    (error,) = errors_of(system=3)
    assert error["loc"] == ("system",) and error["msg"] == "system must be a string or a list of text blocks"


def test_known_block_types_are_parsed() -> None:
    parsed = blocks(
        {"type": "text", "text": "t"},
        {"type": "image", "source": {"type": "base64", "media_type": "image/png", "data": "AA=="}},
        {"type": "tool_use", "id": "toolu_1", "name": "Bash", "input": {"command": "ls"}},
        {"type": "tool_result", "tool_use_id": "toolu_1", "content": "out", "is_error": True},
        {"type": "thinking", "thinking": "hmm", "signature": "sig"},
        {"type": "redacted_thinking", "data": "xx"},
    )
    assert [type(b) for b in parsed] == [
        TextBlock,
        ImageBlock,
        ToolUseBlock,
        ToolResultBlock,
        ThinkingBlock,
        RedactedThinkingBlock,
    ]
    assert parsed[2].input == {"command": "ls"} and parsed[3].is_error is True


@pytest.mark.parametrize(
    "block",
    [
        {"type": "server_tool_use", "id": "srvtoolu_1", "name": "web_search", "input": {"query": "x"}},
        {"type": "web_search_tool_result", "tool_use_id": "srvtoolu_1", "content": []},
        {"type": "tool_reference", "tool_name": "Bash"},
        {"type": "container_upload", "file_id": "file_1"},
        {"type": "brand_new_block_2027"},
    ],
)
def test_unknown_block_types_are_tolerated(block: dict[str, Any]) -> None:
    (parsed,) = blocks(block)
    assert isinstance(parsed, OtherBlock) and parsed.type == block["type"]


def test_tool_use_without_id_gets_precise_location() -> None:
    (error,) = errors_of(messages=[{"role": "assistant", "content": [{"type": "tool_use", "name": "x", "input": {}}]}])
    assert error["loc"] == ("messages", 0, "content", "blocks", 0, "tool_use", "id")


def test_tool_use_input_must_be_an_object() -> None:
    (error,) = errors_of(
        messages=[{"role": "assistant", "content": [{"type": "tool_use", "id": "1", "name": "x", "input": "str"}]}]
    )
    assert error["loc"][-1] == "input"


def test_text_block_without_text_is_rejected() -> None:
    (error,) = errors_of(messages=[{"role": "user", "content": [{"type": "text"}]}])
    assert error["loc"] == ("messages", 0, "content", "blocks", 0, "text", "text")


@pytest.mark.parametrize(
    "content",
    [
        None,
        "plain",
        [],
        [
            {"type": "text", "text": "a"},
            {"type": "image", "source": {"type": "base64", "media_type": "image/png", "data": "AAAA"}},
        ],
        [{"type": "tool_reference", "tool_name": "Read"}],
    ],
)
def test_tool_result_content_forms(content: Any) -> None:
    (block,) = blocks({"type": "tool_result", "tool_use_id": "t", "content": content})
    assert isinstance(block, ToolResultBlock)


def test_tool_result_content_of_wrong_type_is_rejected() -> None:
    (error,) = errors_of(
        messages=[{"role": "user", "content": [{"type": "tool_result", "tool_use_id": "t", "content": 7}]}]
    )
    assert error["msg"] == "tool_result content must be a string or a list of content blocks"


def test_tool_result_needs_tool_use_id() -> None:
    (error,) = errors_of(messages=[{"role": "user", "content": [{"type": "tool_result", "content": "x"}]}])
    assert error["loc"][-1] == "tool_use_id"


def test_image_sources() -> None:
    (url_image,) = blocks({"type": "image", "source": {"type": "url", "url": "https://x/y.png"}})
    assert url_image.source.url == "https://x/y.png"
    (file_image,) = blocks({"type": "image", "source": {"type": "file", "file_id": "file_1"}})
    assert file_image.source.type == "file"


@pytest.mark.parametrize(
    "source", [{"type": "base64", "data": "AA"}, {"type": "base64", "media_type": "image/png"}, {"type": "url"}]
)
def test_incomplete_image_sources_are_rejected(source: dict[str, Any]) -> None:
    errors = errors_of(messages=[{"role": "user", "content": [{"type": "image", "source": source}]}])
    assert errors[0]["loc"][:5] == ("messages", 0, "content", "blocks", 0)


def test_custom_and_server_tools() -> None:
    req = make(
        tools=[
            {
                "name": "Bash",
                "description": "Run",
                "input_schema": {"type": "object"},
                "cache_control": {"type": "ephemeral"},
            },
            {"type": "custom", "name": "Other", "input_schema": {"type": "object"}},
            {"type": "web_search_20250305", "name": "web_search", "max_uses": 5},
        ]
    )
    assert req.tools is not None
    assert [t.is_server_tool for t in req.tools] == [False, False, True]
    assert req.tools[2].model_extra == {"max_uses": 5}


@pytest.mark.parametrize("tool", [{"name": "NoSchema"}, {"type": "custom", "name": "NoSchema"}])
def test_custom_tool_without_schema_is_rejected(tool: dict[str, Any]) -> None:
    (error,) = errors_of(tools=[tool])
    assert error["loc"] == ("tools", 0) and "input_schema" in error["msg"]


@pytest.mark.parametrize(
    "thinking",
    [
        {"type": "enabled", "budget_tokens": 31999},
        {"type": "disabled"},
        {"type": "adaptive"},
        {"type": "adaptive", "display": "summarized"},
        {"type": "something_newer"},
    ],
)
def test_thinking_configs(thinking: dict[str, Any]) -> None:
    req = make(thinking=thinking)
    assert req.thinking is not None and req.thinking.type == thinking["type"]


def test_enabled_thinking_needs_a_positive_budget() -> None:
    (error,) = errors_of(thinking={"type": "enabled"})
    assert error["loc"] == ("thinking",) and "budget_tokens" in error["msg"]
    (error,) = errors_of(thinking={"type": "enabled", "budget_tokens": 0})
    assert error["loc"] == ("thinking", "budget_tokens")


def test_optional_fields_and_extras_are_accepted() -> None:
    req = make(
        stream=True,
        temperature=1,
        top_p=0.9,
        top_k=40,
        stop_sequences=["\n\nHuman:"],
        metadata={"user_id": "u"},
        tool_choice={"type": "auto"},
        output_config={"format": {"type": "json_schema", "schema": {"type": "object"}}},
        context_management={"edits": [{"type": "clear_tool_uses_20250919"}]},
        service_tier="auto",
    )
    assert req.stream and req.top_k == 40 and req.tool_choice == {"type": "auto"}
    assert req.model_extra == {"service_tier": "auto"}


def test_claude_code_like_request_validates() -> None:
    req = MessagesRequest.model_validate(
        {
            "model": "claude-opus-4-8",
            "max_tokens": 32000,
            "stream": True,
            "system": [
                {"type": "text", "text": "You are Claude Code.", "cache_control": {"type": "ephemeral"}},
                {"type": "text", "text": "Environment: linux", "cache_control": {"type": "ephemeral"}},
            ],
            "thinking": {"type": "enabled", "budget_tokens": 31999},
            "context_management": {"edits": [{"type": "clear_thinking_20251015", "keep": "all"}]},
            "metadata": {"user_id": "user_abc"},
            "tools": [
                {
                    "name": "Bash",
                    "description": "Executes a bash command",
                    "input_schema": {
                        "$schema": "http://json-schema.org/draft-07/schema#",
                        "type": "object",
                        "properties": {"command": {"type": "string"}, "timeout": {"type": "number"}},
                        "required": ["command"],
                        "additionalProperties": False,
                    },
                },
                {"type": "web_search_20250305", "name": "web_search"},
            ],
            "messages": [
                {"role": "system", "content": "Plan mode is off."},
                {
                    "role": "user",
                    "content": [
                        {"type": "text", "text": "<system-reminder>Today is Monday.</system-reminder>"},
                        {"type": "text", "text": "run ls", "cache_control": {"type": "ephemeral"}},
                    ],
                },
                {
                    "role": "assistant",
                    "content": [
                        {"type": "thinking", "thinking": "I should run ls", "signature": "EqQB"},
                        {"type": "tool_use", "id": "toolu_01", "name": "Bash", "input": {"command": "ls"}},
                    ],
                },
                {
                    "role": "user",
                    "content": [
                        {
                            "type": "tool_result",
                            "tool_use_id": "toolu_01",
                            "content": [{"type": "text", "text": "(Bash completed with no output)"}],
                        }
                    ],
                },
            ],
        }
    )
    assert len(req.messages) == 4 and req.thinking is not None and req.thinking.budget_tokens == 31999
