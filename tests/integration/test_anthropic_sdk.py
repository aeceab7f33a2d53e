"""The official `anthropic` SDK, sync and async, against the real gateway in front of the fake Kiro upstream."""

from __future__ import annotations

import asyncio

import anthropic
import httpx
import pytest

from tests.integration.conftest import API_KEY
from tests.support.fake_kiro import FakeKiro, text_stream, tool_call_stream
from tests.support.gateway_process import GatewayProcess
from tests.support.sdk_clients import anthropic_client

BASH_TOOL = {
    "name": "Bash",
    "description": "Run a shell command",
    "input_schema": {
        "type": "object",
        "properties": {"command": {"type": "string"}, "timeout": {"type": "number"}},
        "required": ["command"],
        "additionalProperties": False,
        "$schema": "http://json-schema.org/draft-07/schema#",
    },
}


client = anthropic_client


def test_message_with_thinking_not_streamed(gateway: GatewayProcess, fake: FakeKiro) -> None:
    fake.enqueue_chat(text_stream("Four.", thinking="2+2=4"))
    message = client(gateway).messages.create(
        model="claude-sonnet-4-5-20250929", max_tokens=1024,
        thinking={"type": "enabled", "budget_tokens": 2048},
        messages=[{"role": "user", "content": "2+2?"}],
    )
    assert [block.type for block in message.content] == ["thinking", "text"]
    assert message.content[0].thinking == "2+2=4" and message.content[0].signature
    assert message.content[1].text == "Four."
    assert message.stop_reason == "end_turn"
    assert message.model == "claude-sonnet-4-5-20250929"
    assert message.usage.output_tokens > 0 and message.usage.input_tokens > 0
    sent = fake.requests("chat")[-1].json["conversationState"]["currentMessage"]["userInputMessage"]
    assert "<max_thinking_length>2048</max_thinking_length>" in sent["content"]


def test_streamed_message_events_in_order(gateway: GatewayProcess, fake: FakeKiro) -> None:
    fake.enqueue_chat(text_stream("Hello from Kiro, streamed.", thinking="Greet.", pieces=5))
    with client(gateway).messages.stream(
        model="claude-sonnet-4-5", max_tokens=512, messages=[{"role": "user", "content": "hello"}]
    ) as stream:
        kinds = [event.type for event in stream]
        final = stream.get_final_message()
    assert kinds[0] == "message_start" and kinds[-1] == "message_stop"
    assert "content_block_delta" in kinds and kinds.count("content_block_start") == 2
    assert final.content[0].type == "thinking" and final.content[0].thinking == "Greet."
    assert final.content[1].text == "Hello from Kiro, streamed."
    assert final.stop_reason == "end_turn" and final.usage.output_tokens > 0


def test_claude_code_shaped_tool_conversation(gateway: GatewayProcess, fake: FakeKiro) -> None:
    """role:"system" inside messages, system blocks with cache_control, tool_use/tool_result, ?beta=true."""
    fake.enqueue_chat(tool_call_stream("Bash", {"command": "ls -la", "timeout": 5}, tool_use_id="tooluse_b1"))
    api = client(gateway)
    system = [{"type": "text", "text": "You are Claude Code.", "cache_control": {"type": "ephemeral"}}]
    messages: list[dict] = [
        {"role": "system", "content": "Extra system instructions."},
        {"role": "user", "content": [{"type": "text", "text": "<system-reminder>ctx</system-reminder>"},
                                     {"type": "text", "text": "List the files."}]},
    ]
    with api.messages.stream(model="claude-opus-4-5", max_tokens=32000, system=system, messages=messages,
                             tools=[BASH_TOOL], extra_query={"beta": "true"},
                             extra_headers={"anthropic-beta": "claude-code-20250219,interleaved-thinking-2025-05-14"}
                             ) as stream:
        final = stream.get_final_message()
    tool_use = [block for block in final.content if block.type == "tool_use"]
    assert final.stop_reason == "tool_use"
    assert tool_use[0].name == "Bash" and tool_use[0].id == "tooluse_b1"
    assert tool_use[0].input == {"command": "ls -la", "timeout": 5}
    first = fake.requests("chat")[-1].json["conversationState"]["currentMessage"]["userInputMessage"]
    assert "Extra system instructions." in first["content"] and "You are Claude Code." in first["content"]

    messages += [
        {"role": "assistant", "content": [block.model_dump(exclude_none=True) for block in final.content]},
        {"role": "user", "content": [{"type": "tool_result", "tool_use_id": "tooluse_b1",
                                      "content": [{"type": "text", "text": "README.md\nsrc"}]}]},
    ]
    fake.enqueue_chat(text_stream("There are two entries."))
    answer = api.messages.create(model="claude-opus-4-5", max_tokens=32000, system=system, messages=messages,
                                 tools=[BASH_TOOL])
    assert answer.content[-1].text == "There are two entries."
    context = fake.requests("chat")[-1].json["conversationState"]["currentMessage"]["userInputMessage"]
    result = context["userInputMessageContext"]["toolResults"][0]
    assert result["toolUseId"] == "tooluse_b1" and "README.md" in result["content"][0]["text"]


