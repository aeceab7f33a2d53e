"""OpenAI formatter: exact chunk shapes, and the real `openai` SDK reading what we produce."""

from __future__ import annotations

import json
from typing import Any

import openai
import pytest

from kiro_core.errors import ErrorKind, GatewayError
from kiro_core.events import (
    ContentDelta,
    Finish,
    StreamError,
    ThinkingDelta,
    ToolCallComplete,
    Usage,
)
from kiro_core.eventstream import KiroEventDecoder
from kiro_core.format.openai import OpenAIStreamFormatter, openai_completion
from kiro_core.stream import CollectedAnswer, ResponseAssembler, collect
from tests.support import frames
from tests.support import sdk_replay as replay

MODEL, ID, CREATED = "claude-sonnet-4.5", "chatcmpl-abc123", 1_700_000_000
FINISH = Finish("stop", Usage(input_tokens=100, output_tokens=20))


def chunks_of(sse: bytes) -> list[Any]:
    """Each SSE event's data, JSON-decoded ("[DONE]" kept as the string)."""
    text = sse.decode()
    assert text.endswith("\n\n")
    out = []
    for block in text.split("\n\n")[:-1]:
        assert block.startswith("data: ") and "\n" not in block, block
        data = block[len("data: "):]
        out.append(data if data == "[DONE]" else json.loads(data))
    return out


def formatter(include_usage: bool = True) -> OpenAIStreamFormatter:
    return OpenAIStreamFormatter(MODEL, ID, CREATED, include_usage=include_usage)


def test_start_chunk() -> None:
    [chunk] = chunks_of(formatter().start())
    assert chunk == {
        "id": ID, "object": "chat.completion.chunk", "created": CREATED, "model": MODEL,
        "choices": [{"index": 0, "delta": {"role": "assistant", "content": ""}, "finish_reason": None}],
    }


def test_content_chunk_shape() -> None:
    [chunk] = chunks_of(formatter().format([ContentDelta("Hello")]))
    assert chunk == {
        "id": ID, "object": "chat.completion.chunk", "created": CREATED, "model": MODEL,
        "choices": [{"index": 0, "delta": {"content": "Hello"}, "finish_reason": None}],
    }


def test_text_with_characters_that_need_escaping() -> None:
    text = 'quote " backslash \\ newline \n tab \t </script> 日本 \u2028 emoji 🎉'
    [chunk] = chunks_of(formatter().format([ContentDelta(text)]))
    assert chunk["choices"][0]["delta"]["content"] == text


def test_consecutive_deltas_in_a_batch_are_merged_in_order() -> None:
    out = chunks_of(formatter().format([
        ThinkingDelta("a"), ThinkingDelta("b"), ContentDelta("c"), ContentDelta("d"), ThinkingDelta("e"),
    ]))
    deltas = [chunk["choices"][0]["delta"] for chunk in out]
    assert deltas == [{"reasoning_content": "ab"}, {"content": "cd"}, {"reasoning_content": "e"}]


def test_signature_only_thinking_delta_writes_nothing() -> None:
    assert formatter().format([ThinkingDelta("", "sig")]) == b""


def test_tool_calls_chunk() -> None:
    calls = [ToolCallComplete(0, "t1", "get_weather", '{"city":"Oslo"}'), ToolCallComplete(1, "t2", "f", "{}")]
    [chunk] = chunks_of(formatter().format(calls))
    assert chunk["choices"][0]["delta"] == {"tool_calls": [
        {"index": 0, "id": "t1", "type": "function",
         "function": {"name": "get_weather", "arguments": '{"city":"Oslo"}'}},
        {"index": 1, "id": "t2", "type": "function", "function": {"name": "f", "arguments": "{}"}},
    ]}
    assert chunk["choices"][0]["finish_reason"] is None


