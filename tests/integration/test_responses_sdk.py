"""The official `openai` SDK's Responses API (what Codex CLI speaks) against the real gateway and the fake Kiro."""

from __future__ import annotations

import json
from typing import Any

import httpx
import openai
import pytest

from tests.integration.conftest import API_KEY
from tests.support import frames
from tests.support.fake_kiro import FakeKiro, Pause, text_stream, tool_call_stream
from tests.support.fake_kiro_scripts import failure_timings, finish_frames
from tests.support.gateway_process import GatewayProcess

MODEL = "claude-sonnet-4.5"
WEATHER_TOOL = {
    "type": "function",
    "name": "get_weather",
    "description": "Current weather for a city",
    "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"],
                   "additionalProperties": False},
    "strict": True,
}


def client(gateway: GatewayProcess, key: str = API_KEY) -> openai.OpenAI:
    return openai.OpenAI(base_url=f"{gateway.url}/v1", api_key=key, max_retries=0, timeout=30)


def kiro_state(fake: FakeKiro) -> dict[str, Any]:
    return fake.requests("chat")[-1].json["conversationState"]


def test_text_answer_not_streamed(gateway: GatewayProcess, fake: FakeKiro) -> None:
    fake.enqueue_chat(text_stream("Paris is the capital.", thinking="Capital of France?"))
    response = client(gateway).responses.create(model=MODEL, input="Capital of France?",
                                                instructions="Answer briefly.")
    assert response.status == "completed" and response.id.startswith("resp_")
    assert response.output_text == "Paris is the capital."
    assert [item.type for item in response.output] == ["reasoning", "message"]
    assert response.output[0].summary[0].text == "Capital of France?"
    assert response.model == MODEL and response.instructions == "Answer briefly."
    assert response.usage is not None and response.usage.input_tokens > 0 and response.usage.output_tokens > 0
    current = kiro_state(fake)["currentMessage"]["userInputMessage"]
    assert "Answer briefly." in current["content"] and "Capital of France?" in current["content"]


def test_text_answer_streamed(gateway: GatewayProcess, fake: FakeKiro) -> None:
    script = text_stream("One two three four five six.", pieces=6)
    # frames that arrive together may leave in one delta: a pause makes "streamed in pieces" independent of timing
    fake.enqueue_chat([*script[:3], Pause(0.05), *script[3:]])
    with client(gateway).responses.stream(model=MODEL, input="count", reasoning={"effort": "none"}) as stream:
        deltas = [event.delta for event in stream if event.type == "response.output_text.delta"]
        final = stream.get_final_response()
    assert "".join(deltas) == "One two three four five six." and len(deltas) >= 2
    assert final.output_text == "One two three four five six." and final.status == "completed"
    assert final.usage is not None and final.usage.total_tokens == final.usage.input_tokens + final.usage.output_tokens
    assert "<thinking_mode>" not in kiro_state(fake)["currentMessage"]["userInputMessage"]["content"]


def test_silence_mid_answer_is_bridged_by_keepalives(gateway: GatewayProcess, fake: FakeKiro) -> None:
    fake.enqueue_chat([frames.text("slow "), Pause(1.0), frames.text("answer"), *finish_frames()])
    with httpx.stream("POST", f"{gateway.url}/v1/responses", timeout=30, headers={"Authorization": f"Bearer {API_KEY}"},
                      json={"model": MODEL, "input": "hi", "stream": True}) as response:
        raw = response.read().decode()
    assert ": keep-alive\n\n" in raw and "event: response.completed" in raw
    fake.enqueue_chat([frames.text("slow "), Pause(1.0), frames.text("answer"), *finish_frames()])
    with client(gateway).responses.stream(model=MODEL, input="hi") as stream:  # the SDK skips the comments
        assert stream.get_final_response().output_text == "slow answer"


def test_function_call_round_trip_over_two_turns(gateway: GatewayProcess, fake: FakeKiro) -> None:
    fake.enqueue_chat(tool_call_stream("get_weather", {"city": "Paris"}, text="Checking.", tool_use_id="tooluse_w1",
                                       fragment_size=3))
    api = client(gateway)
    history: list[Any] = [{"role": "user", "content": "Weather in Paris?"}]
    with api.responses.stream(model=MODEL, input=history, tools=[WEATHER_TOOL], store=False) as stream:
        final = stream.get_final_response()
    calls = [item for item in final.output if item.type == "function_call"]
    assert len(calls) == 1 and calls[0].call_id == "tooluse_w1" and calls[0].name == "get_weather"
    assert json.loads(calls[0].arguments) == {"city": "Paris"}
    assert final.output_text == "Checking."

    # Codex-style second turn: the whole history, the previous output items, then the tool's output.
    history += [item.model_dump(exclude_none=True) for item in final.output]
    history.append({"type": "function_call_output", "call_id": "tooluse_w1", "output": "18°C and sunny"})
    fake.enqueue_chat(text_stream("It is 18°C and sunny in Paris."))
    answer = api.responses.create(model=MODEL, input=history, tools=[WEATHER_TOOL], store=False)
    assert answer.output_text == "It is 18°C and sunny in Paris."
    state = kiro_state(fake)
    results = state["currentMessage"]["userInputMessage"]["userInputMessageContext"]["toolResults"]
    assert results[0]["toolUseId"] == "tooluse_w1" and results[0]["content"][0]["text"] == "18°C and sunny"
    assistant = state["history"][-1]["assistantResponseMessage"]
    assert assistant["toolUses"][0]["input"] == {"city": "Paris"} and "Checking." in assistant["content"]


