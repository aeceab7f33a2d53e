"""Anthropic formatter: the exact event sequence, and the real `anthropic` SDK reading what we produce."""

from __future__ import annotations

import json
import re
from typing import Any

import anthropic
import pytest

from kiro_core.errors import ErrorKind, GatewayError
from kiro_core.events import (
    ContentDelta,
    Finish,
    OutputEvent,
    StreamError,
    ThinkingDelta,
    ToolCallComplete,
    Usage,
)
from kiro_core.eventstream import KiroEventDecoder
from kiro_core.format.anthropic import AnthropicStreamFormatter, anthropic_message, placeholder_signature
from kiro_core.stream import CollectedAnswer, ResponseAssembler, collect
from tests.support import frames
from tests.support import sdk_replay as replay

MODEL, MSG_ID = "claude-sonnet-4.5", "msg_0123456789abcdef01234567"
FINISH = Finish("stop", Usage(input_tokens=100, output_tokens=20))


def events_of(sse: bytes) -> list[tuple[str, dict[str, Any]]]:
    """(event name, data) pairs; checks every event names its type twice, consistently."""
    text = sse.decode()
    assert text == "" or text.endswith("\n\n")
    out = []
    for block in text.split("\n\n")[:-1]:
        event_line, data_line = block.split("\n")
        assert event_line.startswith("event: ") and data_line.startswith("data: ")
        name, data = event_line[len("event: "):], json.loads(data_line[len("data: "):])
        assert data["type"] == name
        out.append((name, data))
    return out


def names(sse: bytes) -> list[str]:
    return [name for name, _ in events_of(sse)]


def fmt(input_tokens: int = 42) -> AnthropicStreamFormatter:
    return AnthropicStreamFormatter(MODEL, MSG_ID, input_tokens)


def test_message_start() -> None:
    [(name, data)] = events_of(fmt(1234).start())
    assert name == "message_start"
    assert data["message"] == {
        "id": MSG_ID, "type": "message", "role": "assistant", "content": [], "model": MODEL,
        "stop_reason": None, "stop_sequence": None,
        "usage": {"input_tokens": 1234, "output_tokens": 0},  # no invented cache figures
    }


def test_ping() -> None:
    assert AnthropicStreamFormatter.ping() == b'event: ping\ndata: {"type": "ping"}\n\n'
    assert events_of(fmt().ping()) == [("ping", {"type": "ping"})]


def test_thinking_then_text_blocks() -> None:
    out = events_of(fmt().format([ThinkingDelta("let me"), ThinkingDelta(" see"), ContentDelta("Hi")]))
    assert out == [
        ("content_block_start", {"type": "content_block_start", "index": 0,
                                 "content_block": {"type": "thinking", "thinking": "", "signature": ""}}),
        ("content_block_delta", {"type": "content_block_delta", "index": 0,
                                 "delta": {"type": "thinking_delta", "thinking": "let me"}}),
        ("content_block_delta", {"type": "content_block_delta", "index": 0,
                                 "delta": {"type": "thinking_delta", "thinking": " see"}}),
        ("content_block_delta", {"type": "content_block_delta", "index": 0,
                                 "delta": {"type": "signature_delta", "signature": placeholder_signature(MSG_ID)}}),
        ("content_block_stop", {"type": "content_block_stop", "index": 0}),
        ("content_block_start", {"type": "content_block_start", "index": 1,
                                 "content_block": {"type": "text", "text": ""}}),
        ("content_block_delta", {"type": "content_block_delta", "index": 1,
                                 "delta": {"type": "text_delta", "text": "Hi"}}),
    ]


def test_placeholder_signature_shape() -> None:
    assert re.fullmatch(r"sig_[0-9a-f]{32}", placeholder_signature(MSG_ID))


def test_upstream_signature_is_used() -> None:
    out = events_of(fmt().format([ThinkingDelta("t"), ThinkingDelta("", "real-signature"), FINISH]))
    signatures = [d["delta"]["signature"] for _, d in out if d.get("delta", {}).get("type") == "signature_delta"]
    assert signatures == ["real-signature"]


def test_blocks_persist_across_batches() -> None:
    formatter = fmt()
    first = names(formatter.format([ContentDelta("a")]))
    second = names(formatter.format([ContentDelta("b")]))
    assert first == ["content_block_start", "content_block_delta"]
    assert second == ["content_block_delta"]