def test_count_tokens_is_realistic(gateway: GatewayProcess, fake: FakeKiro) -> None:
    api = client(gateway)
    short = api.messages.count_tokens(model="claude-sonnet-4-5", messages=[{"role": "user", "content": "hi"}])
    long_text = "The quick brown fox jumps over the lazy dog. " * 200
    long = api.messages.count_tokens(model="claude-sonnet-4-5", messages=[{"role": "user", "content": long_text}],
                                     tools=[BASH_TOOL], system="Be brief.")
    assert 0 < short.input_tokens < 20
    assert 2000 < long.input_tokens < 4000  # ~1,800 cl100k tokens of text, times Claude's correction
    assert fake.requests("chat") == []


def test_async_streaming(gateway: GatewayProcess, fake: FakeKiro) -> None:
    fake.enqueue_chat(text_stream("async anthropic", pieces=4))

    async def run() -> str:
        api = anthropic.AsyncAnthropic(base_url=gateway.url, api_key=API_KEY, max_retries=0)
        async with api.messages.stream(model="claude-haiku-4-5", max_tokens=100,
                                       thinking={"type": "disabled"},
                                       messages=[{"role": "user", "content": "hi"}]) as stream:
            return "".join([text async for text in stream.text_stream])

    assert asyncio.run(run()) == "async anthropic"
    sent = fake.requests("chat")[-1].json["conversationState"]["currentMessage"]["userInputMessage"]
    assert "<thinking_mode>" not in sent["content"]


def test_models_list_through_anthropic_sdk(gateway: GatewayProcess) -> None:
    models = list(client(gateway).models.list())
    assert any(model.id == "claude-sonnet-4.5" for model in models)


def test_wrong_key_gets_anthropic_authentication_error(gateway: GatewayProcess, fake: FakeKiro) -> None:
    with pytest.raises(anthropic.AuthenticationError) as caught:
        client(gateway, key="nope").messages.create(
            model="claude-sonnet-4-5", max_tokens=10, messages=[{"role": "user", "content": "hi"}]
        )
    assert caught.value.body["type"] == "error"
    assert caught.value.body["error"]["type"] == "authentication_error"
    assert fake.requests("chat") == []


def test_missing_max_tokens_is_invalid_request(gateway: GatewayProcess, fake: FakeKiro) -> None:
    response = httpx.post(f"{gateway.url}/v1/messages", headers={"x-api-key": API_KEY},
                          json={"model": "claude-sonnet-4-5", "messages": [{"role": "user", "content": "hi"}]})
    assert response.status_code == 400
    body = response.json()
    assert body["type"] == "error" and body["error"]["type"] == "invalid_request_error"
    assert "max_tokens" in body["error"]["message"]
    assert fake.requests("chat") == []


def test_unknown_path_gets_anthropic_shape_404(gateway: GatewayProcess) -> None:
    response = httpx.post(f"{gateway.url}/v1/messages/nope", headers={"x-api-key": API_KEY}, json={})
    assert response.status_code == 404
    assert response.json()["type"] == "error"


def test_base_url_answers_head_probes(gateway: GatewayProcess) -> None:
    """Claude Code sends `HEAD /` before its first request; a 405 there makes it report a connection problem."""
    assert httpx.head(gateway.url).status_code == 200
    assert httpx.head(f"{gateway.url}/health").status_code == 200
