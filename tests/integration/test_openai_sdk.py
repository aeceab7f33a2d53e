"""The official `openai` SDK, sync and async, against the real gateway in front of the fake Kiro upstream."""

from __future__ import annotations

import asyncio
import json

import httpx
import openai
import pytest

from tests.integration.conftest import API_KEY
from tests.support.fake_kiro import FakeKiro, text_stream, tool_call_stream, truncated_tool_stream
from tests.support.gateway_process import GatewayProcess
from tests.support.sdk_clients import openai_client

WEATHER_TOOL = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "description": "Current weather for a city",
        "parameters": {
            "type": "object",
            "properties": {"city": {"type": "string"}},
            "required": ["city"],
            "additionalProperties": False,
        },
    },
}


client = openai_client


def test_plain_answer_with_reasoning_not_streamed(gateway: GatewayProcess, fake: FakeKiro) -> None:
    fake.enqueue_chat(text_stream("Paris is the capital.", thinking="Capital of France?"))
    response = client(gateway).chat.completions.create(
        model="claude-sonnet-4-5", messages=[{"role": "user", "content": "Capital of France?"}]
    )
    choice = response.choices[0]
    assert choice.message.content == "Paris is the capital."
    assert choice.message.model_extra["reasoning_content"] == "Capital of France?"
    assert choice.finish_reason == "stop"
    assert response.model == "claude-sonnet-4-5"
    assert response.usage.completion_tokens > 0 and response.usage.prompt_tokens > 0
    sent = fake.requests("chat")[-1].json
    assert sent["conversationState"]["currentMessage"]["userInputMessage"]["modelId"] == "claude-sonnet-4.5"


def test_streamed_answer_arrives_in_pieces_with_usage(gateway: GatewayProcess, fake: FakeKiro) -> None:
    fake.enqueue_chat(text_stream("One two three four five six.", thinking="Counting.", pieces=6))
    stream = client(gateway).chat.completions.create(
        model="claude-sonnet-4.5", messages=[{"role": "user", "content": "count"}], stream=True,
        stream_options={"include_usage": True},
    )
    content, reasoning, finishes, usage, chunks = "", "", [], None, 0
    for chunk in stream:
        chunks += 1
        if chunk.usage:
            usage = chunk.usage
        for choice in chunk.choices:
            content += choice.delta.content or ""
            reasoning += (choice.delta.model_extra or {}).get("reasoning_content") or ""
            if choice.finish_reason:
                finishes.append(choice.finish_reason)
    assert content == "One two three four five six."
    assert reasoning == "Counting."
    assert finishes == ["stop"]
    assert usage is not None and usage.total_tokens == usage.prompt_tokens + usage.completion_tokens
    assert chunks >= 4  # streamed, not one blob


def test_tool_call_then_tool_result_over_two_turns(gateway: GatewayProcess, fake: FakeKiro) -> None:
    fake.enqueue_chat(tool_call_stream("get_weather", {"city": "Paris", "unit": "celsius"}, text="Checking.",
                                       tool_use_id="tooluse_w1", fragment_size=3))
    api = client(gateway)
    messages: list[dict] = [{"role": "user", "content": "Weather in Paris?"}]
    stream = api.chat.completions.create(model="claude-sonnet-4.5", messages=messages, tools=[WEATHER_TOOL],
                                         stream=True)
    calls: dict[int, dict] = {}
    finish = None
    for chunk in stream:
        for choice in chunk.choices:
            for delta in choice.delta.tool_calls or []:
                entry = calls.setdefault(delta.index, {"id": "", "name": "", "arguments": ""})
                entry["id"] += delta.id or ""
                entry["name"] += (delta.function.name or "") if delta.function else ""
                entry["arguments"] += (delta.function.arguments or "") if delta.function else ""
            finish = choice.finish_reason or finish
    assert finish == "tool_calls"
    assert list(calls) == [0]
    assert calls[0]["name"] == "get_weather" and calls[0]["id"] == "tooluse_w1"
    assert json.loads(calls[0]["arguments"]) == {"city": "Paris", "unit": "celsius"}
    first_payload = fake.requests("chat")[-1].json["conversationState"]["currentMessage"]["userInputMessage"]
    schema = first_payload["userInputMessageContext"]["tools"][0]["toolSpecification"]["inputSchema"]["json"]
    assert "additionalProperties" not in schema

    messages += [
        {"role": "assistant", "content": None, "tool_calls": [
            {"id": "tooluse_w1", "type": "function",
             "function": {"name": "get_weather", "arguments": calls[0]["arguments"]}}]},
        {"role": "tool", "tool_call_id": "tooluse_w1", "content": "18°C and sunny"},
    ]
    fake.enqueue_chat(text_stream("It is 18°C and sunny in Paris."))
    answer = api.chat.completions.create(model="claude-sonnet-4.5", messages=messages, tools=[WEATHER_TOOL])
    assert answer.choices[0].message.content == "It is 18°C and sunny in Paris."
    state = fake.requests("chat")[-1].json["conversationState"]
    results = state["currentMessage"]["userInputMessage"]["userInputMessageContext"]["toolResults"]
    assert results[0]["toolUseId"] == "tooluse_w1" and results[0]["content"][0]["text"] == "18°C and sunny"
    assert state["history"][-1]["assistantResponseMessage"]["toolUses"][0]["input"] == {
        "city": "Paris", "unit": "celsius"}


