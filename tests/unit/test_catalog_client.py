"""The live catalogue: management host and its overrides, the awsJson1.0 call with pagination, the REST fallback,
and per-account caching (docs/protocol.md §Hosts, §Models)."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import httpx
import pytest

from gateway.model_service import ModelService
from gateway.settings import Settings
from gateway.stores.base import Credentials
from gateway.stores.local import InMemoryModelCache
from gateway.upstream.client_config import UpstreamSettings
from gateway.upstream.kiro_client import KiroClient, catalog_account_key, management_base_url
from kiro_core.errors import ErrorKind, GatewayError

ARN = "arn:aws:codewhisperer:us-east-1:123456789012:profile/ABC"
OTHER_ARN = "arn:aws:codewhisperer:eu-central-1:210987654321:profile/XYZ"


def settings(**values: str) -> UpstreamSettings:
    """A Kiro client\'s configuration from these variables (as the gateway builds it)."""
    return UpstreamSettings.from_settings(Settings.from_env({k.upper(): v for k, v in values.items()}, dotenv=None))


@pytest.mark.parametrize(
    "values, creds_region, expected",
    [
        ({}, "", "https://management.us-east-1.kiro.dev"),
        ({}, "eu-central-1", "https://management.eu-central-1.kiro.dev"),
        ({"kiro_api_region": "eu-central-1"}, "us-east-1", "https://management.eu-central-1.kiro.dev"),
        ({"kiro_api_host": "q"}, "", "https://management.us-east-1.kiro.dev"),
        ({"kiro_api_base_url": "http://127.0.0.1:9/"}, "", "http://127.0.0.1:9"),
        ({"kiro_api_base_url": "http://a/", "kiro_management_base_url": "http://m/"}, "", "http://m"),
        ({"kiro_management_base_url": "http://m"}, "", "http://m"),
    ],
)
def test_management_host(values: dict[str, str], creds_region: str, expected: str) -> None:
    assert management_base_url(settings(**values), creds_region) == expected


def test_management_override_must_be_a_url() -> None:
    with pytest.raises(ValueError, match="KIRO_MANAGEMENT_BASE_URL"):
        settings(kiro_management_base_url="management.example")


def test_account_key_separates_accounts_and_hides_identity() -> None:
    plain = settings()
    key = catalog_account_key("https://m", Credentials("r1", profile_arn=ARN), plain)
    assert key == catalog_account_key("https://m", Credentials("another-rotated-token", profile_arn=ARN), plain)
    assert key != catalog_account_key("https://m", Credentials("r1", profile_arn=OTHER_ARN), plain)
    assert key != catalog_account_key("https://other", Credentials("r1", profile_arn=ARN), plain)
    assert key != catalog_account_key("https://m", Credentials("r1", client_id="c", client_secret="s"), plain)
    assert "123456789012" not in key and len(key) == 24


class Upstream:
    """A scripted catalogue behind httpx.MockTransport."""

    def __init__(self, pages: list[dict[str, Any]], *, management_status: int = 200) -> None:
        self.pages = pages
        self.management_status = management_status
        self.seen: list[httpx.Request] = []

    def handler(self, request: httpx.Request) -> httpx.Response:
        self.seen.append(request)
        if request.method == "GET":
            return httpx.Response(200, json={"models": [{"modelId": "rest-model"}]})
        if self.management_status != 200:
            return httpx.Response(self.management_status, json={"message": "nope", "reason": None})
        token = json.loads(request.content).get("nextToken")
        return httpx.Response(200, json=self.pages[int(token or 0)])


def client(upstream: Upstream, creds: Credentials, **values: str) -> KiroClient:
    http = httpx.AsyncClient(transport=httpx.MockTransport(upstream.handler))

    async def token() -> str:
        return "access-token"

    async def refresh(_rejected: str) -> str:
        return "access-token"

    async def credentials() -> Credentials:
        return creds

    async def no_sleep(_seconds: float) -> None:
        return None

    return KiroClient(settings(max_retries="1", **values), http, token, refresh, credentials, sleep=no_sleep)


PAGES = [
    {"models": [{"modelId": "claude-opus-5.5", "rateMultiplier": 2, "additionalModelRequestFieldsSchema": {"x": 1}},
                {"modelName": "no id"}], "nextToken": "1"},
    {"models": [{"modelId": "glm-5", "promptCaching": {"supportsPromptCaching": False}}]},
]


