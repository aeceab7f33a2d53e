"""ResponseAssembler: thinking modes, tool-call accumulation and validation, usage, errors; and collect()."""

from __future__ import annotations

import json

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from kiro_core.errors import ErrorKind
from kiro_core.events import (
    ContentDelta,
    ContextUsageEvent,
    Finish,
    MetadataEvent,
    MeteringEvent,
    ReasoningEvent,
    StreamError,
    TextEvent,
    ThinkingDelta,
    TokenUsageEvent,
    ToolCallComplete,
    ToolUseEvent,
    UpstreamErrorEvent,
    UpstreamErrorKind,
    Usage,
)
from kiro_core.stream import NOTE_NO_COMPLETION_SIGNAL, ResponseAssembler, collect, gateway_error
from kiro_core.tokens import claude_tokens


def assemble(events: list, trailer: bool = True, **options) -> list:
    """Feed `events` (followed by a bare metadataEvent, the trailer of a complete stream, unless `trailer=False`)."""
    options.setdefault("input_tokens", 100)
    assembler = ResponseAssembler(**options)
    out = []
    for event in [*events, MetadataEvent()] if trailer else events:
        out += assembler.feed(event)
    return out + assembler.finish()


def texts(out: list, kind: type) -> str:
    return "".join(e.text for e in out if isinstance(e, kind))


def tool(tool_id: str, name: str = "f", value: str | dict | None = None, stop: bool = False) -> ToolUseEvent:
    return ToolUseEvent(tool_id, name, value, stop)


def finish_of(out: list) -> Finish:
    assert isinstance(out[-1], Finish), out
    return out[-1]


THOUGHT = [TextEvent("<thinking>plan"), TextEvent(" it</thinking>\n\n"), TextEvent("Answer")]


# ---------------------------------------------------------------- text and thinking


def test_plain_text_is_passed_through_immediately() -> None:
    assembler = ResponseAssembler(input_tokens=1)
    assert assembler.feed(TextEvent("Hello, world")) == [ContentDelta("Hello, world")]
    assert assembler.feed(TextEvent(" again")) == [ContentDelta(" again")]


def test_as_reasoning_content() -> None:
    out = assemble(THOUGHT)
    assert texts(out, ThinkingDelta) == "plan it"
    assert texts(out, ContentDelta) == "Answer"


def test_remove_drops_thinking_but_counts_its_tokens() -> None:
    out = assemble(THOUGHT, thinking_handling="remove")
    assert not any(isinstance(e, ThinkingDelta) for e in out)
    assert texts(out, ContentDelta) == "Answer"
    assert finish_of(out).usage.output_tokens == claude_tokens("plan itAnswer")


def test_pass_keeps_the_tags_in_the_content() -> None:
    out = assemble(THOUGHT, thinking_handling="pass")
    assert texts(out, ContentDelta) == "<thinking>plan it</thinking>\n\nAnswer"
    assert not any(isinstance(e, ThinkingDelta) for e in out)


def test_strip_tags_gives_thinking_as_content_separated_from_the_answer() -> None:
    out = assemble(THOUGHT, thinking_handling="strip_tags")
    assert texts(out, ContentDelta) == "plan it\n\nAnswer"


def test_detection_off_leaves_tags_as_text() -> None:
    out = assemble(THOUGHT, detect_thinking=False)
    assert texts(out, ContentDelta) == "<thinking>plan it</thinking>\n\nAnswer"


def test_unknown_thinking_mode_is_refused() -> None:
    with pytest.raises(ValueError, match="thinking_handling"):
        ResponseAssembler(input_tokens=1, thinking_handling="shout")


def test_native_reasoning_with_signature() -> None:
    out = assemble([ReasoningEvent("deep"), ReasoningEvent("", signature="sig-xyz"), TextEvent("Hi")])
    assert out[:3] == [ThinkingDelta("deep"), ThinkingDelta("", "sig-xyz", replay_text="deep"), ContentDelta("Hi")]


def test_native_reasoning_stops_tag_parsing() -> None:
    """Once a reasoningContentEvent arrived (even an empty one), <thinking> in the text is just text (docs/protocol.md
    §Native reasoning)."""
    out = assemble([ReasoningEvent(""), TextEvent("<thinking>not a tag</thinking> ok")])
    assert texts(out, ContentDelta) == "<thinking>not a tag</thinking> ok"
    assert not [e for e in out if isinstance(e, ThinkingDelta)]


def test_gpt_placeholder_is_hidden_but_kept_for_replay() -> None:
    out = assemble([ReasoningEvent("...", signature=".KTR~~blob"), TextEvent("Hi")])
    assert out[:2] == [ThinkingDelta("", ".KTR~~blob", replay_text="..."), ContentDelta("Hi")]


