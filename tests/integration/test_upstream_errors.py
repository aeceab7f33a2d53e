"""Kiro's error reasons (docs/protocol.md §Errors) reach the client classified: the right status, the client's own
error shape, `Retry-After` where Kiro says how long, and no retry of a request that cannot succeed (issue 7.5)."""

from __future__ import annotations

import json
import re
from typing import Any

import anthropic
import httpx
import openai
import pytest

from tests.integration.conftest import API_KEY, gateway_env
from tests.support import frames
from tests.support.fake_kiro import FakeKiro
from tests.support.fake_kiro_scripts import Pause, Status, text_stream
from tests.support.gateway_process import GatewayProcess

OPENAI = "/v1/chat/completions"
ANTHROPIC = "/v1/messages"
BODIES = {
    OPENAI: {"model": "claude-sonnet-4.5", "messages": [{"role": "user", "content": "hi"}]},
    ANTHROPIC: {"model": "claude-sonnet-4.5", "max_tokens": 64, "messages": [{"role": "user", "content": "hi"}]},
}


@pytest.fixture(scope="module")
def gateway(local_gateway: GatewayProcess) -> GatewayProcess:
    return local_gateway


def post(gateway: GatewayProcess, route: str, stream: bool = False, **extra: Any) -> httpx.Response:
    body = {**BODIES[route], "stream": stream, **extra}
    return httpx.post(gateway.url + route, json=body, headers={"x-api-key": API_KEY}, timeout=60)


def kiro_error(status: int, reason: str | None, message: str, retry_ms: int | None = None) -> Status:
    body: dict[str, Any] = {"__type": "com.amazon.kiro.runtimeservice#SomeException", "message": message,
                            "reason": reason}
    if retry_ms is not None:
        body["retryAfterMilliseconds"] = retry_ms
    return Status(status, body)


def error_of(route: str, response: httpx.Response) -> dict[str, Any]:
    body = response.json()
    if route == ANTHROPIC:
        assert body["type"] == "error"
    return body["error"]


# (upstream status, reason, message, retryAfterMilliseconds) → (OpenAI status, OpenAI type, Anthropic status,
# Anthropic type, Retry-After or None, words the message must hold)
CASES = [
    pytest.param(429, "USER_REQUEST_RATE_EXCEEDED", "Too many requests, please wait before trying again.", 3000,
                 (429, "rate_limit_error", 429, "rate_limit_error", "3", "throttling"), id="throttled-with-hint"),
    pytest.param(429, "USER_REQUEST_RATE_EXCEEDED", "Too many requests, please wait before trying again.", None,
                 (429, "rate_limit_error", 429, "rate_limit_error", "8", "throttling"), id="throttled-penalty"),
    pytest.param(429, "CREDIT_CONSUMPTION_RATE_EXCEEDED", "Slow down.", 300000,
                 (429, "rate_limit_error", 429, "rate_limit_error", "300", "throttling"), id="credit-rate"),
    pytest.param(429, None, "Due to suspicious activity, we are imposing temporary limits on how frequently your "
                 "account (<id>) can send a request to Kiro while we investigate.", None,
                 (429, "rate_limit_error", 429, "rate_limit_error", "300", "suspicious"), id="suspicious"),
    pytest.param(402, "MONTHLY_REQUEST_COUNT", "You have reached the limit.", None,
                 (429, "insufficient_quota", 402, "billing_error", None, "usage limit"), id="monthly-quota"),
    pytest.param(403, "OVERAGE_REQUEST_LIMIT_EXCEEDED", "You've reached your overage limit.", None,
                 (429, "insufficient_quota", 402, "billing_error", None, "usage limit"), id="overage"),
    pytest.param(403, None, "Your User ID (<id>) temporarily is suspended. We've locked your account as a security "
                 "precaution.", None, (403, "invalid_request_error", 403, "permission_error", None, "suspended"),
                 id="suspended"),
    pytest.param(400, "REQUEST_BODY_INVALID", "Improperly formed request.", None,
                 (400, "invalid_request_error", 400, "invalid_request_error", None, "refused"), id="validation"),
    pytest.param(500, "TOOL_USE_RESULT_MISMATCH", "Expected toolResult blocks for every toolUse.", None,
                 (400, "invalid_request_error", 400, "invalid_request_error", None, "refused"),
                 id="validation-under-5xx"),
    pytest.param(400, "CONTENT_LENGTH_EXCEEDS_THRESHOLD", "Input is too long.", None,
                 (400, "invalid_request_error", 400, "invalid_request_error", None, "compact"), id="too-large"),
    pytest.param(429, "INSUFFICIENT_MODEL_CAPACITY", "No capacity.", None,
                 (503, "api_error", 503, "overloaded_error", None, "another model"), id="capacity"),
]


@pytest.mark.parametrize("route", [OPENAI, ANTHROPIC])
@pytest.mark.parametrize(("status", "reason", "message", "retry_ms", "expected"), CASES)
def test_each_reason_reaches_the_client_classified_and_is_not_retried(
    gateway: GatewayProcess, fake: FakeKiro, route: str, status: int, reason: str | None, message: str,
    retry_ms: int | None, expected: tuple[int, str, int, str, str | None, str],
) -> None:
    openai_status, openai_type, anthropic_status, anthropic_type, retry_after, words = expected
    suspended = "suspended" in message
    fake.enqueue_chat([kiro_error(status, reason, message, retry_ms)], *([[kiro_error(status, reason, message)]]
                                                                         if suspended else []))
    response = post(gateway, route)
    error = error_of(route, response)
    assert response.status_code == (anthropic_status if route == ANTHROPIC else openai_status), response.text
    assert error["type"] == (anthropic_type if route == ANTHROPIC else openai_type)
    assert response.headers.get("retry-after") == retry_after
    if route == ANTHROPIC and words == "compact":
        # Anthropic's own wording, which Claude Code compacts on by itself (issue 19): estimate > catalogue context
        assert re.fullmatch(r"prompt is too long: \d+ tokens > 200000 maximum", error["message"]), error
    else:
        assert words in error["message"]
    # One attempt; a suspension gets exactly one refresh-and-retry.
    assert len(fake.requests("chat")) == (2 if suspended else 1)


