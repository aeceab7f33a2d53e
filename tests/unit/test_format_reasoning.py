"""Native reasoning in the three client shapes: signatures verbatim, redacted blocks, the Responses envelope."""

from __future__ import annotations

import json

from kiro_core.convert.reasoning import unseal
from kiro_core.events import ContentDelta, Finish, ThinkingDelta, Usage
from kiro_core.format.anthropic import AnthropicStreamFormatter, anthropic_message
from kiro_core.format.openai import OpenAIStreamFormatter
from kiro_core.format.responses import ResponsesStreamFormatter, responses_object
from kiro_core.stream import collect
from kiro_core.unified import ReasoningReplay

FINISH = Finish("stop", Usage(10, 5))
CLAUDE = [ThinkingDelta("step one"), ThinkingDelta("", "SIG-abc", replay_text="step one"), ContentDelta("Hi"),
          FINISH]
GPT = [ContentDelta("Hi"), ThinkingDelta("", ".KTR~~blob", replay_text="..."), FINISH]
REDACTED = [ThinkingDelta("", None, "QUJD", ""), ContentDelta("Hi"), FINISH]


def sse_data(raw: bytes) -> list[dict]:
    return [json.loads(line[6:]) for line in raw.decode().splitlines() if line.startswith("data: {")]


def test_anthropic_stream_signature_verbatim_and_redacted_block() -> None:
    formatter = AnthropicStreamFormatter("m", "msg_1", 3)
    events = sse_data(formatter.format(CLAUDE))
    assert {"type": "signature_delta", "signature": "SIG-abc"} in [e.get("delta") for e in events]
    events = sse_data(AnthropicStreamFormatter("m", "msg_2", 3).format(REDACTED))
    starts = [e["content_block"] for e in events if e["type"] == "content_block_start"]
    assert starts == [{"type": "redacted_thinking", "data": "QUJD"}, {"type": "text", "text": ""}]


def test_anthropic_signature_only_opens_no_block() -> None:
    events = sse_data(AnthropicStreamFormatter("m", "msg_3", 3).format(GPT))
    assert [e["content_block"]["type"] for e in events if e["type"] == "content_block_start"] == ["text"]


def test_anthropic_message_has_redacted_blocks() -> None:
    body = anthropic_message(collect(REDACTED), "m", "msg_4", 3)
    assert [b["type"] for b in body["content"]] == ["redacted_thinking", "text"]


def test_openai_chat_skips_signature_frames() -> None:
    raw = OpenAIStreamFormatter("m", "c1", 0).format(CLAUDE).decode()
    assert raw.count("reasoning_content") == 1 and "SIG-abc" not in raw


def test_responses_encrypted_content_only_when_included() -> None:
    plain = sse_data(ResponsesStreamFormatter("m", "r1", 0, {}).format(CLAUDE))
    assert "encrypted_content" not in json.dumps(plain)
    events = sse_data(ResponsesStreamFormatter("m", "r2", 0, {}, include_encrypted=True).format(CLAUDE))
    done = [e["item"] for e in events if e["type"] == "response.output_item.done"]
    assert done[0]["type"] == "reasoning" and done[0]["summary"][0]["text"] == "step one"
    assert unseal(done[0]["encrypted_content"]) == ReasoningReplay("step one", "SIG-abc")


def test_responses_gpt_placeholder_gets_item_without_summary() -> None:
    events = sse_data(ResponsesStreamFormatter("m", "r3", 0, {}, include_encrypted=True).format(GPT))
    done = [e["item"] for e in events if e["type"] == "response.output_item.done"]
    assert [i["type"] for i in done] == ["message", "reasoning"]
    assert done[1]["summary"] == [] and unseal(done[1]["encrypted_content"]) == ReasoningReplay("...", ".KTR~~blob")
    assert not [e for e in events if e["type"].startswith("response.reasoning_summary")]
    body = responses_object(collect(GPT), "m", "r4", 0, {}, include_encrypted=True)
    assert unseal(body["output"][0]["encrypted_content"]) == ReasoningReplay("...", ".KTR~~blob")
