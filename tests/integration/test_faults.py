"""Every upstream fault either recovers transparently or reaches the SDK as a clear error: never a hang, never a
truncated answer reported as complete."""

from __future__ import annotations

import time

import anthropic
import httpx
import openai
import pytest

from tests.integration.conftest import API_KEY
from tests.support import frames
from tests.support.fake_kiro import Corrupt, Drop, FakeKiro, Pause, Status, silent_stream, text_stream
from tests.support.gateway_process import GatewayProcess

USER = [{"role": "user", "content": "hello"}]


def oai(gateway: GatewayProcess) -> openai.OpenAI:
    return openai.OpenAI(base_url=f"{gateway.url}/v1", api_key=API_KEY, max_retries=0, timeout=30)


def ant(gateway: GatewayProcess) -> anthropic.Anthropic:
    return anthropic.Anthropic(base_url=gateway.url, api_key=API_KEY, max_retries=0, timeout=30)


def started_then(*tail: object) -> list:
    """Some answer text, a pause (so it reaches the client first), then the fault."""
    return [frames.text("Partial "), frames.text("answer"), Pause(0.4), *tail]


def test_throttling_429_is_retried_transparently(gateway: GatewayProcess, fake: FakeKiro) -> None:
    fake.fail_next("chat", 429, {"message": "Too many requests", "reason": None}, {"Retry-After": "0"})
    fake.enqueue_chat(text_stream("after the retry"))
    answer = oai(gateway).chat.completions.create(model="claude-sonnet-4.5", messages=USER)
    assert answer.choices[0].message.content == "after the retry"
    assert len(fake.requests("chat")) == 2


def test_persistent_5xx_keeps_the_upstream_status(gateway: GatewayProcess, fake: FakeKiro) -> None:
    fake.fail_next("chat", 503, {"message": "Service temporarily unavailable", "reason": None}, times=3)
    with pytest.raises(openai.APIStatusError) as caught:
        oai(gateway).chat.completions.create(model="claude-sonnet-4.5", messages=USER)
    assert caught.value.status_code == 503
    assert "Service temporarily unavailable" in caught.value.message
    assert len(fake.requests("chat")) == 3


def test_upstream_400_is_explained_in_anthropic_shape(gateway: GatewayProcess, fake: FakeKiro) -> None:
    fake.fail_next("chat", 400, {"message": "Invalid model. Please select a different model to continue.",
                                 "reason": "INVALID_MODEL_ID"})
    with pytest.raises(anthropic.BadRequestError) as caught:
        ant(gateway).messages.create(model="claude-nonexistent-9", max_tokens=10, messages=USER)
    assert caught.value.body["error"]["type"] == "invalid_request_error"
    assert "/v1/models" in caught.value.body["error"]["message"]
    assert len(fake.requests("chat")) == 1  # a 400 is not retried


def test_expired_access_token_403_refreshes_and_retries(gateway: GatewayProcess, fake: FakeKiro) -> None:
    oai(gateway).chat.completions.create(model="claude-sonnet-4.5", messages=USER)  # warm: token in hand
    before = fake.refresh_count
    fake.expire_access_tokens()
    fake.enqueue_chat(text_stream("fresh token works"))
    answer = oai(gateway).chat.completions.create(model="claude-sonnet-4.5", messages=USER)
    assert answer.choices[0].message.content == "fresh token works"
    assert fake.refresh_count == before + 1
    statuses = [r.headers.get("authorization") for r in fake.requests("chat")]
    assert len(statuses) == 3 and statuses[1] != statuses[2]  # the retry carried the new token


def test_silent_upstream_is_retried_before_anything_is_sent(gateway: GatewayProcess, fake: FakeKiro) -> None:
    fake.enqueue_chat(silent_stream(4.0), text_stream("second attempt"))
    with ant(gateway).messages.stream(model="claude-sonnet-4-5", max_tokens=100, messages=USER) as stream:
        text = "".join(stream.text_stream)
    assert text == "second attempt"
    assert len(fake.requests("chat")) == 2


def test_silent_upstream_on_every_attempt_is_a_timeout(gateway: GatewayProcess, fake: FakeKiro) -> None:
    fake.enqueue_chat(silent_stream(4.0), silent_stream(4.0))
    with pytest.raises(openai.APIStatusError) as caught:
        oai(gateway).chat.completions.create(model="claude-sonnet-4.5", messages=USER, stream=True)
    assert caught.value.status_code == 504
    assert "did not start answering" in caught.value.message


