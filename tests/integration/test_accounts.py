"""Kiro API keys and several accounts (issue 9) against the fake Kiro, through the real gateway process: an API-key
account never refreshes, a refused key is one clear 502, a throttled account hands over to the next one without the
client noticing, and when no account can serve, the client gets one error in its own shape."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import anthropic
import httpx
import openai
import pytest

from tests.integration.conftest import API_KEY, gateway_env
from tests.support.fake_kiro import FakeKiro, text_stream
from tests.support.gateway_process import GatewayProcess

USER = [{"role": "user", "content": "hello"}]
THROTTLED = {"__type": "com.amazon.kiro.runtimeservice#ThrottlingException",
             "message": "Too many requests, please wait before trying again.", "reason": "USER_REQUEST_RATE_EXCEEDED"}
QUOTA = {"message": "You have reached the limit.", "reason": "MONTHLY_REQUEST_COUNT"}
SUSPENDED = {"__type": "com.amazon.kiro.runtimeservice#AccessDeniedException", "reason": None,
             "message": "Your User ID (<id>) temporarily is suspended. We've locked your account as a security "
                        "precaution. To restore access, please contact our support team to verify your identity."}


def key_env(fake: FakeKiro, home: Path, **extra: str) -> dict[str, str]:
    """A gateway environment without the refresh token `gateway_env` puts there."""
    env = gateway_env(fake, home, **extra)
    env.pop("REFRESH_TOKEN")
    env.pop("PROFILE_ARN")
    return env


def bearer(received: Any) -> str:
    return received.headers.get("authorization", "").removeprefix("Bearer ")


def write_accounts(path: Path, accounts: list[dict[str, Any]]) -> Path:
    path.write_text(json.dumps(accounts), encoding="utf-8")
    return path


def openai_client(gateway: GatewayProcess) -> openai.OpenAI:
    return openai.OpenAI(base_url=f"{gateway.url}/v1", api_key=API_KEY, max_retries=0, timeout=30)


def anthropic_client(gateway: GatewayProcess) -> anthropic.Anthropic:
    return anthropic.Anthropic(base_url=gateway.url, api_key=API_KEY, max_retries=0, timeout=30)


def streamed_text(gateway: GatewayProcess) -> str:
    chunks = openai_client(gateway).chat.completions.create(model="claude-sonnet-4.5", messages=USER, stream=True)
    return "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)


# -- API keys --------------------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def key_gateway(fake: FakeKiro, tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[GatewayProcess, str]]:
    home = tmp_path_factory.mktemp("home")
    key = fake.issue_api_key()
    with GatewayProcess(key_env(fake, home, KIRO_API_KEY=key), home) as process:
        yield process, key


def test_api_key_account_serves_both_apis_and_never_refreshes(key_gateway: tuple[GatewayProcess, str],
                                                              fake: FakeKiro) -> None:
    gateway, key = key_gateway
    before = fake.refresh_count
    fake.enqueue_chat(text_stream("from openai"), text_stream("from anthropic"))
    assert streamed_text(gateway) == "from openai"
    message = anthropic_client(gateway).messages.create(model="claude-sonnet-4.5", max_tokens=64, messages=USER)
    assert message.content[0].text == "from anthropic"  # type: ignore[union-attr]
    assert [m.id for m in openai_client(gateway).models.list()]  # the catalogue, with the key too

    calls = [r for r in fake.requests() if r.endpoint in ("generateAssistantResponse", "ListAvailableModels")]
    assert len([r for r in calls if r.endpoint == "generateAssistantResponse"]) == 2
    for received in calls:
        assert bearer(received) == key and received.headers.get("tokentype") == "API_KEY"
    assert fake.refresh_count == before
    assert not fake.requests("refresh") and not fake.requests("oidc")
    chats = [r.json for r in fake.requests("chat")]
    assert all("profileArn" not in body for body in chats)  # no profile for a key unless the account names one
    assert key not in gateway.logs()


def test_refused_api_key_is_one_clear_502_without_a_retry_storm(fake: FakeKiro, tmp_path: Path) -> None:
    refused = "ksk_" + "R" * 40  # never issued: the fake answers 403 "The bearer token ... is invalid."
    with GatewayProcess(key_env(fake, tmp_path, KIRO_API_KEY=refused), tmp_path) as gateway:
        with pytest.raises(openai.APIStatusError) as caught:
            openai_client(gateway).chat.completions.create(model="claude-sonnet-4.5", messages=USER)
        assert caught.value.status_code == 502
        error = caught.value.body if isinstance(caught.value.body, dict) else {}
        assert error.get("type") == "api_error"
        assert "API key" in str(error.get("message")) and "KIRO_API_KEY" in str(error.get("message"))
        chats = len(fake.requests("chat"))
        assert chats == 2  # the request and at most one more attempt

        with pytest.raises(anthropic.APIStatusError) as second:
            anthropic_client(gateway).messages.create(model="claude-sonnet-4.5", max_tokens=64, messages=USER)
        assert second.value.status_code == 502
        body = second.value.body if isinstance(second.value.body, dict) else {}
        assert body.get("error", {}).get("type") == "api_error" and "API key" in body["error"]["message"]
        assert len(fake.requests("chat")) == chats + 2
        logs = gateway.logs()
    assert refused not in logs and refused[:20] not in logs
    assert not fake.requests("refresh") and not fake.requests("oidc")


def test_rejected_refresh_token_is_a_502_that_says_how_to_log_in_again(fake: FakeKiro, tmp_path: Path) -> None:
    env = gateway_env(fake, tmp_path, REFRESH_TOKEN="aorFAKE-never-issued-" + "x" * 40)
    with GatewayProcess(env, tmp_path) as gateway:
        response = httpx.post(f"{gateway.url}/v1/chat/completions", headers={"authorization": f"Bearer {API_KEY}"},
                              json={"model": "claude-sonnet-4.5", "messages": USER}, timeout=30)
        assert response.status_code == 502, response.text
        error = response.json()["error"]
        assert error["type"] == "api_error"
        assert "rejected the refresh token" in error["message"] and "kiro-gateway login --device" in error["message"]
        response = httpx.post(f"{gateway.url}/v1/messages", headers={"x-api-key": API_KEY},
                              json={"model": "claude-sonnet-4.5", "max_tokens": 8, "messages": USER}, timeout=30)
        assert response.status_code == 502
        assert response.json()["error"]["type"] == "api_error"
        assert "log in" in response.json()["error"]["message"]
    assert not fake.requests("chat")


# -- two accounts ------------------------------------------------------------------------------------------------------


def test_throttled_account_hands_over_to_the_next_and_is_skipped_until_its_rest_ends(fake: FakeKiro,
                                                                                     tmp_path: Path) -> None:
    first, refresh = fake.issue_api_key(), fake.issue_refresh_token()
    accounts = write_accounts(tmp_path / "accounts.json", [
        {"name": "first", "kind": "api_key", "apiKey": first},
        {"name": "second", "kind": "refresh_token", "refreshToken": refresh, "profileArn": fake.profile_arn},
    ])
    env = key_env(fake, tmp_path, KIRO_ACCOUNTS_FILE=str(accounts), ACCOUNT_THROTTLE_COOLDOWN="1")
    with GatewayProcess(env, tmp_path) as gateway:
        fake.enqueue_chat(text_stream("warm"))
        assert streamed_text(gateway) == "warm"  # sticky: the first account serves while it can
        assert bearer(fake.requests("chat")[-1]) == first
        fake.clear_requests()

        rest_ms = 4000
        fake.fail_next_for(first, "chat", 429, {**THROTTLED, "retryAfterMilliseconds": rest_ms})
        fake.enqueue_chat(text_stream("served by the second account"))
        throttled_at = time.monotonic()
        assert streamed_text(gateway) == "served by the second account"  # the client noticed nothing
        chats = fake.requests("chat")
        assert [bearer(r) == first for r in chats] == [True, False]
        moved = [r.json["conversationState"]["currentMessage"] for r in chats]
        assert moved[0] == moved[1]  # the same request, moved to the other account

        fake.enqueue_chat(text_stream("still the second"))
        assert streamed_text(gateway) == "still the second"
        assert bearer(fake.requests("chat")[-1]) != first  # skipped while it rests: no request reached it
        assert len(fake.requests("chat")) == 3

        time.sleep(max(0.0, rest_ms / 1000 + 0.3 - (time.monotonic() - throttled_at)))
        fake.enqueue_chat(text_stream("first again"))
        assert streamed_text(gateway) == "first again"
        assert bearer(fake.requests("chat")[-1]) == first  # its rest is over: sticky goes back to it
        logs = gateway.logs()
    assert "account first is cooling (USER_REQUEST_RATE_EXCEEDED)" in logs
    assert first not in logs and refresh not in logs
    stored = json.loads(accounts.read_text())
    assert stored[1]["refreshToken"] != refresh and stored[1]["accessToken"]  # rotated tokens written back


@pytest.fixture
def two_keys(fake: FakeKiro, tmp_path: Path) -> Iterator[tuple[GatewayProcess, str, str]]:
    keys = fake.issue_api_key(), fake.issue_api_key()
    accounts = write_accounts(tmp_path / "accounts.json", [
        {"name": "one", "kind": "api_key", "apiKey": keys[0]}, {"name": "two", "kind": "api_key", "apiKey": keys[1]}])
    with GatewayProcess(key_env(fake, tmp_path, KIRO_ACCOUNTS_FILE=str(accounts)), tmp_path) as gateway:
        yield gateway, *keys


def post(gateway: GatewayProcess, route: str) -> httpx.Response:
    body: dict[str, Any] = {"model": "claude-sonnet-4.5", "messages": USER}
    if route == "/v1/messages":
        body["max_tokens"] = 16
    return httpx.post(gateway.url + route, json=body, headers={"x-api-key": API_KEY}, timeout=30)


def test_every_account_throttled_gives_one_429_with_retry_after(two_keys: tuple[GatewayProcess, str, str],
                                                                fake: FakeKiro) -> None:
    gateway, one, two = two_keys
    for key in (one, two):
        fake.fail_next_for(key, "chat", 429, {**THROTTLED, "retryAfterMilliseconds": 20_000 if key == one else 45_000})
    response = post(gateway, "/v1/chat/completions")
    assert response.status_code == 429
    error = response.json()["error"]
    assert error["type"] == "rate_limit_error" and "'one'" in error["message"] and "soonest" in error["message"]
    wait = int(response.headers["retry-after"])
    assert 1 <= wait <= 20
    assert [bearer(r) for r in fake.requests("chat")] == [one, two]  # each tried once

    again = post(gateway, "/v1/messages")  # both still resting: answered without asking Kiro
    assert again.status_code == 429 and again.json()["type"] == "error"
    assert again.json()["error"]["type"] == "rate_limit_error"
    assert 1 <= int(again.headers["retry-after"]) <= 20
    assert len(fake.requests("chat")) == 2


def test_every_account_out_of_quota_answers_as_a_quota_error(two_keys: tuple[GatewayProcess, str, str],
                                                             fake: FakeKiro) -> None:
    gateway, one, two = two_keys
    for key in (one, two):
        fake.fail_next_for(key, "chat", 402, QUOTA)
    response = post(gateway, "/v1/messages")
    assert response.status_code == 402  # Anthropic's own status for a billing problem
    assert response.json()["error"]["type"] == "billing_error" and "retry-after" not in response.headers
    assert "usage limit" in response.json()["error"]["message"]
    openai_answer = post(gateway, "/v1/chat/completions")
    assert openai_answer.status_code == 429 and openai_answer.json()["error"]["type"] == "insufficient_quota"
    assert len(fake.requests("chat")) == 2  # exhausted accounts are not asked again


def test_a_suspended_account_is_disabled_and_the_next_one_serves(two_keys: tuple[GatewayProcess, str, str],
                                                                  fake: FakeKiro) -> None:
    gateway, one, two = two_keys
    fake.fail_next_for(one, "chat", 403, SUSPENDED, times=2)
    fake.enqueue_chat(text_stream("from two"))
    assert streamed_text(gateway) == "from two"
    fake.enqueue_chat(text_stream("two again"))
    assert streamed_text(gateway) == "two again"
    assert [bearer(r) for r in fake.requests("chat")] == [one, one, two, two]  # one refresh-retry, then never again
    assert "account one is suspended" in gateway.logs()


def test_a_request_error_is_not_failed_over(two_keys: tuple[GatewayProcess, str, str], fake: FakeKiro) -> None:
    gateway, one, _two = two_keys
    fake.fail_next_for(one, "chat", 400, {"message": "Improperly formed request.", "reason": None})
    response = post(gateway, "/v1/chat/completions")
    assert response.status_code == 400
    assert [bearer(r) for r in fake.requests("chat")] == [one]  # the same bytes would fail on any account