def test_non_streamed_tool_call(gateway: GatewayProcess, fake: FakeKiro) -> None:
    fake.enqueue_chat(tool_call_stream("get_weather", {"city": "Oslo"}, tool_use_id="tooluse_o1"))
    answer = client(gateway).chat.completions.create(
        model="claude-sonnet-4.5", messages=[{"role": "user", "content": "Oslo?"}], tools=[WEATHER_TOOL]
    )
    choice = answer.choices[0]
    assert choice.finish_reason == "tool_calls"
    assert choice.message.tool_calls[0].function.name == "get_weather"
    assert json.loads(choice.message.tool_calls[0].function.arguments) == {"city": "Oslo"}


def test_truncated_tool_call_is_reported_not_passed_on(gateway: GatewayProcess, fake: FakeKiro) -> None:
    fake.enqueue_chat(truncated_tool_stream("get_weather", {"city": "A very long city name " * 20}, keep=0.4))
    answer = client(gateway).chat.completions.create(
        model="claude-sonnet-4.5", messages=[{"role": "user", "content": "go"}], tools=[WEATHER_TOOL]
    )
    choice = answer.choices[0]
    assert choice.finish_reason == "length"
    assert not choice.message.tool_calls
    assert "get_weather" in (choice.message.content or "")


def test_async_client_streams_too(gateway: GatewayProcess, fake: FakeKiro) -> None:
    fake.enqueue_chat(text_stream("async works", pieces=3))

    async def run() -> str:
        api = openai.AsyncOpenAI(base_url=f"{gateway.url}/v1", api_key=API_KEY, max_retries=0)
        text = ""
        async with api:
            stream = await api.chat.completions.create(
                model="claude-haiku-4.5", messages=[{"role": "user", "content": "hi"}], stream=True
            )
            async for chunk in stream:
                for choice in chunk.choices:
                    text += choice.delta.content or ""
        return text

    assert asyncio.run(run()) == "async works"


def test_models_are_listed_from_upstream(gateway: GatewayProcess) -> None:
    ids = [model.id for model in client(gateway).models.list()]
    assert "claude-sonnet-4.5" in ids and "claude-opus-4.5" in ids
    assert "auto" not in ids  # hidden from the list (Cursor has its own "auto")


def test_wrong_key_is_refused_before_upstream(gateway: GatewayProcess, fake: FakeKiro) -> None:
    with pytest.raises(openai.AuthenticationError) as caught:
        client(gateway, key="wrong-key").chat.completions.create(
            model="claude-sonnet-4.5", messages=[{"role": "user", "content": "hi"}]
        )
    assert caught.value.status_code == 401
    assert caught.value.body["type"] == "invalid_request_error"
    assert fake.requests("chat") == []


def test_missing_key_is_refused(gateway: GatewayProcess) -> None:
    response = httpx.post(f"{gateway.url}/v1/chat/completions", json={"model": "x", "messages": []})
    assert response.status_code == 401
    assert set(response.json()["error"]) >= {"message", "type", "code"}


@pytest.mark.parametrize(
    "body, fragment",
    [
        ({"model": "claude-sonnet-4.5"}, "messages"),
        ({"model": "claude-sonnet-4.5", "messages": []}, "messages"),
        ({"model": "claude-sonnet-4.5", "messages": [{"role": "user", "content": 42}]}, "content"),
    ],
)
def test_malformed_requests_get_a_precise_400(gateway: GatewayProcess, fake: FakeKiro, body: dict,
                                              fragment: str) -> None:
    response = httpx.post(f"{gateway.url}/v1/chat/completions", json=body,
                          headers={"Authorization": f"Bearer {API_KEY}"})
    assert response.status_code == 400
    error = response.json()["error"]
    assert error["type"] == "invalid_request_error" and fragment in error["message"]
    assert fake.requests("chat") == []


def test_sdk_raises_bad_request_for_a_message_without_role(gateway: GatewayProcess, fake: FakeKiro) -> None:
    with pytest.raises(openai.BadRequestError) as caught:
        client(gateway).chat.completions.create(model="claude-sonnet-4.5",
                                                messages=[{"content": "no role"}])
    assert caught.value.status_code == 400
    assert fake.requests("chat") == []


def test_invalid_json_gets_openai_error_shape(gateway: GatewayProcess) -> None:
    response = httpx.post(f"{gateway.url}/v1/chat/completions", content=b"{not json",
                          headers={"Authorization": f"Bearer {API_KEY}", "Content-Type": "application/json"})
    assert response.status_code == 400
    assert response.json()["error"]["type"] == "invalid_request_error"


def test_oversized_body_is_refused_with_413(gateway: GatewayProcess, fake: FakeKiro) -> None:
    huge = "x" * (17 * 1024 * 1024)  # over the default 16 MiB bound
    response = httpx.post(f"{gateway.url}/v1/chat/completions", headers={"Authorization": f"Bearer {API_KEY}"},
                          json={"model": "claude-sonnet-4.5", "messages": [{"role": "user", "content": huge}]},
                          timeout=60)
    assert response.status_code == 413
    assert "limit" in response.json()["error"]["message"]
    assert fake.requests("chat") == []


def test_model_retrieval(gateway: GatewayProcess) -> None:
    assert client(gateway).models.retrieve("claude-opus-4.5").id == "claude-opus-4.5"
    with pytest.raises(openai.NotFoundError):
        client(gateway).models.retrieve("no-such-model")