def test_tool_use_block() -> None:
    out = events_of(fmt().format([ContentDelta("Checking."), ToolCallComplete(0, "toolu_1", "get_weather",
                                                                          '{"city":"Oslo"}')]))
    assert [name for name, _ in out] == [
        "content_block_start", "content_block_delta", "content_block_stop",
        "content_block_start", "content_block_delta", "content_block_stop",
    ]
    assert out[3][1] == {"type": "content_block_start", "index": 1, "content_block": {
        "type": "tool_use", "id": "toolu_1", "name": "get_weather", "input": {}}}
    assert out[4][1]["delta"] == {"type": "input_json_delta", "partial_json": '{"city":"Oslo"}'}
    assert out[5][1]["index"] == 1


@pytest.mark.parametrize(("reason", "stop_reason"), [("stop", "end_turn"), ("tool_calls", "tool_use"),
                                                     ("length", "max_tokens")])
def test_finish(reason: str, stop_reason: str) -> None:
    usage = Usage(input_tokens=150, output_tokens=11, cache_read_input_tokens=30, cache_creation_input_tokens=7)
    out = events_of(fmt().format([ContentDelta("x"), Finish(reason, usage)]))
    assert [name for name, _ in out][-3:] == ["content_block_stop", "message_delta", "message_stop"]
    assert out[-2][1] == {
        "type": "message_delta", "delta": {"stop_reason": stop_reason, "stop_sequence": None},
        "usage": {"input_tokens": 120, "output_tokens": 11, "cache_creation_input_tokens": 7,
                  "cache_read_input_tokens": 30},
    }


def test_indexes_are_consecutive_and_every_block_is_closed() -> None:
    out = events_of(fmt().format([
        ThinkingDelta("a"), ContentDelta("b"), ToolCallComplete(0, "t1", "f", "{}"), ContentDelta("c"),
        ToolCallComplete(1, "t2", "g", "{}"), FINISH,
    ]))
    starts = [d["index"] for n, d in out if n == "content_block_start"]
    stops = [d["index"] for n, d in out if n == "content_block_stop"]
    assert starts == stops == [0, 1, 2, 3, 4]


def test_error_event_and_nothing_after() -> None:
    formatter = fmt()
    out = events_of(formatter.format([ContentDelta("partial"), StreamError("RATE_LIMIT", "slow down"), FINISH]))
    assert out[-1] == ("error", {"type": "error", "error": {"type": "rate_limit_error", "message": "slow down"}})
    assert "message_stop" not in [name for name, _ in out]
    assert formatter.format([ContentDelta("late"), FINISH]) == b""


def test_empty_deltas_open_no_blocks() -> None:
    assert fmt().format([ContentDelta(""), ThinkingDelta("", "sig-without-block")]) == b""


# ---------------------------------------------------------------- whole messages


def test_message_body() -> None:
    answer = CollectedAnswer(thinking="hmm", signature="s1", content="Hi",
                             tool_calls=[ToolCallComplete(0, "toolu_1", "f", '{"a":[1]}')],
                             finish=Finish("tool_calls", Usage(100, 20)))
    assert anthropic_message(answer, MODEL, MSG_ID, 5) == {
        "id": MSG_ID, "type": "message", "role": "assistant", "model": MODEL,
        "content": [
            {"type": "thinking", "thinking": "hmm", "signature": "s1"},
            {"type": "text", "text": "Hi"},
            {"type": "tool_use", "id": "toolu_1", "name": "f", "input": {"a": [1]}},
        ],
        "stop_reason": "tool_use", "stop_sequence": None,
        "usage": {"input_tokens": 100, "output_tokens": 20},
    }


def test_message_placeholder_signature_and_estimate_fallback() -> None:
    body = anthropic_message(CollectedAnswer(thinking="t", finish=Finish("stop", Usage(0, 1))), MODEL, MSG_ID, 77)
    assert body["content"][0]["signature"] == placeholder_signature(MSG_ID)
    assert body["usage"]["input_tokens"] == 77


def test_message_of_a_failed_answer_raises() -> None:
    with pytest.raises(GatewayError) as caught:
        anthropic_message(CollectedAnswer(error=StreamError("UPSTREAM", "boom")), MODEL, MSG_ID, 1)
    assert caught.value.kind is ErrorKind.UPSTREAM
    with pytest.raises(GatewayError):
        anthropic_message(CollectedAnswer(), MODEL, MSG_ID, 1)