@pytest.mark.parametrize(
    "fault",
    [
        pytest.param([frames.exception_frame("ThrottlingException", "Rate exceeded mid-stream")], id="exception"),
        pytest.param([Corrupt()], id="corrupt-frame"),
        pytest.param([Drop()], id="dropped-connection"),
    ],
)
def test_mid_stream_failure_reaches_openai_sdk_as_error(gateway: GatewayProcess, fake: FakeKiro,
                                                        fault: list) -> None:
    fake.enqueue_chat(started_then(*fault))
    received = ""
    with pytest.raises(openai.APIError):
        stream = oai(gateway).chat.completions.create(model="claude-sonnet-4.5", messages=USER, stream=True)
        for chunk in stream:
            for choice in chunk.choices:
                received += choice.delta.content or ""
                assert choice.finish_reason is None  # never reported as complete
    assert received == "Partial answer"


@pytest.mark.parametrize(
    "fault",
    [
        pytest.param([frames.exception_frame("InternalServerException", "Boom")], id="exception"),
        pytest.param([Corrupt(part="prelude")], id="corrupt-prelude"),
        pytest.param([Drop(reset=True)], id="connection-reset"),
    ],
)
def test_mid_stream_failure_reaches_anthropic_sdk_as_error(gateway: GatewayProcess, fake: FakeKiro,
                                                           fault: list) -> None:
    fake.enqueue_chat(started_then(*fault))
    kinds: list[str] = []
    with pytest.raises(anthropic.APIError):
        with ant(gateway).messages.stream(model="claude-sonnet-4-5", max_tokens=100, messages=USER) as stream:
            for event in stream:
                kinds.append(event.type)
    assert "message_stop" not in kinds and "content_block_delta" in kinds


def test_keepalives_during_upstream_silence(gateway: GatewayProcess, fake: FakeKiro) -> None:
    fake.enqueue_chat([frames.text("before "), Pause(1.2), frames.text("after"), *text_stream("")],
                      [frames.text("before "), Pause(1.2), frames.text("after"), *text_stream("")])
    body = {"model": "claude-sonnet-4.5", "messages": USER, "stream": True}
    openai_raw = httpx.post(f"{gateway.url}/v1/chat/completions", json=body,
                            headers={"Authorization": f"Bearer {API_KEY}"}, timeout=30).text
    assert ": keep-alive" in openai_raw and openai_raw.rstrip().endswith("data: [DONE]")
    anthropic_raw = httpx.post(f"{gateway.url}/v1/messages", json={**body, "max_tokens": 50},
                               headers={"x-api-key": API_KEY}, timeout=30).text
    assert "event: ping" in anthropic_raw and "event: message_stop" in anthropic_raw


def test_status_script_after_pause_is_an_http_error(gateway: GatewayProcess, fake: FakeKiro) -> None:
    fake.enqueue_chat([Pause(0.1), Status(500, {"message": "Internal failure", "reason": None})],
                      text_stream("recovered"))
    answer = oai(gateway).chat.completions.create(model="claude-sonnet-4.5", messages=USER)
    assert answer.choices[0].message.content == "recovered"


def test_client_disconnect_cancels_the_upstream_read(gateway: GatewayProcess, fake: FakeKiro) -> None:
    slow_tail = [step for _ in range(30) for step in (Pause(0.2), frames.text("more "))]
    fake.enqueue_chat([frames.text("first "), *slow_tail, *text_stream("")])
    before = fake.abandoned_streams
    with httpx.stream("POST", f"{gateway.url}/v1/chat/completions", headers={"Authorization": f"Bearer {API_KEY}"},
                      json={"model": "claude-sonnet-4.5", "messages": USER, "stream": True}, timeout=30) as response:
        seen = b""
        for chunk in response.iter_bytes():
            seen += chunk
            if b"first" in seen:
                break
        assert b"first" in seen
    deadline = time.monotonic() + 3.0  # the upstream script would run for 6 s more
    while fake.abandoned_streams == before and time.monotonic() < deadline:
        time.sleep(0.05)
    assert fake.abandoned_streams == before + 1
    assert httpx.get(f"{gateway.url}/health").status_code == 200
