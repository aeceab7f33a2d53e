"""Credits end to end: stable conversation ids at the upstream, credits in every answer shape, incomplete streams made
visible, and the counters behind `GET /v1/usage` and `kiro-gateway usage` (local SQLite, and DynamoDB on moto shared
by two gateway processes)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import anthropic
import httpx
import openai
import pytest

from tests.integration.conftest import API_KEY, aws_backed, gateway_env
from tests.support import frames
from tests.support.fake_kiro import FakeKiro, text_stream
from tests.support.gateway_process import GatewayProcess

SESSION_A = "3b7f9c1e-2a4d-4e8f-9b1c-0d2e3f4a5b6c"
SESSION_B = "9d8c7b6a-5f4e-4d3c-8b2a-1f0e9d8c7b6a"


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[FakeKiro, GatewayProcess]]:
    home = tmp_path_factory.mktemp("credits-home")
    with FakeKiro() as fake, GatewayProcess(gateway_env(fake, home), home) as gateway:
        yield fake, gateway


def claude_ask(gateway: GatewayProcess, session: str | None, key: str = API_KEY, text: str = "hello") -> Any:
    client = anthropic.Anthropic(base_url=gateway.url, api_key=key, max_retries=0)
    metadata = {"user_id": json.dumps({"device_id": "dev", "session_id": session})} if session else None
    return client.messages.create(model="claude-sonnet-4-5", max_tokens=100, metadata=metadata or anthropic.NOT_GIVEN,
                                  messages=[{"role": "user", "content": text}])


def conversation_ids(fake: FakeKiro) -> list[str]:
    return [r.json["conversationState"]["conversationId"] for r in fake.requests("chat")]


# ---------------------------------------------------------------- conversation ids


def test_a_session_keeps_its_conversation_id_and_a_new_session_gets_another(
        stack: tuple[FakeKiro, GatewayProcess]) -> None:
    fake, gateway = stack
    fake.clear_requests()
    claude_ask(gateway, SESSION_A, text="first")
    claude_ask(gateway, SESSION_A, text="second")
    claude_ask(gateway, SESSION_B)
    claude_ask(gateway, None)
    claude_ask(gateway, None)
    ids = conversation_ids(fake)
    assert ids[0] == ids[1]
    assert len({ids[0], ids[2], ids[3], ids[4]}) == 4  # no session: random per request, as before
    state = fake.requests("chat")[0].json["conversationState"]
    assert state["agentTaskType"] == "vibe" and state["agentContinuationId"]
    assert SESSION_A not in json.dumps(fake.requests("chat")[0].json)  # a hash of it, never the session itself


def test_codex_style_prompt_cache_key_and_session_headers(stack: tuple[FakeKiro, GatewayProcess]) -> None:
    fake, gateway = stack
    fake.clear_requests()
    client = openai.OpenAI(base_url=f"{gateway.url}/v1", api_key=API_KEY, max_retries=0)
    for _ in range(2):
        client.responses.create(model="claude-sonnet-4.5", input="hi", extra_body={"prompt_cache_key": SESSION_A})
    child = client.responses.create(model="claude-sonnet-4.5", input="hi", extra_body={"prompt_cache_key": SESSION_A},
                                    extra_headers={"thread-id": SESSION_B})
    assert child.status == "completed"
    for _ in range(2):
        client.chat.completions.create(model="claude-sonnet-4.5", messages=[{"role": "user", "content": "hi"}],
                                       extra_headers={"x-session-id": SESSION_B})
    ids = conversation_ids(fake)
    assert ids[0] == ids[1] != ids[2]  # the child thread is its own conversation
    assert ids[3] == ids[4] not in ids[:3]


def test_two_client_keys_with_identical_sessions_get_different_ids(stack: tuple[FakeKiro, GatewayProcess],
                                                                    tmp_path: Path) -> None:
    fake, gateway = stack
    fake.clear_requests()
    claude_ask(gateway, SESSION_A)
    other_key = API_KEY + "-other"
    with GatewayProcess(gateway_env(fake, tmp_path, PROXY_API_KEY=other_key), tmp_path) as other:
        claude_ask(other, SESSION_A, key=other_key)
    first, second = conversation_ids(fake)
    assert first != second


# ---------------------------------------------------------------- credits in the answers


def sse_events(response: httpx.Response) -> list[dict[str, Any]]:
    out = []
    for line in response.text.splitlines():
        if line.startswith("data: ") and line != "data: [DONE]":
            out.append(json.loads(line[6:]))
    return out


@pytest.mark.parametrize("stream", [True, False])
def test_credits_reach_every_answer_shape(stack: tuple[FakeKiro, GatewayProcess], stream: bool) -> None:
    fake, gateway = stack
    fake.enqueue_chat(text_stream("one", credits=0.125), text_stream("two", credits=0.25),
                      text_stream("three", credits=0.5))
    headers = {"x-api-key": API_KEY}
    with httpx.Client(base_url=gateway.url, headers=headers, timeout=30) as http:
        anthropic_answer = http.post("/v1/messages", json={
            "model": "claude-sonnet-4-5", "max_tokens": 50, "stream": stream,
            "messages": [{"role": "user", "content": "hi"}]})
        chat_answer = http.post("/v1/chat/completions", json={
            "model": "claude-sonnet-4.5", "stream": stream, "messages": [{"role": "user", "content": "hi"}]})
        responses_answer = http.post("/v1/responses", json={"model": "claude-sonnet-4.5", "stream": stream,
                                                            "input": "hi"})
    if stream:
        delta = next(e for e in sse_events(anthropic_answer) if e.get("type") == "message_delta")
        anthropic_usage = delta["usage"]
        chat_usage = [e for e in sse_events(chat_answer) if e.get("usage")][-1]["usage"]
        completed = next(e for e in sse_events(responses_answer) if e.get("type") == "response.completed")
        responses_usage = completed["response"]["usage"]
    else:
        anthropic_usage = anthropic_answer.json()["usage"]
        chat_usage = chat_answer.json()["usage"]
        responses_usage = responses_answer.json()["usage"]
    assert anthropic_usage["credits_used"] == 0.125
    assert chat_usage["credits_used"] == 0.25
    assert responses_usage["credits_used"] == 0.5
    # Kiro sent no cache figures, so none are reported.
    assert "cache_read_input_tokens" not in anthropic_usage and "prompt_tokens_details" not in chat_usage
    assert "input_tokens_details" not in responses_usage


def test_a_stream_without_trailer_events_is_an_error_in_every_client_shape(
        stack: tuple[FakeKiro, GatewayProcess]) -> None:
    fake, gateway = stack
    cut = [frames.text("Half an ans"), frames.text("wer")]  # content, then a clean end without any trailer
    fake.enqueue_chat(cut, cut, cut, cut)
    with pytest.raises(anthropic.APIStatusError) as failed:
        with anthropic.Anthropic(base_url=gateway.url, api_key=API_KEY, max_retries=0).messages.stream(
                model="claude-sonnet-4-5", max_tokens=50, messages=[{"role": "user", "content": "hi"}]) as stream:
            stream.get_final_message()
    assert "incomplete" in str(failed.value)
    client = openai.OpenAI(base_url=f"{gateway.url}/v1", api_key=API_KEY, max_retries=0)
    with pytest.raises(openai.APIError, match="incomplete"):
        for _ in client.chat.completions.create(model="claude-sonnet-4.5", stream=True,
                                                messages=[{"role": "user", "content": "hi"}]):
            pass
    events = list(client.responses.create(model="claude-sonnet-4.5", input="hi", stream=True))
    assert events[-1].type == "response.failed" and "incomplete" in events[-1].response.error.message
    whole = httpx.post(f"{gateway.url}/v1/messages", headers={"x-api-key": API_KEY}, timeout=30, json={
        "model": "claude-sonnet-4-5", "max_tokens": 50, "messages": [{"role": "user", "content": "hi"}]})
    assert whole.status_code == 502 and "incomplete" in whole.text


# ---------------------------------------------------------------- the usage report


def usage_of(gateway: GatewayProcess, key: str = API_KEY) -> httpx.Response:
    return httpx.get(f"{gateway.url}/v1/usage", headers={"Authorization": f"Bearer {key}"}, timeout=30)


def run_cli(env: dict[str, str], cwd: Path, *args: str) -> subprocess.CompletedProcess[str]:
    full = {k: v for k, v in os.environ.items() if not k.startswith(("KIRO_", "AWS_"))}
    full.pop("PROXY_API_KEY", None)
    full.update(env)
    return subprocess.run([sys.executable, "-m", "gateway.cli", "usage", *args], env=full, cwd=cwd,
                          capture_output=True, text=True, timeout=60)


CREDITS = (0.0169, 0.25, 0.5)


def spend(gateways: list[GatewayProcess], fake: FakeKiro) -> None:
    """Three answers with known credits, spread over the gateways, two models; then one refused request."""
    fake.enqueue_chat(*(text_stream("ok", credits=c) for c in CREDITS))
    for index, credits in enumerate(CREDITS):
        gateway = gateways[index % len(gateways)]
        model = "claude-haiku-4-5" if credits == 0.5 else "claude-sonnet-4-5"
        client = anthropic.Anthropic(base_url=gateway.url, api_key=API_KEY, max_retries=0)
        answer = client.messages.create(model=model, max_tokens=20, messages=[{"role": "user", "content": "hi"}])
        assert answer.usage.model_extra["credits_used"] == credits
    fake.fail_next("chat", 400, {"message": "Improperly formed request.", "reason": None})
    with pytest.raises(anthropic.BadRequestError):
        anthropic.Anthropic(base_url=gateways[0].url, api_key=API_KEY, max_retries=0).messages.create(
            model="claude-sonnet-4-5", max_tokens=20, messages=[{"role": "user", "content": "hi"}])


def check_report(report: dict[str, Any]) -> None:
    assert report["plan"] == "KIRO PRO"
    assert report["credits"] == {"used": 123.45, "limit": 1000.0, "remaining": 876.55, "unit": "credit"}
    assert report["resetsAt"] == "2027-01-01T00:00:00Z" and report["daysUntilReset"] == 12
    assert report["overage"]["status"] == "DISABLED"
    assert "fake-user-id" not in json.dumps(report)  # Kiro's account ids are never passed on
    for period in ("today", "month"):
        numbers = report["gateway"][period]
        assert numbers["requests"] == 4 and numbers["errors"] == 1
        assert numbers["credits"] == pytest.approx(sum(CREDITS))
        assert numbers["inputTokens"] > 0 and numbers["outputTokens"] > 0
        assert numbers["byModel"]["claude-haiku-4.5"]["credits"] == pytest.approx(0.5)
        assert numbers["byModel"]["claude-sonnet-4.5"]["credits"] == pytest.approx(0.2669)
        assert numbers["byKey"]["default"]["credits"] == pytest.approx(sum(CREDITS))
    assert report["gateway"]["days"][-1]["credits"] == pytest.approx(sum(CREDITS))
    assert report["gateway"]["timeToFirstTokenMs"]["count"] == 3
    assert report["gateway"]["errors"]["INVALID_REQUEST"]["count"] == 1


def test_usage_adds_up_locally_in_the_endpoint_the_cli_and_the_log(tmp_path: Path) -> None:
    with FakeKiro() as fake:
        env = gateway_env(fake, tmp_path)
        with GatewayProcess(env, tmp_path) as gateway:
            assert usage_of(gateway, "wrong-key").status_code == 401
            spend([gateway], fake)
            response = usage_of(gateway)
            assert response.status_code == 200
            check_report(response.json())
            assert fake.requests("usage")[-1].query["resourceType"] == "AGENTIC_REQUEST"
            logs = [json.loads(line) for line in gateway.logs().splitlines() if line.startswith("{")]
            remote = run_cli({}, tmp_path, "--json", "--url", gateway.url, "--key", API_KEY)
        lines = [e for e in logs if e.get("path") == "/v1/messages" and e.get("status") == 200]
        assert sorted(e["credits"] for e in lines) == sorted(CREDITS)
        assert all(e["client_key"] == "default" and e["conversation_id"] for e in lines)
        local = run_cli(env, tmp_path, "--json")  # same environment and directory as `serve`, gateway stopped
        text = run_cli(env, tmp_path)
    assert local.returncode == 0, local.stderr
    check_report(json.loads(local.stdout))
    assert remote.returncode == 0, remote.stderr
    check_report(json.loads(remote.stdout))
    assert text.returncode == 0 and "Plan:      KIRO PRO" in text.stdout and "by model claude-haiku-4.5" in text.stdout


@pytest.mark.slow
def test_usage_adds_up_across_two_gateway_processes_on_the_aws_stores(tmp_path: Path, moto_endpoint: str) -> None:
    with FakeKiro() as fake:
        env = aws_backed(gateway_env(fake, tmp_path), moto_endpoint)
        env["PROXY_API_KEY"] = API_KEY  # the secret holds it too; set here so the CLI --url check can use it
        (tmp_path / "a").mkdir()
        (tmp_path / "b").mkdir()
        with GatewayProcess(env, tmp_path / "a") as first, GatewayProcess(env, tmp_path / "b") as second:
            spend([first, second], fake)
            check_report(usage_of(first).json())
            check_report(usage_of(second).json())
        assert not list(tmp_path.rglob("usage.sqlite3")), "the AWS stores must not count into a local file"
        local = run_cli(env, tmp_path, "--json")
    assert local.returncode == 0, local.stderr
    check_report(json.loads(local.stdout))