# ---------------------------------------------------------------- the real SDK reads it

KIRO_STREAM = [
    frames.text("<thinking>The user"), frames.text(" wants a file.</thinking>\n\n"),
    frames.text_utf8("Writing it — now"), frames.text("."),
    frames.tool_start("tooluse_w1", "Write"),
    frames.tool_input("tooluse_w1", "Write", '{"file_path": "/tmp/a.txt", '),
    frames.tool_input("tooluse_w1", "Write", '"content": "héllo\\n"}'),
    frames.tool_stop("tooluse_w1", "Write"),
    frames.token_usage(uncached=120, output=11, cache_read=30, cache_write=7),
    frames.context_usage(2.0),
]


def sse_for(raw_frames: list[bytes], cut: int = 11) -> bytes:
    return replay.sse_for(raw_frames, fmt(50), cut, opening=AnthropicStreamFormatter.ping())


def sdk_client(body: bytes, content_type: str = "text/event-stream") -> anthropic.Anthropic:
    return replay.replay_client(anthropic, body, "http://gateway.test", content_type)


def test_sdk_accumulates_the_stream() -> None:
    client = sdk_client(sse_for(KIRO_STREAM))
    with client.messages.stream(model=MODEL, max_tokens=100, messages=[{"role": "user", "content": "hi"}]) as stream:
        text = "".join(stream.text_stream)
        message = stream.get_final_message()
    assert text == "Writing it — now."
    thinking, reply, call = message.content
    assert (thinking.type, thinking.thinking, thinking.signature) == (
        "thinking", "The user wants a file.", placeholder_signature(MSG_ID)
    )
    assert (reply.type, reply.text) == ("text", "Writing it — now.")
    assert (call.type, call.id, call.name, call.input) == (
        "tool_use", "tooluse_w1", "Write", {"file_path": "/tmp/a.txt", "content": "héllo\n"}
    )
    assert message.stop_reason == "tool_use"
    assert message.usage.output_tokens == 11
    assert message.usage.input_tokens == 120
    assert message.usage.cache_read_input_tokens == 30
    assert message.usage.cache_creation_input_tokens == 7


def test_sdk_raises_on_the_error_event() -> None:
    body = sse_for([frames.text("partial"), frames.exception_frame("InternalServerException", "Kiro broke")])
    client = sdk_client(body)
    with pytest.raises(anthropic.APIStatusError, match="Kiro broke"), client.messages.stream(
        model=MODEL, max_tokens=100, messages=[{"role": "user", "content": "hi"}]
    ) as stream:
        for _ in stream:
            pass


def test_sdk_reads_a_whole_message() -> None:
    events: list[OutputEvent] = []
    assembler = ResponseAssembler(input_tokens=50)
    for event in KiroEventDecoder().feed(b"".join(KIRO_STREAM)):
        events += assembler.feed(event)
    events += assembler.finish()
    body = json.dumps(anthropic_message(collect(events), MODEL, MSG_ID, 50)).encode()
    message = sdk_client(body, "application/json").messages.create(
        model=MODEL, max_tokens=100, messages=[{"role": "user", "content": "hi"}]
    )
    assert [block.type for block in message.content] == ["thinking", "text", "tool_use"]
    assert message.content[2].input == {"file_path": "/tmp/a.txt", "content": "héllo\n"}
    assert message.stop_reason == "tool_use"


def test_usage_carries_credits_and_cache_fields_only_when_reported() -> None:
    from kiro_core.format.anthropic import usage_body

    assert usage_body(Usage(100, 20, credits=0.42)) == {"input_tokens": 100, "output_tokens": 20, "credits_used": 0.42}
    reported_zero = usage_body(Usage(100, 20, cache_reported=True))
    assert reported_zero == {"input_tokens": 100, "output_tokens": 20, "cache_creation_input_tokens": 0,
                             "cache_read_input_tokens": 0}


def test_message_delta_usage_carries_the_credits() -> None:
    out = fmt().format([ContentDelta("x"), Finish("stop", Usage(10, 5, credits=0.0169))])
    (_, delta), = [(n, d) for n, d in events_of(out) if n == "message_delta"]
    assert delta["usage"]["credits_used"] == 0.0169
    assert "cache_read_input_tokens" not in delta["usage"]
