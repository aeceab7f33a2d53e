"""A failed answer is never reported as completed, however the upstream's frames are split across reads (issue 21).

The fake controls what arrives in one network write (`Together`): the text and the exception frame together, the
exception with the end of the stream, before or after trailer frames. Whatever the split, every client shape sees
the partial text and then its own failure (Anthropic `error`, OpenAI error chunk, Responses `response.failed`), and
the upstream is asked once: a failure after output is never retried into a fresh answer that looks complete.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator
from typing import Any

import anthropic
import httpx
import openai
import pytest

from gateway.upstream.pump import UpstreamPump
from tests.integration.conftest import API_KEY
from tests.support import frames
from tests.support.fake_kiro import FakeKiro, Pause, Together
from tests.support.fake_kiro_scripts import failure_timings
from tests.support.gateway_process import GatewayProcess

MODEL = "claude-sonnet-4.5"
TEXT = "Partial answer"
MESSAGE = "Rate exceeded mid-stream"
TIMINGS = failure_timings(TEXT, message=MESSAGE)
STRESS_ROUNDS = 200
CHAT_REQUEST = {"conversationState": {"chatTriggerType": "MANUAL", "conversationId": "c1", "currentMessage": {
    "userInputMessage": {"content": "hi", "modelId": MODEL, "origin": "AI_EDITOR"}}}}
HEADERS = {"authorization": f"Bearer {API_KEY}", "x-api-key": API_KEY}
BODIES = {
    "/v1/chat/completions": {"model": MODEL, "messages": [{"role": "user", "content": "hi"}], "stream": True},
    "/v1/messages": {"model": MODEL, "max_tokens": 64, "messages": [{"role": "user", "content": "hi"}],
                     "stream": True},
    "/v1/responses": {"model": MODEL, "input": "hi", "stream": True},
}


@pytest.fixture(scope="module")
def http(local_gateway: GatewayProcess) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=local_gateway.url, headers=HEADERS, timeout=30) as client:
        yield client


def sse_events(raw: str) -> list[tuple[str | None, Any]]:
    """(event name or None, decoded data) per SSE block; comments and `[DONE]` kept out, `[DONE]` as ("done", None)."""
    events: list[tuple[str | None, Any]] = []
    for block in raw.split("\n\n"):
        name, data = None, None
        for line in block.split("\n"):
            if line.startswith("event: "):
                name = line[len("event: "):]
            elif line.startswith("data: "):
                data = line[len("data: "):]
        if data == "[DONE]":
            events.append(("done", None))
        elif data is not None:
            events.append((name, json.loads(data)))
    return events


def assert_reported_as_failed(route: str, raw: str) -> None:
    """The route's SSE: the partial text, then its failure as the last event, and nothing that says "complete"."""
    events = sse_events(raw)
    assert events, raw
    if route == "/v1/chat/completions":
        chunks = [data for _name, data in events if data is not None and "choices" in data]
        assert all(choice["finish_reason"] is None for chunk in chunks for choice in chunk["choices"]), raw
        assert "".join(choice["delta"].get("content") or "" for chunk in chunks for choice in chunk["choices"]) == TEXT
        assert ("done", None) not in events, raw
        last = events[-1][1]
        assert last["error"]["code"] == "rate_limit_exceeded" and MESSAGE in last["error"]["message"], raw
    elif route == "/v1/messages":
        names = [name for name, _data in events]
        assert "message_stop" not in names and "content_block_stop" not in names, raw
        assert not any(name == "message_delta" and data["delta"].get("stop_reason") for name, data in events), raw
        text = "".join(data["delta"].get("text", "") for name, data in events if name == "content_block_delta")
        assert text == TEXT, raw
        name, last = events[-1]
        assert name == "error" and last["error"]["type"] == "rate_limit_error" and MESSAGE in last["error"]["message"]
    else:
        names = [name for name, _data in events]
        assert "response.completed" not in names and "response.incomplete" not in names, raw
        assert "response.output_item.done" not in names, raw  # the partial message is never presented as finished
        name, last = events[-1]
        assert name == "response.failed", raw
        assert last["response"]["error"]["code"] == "rate_limit_exceeded"
        assert [item["status"] for item in last["response"]["output"]] == ["incomplete"]
        assert last["response"]["output"][0]["content"][0]["text"] == TEXT