def test_leading_dots_followed_by_real_reasoning_are_shown() -> None:
    out = assemble([ReasoningEvent("..."), ReasoningEvent(" so the answer is 4"), ReasoningEvent("", "s")])
    assert texts(out, ThinkingDelta) == "... so the answer is 4"


def test_redacted_reasoning_is_passed_verbatim() -> None:
    out = assemble([ReasoningEvent("", redacted_content="QUJD"), TextEvent("Hi")])
    assert out[0] == ThinkingDelta("", None, "QUJD", "")


def test_native_reasoning_in_pass_mode_is_wrapped_in_tags() -> None:
    out = assemble([ReasoningEvent("deep"), ReasoningEvent(" more"), TextEvent("Hi")], thinking_handling="pass")
    assert texts(out, ContentDelta) == "<thinking>deep more</thinking>\n\nHi"


def test_native_reasoning_in_remove_mode_is_dropped() -> None:
    out = assemble([ReasoningEvent("deep", "sig"), TextEvent("Hi")], thinking_handling="remove")
    assert [e for e in out if not isinstance(e, Finish)] == [ContentDelta("Hi")]


def test_buffered_prefix_is_flushed_at_finish() -> None:
    out = assemble([TextEvent("<thi")])
    assert texts(out, ContentDelta) == "<thi"


def test_unclosed_thinking_is_flushed_as_thinking_at_finish() -> None:
    out = assemble([TextEvent("<thinking>never closed, about to be cut")])
    assert texts(out, ThinkingDelta) == "never closed, about to be cut"


# ---------------------------------------------------------------- tool calls


def test_tool_call_from_string_fragments() -> None:
    out = assemble([tool("t1", "get_weather"), tool("t1", "get_weather", '{"city": "Mo'),
                    tool("t1", "get_weather", 'scow", "days": 2}'), tool("t1", "get_weather", stop=True)])
    assert out[0] == ToolCallComplete(0, "t1", "get_weather", '{"city":"Moscow","days":2}')
    assert finish_of(out).reason == "tool_calls"


def test_tool_call_is_emitted_when_its_stop_arrives() -> None:
    assembler = ResponseAssembler(input_tokens=1)
    assert assembler.feed(tool("t1", "f", '{"a":1}')) == []
    assert assembler.feed(tool("t1", stop=True)) == [ToolCallComplete(0, "t1", "f", '{"a":1}')]


def test_interleaved_tool_calls_are_kept_apart() -> None:
    out = assemble([
        tool("a", "one"), tool("b", "two"), tool("a", "one", '{"x":'), tool("b", "two", '{"y":'),
        tool("b", "two", "2}"), tool("a", "one", "1}"), tool("b", stop=True), tool("a", stop=True),
    ])
    calls = [e for e in out if isinstance(e, ToolCallComplete)]
    assert calls == [ToolCallComplete(0, "b", "two", '{"y":2}'), ToolCallComplete(1, "a", "one", '{"x":1}')]


def test_empty_object_start_input_is_not_concatenated_with_fragments() -> None:
    out = assemble([tool("t", "Write", {}), tool("t", "Write", '{"path": "a.txt"'), tool("t", "Write", "}"),
                    tool("t", stop=True)])
    assert out[0].arguments == '{"path":"a.txt"}'


def test_object_inputs_are_merged() -> None:
    out = assemble([tool("t", "f", {"a": 1}), tool("t", "f", {"b": {"c": 2}}), tool("t", stop=True)])
    assert json.loads(out[0].arguments) == {"a": 1, "b": {"c": 2}}


def test_object_and_string_inputs_combine() -> None:
    out = assemble([tool("t", "f", {"a": 1}), tool("t", "f", '{"b": 2}'), tool("t", stop=True)])
    assert json.loads(out[0].arguments) == {"a": 1, "b": 2}


def test_stop_on_the_start_frame_and_empty_arguments() -> None:
    out = assemble([tool("t", "list_files", None, stop=True)])
    assert out[0] == ToolCallComplete(0, "t", "list_files", "{}")


def test_arguments_are_recompacted_and_keep_unicode() -> None:
    out = assemble([tool("t", "f", '{ "text" : "héllo ✓",\n "n": [1, 2] }', stop=True)])
    assert out[0].arguments == '{"text":"héllo ✓","n":[1,2]}'


def test_arguments_sent_as_a_json_string_are_unwrapped() -> None:
    out = assemble([tool("t", "f", json.dumps('{"a": 1}'), stop=True)])
    assert out[0].arguments == '{"a":1}'


