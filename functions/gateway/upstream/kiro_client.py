"""The Kiro HTTP client: hosts, headers, and the status-level retry policy.

One shared, pooled `httpx.AsyncClient` serves every request (a client per request costs tens of milliseconds).
Retries here happen before any byte reached the client: 403 → forced token refresh and one retry; 429 and 5xx →
exponential backoff with jitter, honouring `Retry-After`, bounded; retryable network errors likewise. When retries
run out the caller gets the upstream's own status with an explained message.
"""

from __future__ import annotations

import asyncio
import datetime
import getpass
import hashlib
import json
import logging
import random
import socket
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from email.utils import parsedate_to_datetime
from typing import Any

import httpx

from gateway.stores.base import Credentials
from gateway.upstream.client_config import UpstreamSettings
from gateway.upstream.errors import classify_network_error, classify_upstream, refresh_may_help
from kiro_core.errors import GatewayError

log = logging.getLogger(__name__)

KIRO_IDE_VERSION = "0.7.45"
SDK_VERSION = "1.0.27"
CHAT_PATH = "/generateAssistantResponse"
MODELS_PATH = "/ListAvailableModels"
MCP_PATH = "/mcp"  # Kiro's MCP endpoint (web search), under the same base URL as chat (docs/protocol.md §Hosts)
USAGE_PATH = "/getUsageLimits"
CHAT_TARGET = "AmazonCodeWhispererStreamingService.GenerateAssistantResponse"
MODELS_TARGET = "AmazonCodeWhispererService.ListAvailableModels"  # awsJson1.0 on the management host
AWS_JSON = "application/x-amz-json-1.0"
ORIGIN = "AI_EDITOR"
MAX_MODEL_PAGES = 20  # bounded: the catalogue is a few dozen models


def machine_fingerprint() -> str:
    """Stable per-machine id for the User-Agent, as the Kiro IDE sends one (never user data in clear)."""
    try:
        user = getpass.getuser()
    except (KeyError, OSError):
        user = "user"
    return hashlib.sha256(f"{socket.gethostname()}-{user}-kiro-gateway".encode()).hexdigest()


def kiro_user_agent() -> str:
    """The Kiro IDE's User-Agent with this machine's fingerprint (also used for token refreshes)."""
    return (
        f"aws-sdk-js/{SDK_VERSION} ua/2.1 os/linux lang/js md/nodejs#22.21.1 "
        f"api/codewhispererstreaming#{SDK_VERSION} m/E KiroIDE-{KIRO_IDE_VERSION}-{machine_fingerprint()}"
    )


def api_base_url(settings: UpstreamSettings, creds_region: str = "") -> str:
    """Chat + ListAvailableModels base URL: the override, else the configured host kind in the API region."""
    if settings.endpoints.kiro_api_base_url:
        base = settings.endpoints.kiro_api_base_url.rstrip("/")
        for suffix in (CHAT_PATH, MODELS_PATH):
            base = base.removesuffix(suffix)
        return base
    region = settings.credentials.kiro_api_region or creds_region or settings.credentials.kiro_region
    if settings.endpoints.kiro_api_host == "q":
        return f"https://q.{region}.amazonaws.com"
    return f"https://runtime.{region}.kiro.dev"


def management_base_url(settings: UpstreamSettings, creds_region: str = "") -> str:
    """Catalogue (and usage) base URL: KIRO_MANAGEMENT_BASE_URL, else KIRO_API_BASE_URL (one override points every
    call at a proxy or test double), else `management.{region}.kiro.dev` (docs/protocol.md §Hosts)."""
    override = settings.endpoints.kiro_management_base_url or settings.endpoints.kiro_api_base_url
    if override:
        return override.rstrip("/").removesuffix(CHAT_PATH).removesuffix(MODELS_PATH)
    region = settings.credentials.kiro_api_region or creds_region or settings.credentials.kiro_region
    return f"https://management.{region}.kiro.dev"


def catalog_account_key(base_url: str, creds: Credentials, settings: UpstreamSettings) -> str:
    """A short, non-secret key naming whose catalogue this is: the catalogue differs per account (docs/protocol.md
    §Models), so two credentials must never share a cached list. Built from the host, profile ARN and OIDC client id
    (never a token, which rotates)."""
    identity = f"{base_url}|{creds.profile_arn or settings.credentials.profile_arn}|{creds.client_id}"
    return hashlib.sha256(identity.encode()).hexdigest()[:24]


def usage_base_url(settings: UpstreamSettings, creds_region: str = "") -> str:
    """GetUsageLimits base URL: KIRO_USAGE_BASE_URL, else KIRO_MANAGEMENT_BASE_URL, else KIRO_API_BASE_URL (as
    chat), else the q host of the API region (the runtime host answers UnknownOperationException to this call,
    docs/protocol.md §Hosts)."""
    if settings.usage.kiro_usage_base_url:
        return settings.usage.kiro_usage_base_url.rstrip("/").removesuffix(USAGE_PATH)
    if settings.endpoints.kiro_management_base_url:  # usage follows the management override (tests, unusual networks)
        return settings.endpoints.kiro_management_base_url.rstrip("/")
    if settings.endpoints.kiro_api_base_url:
        return api_base_url(settings, creds_region)
    region = settings.credentials.kiro_api_region or creds_region or settings.credentials.kiro_region
    return f"https://q.{region}.amazonaws.com"


