"""The Kiro HTTP client of one account: the status-level retry policy (URLs and headers are its `KiroEndpoint`'s).

One shared, pooled `httpx.AsyncClient` serves every request (a client per request costs tens of milliseconds).
Retries here happen before any byte reached the client: 403 → forced token refresh and one retry; 429 and 5xx →
exponential backoff with jitter, honouring `Retry-After`, bounded; retryable network errors likewise. When retries
run out the caller gets the upstream's own status with an explained message.
"""

from __future__ import annotations

import asyncio
import datetime
import json
import logging
import random
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from email.utils import parsedate_to_datetime
from typing import Any

import httpx

from gateway.stores.base import Credentials
from gateway.upstream.client_config import UpstreamSettings
from gateway.upstream.endpoint import (  # re-exported: the URL rules are the endpoint's
    CHAT_PATH,
    MCP_PATH,
    MODELS_PATH,
    SDK_VERSION,
    USAGE_PATH,
    AccountContext,
    KiroEndpoint,
    api_base_url,
    catalog_account_key,
    kiro_user_agent,
    machine_fingerprint,
    management_base_url,
    profile_arn_for,
    usage_base_url,
)
from gateway.upstream.errors import classify_network_error, classify_upstream, refresh_may_help
from kiro_core.errors import GatewayError

__all__ = ["CHAT_PATH", "MCP_PATH", "MODELS_PATH", "SDK_VERSION", "USAGE_PATH", "KiroClient", "RetryPolicy",
           "api_base_url", "catalog_account_key", "kiro_user_agent", "machine_fingerprint", "management_base_url",
           "parse_retry_after", "profile_arn_for", "usage_base_url"]

log = logging.getLogger(__name__)

CHAT_TARGET = "AmazonCodeWhispererStreamingService.GenerateAssistantResponse"
MODELS_TARGET = "AmazonCodeWhispererService.ListAvailableModels"  # awsJson1.0 on the management host
AWS_JSON = "application/x-amz-json-1.0"
ORIGIN = "AI_EDITOR"
MAX_MODEL_PAGES = 20  # bounded: the catalogue is a few dozen models


@dataclass
class RetryPolicy:
    attempts: int
    base_delay: float
    max_delay: float

    def delay(self, attempt: int, retry_after: float | None) -> float:
        """Backoff before attempt `attempt + 1`: Retry-After when given (bounded), else exponential with jitter."""
        if retry_after is not None:
            return min(max(retry_after, 0.0), self.max_delay)
        backoff = self.base_delay * (2**attempt)
        return min(backoff * (0.5 + random.random() / 2), self.max_delay)


def parse_retry_after(value: str | None) -> float | None:
    if not value:
        return None
    try:
        return float(value)
    except ValueError:
        try:
            moment = parsedate_to_datetime(value)
        except (TypeError, ValueError):
            return None
        return (moment - datetime.datetime.now(moment.tzinfo or datetime.UTC)).total_seconds()


async def _all_models(page: Callable[[str | None], Awaitable[Any]]) -> list[dict[str, Any]]:
    """Every model of a paginated ListAvailableModels answer (bounded: the catalogue is a few dozen models)."""
    models: list[dict[str, Any]] = []
    next_token: str | None = None
    for _page in range(MAX_MODEL_PAGES):
        data = await page(next_token)
        if not isinstance(data, dict):
            break
        models.extend(m for m in data.get("models") or [] if isinstance(m, dict) and m.get("modelId"))
        next_token = str(data["nextToken"]) if data.get("nextToken") else None
        if next_token is None:
            break
    return models


