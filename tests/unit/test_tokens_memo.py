"""Conversation estimates counted per part through a content memo, and counts bounded in cost (issue 16)."""

from __future__ import annotations

from pathlib import Path

import pytest

from kiro_core import tokens
from kiro_core.tokens import TokenMemo, count_text, estimate_input_tokens
from kiro_core.unified import Conversation, Image, Message, ToolCall, ToolResult, ToolSpec
from tests.unit.test_tokens import tiktoken_count

ROOT = Path(__file__).resolve().parents[2]


def source(name: str) -> str:
    return (ROOT / "kiro_core" / name).read_text(encoding="utf-8")


def exchange(number: int, text: str) -> list[Message]:
    call = ToolCall(f"toolu_{number}", "Read", {"file_path": f"/src/{number}.py"})
    return [Message("assistant", f"Reading file {number}.", tool_calls=[call]),
            Message("user", tool_results=[ToolResult(f"toolu_{number}", text)])]


def session(*texts: str) -> Conversation:
    messages = [Message("user", "Review these files.")]
    for number, text in enumerate(texts):
        messages += exchange(number, text)
    tools = [ToolSpec("Read", "Reads a file.", {"type": "object", "properties": {"file_path": {"type": "string"}}})]
    return Conversation("claude-sonnet-4.5", messages, system="You are a careful reviewer.", tools=tools)


@pytest.fixture
def counted(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Every text the memo sends to the counter (a spy on `count_text`)."""
    seen: list[str] = []
    real = tokens.count_text

    def spy(text: str) -> int:
        seen.append(text)
        return real(text)

    monkeypatch.setattr(tokens, "count_text", spy)
    return seen


def unmemoised(conversation: Conversation) -> int:
    """The figure the pre-memo implementation computed: every part counted alone, nothing remembered."""
    raw = count_text(conversation.system)
    for message in conversation.messages:
        raw += tokens.PER_MESSAGE_OVERHEAD + count_text(message.text)
        for call in message.tool_calls:
            raw += tokens.PER_TOOL_OVERHEAD + count_text(call.name) + count_text(tokens._compact(call.arguments))
        for result in message.tool_results:
            raw += tokens.PER_TOOL_OVERHEAD + count_text(result.content)
    for tool in conversation.tools:
        raw += tokens.PER_TOOL_OVERHEAD + count_text(tool.name) + count_text(tool.description)
        raw += count_text(tokens._compact(tool.input_schema))
    raw += 3
    images = sum(len(message.images) for message in conversation.messages)
    return int(raw * tokens.CLAUDE_CORRECTION_FACTOR + 0.5) + images * tokens.IMAGE_TOKENS


def test_the_next_turn_counts_only_its_new_message(counted: list[str]) -> None:
    memo = TokenMemo()
    first = session(source("stream.py"), source("eventstream.py"))
    first_figure = estimate_input_tokens(first, memo)
    assert source("stream.py") in counted
    counted.clear()
    new_text = source("session.py")
    second = session(source("stream.py"), source("eventstream.py"), new_text)
    second_figure = estimate_input_tokens(second, memo)
    new_messages = exchange(2, new_text)
    new_parts = {new_messages[0].text, "Read", tokens._compact(new_messages[0].tool_calls[0].arguments),
                 new_messages[1].text, new_text}  # the two new messages, part by part
    assert set(counted) == new_parts  # the history, the system prompt and the tools came from the memo
    assert second_figure > first_figure
    assert second_figure == estimate_input_tokens(second, TokenMemo())  # the same as counted from nothing


def test_memoised_figures_equal_the_part_by_part_count() -> None:
    conversation = session(source("tokens.py"), "short", "")
    conversation.messages.append(Message("user", "look", images=[Image("image/png", "aGk=")]))
    memo = TokenMemo()
    assert estimate_input_tokens(conversation, memo) == unmemoised(conversation)
    assert estimate_input_tokens(conversation, memo) == unmemoised(conversation)  # second time from the memo


def test_parts_are_told_apart_by_their_boundaries() -> None:
    memo = TokenMemo()
    assert memo.count(("ab", "c")) == count_text("ab") + count_text("c")
    assert memo.count(("a", "bc")) == count_text("a") + count_text("bc")
    assert len(memo) == 2


def test_the_memo_stays_bounded() -> None:
    memo = TokenMemo(entries=16)
    for number in range(100):
        memo.count((f"message number {number}",))
    assert len(memo) == 16
    assert memo.count(("message number 99",)) == count_text("message number 99")


@pytest.mark.parametrize("text", [" " * 1_000_000, "x" * 1_000_000, "=" * 1_000_000, "ab=" * 300_000])
def test_a_megabyte_of_one_repeated_character_is_estimated_closely(text: str) -> None:
    expected = tiktoken_count(text)
    assert abs(count_text(text) - expected) <= expected * 0.01 + 1


def test_bounded_counts_depend_on_the_text_alone() -> None:
    text = "".join(f"{number:x}=={'#' * (number % 97)}::" for number in range(40_000))  # many non-token pieces
    counter = tokens.encoding()
    first = count_text(text)
    counter._merged.clear()  # nothing remembered: the same figure
    assert count_text(text) == first
    exact = tiktoken_count(text)
    assert exact <= first <= exact * 1.10  # past the merge budget the figure is an estimate, on the high side