def test_finish_chunk_with_usage_then_done() -> None:
    usage = Usage(input_tokens=150, output_tokens=11, cache_read_input_tokens=30, cache_creation_input_tokens=7,
                  credits=0.0169)
    out = chunks_of(formatter().format([ContentDelta("x"), Finish("tool_calls", usage)]))
    assert out[-1] == "[DONE]"
    final = out[-2]
    assert final["choices"] == [{"index": 0, "delta": {}, "finish_reason": "tool_calls"}]
    assert final["usage"] == {
        "prompt_tokens": 157, "completion_tokens": 11, "total_tokens": 168,
        "prompt_tokens_details": {"cached_tokens": 30}, "credits_used": 0.0169,
    }


def test_plain_usage_and_length_reason() -> None:
    out = chunks_of(formatter().format([Finish("length", Usage(10, 5))]))
    assert out[0]["choices"][0]["finish_reason"] == "length"
    assert out[0]["usage"] == {"prompt_tokens": 10, "completion_tokens": 5, "total_tokens": 15}


def test_usage_can_be_left_out() -> None:
    out = chunks_of(formatter(include_usage=False).format([FINISH]))
    assert "usage" not in out[0] and out[1] == "[DONE]"


def test_nothing_after_the_finish() -> None:
    fmt = formatter()
    out = chunks_of(fmt.format([FINISH, ContentDelta("late")]))
    assert out[-1] == "[DONE]" and len(out) == 2
    assert fmt.format([ContentDelta("later")]) == b""


@pytest.mark.parametrize(
    ("kind", "error_type", "code"),
    [("UPSTREAM", "api_error", "upstream_error"), ("RATE_LIMIT", "rate_limit_error", "rate_limit_exceeded")],
)
def test_stream_error_chunk_has_no_done_and_no_finish_reason(kind: str, error_type: str, code: str) -> None:
    fmt = formatter()
    sse = fmt.format([ContentDelta("partial"), StreamError(kind, "Kiro failed"), FINISH])
    out = chunks_of(sse)
    assert out[-1] == {"error": {"message": "Kiro failed", "type": error_type, "param": None, "code": code}}
    assert "[DONE]" not in out
    assert b"finish_reason\":\"stop" not in sse
    assert fmt.format([FINISH]) == b""


def test_one_write_per_batch() -> None:
    sse = formatter().format([ContentDelta("a"), ToolCallComplete(0, "t", "f", "{}"), FINISH])
    assert isinstance(sse, bytes)
    assert len(chunks_of(sse)) == 4


# ---------------------------------------------------------------- whole answers


def test_completion_body() -> None:
    answer = CollectedAnswer(
        thinking="hmm", content="Hi", tool_calls=[ToolCallComplete(0, "t1", "f", '{"a":1}')],
        finish=Finish("tool_calls", Usage(100, 20)),
    )
    body = openai_completion(answer, MODEL, ID, CREATED)
    assert body["object"] == "chat.completion" and body["id"] == ID and body["model"] == MODEL
    choice = body["choices"][0]
    assert choice["message"] == {
        "role": "assistant", "content": "Hi", "reasoning_content": "hmm",
        "tool_calls": [{"id": "t1", "type": "function", "function": {"name": "f", "arguments": '{"a":1}'}}],
    }
    assert choice["finish_reason"] == "tool_calls"
    assert body["usage"] == {"prompt_tokens": 100, "completion_tokens": 20, "total_tokens": 120}


def test_completion_content_is_null_with_only_tool_calls_and_empty_string_otherwise() -> None:
    calls = CollectedAnswer(tool_calls=[ToolCallComplete(0, "t", "f", "{}")], finish=FINISH)
    assert openai_completion(calls, MODEL, ID, CREATED)["choices"][0]["message"]["content"] is None
    empty = CollectedAnswer(finish=FINISH)
    message = openai_completion(empty, MODEL, ID, CREATED)["choices"][0]["message"]
    assert message == {"role": "assistant", "content": ""}


