"""TokenRefresher against the fake Kiro: both refresh protocols, expiry maths, and classified errors without
secrets."""

from __future__ import annotations

import asyncio
import socket
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest

from gateway.auth.refresh import RefreshError, TokenRefresher
from gateway.stores.base import Credentials
from kiro_core.errors import ErrorKind
from tests.support.fake_kiro import FakeKiro

NOW = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)


@pytest.fixture
def kiro() -> Iterator[FakeKiro]:
    with FakeKiro() as server:
        yield server


def call(fake_url: str, creds: Credentials, **options: Any) -> Credentials:
    async def scenario() -> Credentials:
        async with httpx.AsyncClient(trust_env=False) as http:
            refresher = TokenRefresher(http, desktop_url=options.pop("desktop_url", f"{fake_url}/refreshToken"),
                                       oidc_url=f"{fake_url}/token", user_agent="KiroIDE-0.7.45-abc",
                                       clock=lambda: NOW, **options)
            return await refresher(creds)

    return asyncio.run(scenario())


def test_desktop_refresh(kiro: FakeKiro) -> None:
    token = kiro.issue_refresh_token()
    new = call(kiro.url, Credentials(refresh_token=token, region="eu-central-1"))
    assert new.refresh_token != token and new.access_token.startswith("aoa")
    assert new.expires_at == NOW + timedelta(seconds=3600 - 60) and new.profile_arn == kiro.profile_arn
    request = kiro.requests("refresh")[0]
    assert request.json == {"refreshToken": token}
    assert request.headers["user-agent"] == "KiroIDE-0.7.45-abc"
    assert request.headers["content-type"] == "application/json"


def test_missing_new_refresh_token_keeps_the_old_one() -> None:
    with FakeKiro(rotate_refresh_tokens=False, access_token_ttl=900) as fake:
        token = fake.issue_refresh_token()
        new = call(fake.url, Credentials(refresh_token=token, profile_arn="arn:kept"))
    assert new.refresh_token == token and new.expires_at == NOW + timedelta(seconds=840)


def test_oidc_refresh_sends_camel_case_json(kiro: FakeKiro) -> None:
    client_id, secret = kiro.register_client()
    token = kiro.issue_refresh_token()
    new = call(kiro.url, Credentials(refresh_token=token, client_id=client_id, client_secret=secret))
    assert new.refresh_token != token and new.client_secret == secret
    assert kiro.requests("oidc")[0].json == {"grantType": "refresh_token", "clientId": client_id,
                                             "clientSecret": secret, "refreshToken": token}


def test_region_placeholder_is_filled_from_the_credentials(kiro: FakeKiro) -> None:
    creds = Credentials(refresh_token=kiro.issue_refresh_token(), region="eu-central-1")
    call(kiro.url, creds, desktop_url=f"{kiro.url}/refreshToken?r={{region}}")
    assert kiro.requests("refresh")[0].query == {"r": "eu-central-1"}


@pytest.mark.parametrize(("status", "body", "rejected", "retryable", "words"), [
    (400, {"message": "Invalid refresh token"}, True, False, "rotated or revoked"),
    (401, None, True, False, "log in to Kiro again"),
    (429, {"message": "slow down"}, False, True, "throttling"),
    (503, "<html>down</html>", False, True, "try again shortly"),
    (403, {"message": "nope"}, False, False, "refused"),
])
def test_desktop_errors_are_classified(kiro: FakeKiro, status: int, body: Any, rejected: bool, retryable: bool,
                                       words: str) -> None:
    kiro.fail_next("refresh", status, body)
    with pytest.raises(RefreshError) as caught:
        call(kiro.url, Credentials(refresh_token=kiro.issue_refresh_token()))
    error = caught.value
    assert error.status == status and error.rejected is rejected and error.retryable is retryable
    assert words in error.message and f"HTTP {status}" in error.message


def test_error_bodies_echoing_secrets_are_redacted(kiro: FakeKiro) -> None:
    client_id, secret = kiro.register_client()
    token = kiro.issue_refresh_token()
    kiro.fail_next("oidc", 400, {"error": "invalid_grant", "error_description": f"{token} / {secret}"})
    with pytest.raises(RefreshError) as caught:
        call(kiro.url, Credentials(refresh_token=token, client_id=client_id, client_secret=secret))
    text = str(caught.value)
    assert token not in text and secret not in text and "invalid_grant" in text and "kiro-cli login" in text
    gateway_error = caught.value.as_gateway_error()
    assert gateway_error.kind is ErrorKind.UPSTREAM and token not in gateway_error.message


def test_expired_client_registration_is_named(kiro: FakeKiro) -> None:
    with pytest.raises(RefreshError, match="client registration"):
        call(kiro.url, Credentials(refresh_token=kiro.issue_refresh_token(), client_id="gone", client_secret="x"))


def test_unreachable_service_and_empty_answer() -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    token = "aor-unreachable-secret-token"
    with pytest.raises(RefreshError) as caught:
        call(f"http://127.0.0.1:{port}", Credentials(refresh_token=token))
    assert caught.value.status is None and caught.value.retryable and token not in str(caught.value)
    assert f"127.0.0.1:{port}" in str(caught.value)
    with FakeKiro() as fake:
        fake.fail_next("refresh", 200, {"expiresIn": 3600})
        with pytest.raises(RefreshError, match="without an access token"):
            call(fake.url, Credentials(refresh_token=fake.issue_refresh_token()))
