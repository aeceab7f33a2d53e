"""KiroEventDecoder: frames → typed events, and every way a stream can be damaged."""

from __future__ import annotations

import json
import logging
import struct

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from kiro_core.events import (
    ContextUsageEvent,
    MetadataEvent,
    MeteringEvent,
    ReasoningEvent,
    TextEvent,
    TokenUsageEvent,
    ToolUseEvent,
    UpstreamErrorEvent,
    UpstreamErrorKind,
)
from kiro_core.eventstream import KiroEventDecoder
from tests.support import frames


def decode(*chunks: bytes, close: bool = True) -> list:
    decoder = KiroEventDecoder()
    events = []
    for chunk in chunks:
        events += decoder.feed(chunk)
    if close:
        events += decoder.close()
    return events


# ---------------------------------------------------------------- routing and payload shapes


def test_flat_text_payload() -> None:
    assert decode(frames.text("Hello")) == [TextEvent("Hello")]


def test_nested_payload_shape() -> None:
    frame = frames.event_frame("assistantResponseEvent", {"assistantResponseEvent": {"content": "nested"}})
    assert decode(frame) == [TextEvent("nested")]


def test_nested_tool_use_payload() -> None:
    frame = frames.event_frame("toolUseEvent", {"toolUseEvent": {"toolUseId": "t1", "name": "f", "stop": True}})
    assert decode(frame) == [ToolUseEvent("t1", "f", None, True)]


def test_followup_prompt_frames_are_skipped() -> None:
    frame = frames.event_frame(
        "assistantResponseEvent", {"content": "Try this", "followupPrompt": {"content": "x", "userIntent": "y"}}
    )
    assert decode(frame, frames.text("kept")) == [TextEvent("kept")]


def test_falsy_followup_prompt_does_not_skip() -> None:
    frame = frames.event_frame("assistantResponseEvent", {"content": "kept", "followupPrompt": None})
    assert decode(frame) == [TextEvent("kept")]


def test_status_only_assistant_frame_yields_nothing() -> None:
    frame = frames.event_frame("assistantResponseEvent", {"messageStatus": "COMPLETED", "conversationId": "c"})
    assert decode(frame) == []


def test_identical_consecutive_deltas_are_all_kept() -> None:
    # No de-duplication: repeated "\n" or "|" deltas are real text.
    assert decode(frames.text("\n"), frames.text("\n"), frames.text("|")) == [
        TextEvent("\n"), TextEvent("\n"), TextEvent("|"),
    ]


def test_tool_use_string_fragment_and_stop() -> None:
    events = decode(
        frames.tool_start("t1", "get_weather"),
        frames.tool_input("t1", "get_weather", '{"city": '),
        frames.tool_stop("t1", "get_weather"),
    )
    assert events == [
        ToolUseEvent("t1", "get_weather", None, False),
        ToolUseEvent("t1", "get_weather", '{"city": ', False),
        ToolUseEvent("t1", "get_weather", None, True),
    ]


def test_tool_use_object_input_is_kept_as_dict() -> None:
    frame = frames.event_frame("toolUseEvent", {"toolUseId": "t", "name": "f", "input": {"a": [1, 2]}, "stop": True})
    assert decode(frame) == [ToolUseEvent("t", "f", {"a": [1, 2]}, True)]


def test_tool_use_unusual_input_becomes_json_text() -> None:
    frame = frames.event_frame("toolUseEvent", {"toolUseId": "t", "name": "f", "input": [1, 2]})
    assert decode(frame) == [ToolUseEvent("t", "f", "[1,2]", False)]


def test_real_metering_payload() -> None:
    assert decode(frames.metering(0.0169)) == [MeteringEvent(usage=0.0169, unit="credit")]


def test_metering_without_number_is_skipped() -> None:
    assert decode(frames.event_frame("meteringEvent", {"unit": "credit", "usage": "lots"})) == []


def test_context_usage() -> None:
    assert decode(frames.context_usage(25.5)) == [ContextUsageEvent(25.5)]