def test_quota_is_insufficient_quota_in_openai_and_billing_error_in_anthropic_sdks(
    gateway: GatewayProcess, fake: FakeKiro
) -> None:
    fake.enqueue_chat([kiro_error(402, "MONTHLY_REQUEST_COUNT", "You have reached the limit.")])
    with pytest.raises(openai.RateLimitError) as caught:
        openai.OpenAI(base_url=gateway.url + "/v1", api_key=API_KEY, max_retries=0).chat.completions.create(
            **BODIES[OPENAI])
    assert caught.value.code == "insufficient_quota"
    fake.enqueue_chat([kiro_error(402, "MONTHLY_REQUEST_COUNT", "You have reached the limit.")])
    with pytest.raises(anthropic.APIStatusError) as failed:
        anthropic.Anthropic(base_url=gateway.url, api_key=API_KEY, max_retries=0).messages.create(
            **BODIES[ANTHROPIC])
    assert failed.value.status_code == 402 and failed.value.body["error"]["type"] == "billing_error"


@pytest.mark.parametrize(("status", "reason"), [(500, None), (429, None), (429, "SERVICE_REQUEST_RATE_EXCEEDED")])
def test_bare_and_busy_failures_keep_the_bounded_retry(gateway: GatewayProcess, fake: FakeKiro, status: int,
                                                       reason: str | None) -> None:
    fake.enqueue_chat([kiro_error(status, reason, "busy")], text_stream("after a retry"))
    response = post(gateway, OPENAI)
    assert response.status_code == 200 and response.json()["choices"][0]["message"]["content"] == "after a retry"
    assert len(fake.requests("chat")) == 2


@pytest.mark.parametrize("route", [OPENAI, ANTHROPIC])
def test_throttling_frame_before_the_first_byte_is_a_429_with_retry_after(gateway: GatewayProcess,
                                                                          fake: FakeKiro, route: str) -> None:
    fake.enqueue_chat([frames.exception_frame("ThrottlingException", "Too many requests",
                                              "USER_REQUEST_RATE_EXCEEDED", 5000)])
    response = post(gateway, route, stream=True)
    assert response.status_code == 429 and response.headers["retry-after"] == "5"
    assert error_of(route, response)["type"] == "rate_limit_error"
    assert len(fake.requests("chat")) == 1


@pytest.mark.parametrize("route", [OPENAI, ANTHROPIC])
def test_quota_frame_after_the_first_byte_ends_the_stream_with_the_clients_error(gateway: GatewayProcess,
                                                                                 fake: FakeKiro, route: str) -> None:
    fake.enqueue_chat([frames.text("Partial "), Pause(0.2), frames.exception_frame(
        "ServiceQuotaExceededException", "You have reached the limit.", "MONTHLY_REQUEST_COUNT")])
    response = post(gateway, route, stream=True)
    assert response.status_code == 200
    events = [json.loads(line[6:]) for line in response.text.splitlines()
              if line.startswith("data: ") and line != "data: [DONE]"]
    errors = [event["error"] for event in events if "error" in event]
    assert errors, response.text
    assert errors[-1]["type"] == ("billing_error" if route == ANTHROPIC else "insufficient_quota")
    assert "usage limit" in errors[-1]["message"]


def test_a_900_kb_conversation_is_forwarded(gateway: GatewayProcess, fake: FakeKiro) -> None:
    history = [{"role": "user" if i % 2 == 0 else "assistant", "content": "word " * 20000} for i in range(9)]
    response = httpx.post(gateway.url + OPENAI, json={"model": "claude-sonnet-4.5", "messages": history},
                          headers={"x-api-key": API_KEY}, timeout=60)
    assert response.status_code == 200, response.text
    assert len(fake.requests("chat")) == 1 and len(fake.requests("chat")[0].body) > 900_000


def test_a_size_rejection_becomes_context_length_exceeded_without_a_retry(gateway: GatewayProcess,
                                                                         fake: FakeKiro) -> None:
    fake.enqueue_chat([kiro_error(400, "CONTENT_LENGTH_EXCEEDS_THRESHOLD", "Input is too long.")])
    history = [{"role": "user" if i % 2 == 0 else "assistant", "content": "word " * 20000} for i in range(9)]
    with pytest.raises(openai.BadRequestError) as caught:
        openai.OpenAI(base_url=gateway.url + "/v1", api_key=API_KEY, max_retries=0).chat.completions.create(
            model="claude-sonnet-4.5", messages=history)
    assert caught.value.code == "context_length_exceeded" and "compact" in caught.value.message.lower()
    assert len(fake.requests("chat")) == 1


def test_the_payload_guard_is_still_available_as_a_setting(fake: FakeKiro, tmp_path: Any) -> None:
    with GatewayProcess(gateway_env(fake, tmp_path, KIRO_MAX_PAYLOAD_BYTES="50000"), tmp_path) as guarded:
        history = [{"role": "user", "content": "word " * 20000}]
        response = httpx.post(guarded.url + OPENAI, json={"model": "claude-sonnet-4.5", "messages": history},
                              headers={"x-api-key": API_KEY}, timeout=60)
    assert response.status_code == 400 and response.json()["error"]["code"] == "context_length_exceeded"
    assert fake.requests("chat") == []