def test_completion_of_a_failed_answer_raises() -> None:
    with pytest.raises(GatewayError) as caught:
        openai_completion(CollectedAnswer(error=StreamError("RATE_LIMIT", "slow")), MODEL, ID, CREATED)
    assert caught.value.kind is ErrorKind.RATE_LIMIT
    with pytest.raises(GatewayError):
        openai_completion(CollectedAnswer(), MODEL, ID, CREATED)


# ---------------------------------------------------------------- the real SDK reads it

def sse_for(raw_frames: list[bytes], cut: int = 7) -> bytes:
    return replay.sse_for(raw_frames, formatter(), cut)


def sdk_client(body: bytes, content_type: str = "text/event-stream") -> openai.OpenAI:
    return replay.replay_client(openai, body, "http://gateway.test/v1", content_type)


def test_sdk_reassembles_the_stream() -> None:
    client = sdk_client(sse_for(replay.WEATHER_STREAM))
    stream = client.chat.completions.create(model=MODEL, messages=[{"role": "user", "content": "hi"}], stream=True)
    content, reasoning, usage = [], [], None
    finish_reason = None
    for chunk in stream:
        if chunk.usage is not None:
            usage = chunk.usage
        for choice in chunk.choices:
            content.append(choice.delta.content or "")
            reasoning.append(getattr(choice.delta, "reasoning_content", None) or "")
            finish_reason = choice.finish_reason or finish_reason
    assert "".join(content) == "It is sunny in Zürich."
    assert "".join(reasoning) == "Check the weather."
    assert finish_reason == "tool_calls"
    assert usage is not None and usage.prompt_tokens == 3000 and usage.completion_tokens > 0


def test_sdk_stream_helper_accumulates_tool_calls() -> None:
    client = sdk_client(sse_for(replay.WEATHER_STREAM, cut=13))
    with client.chat.completions.stream(model=MODEL, messages=[{"role": "user", "content": "hi"}]) as stream:
        for _ in stream:
            pass
        completion = stream.get_final_completion()
    message = completion.choices[0].message
    assert message.content == "It is sunny in Zürich."
    [call] = message.tool_calls
    assert (call.id, call.function.name, json.loads(call.function.arguments)) == (
        "tooluse_1", "get_weather", {"city": "Zürich"}
    )
    assert completion.choices[0].finish_reason == "tool_calls"


def test_sdk_raises_on_the_error_chunk() -> None:
    stream_frames = [frames.text("partial answer"), frames.exception_frame("ThrottlingException", "Too many")]
    client = sdk_client(sse_for(stream_frames))
    stream = client.chat.completions.create(model=MODEL, messages=[{"role": "user", "content": "hi"}], stream=True)
    seen = []
    with pytest.raises(openai.APIError, match="Too many"):
        for chunk in stream:
            seen.append(chunk)
    assert any(c.choices and c.choices[0].delta.content == "partial answer" for c in seen)


def test_sdk_reads_a_whole_completion() -> None:
    events = []
    assembler = ResponseAssembler(input_tokens=50)
    decoder = KiroEventDecoder()
    for event in decoder.feed(b"".join(replay.WEATHER_STREAM)):
        events += assembler.feed(event)
    events += assembler.finish()
    body = json.dumps(openai_completion(collect(events), MODEL, ID, CREATED)).encode()
    client = sdk_client(body, content_type="application/json")
    completion = client.chat.completions.create(model=MODEL, messages=[{"role": "user", "content": "hi"}])
    assert completion.choices[0].message.content == "It is sunny in Zürich."
    assert completion.choices[0].message.tool_calls[0].function.name == "get_weather"
    assert completion.usage is not None and completion.usage.total_tokens > 3000


def test_usage_reports_cache_only_when_the_upstream_did() -> None:
    from kiro_core.format.openai import usage_body

    assert "prompt_tokens_details" not in usage_body(Usage(10, 5))
    assert usage_body(Usage(10, 5, cache_reported=True))["prompt_tokens_details"] == {"cached_tokens": 0}
    assert "credits_used" not in usage_body(Usage(10, 5))