def test_reasoning_event_with_signature_and_redacted() -> None:
    redacted = frames.event_frame("reasoningContentEvent", {"redactedContent": "b64"})
    assert decode(frames.reasoning("hmm", "sig-1"), redacted) == [
        ReasoningEvent("hmm", "sig-1", None),
        ReasoningEvent("", None, "b64"),
    ]


def test_metadata_token_usage_fixture() -> None:
    # kiro.rs fixture: uncached 120 + cacheRead 30 → input 150; cache fields kept.
    event = decode(frames.token_usage(uncached=120, output=11, cache_read=30, cache_write=7))
    assert event == [TokenUsageEvent(input_tokens=150, output_tokens=11, cache_read_input_tokens=30,
                                     cache_write_input_tokens=7, cache_reported=True)]


def test_metadata_without_token_usage_and_odd_numbers() -> None:
    odd = frames.event_frame("metadataEvent", {"tokenUsage": {"uncachedInputTokens": True, "outputTokens": 5.0}})
    assert decode(frames.event_frame("metadataEvent", {"conversationId": "c"}), odd) == [
        MetadataEvent(), TokenUsageEvent(0, 5, 0, 0)
    ]
    assert decode(frames.event_frame("metadataEvent", {"stopReason": "END_TURN"})) == [MetadataEvent("END_TURN")]


def test_metadata_with_infinite_numbers_is_skipped_not_crashed_on() -> None:
    raw = b'{"tokenUsage": {"uncachedInputTokens": Infinity, "outputTokens": NaN}}'
    assert decode(frames.event_frame_raw("metadataEvent", raw), frames.text("next")) == [TextEvent("next")]


def test_invalid_state_event_is_an_upstream_error() -> None:
    assert decode(frames.invalid_state("INVALID_TOOL_USE", "bad history")) == [
        UpstreamErrorEvent(UpstreamErrorKind.INVALID_STATE, "INVALID_TOOL_USE", "bad history")
    ]


# ---------------------------------------------------------------- error and exception frames


def test_exception_frame() -> None:
    assert decode(frames.exception_frame("ThrottlingException", "Too many requests")) == [
        UpstreamErrorEvent(UpstreamErrorKind.EXCEPTION, "ThrottlingException", "Too many requests")
    ]


def test_exception_frame_with_capitalised_message_key() -> None:
    headers = {":message-type": "exception", ":exception-type": "InternalServerException"}
    frame = frames.encode_frame(headers, json.dumps({"Message": "boom"}).encode())
    assert decode(frame)[0].message == "boom"


def test_exception_frame_with_raw_text_payload() -> None:
    headers = {":message-type": "exception", ":exception-type": "ValidationException"}
    assert decode(frames.encode_frame(headers, b"Improperly formed request."))[0].message == (
        "Improperly formed request."
    )


def test_error_frame_message_from_header() -> None:
    assert decode(frames.error_frame("InternalError", "try again")) == [
        UpstreamErrorEvent(UpstreamErrorKind.ERROR, "InternalError", "try again")
    ]


def test_error_frame_without_anything_uses_code() -> None:
    event = decode(frames.encode_frame({":message-type": "error"}, b""))[0]
    assert (event.kind, event.code, event.message) == (UpstreamErrorKind.ERROR, "UnknownError", "UnknownError")


def test_decoding_continues_after_an_exception_frame() -> None:
    events = decode(frames.exception_frame("X", "y"), frames.text("after"))
    assert events[1] == TextEvent("after")


# ---------------------------------------------------------------- skipped frames (logged, never raised)


@pytest.mark.parametrize(
    "event_type", ["messageMetadataEvent", "codeReferenceEvent", "followupPromptEvent", "brandNewEvent"]
)
def test_unknown_event_types_are_skipped_with_a_debug_line(event_type: str, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG, logger="kiro_core.eventstream")
    assert decode(frames.event_frame(event_type, {"content": "x"}), frames.text("ok")) == [TextEvent("ok")]
    assert any(event_type in record.getMessage() for record in caplog.records)