class KiroClient:
    """Talks to Kiro for one account: its endpoint decides every URL and header, this client the retries."""

    def __init__(
        self,
        settings: UpstreamSettings,
        http: httpx.AsyncClient,
        access_token: Callable[[], Awaitable[str]],
        force_refresh: Callable[[str], Awaitable[str]],
        credentials: Callable[[], Awaitable[Credentials]],
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
        *,
        context: AccountContext | None = None,
    ):
        self._settings = settings
        self.endpoint = KiroEndpoint(settings, context or AccountContext.from_settings(settings), credentials)
        self._http = http
        self._access_token = access_token
        self._force_refresh = force_refresh
        self._credentials = credentials
        self._sleep = sleep
        timing = settings.timing
        self.retry = RetryPolicy(timing.max_retries, timing.base_retry_delay, timing.max_retry_delay)

    def __repr__(self) -> str:
        return f"KiroClient({self.endpoint!r})"

    async def profile_arn(self) -> str:
        return await self.endpoint.profile_arn()

    async def open_chat_stream(self, body: bytes, on_retry: Callable[[], None] | None = None) -> httpx.Response:
        """POST the payload and return the open 200 response (body not yet read); raises a GatewayError."""
        return await self._send_with_retries(
            "POST", await self.endpoint.chat_url(), content=body, stream=True, target=CHAT_TARGET, on_retry=on_retry
        )

    async def catalog_key(self) -> str:
        """The account key the catalogue is cached under (see `catalog_account_key`)."""
        return await self.endpoint.catalog_key()

    async def call_mcp(self, body: bytes, timeout: float) -> httpx.Response:
        """POST a JSON-RPC body to Kiro's MCP endpoint and return the read 200 response; raises a GatewayError.

        One attempt (a search is billed and a 429 there is a penalty window: the account rests, the search moves on
        or the client hears it with Retry-After); a refused token still gets its one refresh-and-retry."""
        return await self._send_with_retries("POST", await self.endpoint.mcp_url(), content=body, stream=False,
                                             attempts=1, extra_headers=await self.endpoint.mcp_headers(),
                                             timeout=timeout)

    async def list_models(self) -> list[dict[str, Any]]:
        """This account's catalogue from the management host (all pages), raw entries unchanged; with
        KIRO_MODELS_REST_FALLBACK, the legacy REST operation when the management call fails."""
        try:
            return await self._list_models_management()
        except GatewayError as error:
            if not self._settings.models.kiro_models_rest_fallback:
                raise
            log.warning("management ListAvailableModels failed (%s); trying the REST operation", error.message)
            return await self._list_models_rest()

    async def _list_models_management(self) -> list[dict[str, Any]]:
        url = await self.endpoint.management_url()
        arn = await self.endpoint.catalog_profile_arn()
        params = {"origin": ORIGIN, **({"profileArn": arn} if arn else {})}
        request: dict[str, Any] = {"origin": ORIGIN, **({"profileArn": arn} if arn else {})}

        async def page(next_token: str | None) -> Any:
            if next_token:
                request["nextToken"] = next_token
            body = json.dumps(request, separators=(",", ":")).encode()
            response = await self._send_with_retries("POST", url, content=body, params=params, stream=False,
                                                     target=MODELS_TARGET, content_type=AWS_JSON)
            return response.json()

        return await _all_models(page)

    async def _list_models_rest(self) -> list[dict[str, Any]]:
        """The legacy `GET /ListAvailableModels` on the chat host (q host era)."""
        url = await self.endpoint.rest_models_url()
        params: dict[str, str] = {"origin": ORIGIN, "maxResults": "50"}
        arn = await self.endpoint.profile_arn()
        if arn:
            params["profileArn"] = arn

        async def page(next_token: str | None) -> Any:
            if next_token:
                params["nextToken"] = next_token
            return (await self._send_with_retries("GET", url, params=params, stream=False)).json()

        return await _all_models(page)

    async def get_usage_limits(self) -> dict[str, Any]:
        """Kiro's GetUsageLimits answer for this account (plan, credits, reset date, overage)."""
        params = {"origin": ORIGIN, "resourceType": "AGENTIC_REQUEST"}
        arn = await self.endpoint.usage_profile_arn()
        if arn:
            params["profileArn"] = arn
        response = await self._send_with_retries("GET", await self.endpoint.usage_url(), params=params, stream=False)
        data = response.json()
        return data if isinstance(data, dict) else {}

    async def _send_with_retries(
        self,
        method: str,
        url: str,
        *,
        stream: bool,
        content: bytes | None = None,
        params: dict[str, str] | None = None,
        target: str | None = None,
        on_retry: Callable[[], None] | None = None,
        content_type: str = "application/json",
        attempts: int | None = None,
        extra_headers: dict[str, str] | None = None,
        timeout: float | None = None,
    ) -> httpx.Response:
        refreshed = False
        last_error: GatewayError | None = None
        attempt = 0
        attempts = attempts or self.retry.attempts
        while attempt < attempts:
            token = await self._access_token()
            headers = self.endpoint.headers(token, attempt=attempt, attempts=self.retry.attempts, target=target,
                                            content_type=content_type)
            if extra_headers:
                headers.update(extra_headers)
            request = self._http.build_request(
                method, url, content=content, params=params, headers=headers,
                **({"timeout": timeout} if timeout is not None else {}),
            )
            try:
                response = await self._http.send(request, stream=stream)
            except httpx.HTTPError as error:
                last_error, retryable = classify_network_error(error)
                log.warning("kiro request failed: %s", last_error.message)
                if not retryable:
                    raise last_error from None
                attempt += 1
                if attempt < attempts:
                    if on_retry:
                        on_retry()
                    await self._sleep(self.retry.delay(attempt - 1, None))
                continue
            if response.status_code == 200:
                return response
            body = await response.aread()
            await response.aclose()
            if response.status_code in (401, 403) and not refreshed and refresh_may_help(response.status_code, body):
                log.info("kiro answered %s: refreshing the access token and retrying", response.status_code)
                refreshed = True
                await self._force_refresh(token)  # the rejected token: a refresh another request did is reused
                if on_retry:
                    on_retry()
                continue  # the refresh retry does not consume a backoff attempt
            last_error, retryable = classify_upstream(response.status_code, body)
            if last_error.retry_after is None and response.status_code == 429:
                last_error.retry_after = parse_retry_after(response.headers.get("retry-after"))
            if not retryable:
                log.warning("kiro answered %s, not retried: %s", response.status_code, last_error.kind.name)
                raise last_error
            attempt += 1
            log.warning("kiro answered %s (attempt %s/%s)", response.status_code, attempt, attempts)
            if attempt < attempts:
                if on_retry:
                    on_retry()
                await self._sleep(self.retry.delay(attempt - 1, parse_retry_after(response.headers.get("retry-after"))))
        assert last_error is not None
        if attempts > 1:
            last_error.message += f" (after {attempts} attempts)"
        raise last_error