@pytest.mark.parametrize("timing", ["in-pieces", "all-in-one-write", "with-the-close", "after-trailer"])
def test_mid_stream_failure_is_reported_as_failed(gateway: GatewayProcess, fake: FakeKiro, timing: str) -> None:
    # the fake pins down which frames arrive in one read; "all-in-one-write" used to be retried into a new answer
    fake.enqueue_chat(failure_timings("Partial answer", message="Rate exceeded mid-stream")[timing])
    with client(gateway).responses.stream(model=MODEL, input="hi") as stream:
        events = list(stream)
        types = [event.type for event in events]
        assert types[-1] == "response.failed" and "response.completed" not in types
        assert "response.output_item.done" not in types  # the partial message is never presented as finished
        error = events[-1].response.error
        assert error.code == "rate_limit_exceeded" and "Rate exceeded mid-stream" in error.message
        with pytest.raises(RuntimeError):
            stream.get_final_response()
    assert len(fake.requests("chat")) == 1


def test_codex_shaped_request_gets_items_and_completion(gateway: GatewayProcess, fake: FakeKiro) -> None:
    """Raw SSE as Codex reads it: `event:` lines, complete items in `output_item.done`, then `response.completed`."""
    fake.enqueue_chat(tool_call_stream("exec_command", {"cmd": "ls"}, tool_use_id="tooluse_c1"))
    body = {
        "model": MODEL, "stream": True, "store": False, "include": ["reasoning.encrypted_content"],
        "parallel_tool_calls": False, "reasoning": {"effort": "medium", "summary": "auto"},
        "input": [
            {"type": "message", "role": "developer", "content": [{"type": "input_text", "text": "Be Codex."}]},
            {"type": "message", "role": "user", "content": [{"type": "input_text", "text": "list files"}]},
        ],
        "tools": [{"type": "function", "name": "exec_command", "parameters": {
            "type": "object", "properties": {"cmd": {"type": "string"}}, "required": ["cmd"]}},
            {"type": "namespace", "name": "mcp__x", "tools": []}, {"type": "web_search"}],
    }
    with httpx.stream("POST", f"{gateway.url}/v1/responses", json=body, timeout=30,
                      headers={"Authorization": f"Bearer {API_KEY}"}) as response:
        assert response.status_code == 200 and response.headers["content-type"].startswith("text/event-stream")
        raw = response.read().decode()
    events = []
    for block in raw.split("\n\n"):
        lines = [line for line in block.split("\n") if line and not line.startswith(":")]
        if lines:
            assert lines[0].startswith("event: ") and lines[1].startswith("data: ")
            events.append(json.loads(lines[1][len("data: "):]))
    assert events[0]["type"] == "response.created" and events[-1]["type"] == "response.completed"
    done = [e["item"] for e in events if e["type"] == "response.output_item.done"]
    assert done[-1]["type"] == "function_call" and done[-1]["call_id"] == "tooluse_c1"
    assert json.loads(done[-1]["arguments"]) == {"cmd": "ls"}
    sent = kiro_state(fake)["currentMessage"]["userInputMessage"]
    # namespace tools are dropped; the hosted web_search tool becomes the gateway's own web_search function (issue 12)
    assert [t["toolSpecification"]["name"] for t in sent["userInputMessageContext"]["tools"]] == \
        ["exec_command", "web_search"]


def test_previous_response_id_is_a_clear_400(gateway: GatewayProcess, fake: FakeKiro) -> None:
    with pytest.raises(openai.BadRequestError) as caught:
        client(gateway).responses.create(model=MODEL, input="again", previous_response_id="resp_123")
    assert "full history" in caught.value.message
    assert fake.requests("chat") == []


def test_malformed_input_is_a_precise_400(gateway: GatewayProcess, fake: FakeKiro) -> None:
    response = httpx.post(f"{gateway.url}/v1/responses", headers={"Authorization": f"Bearer {API_KEY}"},
                          json={"model": MODEL, "input": [{"type": "function_call", "name": "f"}]})
    assert response.status_code == 400
    error = response.json()["error"]
    assert error["type"] == "invalid_request_error" and "call_id" in error["message"]
    assert fake.requests("chat") == []


def test_wrong_key_is_refused_before_upstream(gateway: GatewayProcess, fake: FakeKiro) -> None:
    with pytest.raises(openai.AuthenticationError) as caught:
        client(gateway, key="wrong-key").responses.create(model=MODEL, input="hi")
    assert caught.value.status_code == 401
    assert fake.requests("chat") == []