def test_invalid_utf8_payload_is_skipped_with_a_warning(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.WARNING, logger="kiro_core.eventstream")
    bad = frames.event_frame_raw("assistantResponseEvent", b'{"content":"\xff\xfe"}')
    assert decode(bad, frames.text("next")) == [TextEvent("next")]
    assert [record.levelno for record in caplog.records] == [logging.WARNING]


@pytest.mark.parametrize("payload", [b"not json", b"", b'["a list"]', b'"a string"'])
def test_non_object_payloads_are_skipped_with_a_warning(payload: bytes, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.WARNING, logger="kiro_core.eventstream")
    assert decode(frames.event_frame_raw("assistantResponseEvent", payload), frames.text("next")) == [
        TextEvent("next")
    ]
    assert len(caplog.records) == 1


@pytest.mark.parametrize(("event_type", "payload"), [
    ("contextUsageEvent", b'{"contextUsagePercentage":NaN}'),
    ("contextUsageEvent", b'{"contextUsagePercentage":1e400}'),
    ("meteringEvent", b'{"unit":"credit","usage":Infinity}'),
    ("assistantResponseEvent", b' {"content":"x","n":-Infinity}'),  # the slow path too (leading space)
])
def test_non_finite_numbers_make_a_payload_invalid(event_type: str, payload: bytes,
                                                  caplog: pytest.LogCaptureFixture) -> None:
    """Strict JSON in: a NaN or infinite figure would break usage maths or reach a client as invalid JSON."""
    caplog.set_level(logging.WARNING, logger="kiro_core.eventstream")
    assert decode(frames.event_frame_raw(event_type, payload), frames.text("next")) == [TextEvent("next")]
    assert len(caplog.records) == 1


def test_unknown_message_type_is_skipped(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.WARNING, logger="kiro_core.eventstream")
    frame = frames.encode_frame({":message-type": "surprise", ":event-type": "assistantResponseEvent"}, b"{}")
    assert decode(frame) == []
    assert "surprise" in caplog.text


def test_non_string_header_values_do_not_crash() -> None:
    # :message-type as a bool-true header (type 0): intact framing, meaningless routing → skipped.
    raw = bytes([len(b":message-type")]) + b":message-type" + b"\x00"
    assert decode(frames.encode_raw_frame(raw, b"{}")) == []


def test_wrong_field_types_are_skipped(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.WARNING, logger="kiro_core.eventstream")
    frame = frames.event_frame("assistantResponseEvent", {"content": 42})
    assert decode(frame, frames.text("ok")) == [TextEvent("ok")]


# ---------------------------------------------------------------- damaged streams


def _corrupt(events: list) -> UpstreamErrorEvent:
    assert isinstance(events[-1], UpstreamErrorEvent), events
    assert events[-1].kind is UpstreamErrorKind.CORRUPT_FRAME
    return events[-1]


def test_prelude_crc_mismatch() -> None:
    frame = bytearray(frames.text("x"))
    frame[9] ^= 0xFF  # inside the prelude CRC
    event = _corrupt(decode(frames.text("before"), bytes(frame)))
    assert event.code == "ChecksumMismatch"


def test_message_crc_mismatch_and_everything_after_is_ignored() -> None:
    frame = bytearray(frames.text("payload"))
    frame[-6] ^= 0x01  # inside the payload
    decoder = KiroEventDecoder()
    events = decoder.feed(frames.text("before") + bytes(frame) + frames.text("after"))
    assert events[0] == TextEvent("before")
    assert _corrupt(events).code == "ChecksumMismatch"
    assert len(events) == 2
    assert decoder.feed(frames.text("later")) == []
    assert decoder.close() == []


def test_garbage_between_frames() -> None:
    events = decode(frames.text("a") + b"\x00garbage\x00 between frames" + frames.text("b"))
    assert events[0] == TextEvent("a")
    _corrupt(events)
    assert TextEvent("b") not in events