def test_list_models_calls_the_management_operation_and_follows_next_token() -> None:
    upstream = Upstream(PAGES)
    models = asyncio.run(client(upstream, Credentials("r", profile_arn=ARN, region="eu-central-1")).list_models())
    assert models == [PAGES[0]["models"][0], PAGES[1]["models"][0]]  # raw entries, unchanged
    first, second = upstream.seen
    assert first.method == "POST" and first.url.host == "management.eu-central-1.kiro.dev" and first.url.path == "/"
    assert dict(first.url.params) == {"origin": "AI_EDITOR", "profileArn": ARN}
    assert first.headers["content-type"] == "application/x-amz-json-1.0"
    assert first.headers["x-amz-target"] == "AmazonCodeWhispererService.ListAvailableModels"
    assert first.headers["authorization"] == "Bearer access-token"
    assert json.loads(first.content) == {"origin": "AI_EDITOR", "profileArn": ARN}
    assert json.loads(second.content) == {"origin": "AI_EDITOR", "profileArn": ARN, "nextToken": "1"}


def test_list_models_omits_profile_arn_when_the_credential_has_none() -> None:
    upstream = Upstream([{"models": [{"modelId": "auto"}]}])
    asyncio.run(client(upstream, Credentials("r", client_id="c", client_secret="s")).list_models())
    assert json.loads(upstream.seen[0].content) == {"origin": "AI_EDITOR"}
    assert dict(upstream.seen[0].url.params) == {"origin": "AI_EDITOR"}


def test_rest_fallback_only_when_enabled() -> None:
    upstream = Upstream(PAGES, management_status=400)
    with pytest.raises(GatewayError):
        asyncio.run(client(upstream, Credentials("r", profile_arn=ARN)).list_models())
    upstream = Upstream(PAGES, management_status=400)
    models = asyncio.run(client(upstream, Credentials("r", profile_arn=ARN), kiro_models_rest_fallback="true",
                                kiro_api_base_url="http://chat.local").list_models())
    assert models == [{"modelId": "rest-model"}]
    assert [(r.method, r.url.host, r.url.path) for r in upstream.seen] == [
        ("POST", "chat.local", "/"), ("GET", "chat.local", "/ListAvailableModels")]


def test_model_service_keeps_one_list_per_account() -> None:
    account = ["account-a"]
    fetched: list[str] = []

    async def fetch() -> list[dict[str, Any]]:
        fetched.append(account[0])
        return [{"modelId": f"model-of-{account[0]}"}]

    async def key() -> str:
        return account[0]

    cache = InMemoryModelCache()
    service = ModelService(fetch, cache, 3600, account=key)

    async def ids() -> list[str]:
        return (await service.catalog()).model_ids()

    assert asyncio.run(ids()) == ["model-of-account-a"]
    account[0] = "account-b"
    assert asyncio.run(ids()) == ["model-of-account-b"]
    account[0] = "account-a"
    assert asyncio.run(ids()) == ["model-of-account-a"]
    assert fetched == ["account-a", "account-b"]
    assert asyncio.run(cache.get("account-b")) == [{"modelId": "model-of-account-b"}]
    assert asyncio.run(cache.get("")) is None


def test_model_service_serves_the_fallback_when_the_account_key_fails() -> None:
    async def fetch() -> list[dict[str, Any]]:
        raise GatewayError(ErrorKind.PERMISSION, "refused", status=403)

    async def key() -> str:
        raise RuntimeError("no credentials")

    catalog = asyncio.run(ModelService(fetch, InMemoryModelCache(), 60, account=key).catalog())
    assert not catalog.from_upstream


def test_a_failed_refresh_keeps_the_last_live_catalogue() -> None:
    """Every account busy (the pool's queue timed out) must not swap a live list for the fallback one."""
    now = [0.0]
    answers: list[Any] = [[{"modelId": "live-model"}], GatewayError(ErrorKind.RATE_LIMIT, "every account busy")]

    async def fetch() -> list[dict[str, Any]]:
        answer = answers.pop(0)
        if isinstance(answer, GatewayError):
            raise answer
        return answer

    service = ModelService(fetch, InMemoryModelCache(clock=lambda: now[0]), 60, clock=lambda: now[0])

    async def scenario() -> None:
        assert (await service.catalog()).model_ids() == ["live-model"]
        now[0] = 10_000.0  # past the TTL, and past the cache's own expiry
        catalog = await service.catalog()
        assert catalog.from_upstream and catalog.model_ids() == ["live-model"]
        assert answers == []  # the refresh was tried

    asyncio.run(scenario())