def test_frames_after_the_stop_are_ignored() -> None:
    out = assemble([tool("t", "f", '{"a":1}', stop=True), tool("t", "f", '{"a":1}', stop=True)])
    assert [e for e in out if isinstance(e, ToolCallComplete)] == [ToolCallComplete(0, "t", "f", '{"a":1}')]


def test_tool_names_are_mapped_back_through_aliases() -> None:
    out = assemble([tool("t", "short_alias", stop=True)], tool_name_aliases={"short_alias": "a" * 70})
    assert out[0].name == "a" * 70


def test_missing_tool_use_ids_get_stable_ids() -> None:
    out = assemble([tool("", "f", stop=True), tool("", "g", '{"a":1}'), tool("", stop=True)])
    assert [(e.id, e.name) for e in out if isinstance(e, ToolCallComplete)] == [
        ("tooluse_kiro_0", "f"), ("tooluse_kiro_1", "g"),
    ]


def test_text_buffered_by_the_extractor_comes_out_before_the_tool_call() -> None:
    out = assemble([TextEvent("Let"), tool("t", "f", stop=True), TextEvent(" after")])
    assert out[:3] == [ContentDelta("Let"), ToolCallComplete(0, "t", "f", "{}"), ContentDelta(" after")]


def test_open_call_with_parseable_arguments_is_emitted_at_finish() -> None:
    out = assemble([tool("t", "f", '{"a": 1}')])
    assert out[0] == ToolCallComplete(0, "t", "f", '{"a":1}')
    assert finish_of(out).reason == "tool_calls"


def test_truncated_tool_call_is_not_emitted() -> None:
    fragment = '{"filePath": "/docs/impl.md", "content": "# Title\\nlong text that was cut'
    out = assemble([TextEvent("Writing the file."), tool("t9", "Write"), tool("t9", "Write", fragment)])
    assert not any(isinstance(e, ToolCallComplete) for e in out)
    notice = out[-2]
    assert isinstance(notice, ContentDelta)
    assert "Write" in notice.text and f"{len(fragment.encode())} bytes" in notice.text
    finish = finish_of(out)
    assert finish.reason == "length"
    assert finish.notes[0] == f"truncated tool call: name=Write id=t9 bytes={len(fragment.encode())}"


def test_open_call_without_any_arguments_counts_as_truncated() -> None:
    out = assemble([tool("t", "Write", {})])
    assert finish_of(out).reason == "length"
    assert "0 bytes" in out[-2].text


def test_truncation_wins_over_other_emitted_calls() -> None:
    out = assemble([tool("a", "f", stop=True), tool("b", "Write", '{"content": "abc')])
    assert [e.id for e in out if isinstance(e, ToolCallComplete)] == ["a"]
    assert finish_of(out).reason == "length"


def test_invalid_but_complete_arguments_are_reported_not_emitted() -> None:
    out = assemble([tool("t", "f", '{"a": tru}', stop=True)])
    assert not any(isinstance(e, ToolCallComplete) for e in out)
    assert "not a JSON object" in out[0].text
    assert finish_of(out).reason == "stop"


def test_non_object_arguments_are_reported() -> None:
    out = assemble([tool("t", "f", "[1, 2]", stop=True)])
    assert not any(isinstance(e, ToolCallComplete) for e in out)


@settings(max_examples=200, deadline=None)
@given(
    st.dictionaries(st.text(max_size=8), st.recursive(
        st.none() | st.booleans() | st.integers() | st.text(max_size=20),
        lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=5), inner, max_size=3),
        max_leaves=8,
    ), max_size=5),
    st.lists(st.integers(0, 400), max_size=15),
    st.lists(st.integers(0, 400), max_size=15),
)
def test_arguments_survive_any_fragmentation(arguments: dict, cuts_a: list[int], cuts_b: list[int]) -> None:
    text = json.dumps(arguments, ensure_ascii=False, indent=1)

    def pieces(tool_id: str, cuts: list[int]) -> list[ToolUseEvent]:
        points = sorted({min(c, len(text)) for c in cuts})
        bounds = zip([0, *points], [*points, len(text)], strict=True)
        return [tool(tool_id, "f", text[a:b]) for a, b in bounds if b > a]

    a, b = pieces("a", cuts_a), pieces("b", cuts_b)
    interleaved = [event for pair in zip(a, b, strict=False) for event in pair] + a[len(b):] + b[len(a):]
    out = assemble([tool("a", "f", {}), tool("b", "f"), *interleaved, tool("a", stop=True), tool("b", stop=True)])
    expected = json.dumps(arguments, ensure_ascii=False, separators=(",", ":"))
    assert [e.arguments for e in out if isinstance(e, ToolCallComplete)] == [expected, expected]