@pytest.mark.parametrize("route", list(BODIES))
@pytest.mark.parametrize("timing", list(TIMINGS))
def test_a_failure_after_text_is_reported_in_stream_whatever_the_split(http: httpx.Client, fake: FakeKiro,
                                                                       route: str, timing: str) -> None:
    fake.enqueue_chat(TIMINGS[timing])
    response = http.post(route, json=BODIES[route])
    assert response.status_code == 200, response.text
    assert_reported_as_failed(route, response.text)
    assert len(fake.requests("chat")) == 1  # never retried after output: a retry would answer as if nothing failed


@pytest.mark.parametrize("route", list(BODIES))
def test_a_failure_after_text_fails_a_whole_answer_too(http: httpx.Client, fake: FakeKiro, route: str) -> None:
    fake.enqueue_chat(TIMINGS["all-in-one-write"])
    response = http.post(route, json={**BODIES[route], "stream": False})
    assert response.status_code == 429, response.text
    error = response.json()["error"]
    assert MESSAGE in error["message"]
    assert len(fake.requests("chat")) == 1


@pytest.mark.parametrize("timing", ["all-in-one-write", "with-the-close", "after-trailer"])
def test_the_sdks_raise_on_a_failure_in_one_write(local_gateway: GatewayProcess, fake: FakeKiro, timing: str) -> None:
    fake.enqueue_chat(TIMINGS[timing], TIMINGS[timing])
    received = ""
    oai = openai.OpenAI(base_url=f"{local_gateway.url}/v1", api_key=API_KEY, max_retries=0, timeout=30)
    with pytest.raises(openai.APIError, match=MESSAGE):
        for chunk in oai.chat.completions.create(model=MODEL, messages=[{"role": "user", "content": "hi"}],
                                                 stream=True):
            for choice in chunk.choices:
                received += choice.delta.content or ""
                assert choice.finish_reason is None
    assert received == TEXT
    ant = anthropic.Anthropic(base_url=local_gateway.url, api_key=API_KEY, max_retries=0, timeout=30)
    kinds: list[str] = []
    with pytest.raises(anthropic.APIError, match=MESSAGE):
        with ant.messages.stream(model=MODEL, max_tokens=64, messages=[{"role": "user", "content": "hi"}]) as stream:
            kinds.extend(event.type for event in stream)
    assert "message_stop" not in kinds and "content_block_delta" in kinds
    assert len(fake.requests("chat")) == 2


@pytest.mark.parametrize("route", list(BODIES))
def test_stress_a_failure_is_never_completed(http: httpx.Client, fake: FakeKiro, route: str) -> None:
    """The same answer `STRESS_ROUNDS` times through one gateway, cycling through every split."""
    names = list(TIMINGS)
    for round_number in range(STRESS_ROUNDS):
        timing = names[round_number % len(names)]
        fake.enqueue_chat(TIMINGS[timing])
        response = http.post(route, json=BODIES[route])
        assert response.status_code == 200, (round_number, timing, response.text)
        try:
            assert_reported_as_failed(route, response.text)
        except AssertionError as error:
            raise AssertionError(f"round {round_number} ({timing}): {error}") from None
        assert len(fake.requests("chat")) == round_number + 1, (round_number, timing)


def test_an_answer_closed_early_gives_its_connection_back(fake: FakeKiro) -> None:
    """Closing the pump as soon as the failure is read (its reader may be finishing the body at that moment) must
    free the pool slot: a reader cancelled natively inside httpcore's clean-up kept the connection checked out for
    good, and after `max_connections` such answers every upstream request waited for a slot forever."""

    async def scenario() -> None:
        limits = httpx.Limits(max_connections=1, max_keepalive_connections=1)
        failure = frames.exception_frame("ThrottlingException", MESSAGE)
        async with httpx.AsyncClient(base_url=fake.url, limits=limits, timeout=httpx.Timeout(10, pool=10)) as client:
            for _ in range(20):
                fake.enqueue_chat([frames.text("first"), Pause(0.01), Together((frames.text("second"), failure),
                                                                                close=True)])
                request = client.build_request("POST", "/generateAssistantResponse", json=CHAT_REQUEST,
                                               headers={"authorization": f"Bearer {fake.issue_access_token()}"})
                response = await client.send(request, stream=True)
                pump = UpstreamPump(response.aiter_raw())
                received = b""
                while failure not in received:  # what the pipeline does: stop at the failure, then close
                    received += await pump.take(pump.time() + 10) or b""
                await pump.aclose()
                await response.aclose()  # a leaked slot makes the next send raise PoolTimeout

    asyncio.run(scenario())
