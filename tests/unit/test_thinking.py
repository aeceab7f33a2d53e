"""ThinkingExtractor: the PRE_CONTENT / IN_THINKING / STREAMING machine (docs/protocol.md §Thinking tags)."""

from __future__ import annotations

import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from kiro_core.thinking import IN_THINKING, PRE_CONTENT, STREAMING, ThinkingExtractor


def run(*deltas: str) -> tuple[str, str, ThinkingExtractor]:
    extractor = ThinkingExtractor()
    thinking, content = [], []
    for delta in deltas:
        t, c = extractor.feed(delta)
        thinking.append(t)
        content.append(c)
    t, c = extractor.finish()
    return "".join(thinking) + t, "".join(content) + c, extractor


@pytest.mark.parametrize("tag", ["<thinking>", "<think>", "<reasoning>", "<thought>"])
def test_each_open_tag(tag: str) -> None:
    close = "</" + tag[1:]
    thinking, content, extractor = run(f"{tag}plan it{close}Answer")
    assert (thinking, content) == ("plan it", "Answer")
    assert (extractor.open_tag, extractor.close_tag) == (tag, close)


def test_leading_whitespace_before_the_tag_is_dropped() -> None:
    assert run("\n  <thinking>x</thinking>y")[:2] == ("x", "y")


def test_open_tag_split_across_deltas() -> None:
    extractor = ThinkingExtractor()
    assert extractor.feed("<thi") == ("", "")
    assert extractor.state == PRE_CONTENT
    extractor.feed("nking>")
    assert extractor.state == IN_THINKING


def test_plain_text_streams_at_once() -> None:
    extractor = ThinkingExtractor()
    assert extractor.feed("Hello") == ("", "Hello")
    assert extractor.state == STREAMING
    assert extractor.passthrough


def test_undecided_prefix_waits() -> None:
    extractor = ThinkingExtractor()
    assert extractor.feed("  <") == ("", "")
    assert extractor.feed("b>bold") == ("", "  <b>bold")  # cannot be a tag any more → whole buffer as content


def test_initial_buffer_limit() -> None:
    # 21 characters of whitespace exceed the 20-character initial buffer even though a tag could still follow
    extractor = ThinkingExtractor()
    assert extractor.feed(" " * 21) == ("", " " * 21)
    assert extractor.feed("<thinking>x") == ("", "<thinking>x")


def test_tag_later_in_the_text_is_plain_text() -> None:
    assert run("Answer: ", "<thinking>not reasoning</thinking>")[:2] == (
        "", "Answer: <thinking>not reasoning</thinking>"
    )


def test_no_nesting() -> None:
    assert run("<thinking>a<thinking>b</thinking>c</thinking>")[:2] == ("a<thinking>b", "c</thinking>")


def test_only_the_matching_close_tag_ends_thinking() -> None:
    assert run("<think>a</thinking>b</think>c")[:2] == ("a</thinking>b", "c")


@pytest.mark.parametrize("cut", range(1, len("</thinking>")))
def test_close_tag_split_at_every_position_never_leaks(cut: int) -> None:
    close = "</thinking>"
    extractor = ThinkingExtractor()
    outputs = [extractor.feed("<thinking>some reasoning here" + close[:cut]), extractor.feed(close[cut:] + "Done")]
    outputs.append(extractor.finish())
    thinking = "".join(t for t, _ in outputs)
    content = "".join(c for _, c in outputs)
    assert (thinking, content) == ("some reasoning here", "Done")


def test_whitespace_after_the_close_tag_is_stripped_even_across_deltas() -> None:
    extractor = ThinkingExtractor()
    assert extractor.feed("<thinking>x</thinking>\n") == ("x", "")
    assert not extractor.passthrough
    assert extractor.feed(" \n") == ("", "")
    assert extractor.feed("\n Answer  \n") == ("", "Answer  \n")
    assert extractor.passthrough
    assert extractor.feed("  more") == ("", "  more")  # only the gap after the tag is stripped


def test_cautious_sending_holds_back_a_possible_close_tag() -> None:
    extractor = ThinkingExtractor()
    extractor.feed("<thinking>")
    text = "a" * 50
    thinking, content = extractor.feed(text)
    assert (thinking, content) == ("a" * 28, "")  # 22 = 2 × len("<reasoning>") held back
    assert extractor.feed("</thi") == ("a" * 5, "")  # the newest 22 characters stay held back
    assert extractor.feed("nking>") == ("a" * 17, "")  # the tag completes: the held text was thinking


def test_finish_flushes_an_unclosed_thinking_block() -> None:
    thinking, content, extractor = run("<thinking>cut off mid-thought")
    assert (thinking, content) == ("cut off mid-thought", "")
    assert extractor.state == STREAMING


def test_unclosed_flag() -> None:
    extractor = ThinkingExtractor()
    extractor.feed("<thinking>open")
    assert extractor.unclosed
    extractor.feed("</thinking>")
    assert not extractor.unclosed


def test_finish_flushes_an_undecided_prefix_as_content() -> None:
    assert run(" <thin")[:2] == ("", " <thin")


def test_finish_twice_and_empty_stream() -> None:
    extractor = ThinkingExtractor()
    assert extractor.finish() == ("", "")
    assert extractor.finish() == ("", "")


def test_custom_tags_and_validation() -> None:
    extractor = ThinkingExtractor(open_tags=["<scratch>"], initial_buffer_size=5)
    assert extractor.feed("<scratch>x</scratch>y") == ("x", "y")
    with pytest.raises(ValueError):
        ThinkingExtractor(open_tags=["thinking"])
    with pytest.raises(ValueError):
        ThinkingExtractor(open_tags=[])


def test_unicode_thinking() -> None:
    assert run("<thinking>日本語で考える", "…</thinking>\n\nRéponse ✓")[:2] == ("日本語で考える…", "Réponse ✓")


# ---------------------------------------------------------------- properties

_any_text = st.text(alphabet=st.characters(blacklist_categories=("Cs",)), max_size=80)
_tricky = st.text(alphabet="<>/thinkg \n", max_size=40)  # many near-miss tags


def _split(text: str, cuts: list[int]) -> list[str]:
    points = sorted({min(c, len(text)) for c in cuts})
    return [text[a:b] for a, b in zip([0, *points], [*points, len(text)], strict=True)]


@settings(max_examples=300, deadline=None)
@given(
    st.sampled_from(["<thinking>", "<think>", "<reasoning>", "<thought>"]),
    st.one_of(_any_text, _tricky),
    st.one_of(_any_text, _tricky),
    st.sampled_from(["", " ", "\n", "\n\t "]),
    st.lists(st.integers(0, 200), max_size=12),
)
def test_thinking_and_content_survive_any_split(
    tag: str, thinking: str, content: str, lead: str, cuts: list[int]
) -> None:
    close = "</" + tag[1:]
    assume((thinking + close).find(close) == len(thinking))  # the first close tag is the real one
    stream = lead + tag + thinking + close + content
    got_thinking, got_content, _ = run(*_split(stream, cuts))
    assert got_thinking == thinking
    assert got_content == content.lstrip()


@settings(max_examples=200, deadline=None)
@given(_any_text.filter(lambda t: not t.lstrip().startswith("<")), st.lists(st.integers(0, 100), max_size=8))
def test_text_without_a_tag_passes_through_unchanged(text: str, cuts: list[int]) -> None:
    assert run(*_split(text, cuts))[:2] == ("", text)