# ---------------------------------------------------------------- usage


def test_usage_prefers_upstream_token_counts() -> None:
    out = assemble([TextEvent("hi"), TokenUsageEvent(150, 11, 30, 7), ContextUsageEvent(50.0), MeteringEvent(0.5)])
    assert finish_of(out).usage == Usage(150, 11, 30, 7, credits=0.5)


def test_usage_from_context_percentage() -> None:
    out = assemble([TextEvent("hello there"), ContextUsageEvent(12.5)], max_input_tokens=1_000_000)
    usage = finish_of(out).usage
    assert usage.input_tokens == 125_000
    assert usage.output_tokens == claude_tokens("hello there")


@pytest.mark.parametrize(("percentage", "estimate", "expected"), [(1.0, 5000, 5000), (10.0, 5000, 20_000),
                                                                   (100.0, 300_000, 300_000)])
def test_input_tokens_are_the_larger_of_upstream_and_local(percentage: float, estimate: int, expected: int) -> None:
    out = assemble([TextEvent("x"), ContextUsageEvent(percentage)], input_tokens=estimate, max_input_tokens=200_000)
    assert finish_of(out).usage.input_tokens == expected


def test_zero_context_percentage_falls_back_to_the_estimate() -> None:
    assert finish_of(assemble([TextEvent("x"), ContextUsageEvent(0.0)], input_tokens=4321)).usage.input_tokens == 4321


def test_output_tokens_count_thinking_text_and_tool_arguments() -> None:
    events = [*THOUGHT, tool("t", "Write", '{"content": "a long file body"}', stop=True), ContextUsageEvent(1)]
    usage = finish_of(assemble(events)).usage
    assert usage.output_tokens == claude_tokens('plan itAnswerWrite{"content":"a long file body"}')


def test_credits_are_summed() -> None:
    out = assemble([TextEvent("x"), MeteringEvent(0.01), MeteringEvent(0.0069)])
    assert finish_of(out).usage.credits == pytest.approx(0.0169)


def test_no_credits_without_metering() -> None:
    assert finish_of(assemble([TextEvent("x")])).usage.credits is None


@pytest.mark.parametrize("content", [[TextEvent("cut?")], [tool("t", "f", "{}", stop=True)], [], THOUGHT])
def test_a_stream_without_any_trailer_event_is_incomplete_not_a_clean_stop(content: list) -> None:
    out = assemble(content, trailer=False)
    assert not any(isinstance(e, Finish) for e in out)
    assert isinstance(out[-1], StreamError) and out[-1].kind_name == "TRUNCATED"
    assert "incomplete" in out[-1].message
    assert gateway_error(out[-1]).kind is ErrorKind.TRUNCATED


@pytest.mark.parametrize("trailer", [[MetadataEvent("END_TURN")], [ContextUsageEvent(3.0)], [MeteringEvent(0.1)],
                                     [MeteringEvent(0.1), ContextUsageEvent(3.0), MetadataEvent()],
                                     [ContextUsageEvent(3.0), MetadataEvent(), MeteringEvent(0.1)]])
def test_any_trailer_event_in_any_order_completes_the_answer(trailer: list) -> None:
    finish = finish_of(assemble([TextEvent("ok"), *trailer], trailer=False))
    assert finish.reason == "stop" and finish.notes == []


def test_a_cut_tool_call_without_trailer_ends_with_length_and_says_why() -> None:
    finish = finish_of(assemble([tool("t", "Write", '{"content": "abc')], trailer=False))
    assert finish.reason == "length"
    assert NOTE_NO_COMPLETION_SIGNAL in finish.notes


def test_cache_figures_are_reported_only_when_the_upstream_sent_them() -> None:
    assert not finish_of(assemble([TextEvent("x"), MeteringEvent(0.2)])).usage.reports_cache
    silent = TokenUsageEvent(150, 11)
    assert not finish_of(assemble([TextEvent("x"), silent])).usage.reports_cache
    said_zero = TokenUsageEvent(150, 11, 0, 0, cache_reported=True)
    usage = finish_of(assemble([TextEvent("x"), said_zero])).usage
    assert usage.reports_cache and usage.cache_read_input_tokens == 0


# ---------------------------------------------------------------- errors


