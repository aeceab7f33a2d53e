"""The per-account endpoint object (issue 17): each account's URLs and headers come from its own `KiroEndpoint`,
built from a small `AccountContext` rather than a modified copy of the settings, and neither shows a secret."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

import httpx

from gateway.accounts.config import AccountConfig
from gateway.accounts.setup import api_key_account, refresh_account
from gateway.settings import Settings
from gateway.stores.base import Credentials
from gateway.upstream.endpoint import PROFILE_HEADER, AccountContext

API_KEY = "ksk_" + "S3cr3tK3y" * 5
REFRESH = "aorAAAA-refresh-" + "R" * 40
ACCESS = "aoaAAAA-access-" + "A" * 40
ARN = "arn:aws:codewhisperer:eu-central-1:699475941385:profile/FAKEPROFILE01"


class Store:
    """A token store holding one refresh-token credential (never refreshed here)."""

    async def load(self) -> Credentials:
        return Credentials(refresh_token=REFRESH, access_token=ACCESS, profile_arn=ARN, region="eu-central-1",
                           expires_at=datetime.now(UTC) + timedelta(hours=1))

    def describe(self) -> str:
        return "test store"


def settings(**values: str) -> Settings:
    return Settings.from_env(values, dotenv=None)


def test_api_key_account_knows_its_host_and_sends_tokentype_without_guessing() -> None:
    async def run() -> None:
        async with httpx.AsyncClient() as http:
            config = AccountConfig(name="key", kind="api_key", api_key=API_KEY)
            endpoint = api_key_account(settings(), http, config, "test").kiro.endpoint
            assert endpoint.context == AccountContext(host="q", api_region="", profile_arn="", api_key=True)
            assert await endpoint.chat_url() == "https://q.us-east-1.amazonaws.com/generateAssistantResponse"
            assert await endpoint.mcp_url() == "https://q.us-east-1.amazonaws.com/mcp"
            assert await endpoint.usage_url() == "https://q.us-east-1.amazonaws.com/getUsageLimits"
            headers = endpoint.headers(API_KEY, attempt=0, attempts=3)
            assert headers["tokentype"] == "API_KEY" and headers["Authorization"] == f"Bearer {API_KEY}"
            assert await endpoint.mcp_headers() == {}  # no profile for a key unless its entry names one

    asyncio.run(run())


def test_refresh_account_uses_its_own_region_and_profile_and_no_tokentype() -> None:
    async def run() -> None:
        async with httpx.AsyncClient() as http:
            config = AccountConfig(name="idc", kind="refresh_token", refresh_token=REFRESH, profile_arn=ARN,
                                   api_region="eu-central-1")
            account = refresh_account(settings(), http, config, Store())  # type: ignore[arg-type]
            endpoint = account.kiro.endpoint
            assert await endpoint.chat_url() == "https://runtime.eu-central-1.kiro.dev/generateAssistantResponse"
            assert await endpoint.management_url() == "https://management.eu-central-1.kiro.dev/"
            assert "tokentype" not in endpoint.headers(ACCESS, attempt=0, attempts=1)
            assert await endpoint.mcp_headers() == {PROFILE_HEADER: ARN}

    asyncio.run(run())


def test_no_secret_in_the_repr_or_str_of_an_account_its_client_endpoint_or_context() -> None:
    async def run() -> list[str]:
        async with httpx.AsyncClient() as http:
            key = api_key_account(settings(), http, AccountConfig(name="key", kind="api_key", api_key=API_KEY,
                                                                  profile_arn=ARN), "test")
            token = refresh_account(settings(), http, AccountConfig(name="tok", kind="refresh_token",
                                                                    refresh_token=REFRESH, profile_arn=ARN),
                                    Store())  # type: ignore[arg-type]
            await token.kiro.endpoint.chat_url()  # credentials loaded: still nothing of them in a repr
            shown = []
            for account in (key, token):
                for thing in (account.kiro.endpoint, account.kiro.endpoint.context, account.kiro):
                    shown += [repr(thing), str(thing)]
                assert all(secret not in repr(account.config) for secret in (API_KEY, REFRESH))
            return shown

    shown = asyncio.run(run())
    assert any("KiroEndpoint(" in text for text in shown)
    for text in shown:
        for secret in (API_KEY, REFRESH, ACCESS, "699475941385"):  # the profile's AWS account id is masked too
            assert secret not in text, text