def test_frame_shorter_than_the_minimum() -> None:
    _corrupt(decode(frames.prelude_only(12, 0) + b"\x00" * 20))


def test_headers_longer_than_the_frame() -> None:
    _corrupt(decode(frames.prelude_only(20, 100) + b"\x00" * 120))


def test_absurd_payload_length() -> None:
    event = _corrupt(decode(frames.prelude_only(100 * 1024 * 1024, 0)))
    assert event.code == "InvalidPayloadLength"


def test_unknown_header_value_type() -> None:
    raw = bytes([len(b":message-type")]) + b":message-type" + b"\x2a" + b"junk"
    _corrupt(decode(frames.encode_raw_frame(raw, b"{}")))


def test_header_value_running_past_the_headers_is_skipped(caplog: pytest.LogCaptureFixture) -> None:
    # botocore reads the short value without complaint; with no :message-type the frame is skipped, not fatal
    caplog.set_level(logging.WARNING, logger="kiro_core.eventstream")
    raw = bytes([len(b":event-type")]) + b":event-type" + b"\x07" + struct.pack(">H", 500) + b"short"
    assert decode(frames.encode_raw_frame(raw, b"{}"), frames.text("ok")) == [TextEvent("ok")]
    assert "message-type" in caplog.text


def test_truncated_final_frame() -> None:
    whole = frames.text("complete")
    cut = frames.text("this frame never finishes")[:-7]
    events = decode(whole, cut)
    assert events[0] == TextEvent("complete")
    assert events[1].kind is UpstreamErrorKind.TRUNCATED
    assert f"{len(cut)} bytes" in events[1].message


def test_truncated_inside_the_prelude() -> None:
    events = decode(frames.text("x")[:5])
    assert [event.kind for event in events] == [UpstreamErrorKind.TRUNCATED]


def test_clean_close_and_repeated_close() -> None:
    decoder = KiroEventDecoder()
    assert decoder.feed(frames.text("x")) == [TextEvent("x")]
    assert decoder.close() == []
    assert decoder.close() == []
    assert decoder.feed(frames.text("y")) == []


def test_empty_feed() -> None:
    assert KiroEventDecoder().feed(b"") == []


def test_byte_by_byte_feed() -> None:
    data = frames.text_utf8("héllo wörld ✓") + frames.tool_input("t", "f", '{"k": "日本"}')
    assert decode(*[data[i:i + 1] for i in range(len(data))]) == decode(data)


def test_multibyte_character_split_across_chunks() -> None:
    data = frames.text_utf8("€")  # 3-byte UTF-8 character
    at = data.index("€".encode()) + 1  # cut inside the character
    assert decode(data[:at], data[at:]) == [TextEvent("€")]


# ---------------------------------------------------------------- property: chunking never changes the events

_text = st.text(alphabet=st.characters(blacklist_categories=("Cs",)), min_size=1, max_size=40)
_frame = st.one_of(
    _text.map(frames.text_utf8),
    _text.map(frames.text),
    st.tuples(st.sampled_from(["t1", "t2"]), _text).map(lambda a: frames.tool_input(a[0], "f", a[1])),
    st.sampled_from(["t1", "t2"]).map(lambda i: frames.tool_stop(i, "f")),
    st.floats(0, 10, allow_nan=False).map(frames.metering),
    st.floats(0, 100, allow_nan=False).map(frames.context_usage),
    _text.map(lambda t: frames.reasoning(t, "sig")),
    st.just(frames.event_frame("messageMetadataEvent", {"conversationId": "c"})),
    st.just(frames.exception_frame("ThrottlingException", "slow down")),
)


@settings(max_examples=200, deadline=None)
@given(st.lists(_frame, min_size=1, max_size=12), st.data())
def test_any_chunking_yields_the_same_events(stream: list[bytes], data: st.DataObject) -> None:
    whole = b"".join(stream)
    cuts = sorted(data.draw(st.lists(st.integers(0, len(whole)), max_size=20)))
    chunks = [whole[a:b] for a, b in zip([0, *cuts], [*cuts, len(whole)], strict=True)]
    assert decode(*chunks) == decode(whole)
    assert all(not isinstance(e, UpstreamErrorEvent) or e.code == "ThrottlingException" for e in decode(*chunks))