@pytest.mark.parametrize(
    ("event", "kind_name"),
    [
        (UpstreamErrorEvent(UpstreamErrorKind.EXCEPTION, "ThrottlingException", "slow"), "RATE_LIMIT"),
        (UpstreamErrorEvent(UpstreamErrorKind.EXCEPTION, "com.amazon.x#ThrottlingException", "slow"), "RATE_LIMIT"),
        (UpstreamErrorEvent(UpstreamErrorKind.EXCEPTION, "InternalServerException", "boom"), "UPSTREAM"),
        (UpstreamErrorEvent(UpstreamErrorKind.ERROR, "InternalError", "boom"), "UPSTREAM"),
        (UpstreamErrorEvent(UpstreamErrorKind.INVALID_STATE, "BAD", "state"), "UPSTREAM"),
        (UpstreamErrorEvent(UpstreamErrorKind.CORRUPT_FRAME, "ChecksumMismatch", "crc"), "UPSTREAM"),
        (UpstreamErrorEvent(UpstreamErrorKind.TRUNCATED, "TruncatedStream", "cut"), "UPSTREAM"),
    ],
)
def test_upstream_errors_become_stream_errors(event: UpstreamErrorEvent, kind_name: str) -> None:
    assembler = ResponseAssembler(input_tokens=1)
    out = assembler.feed(event)
    assert len(out) == 1 and isinstance(out[0], StreamError)
    assert out[0].kind_name == kind_name
    assert event.message in out[0].message
    assert assembler.feed(TextEvent("more")) == []
    assert assembler.finish() == []


def test_corrupt_and_truncated_messages_say_the_answer_is_incomplete() -> None:
    for kind in (UpstreamErrorKind.CORRUPT_FRAME, UpstreamErrorKind.TRUNCATED):
        out = ResponseAssembler(input_tokens=1).feed(UpstreamErrorEvent(kind, "X", "detail"))
        assert "incomplete" in out[0].message


def test_buffered_text_is_flushed_before_the_error() -> None:
    assembler = ResponseAssembler(input_tokens=1)
    assembler.feed(TextEvent("<thinking>partial thought"))
    out = assembler.feed(UpstreamErrorEvent(UpstreamErrorKind.EXCEPTION, "X", "y"))
    assert texts(out, ThinkingDelta) == "partial thought"  # all of it was still held back
    assert isinstance(out[-1], StreamError)


def test_finish_twice() -> None:
    assembler = ResponseAssembler(input_tokens=1)
    assembler.feed(MetadataEvent())
    assert isinstance(assembler.finish()[-1], Finish)
    assert assembler.finish() == []
    assert assembler.feed(TextEvent("late")) == []


def test_gateway_error_mapping() -> None:
    assert gateway_error(StreamError("RATE_LIMIT", "m")).kind is ErrorKind.RATE_LIMIT
    assert gateway_error(StreamError("NO_SUCH_KIND", "m")).kind is ErrorKind.UPSTREAM


# ---------------------------------------------------------------- collect


def test_collect_a_whole_answer() -> None:
    out = assemble([ReasoningEvent("think", "sig-1"), TextEvent("Hel"), TextEvent("lo"),
                    tool("t", "f", '{"a":1}', stop=True), ContextUsageEvent(1.0)])
    answer = collect(out)
    assert (answer.thinking, answer.signature, answer.content) == ("think", "sig-1", "Hello")
    assert answer.tool_calls == [ToolCallComplete(0, "t", "f", '{"a":1}')]
    assert answer.finish is not None and answer.finish.reason == "tool_calls"
    assert answer.error is None


def test_collect_stops_at_an_error() -> None:
    answer = collect([ContentDelta("a"), StreamError("UPSTREAM", "x"), ContentDelta("b")])
    assert answer.content == "a"
    assert answer.error == StreamError("UPSTREAM", "x")
    assert answer.finish is None


@settings(max_examples=200, deadline=None)
@given(
    st.text(alphabet=st.characters(blacklist_categories=("Cs",)), max_size=60),
    st.text(alphabet="</thinkg> \nab", max_size=40),
    st.lists(st.integers(0, 150), max_size=10),
)
def test_thinking_split_anywhere_never_leaks_into_content(thinking: str, content: str, cuts: list[int]) -> None:
    close = "</thinking>"
    if (thinking + close).find(close) != len(thinking):
        thinking = thinking.replace("<", "[")  # keep the first close tag the real one
    stream = "<thinking>" + thinking + close + content
    points = sorted({min(c, len(stream)) for c in cuts})
    deltas = [stream[a:b] for a, b in zip([0, *points], [*points, len(stream)], strict=True) if b > a]
    out = assemble([TextEvent(d) for d in deltas])
    assert texts(out, ThinkingDelta) == thinking
    assert texts(out, ContentDelta) == content.lstrip()