def profile_arn_for(settings: UpstreamSettings, creds: Credentials) -> str:
    """The profileArn to send. The runtime host needs it for every auth type; the q host rejects it for SSO."""
    arn = creds.profile_arn or settings.credentials.profile_arn
    if settings.endpoints.kiro_api_host == "q" and creds.auth_type != "kiro_desktop":
        return ""
    return arn


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
    """Talks to Kiro's chat and model endpoints with the headers the Kiro IDE sends."""

    def __init__(
        self,
        settings: UpstreamSettings,
        http: httpx.AsyncClient,
        access_token: Callable[[], Awaitable[str]],
        force_refresh: Callable[[str], Awaitable[str]],
        credentials: Callable[[], Awaitable[Credentials]],
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
        *,
        token_type: str = "",
    ):
        self._settings = settings
        # "API_KEY" for `ksk_` keys: sent as `tokentype` on every call (docs/protocol.md §API keys)
        self._token_type = token_type
        self._http = http
        self._access_token = access_token
        self._force_refresh = force_refresh
        self._credentials = credentials
        self._sleep = sleep
        self._user_agent = kiro_user_agent()
        self._amz_user_agent = f"aws-sdk-js/{SDK_VERSION} KiroIDE-{KIRO_IDE_VERSION}-{machine_fingerprint()}"
        timing = settings.timing
        self.retry = RetryPolicy(timing.max_retries, timing.base_retry_delay, timing.max_retry_delay)

    def _headers(self, token: str, attempt: int, target: str | None,
                 content_type: str = "application/json") -> dict[str, str]:
        headers = {
            "Authorization": f"Bearer {token}",
            "User-Agent": self._user_agent,
            "x-amz-user-agent": self._amz_user_agent,
            "x-amzn-codewhisperer-optout": "true",
            "x-amzn-kiro-agent-mode": "vibe",
            "amz-sdk-invocation-id": str(uuid.uuid4()),
            "amz-sdk-request": f"attempt={attempt + 1}; max={self.retry.attempts}",
        }
        # application/json rather than the SDK's x-amz-json-1.0: every Kiro host reads the body as JSON either way,
        # and generic JSON servers (proxies, test doubles) only recognise the former.
        headers["Content-Type"] = content_type
        if target:
            headers["x-amz-target"] = target
        if self._token_type:
            headers["tokentype"] = self._token_type
        return headers

    async def base_url(self) -> str:
        creds = await self._credentials()
        return api_base_url(self._settings, creds.region)

    async def profile_arn(self) -> str:
        return profile_arn_for(self._settings, await self._credentials())

    async def uses_api_key(self) -> bool:
        """True for a Kiro API key (`ksk_…`) account: its calls need `tokentype: API_KEY` (protocol.md §API keys).

        API-key accounts (`KIRO_API_KEY`, `kind: api_key` entries) are built with `token_type="API_KEY"`; a
        credential that names its kind `api_key`, or whose bearer has the `ksk_` prefix, counts too."""
        creds = await self._credentials()
        return getattr(creds, "auth_type", "") == "api_key" or creds.access_token.startswith("ksk_") \
            or creds.refresh_token.startswith("ksk_")

    async def open_chat_stream(self, body: bytes, on_retry: Callable[[], None] | None = None) -> httpx.Response:
        """POST the payload and return the open 200 response (body not yet read); raises a GatewayError."""
        url = f"{await self.base_url()}{CHAT_PATH}"
        return await self._send_with_retries(
            "POST", url, content=body, stream=True, target=CHAT_TARGET, on_retry=on_retry
        )

    async def catalog_key(self) -> str:
        """The account key the catalogue is cached under (see `catalog_account_key`)."""
        creds = await self._credentials()
        return catalog_account_key(management_base_url(self._settings, creds.region), creds, self._settings)

    async def call_mcp(self, body: bytes, headers: dict[str, str], timeout: float) -> httpx.Response:
        """POST a JSON-RPC body to Kiro's MCP endpoint and return the read 200 response; raises a GatewayError.

        One attempt (a search is billed and a 429 there is a penalty window: the client hears it with Retry-After);
        a refused token still gets its one refresh-and-retry."""
        url = f"{await self.base_url()}{MCP_PATH}"
        return await self._send_with_retries("POST", url, content=body, stream=False, attempts=1,
                                             extra_headers=headers, timeout=timeout)

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
        creds = await self._credentials()
        url = f"{management_base_url(self._settings, creds.region)}/"
        arn = creds.profile_arn or self._settings.credentials.profile_arn
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
        base = await self.base_url()
        params: dict[str, str] = {"origin": "AI_EDITOR", "maxResults": "50"}
        arn = await self.profile_arn()
        if arn:
            params["profileArn"] = arn

        async def page(next_token: str | None) -> Any:
            if next_token:
                params["nextToken"] = next_token
            return (await self._send_with_retries("GET", f"{base}{MODELS_PATH}", params=params, stream=False)).json()

        return await _all_models(page)

    async def get_usage_limits(self) -> dict[str, Any]:
        """Kiro's GetUsageLimits answer for this account (plan, credits, reset date, overage)."""
        creds = await self._credentials()
        params = {"origin": "AI_EDITOR", "resourceType": "AGENTIC_REQUEST"}
        arn = creds.profile_arn or self._settings.credentials.profile_arn
        if arn and creds.auth_type == "kiro_desktop":  # IdC accounts get 400 with it (docs/protocol.md §Authentication)
            params["profileArn"] = arn
        url = f"{usage_base_url(self._settings, creds.region)}{USAGE_PATH}"
        response = await self._send_with_retries("GET", url, params=params, stream=False)
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
            headers = self._headers(token, attempt, target, content_type)
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
