"""Host choice, profileArn policy, backoff and upstream error classification of the Kiro client."""

from __future__ import annotations

import ssl
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime

import httpx
import pytest

from gateway.settings import Settings
from gateway.stores.base import Credentials
from gateway.upstream.client_config import UpstreamSettings
from gateway.upstream.errors import classify_network_error, classify_status
from gateway.upstream.kiro_client import RetryPolicy, api_base_url, parse_retry_after, profile_arn_for
from kiro_core.errors import ErrorKind

ARN = "arn:aws:codewhisperer:us-east-1:123456789012:profile/ABC"
DESKTOP = Credentials(refresh_token="r", profile_arn=ARN)
SSO = Credentials(refresh_token="r", profile_arn=ARN, client_id="id", client_secret="secret")


def settings(**values: str) -> UpstreamSettings:
    """A Kiro client\'s configuration from these variables (as the gateway builds it)."""
    return UpstreamSettings.from_settings(Settings.from_env({k.upper(): v for k, v in values.items()}, dotenv=None))


@pytest.mark.parametrize(
    "values, creds_region, expected",
    [
        ({}, "", "https://runtime.us-east-1.kiro.dev"),
        ({"kiro_api_host": "q"}, "", "https://q.us-east-1.amazonaws.com"),
        ({"kiro_api_host": "q", "kiro_region": "eu-central-1"}, "", "https://q.eu-central-1.amazonaws.com"),
        ({}, "eu-central-1", "https://runtime.eu-central-1.kiro.dev"),
        ({"kiro_api_region": "us-west-2"}, "eu-central-1", "https://runtime.us-west-2.kiro.dev"),
        ({"kiro_api_base_url": "http://127.0.0.1:9/"}, "eu-central-1", "http://127.0.0.1:9"),
        ({"kiro_api_base_url": "http://h/generateAssistantResponse"}, "", "http://h"),
    ],
)
def test_chat_host(values: dict[str, str], creds_region: str, expected: str) -> None:
    assert api_base_url(settings(**values), creds_region) == expected


def test_runtime_host_sends_profile_arn_for_every_auth_type() -> None:
    assert profile_arn_for(settings(), DESKTOP) == ARN
    assert profile_arn_for(settings(), SSO) == ARN


def test_q_host_sends_profile_arn_only_for_kiro_desktop() -> None:
    assert profile_arn_for(settings(kiro_api_host="q"), DESKTOP) == ARN
    assert profile_arn_for(settings(kiro_api_host="q"), SSO) == ""


def test_profile_arn_falls_back_to_the_setting() -> None:
    assert profile_arn_for(settings(profile_arn=ARN), Credentials(refresh_token="r")) == ARN


def test_backoff_is_exponential_jittered_and_bounded() -> None:
    policy = RetryPolicy(attempts=5, base_delay=1.0, max_delay=5.0)
    for attempt, (low, high) in enumerate([(0.5, 1.0), (1.0, 2.0), (2.0, 4.0), (4.0, 5.0), (5.0, 5.0)]):
        delays = [policy.delay(attempt, None) for _ in range(50)]
        assert all(low <= d <= high for d in delays)
        assert attempt == 4 or len(set(delays)) > 1  # jittered, until the bound flattens it
    assert policy.delay(0, 3.0) == 3.0  # Retry-After wins
    assert policy.delay(0, 120.0) == 5.0  # but is bounded


def test_retry_after_seconds_and_http_dates() -> None:
    assert parse_retry_after("2") == 2.0
    assert parse_retry_after(None) is None and parse_retry_after("soon") is None
    later = format_datetime(datetime.now(UTC) + timedelta(seconds=30), usegmt=True)
    assert 25 <= (parse_retry_after(later) or 0) <= 31


@pytest.mark.parametrize(
    "status, body, kind, fragment",
    [
        (429, b'{"message":"Too many requests","reason":null}', ErrorKind.RATE_LIMIT, "Too many requests"),
        (400, b'{"message":"Input is too long.","reason":"CONTENT_LENGTH_EXCEEDS_THRESHOLD"}',
         ErrorKind.CONTEXT_TOO_LONG, "too large for Kiro"),
        (429, b'{"message":"x","reason":"MONTHLY_REQUEST_COUNT"}', ErrorKind.QUOTA, "usage limit is reached"),
        (400, b'{"message":"Invalid model.","reason":"INVALID_MODEL_ID"}', ErrorKind.INVALID_REQUEST, "/v1/models"),
        (400, b'{"__type":"com.amazon.kiro.runtimeservice#ValidationException",'
              b'"message":"profileArn is required for this request."}', ErrorKind.INVALID_REQUEST,
         "ValidationException"),
        (403, b'{"message":"The bearer token included in the request is invalid."}', ErrorKind.PERMISSION,
         "log in to Kiro"),
        (503, b"<html>busy</html>", ErrorKind.OVERLOADED, "busy"),
        (500, b"", ErrorKind.UPSTREAM, "(empty body)"),
    ],
)
def test_upstream_statuses_are_classified_and_explained(status: int, body: bytes, kind: ErrorKind,
                                                         fragment: str) -> None:
    error = classify_status(status, body)
    assert error.kind is kind and fragment in error.message
    assert error.status == (400 if kind is ErrorKind.CONTEXT_TOO_LONG else status)


@pytest.mark.parametrize(
    "error, kind, retryable",
    [
        (httpx.ConnectTimeout("slow"), ErrorKind.TIMEOUT, True),
        (httpx.ReadTimeout("silent"), ErrorKind.TIMEOUT, True),
        (httpx.ConnectError("[Errno 111] Connection refused"), ErrorKind.UPSTREAM, True),
        (httpx.ConnectError("[Errno -2] Name or service not known"), ErrorKind.UPSTREAM, True),
        (httpx.RemoteProtocolError("peer closed connection"), ErrorKind.UPSTREAM, True),
        (httpx.TooManyRedirects("loop"), ErrorKind.UPSTREAM, False),
    ],
)
def test_network_errors_are_classified(error: Exception, kind: ErrorKind, retryable: bool) -> None:
    classified, again = classify_network_error(error)
    assert classified.kind is kind and again is retryable


def test_tls_failures_are_not_retried() -> None:
    error = httpx.ConnectError("handshake failed")
    error.__cause__ = ssl.SSLError("CERTIFICATE_VERIFY_FAILED")
    classified, again = classify_network_error(error)
    assert not again and "TLS" in classified.message