@settings(max_examples=100, deadline=None)
@given(st.binary(min_size=1, max_size=200), st.integers(0, 3))
def test_garbage_never_raises(garbage: bytes, position: int) -> None:
    stream = [frames.text("a"), frames.text("b"), frames.text("c")]
    stream.insert(min(position, 3), garbage)
    events = decode(b"".join(stream))
    assert all(isinstance(event, TextEvent | UpstreamErrorEvent) for event in events)


# ---------------------------------------------------------------- the hand-written framing (no botocore)


def _stream() -> bytes:
    return b"".join([
        frames.text_utf8("héllo wörld ✓ 日本 😀"),
        frames.tool_input("t", "f", '{"k": "€"}'),
        frames.exception_frame("ThrottlingException", "slow"),
        frames.event_frame("brandNewEvent", {"x": 1}),
        frames.metering(0.5),
    ])


def test_every_two_way_split_yields_the_same_events() -> None:
    data = _stream()
    expected = decode(data)
    assert TextEvent("héllo wörld ✓ 日本 😀") in expected
    for at in range(len(data) + 1):
        assert decode(data[:at], data[at:]) == expected, at


def test_every_three_way_split_around_a_utf8_character() -> None:
    data = frames.text_utf8("a😀b") + frames.text("z")
    emoji = data.index("😀".encode())
    expected = [TextEvent("a😀b"), TextEvent("z")]
    for first in range(emoji - 2, emoji + 5):
        for second in range(first, len(data) + 1):
            assert decode(data[:first], data[first:second], data[second:]) == expected, (first, second)


def test_bytes_like_chunks_are_accepted() -> None:
    data = frames.text("x")
    assert decode(bytearray(data[:7]), memoryview(data)[7:]) == [TextEvent("x")]


@pytest.mark.parametrize("position", range(len(frames.text("crc"))))
def test_any_flipped_bit_is_a_checksum_mismatch(position: int) -> None:
    frame = bytearray(frames.text("crc"))
    frame[position] ^= 0x10
    decoder = KiroEventDecoder()
    events = decoder.feed(frames.text("before") + bytes(frame) + frames.text("after"))
    assert events[0] == TextEvent("before")
    assert len(events) == 2
    assert _corrupt(events).code == "ChecksumMismatch"
    assert decoder.close() == []


def test_huge_declared_headers_length() -> None:
    assert _corrupt(decode(frames.prelude_only(300 * 1024, 200 * 1024))).code == "InvalidHeadersLength"


def test_huge_declared_length_is_refused_before_it_arrives() -> None:
    decoder = KiroEventDecoder()
    events = decoder.feed(frames.text("ok") + frames.prelude_only(0xFFFFFFFF, 0))
    assert events[0] == TextEvent("ok")
    assert _corrupt(events).code == "InvalidPayloadLength"


def test_large_frame_in_small_chunks() -> None:
    content = "x" * (1024 * 1024)
    data = frames.text(content) + frames.text("next")
    assert decode(*[data[i:i + 1000] for i in range(0, len(data), 1000)]) == [TextEvent(content), TextEvent("next")]


def test_frame_left_incomplete_after_whole_frames_is_truncated() -> None:
    cut = frames.text("never ends")[:20]
    events = decode(frames.text("a") + frames.text("b") + cut)
    assert events[:2] == [TextEvent("a"), TextEvent("b")]
    assert events[2].kind is UpstreamErrorKind.TRUNCATED
    assert "20 bytes" in events[2].message


def _header(name: str, kind: int, value: bytes) -> bytes:
    return bytes([len(name.encode())]) + name.encode() + bytes([kind]) + value


