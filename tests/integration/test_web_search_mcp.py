"""The MCP search client against the fake Kiro: the headers each kind of account sends, and the failure weights."""

from __future__ import annotations

import asyncio

import httpx
import pytest

from gateway.settings import Settings
from gateway.stores.base import Credentials
from gateway.upstream.client_config import UpstreamSettings
from gateway.upstream.kiro_client import KiroClient
from gateway.web_search.mcp import WebSearcher
from kiro_core.errors import ErrorKind, GatewayError
from kiro_core.web_search import SearchFailure, SearchResults
from tests.support.fake_kiro import FakeKiro, Status


def search(fake: FakeKiro, creds: Credentials, query: str = "q") -> SearchResults | SearchFailure:
    async def run() -> SearchResults | SearchFailure:
        settings = Settings.from_env({"KIRO_API_BASE_URL": fake.url, "MAX_RETRIES": "3"}, dotenv=None)

        async def token() -> str:
            return creds.access_token

        async def refresh(_rejected: str) -> str:
            raise AssertionError("no refresh expected")

        async def credentials() -> Credentials:
            return creds

        async with httpx.AsyncClient() as http:
            kiro = KiroClient(UpstreamSettings.from_settings(settings), http, token, refresh, credentials)
            return await WebSearcher(kiro, 5.0).search(query)

    return asyncio.run(run())


def test_api_key_account_sends_tokentype_and_no_profile_header(fake: FakeKiro) -> None:
    key = fake.issue_access_token(prefix="ksk_")
    outcome = search(fake, Credentials(refresh_token="", access_token=key))
    assert isinstance(outcome, SearchResults) and len(outcome.results) == 3
    sent = fake.requests("mcp")[-1].headers
    assert sent["tokentype"] == "API_KEY" and sent["authorization"] == f"Bearer {key}"
    assert "x-amzn-kiro-profile-arn" not in sent


def test_profile_account_sends_its_arn(fake: FakeKiro) -> None:
    token = fake.issue_access_token()
    search(fake, Credentials(refresh_token="r", access_token=token, profile_arn=fake.profile_arn))
    sent = fake.requests("mcp")[-1].headers
    assert sent["x-amzn-kiro-profile-arn"] == fake.profile_arn and "tokentype" not in sent


@pytest.mark.parametrize(("status", "kind"), [(429, ErrorKind.RATE_LIMIT), (402, ErrorKind.QUOTA)])
def test_throttling_and_quota_stop_the_answer(fake: FakeKiro, status: int, kind: ErrorKind) -> None:
    body = {"message": "limit", "reason": "MONTHLY_REQUEST_COUNT" if status == 402 else None}
    fake.enqueue_search(Status(status, body, {"Retry-After": "9"}))
    with pytest.raises(GatewayError) as caught:
        search(fake, Credentials(refresh_token="r", access_token=fake.issue_access_token()))
    assert caught.value.kind is kind
    if status == 429:
        assert caught.value.retry_after == 9.0
    assert len(fake.requests("mcp")) == 1  # one call, never retried


def test_server_error_fails_only_the_search(fake: FakeKiro) -> None:
    fake.enqueue_search(Status(503, {"message": "busy", "reason": None}))
    outcome = search(fake, Credentials(refresh_token="r", access_token=fake.issue_access_token()))
    assert isinstance(outcome, SearchFailure) and outcome.code == "unavailable" and "busy" in outcome.message
    assert len(fake.requests("mcp")) == 1