def _string_header(name: str, value: str) -> bytes:
    return _header(name, 7, struct.pack(">H", len(value.encode())) + value.encode())


def test_headers_of_every_type_are_read_by_their_size() -> None:
    raw = b"".join([
        _header("flag", 0, b""), _header("off", 1, b""), _header("b", 2, b"\xff"), _header("s", 3, b"\x00\x02"),
        _header("i", 4, b"\x00\x00\x00\x03"), _header("l", 5, b"\x00" * 7 + b"\x04"),
        _header("bytes", 6, b"\x00\x02ab"), _header("t", 8, b"\x00" * 8), _header("id", 9, b"u" * 16),
        _string_header(":message-type", "event"), _string_header(":event-type", "assistantResponseEvent"),
    ])
    assert decode(frames.encode_raw_frame(raw, b'{"content":"typed"}')) == [TextEvent("typed")]


@pytest.mark.parametrize("raw", [
    _string_header(":message-type", "event") * 2,  # duplicate header
    bytes([40]) + b":message-type",  # name longer than the headers
    bytes([4]) + b"name",  # no type byte after the name
    _header("n", 7, b"\x00"),  # string without its 2-byte length
    _header("n", 4, b"\x00\x00"),  # int32 cut short
    _header("n", 9, b"\x00" * 8),  # uuid cut short
    bytes([2]) + b"\xff\xfe" + b"\x07\x00\x01x",  # name not UTF-8
    _header("n", 7, b"\x00\x02\xff\xfe"),  # string value not UTF-8
])
def test_undecodable_headers_are_corrupt(raw: bytes) -> None:
    _corrupt(decode(frames.encode_raw_frame(raw, b"{}"), frames.text("never")))


def test_header_cache_stays_bounded() -> None:
    from kiro_core import eventstream

    for number in range(500):
        assert decode(frames.error_frame(f"Code{number}", f"message {number}"))[0].code == f"Code{number}"
    assert len(eventstream._HEADER_CACHE) <= eventstream._HEADER_CACHE_SIZE


def test_payload_json_with_whitespace_or_trailing_data(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.WARNING, logger="kiro_core.eventstream")
    spaced = frames.event_frame_raw("assistantResponseEvent", b' \n{"content": "spaced"}\n ')
    trailing = frames.event_frame_raw("assistantResponseEvent", b'{"content":"x"} {"content":"y"}')
    assert decode(spaced, trailing, frames.text("ok")) == [TextEvent("spaced"), TextEvent("ok")]
    assert len(caplog.records) == 1


_header_value = st.one_of(
    st.tuples(st.just(0), st.just(b"")),
    st.tuples(st.just(1), st.just(b"")),
    st.tuples(st.just(2), st.binary(min_size=1, max_size=1)),
    st.tuples(st.just(3), st.binary(min_size=2, max_size=2)),
    st.tuples(st.just(4), st.binary(min_size=4, max_size=4)),
    st.tuples(st.just(5), st.binary(min_size=8, max_size=8)),
    st.tuples(st.just(8), st.binary(min_size=8, max_size=8)),
    st.tuples(st.just(9), st.binary(min_size=16, max_size=16)),
    st.binary(max_size=30).map(lambda b: (6, struct.pack(">H", len(b)) + b)),
    _text.map(lambda t: (7, struct.pack(">H", len(t.encode())) + t.encode())),
)


@settings(max_examples=200, deadline=None)
@given(st.dictionaries(st.text(min_size=1, max_size=20).filter(lambda n: len(n.encode()) < 256), _header_value,
                       max_size=6))
def test_header_parsing_agrees_with_botocore(headers: dict) -> None:
    from botocore.eventstream import EventStreamHeaderParser

    from kiro_core.eventstream import _headers

    raw = b"".join(_header(name, kind, value) for name, (kind, value) in headers.items())
    ours = _headers(raw, 0, len(raw))
    theirs = EventStreamHeaderParser().parse(raw)
    assert ours == theirs
    assert [type(value) for value in ours.values()] == [type(value) for value in theirs.values()]
