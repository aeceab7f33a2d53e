"""The Kiro HTTP client: hosts, headers, and the status-level retry policy.

One shared, pooled `httpx.AsyncClient` serves every request (a client per request costs tens of milliseconds).
Retries here happen before any byte reached the client: 403 → forced token refresh and one retry; 429 and 5xx →
exponential backoff with jitter, honouring `Retry-After`, bounded; retryable network errors likewise. When retries
run out the caller gets the upstream's own status with an explained message.
"""

from __future__ import annotations

import asyncio
import getpass
import hashlib
import logging
import random
import socket
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from email.utils import parsedate_to_datetime
from typing import Any

import httpx

from gateway.settings import Settings
from gateway.stores.base import Credentials
from gateway.upstream_errors import classify_network_error, classify_upstream, refresh_may_help
from kiro_core.errors import GatewayError

log = logging.getLogger(__name__)

KIRO_IDE_VERSION = "0.7.45"
SDK_VERSION = "1.0.27"
CHAT_PATH = "/generateAssistantResponse"
MODELS_PATH = "/ListAvailableModels"
USAGE_PATH = "/getUsageLimits"
CHAT_TARGET = "AmazonCodeWhispererStreamingService.GenerateAssistantResponse"


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


def api_base_url(settings: Settings, creds_region: str = "") -> str:
    """Chat + ListAvailableModels base URL: the override, else the configured host kind in the API region."""
    if settings.kiro_api_base_url:
        base = settings.kiro_api_base_url.rstrip("/")
        for suffix in (CHAT_PATH, MODELS_PATH):
            base = base.removesuffix(suffix)
        return base
    region = settings.kiro_api_region or creds_region or settings.kiro_region
    if settings.kiro_api_host == "q":
        return f"https://q.{region}.amazonaws.com"
    return f"https://runtime.{region}.kiro.dev"


def usage_base_url(settings: Settings, creds_region: str = "") -> str:
    """GetUsageLimits base URL: KIRO_USAGE_BASE_URL, else KIRO_API_BASE_URL (as chat), else the q host of the API
    region (the runtime host answers UnknownOperationException to this call, kiro-protocol §2.1)."""
    if settings.kiro_usage_base_url:
        return settings.kiro_usage_base_url.rstrip("/").removesuffix(USAGE_PATH)
    if settings.kiro_api_base_url:
        return api_base_url(settings, creds_region)
    return f"https://q.{settings.kiro_api_region or creds_region or settings.kiro_region}.amazonaws.com"


def profile_arn_for(settings: Settings, creds: Credentials) -> str:
    """The profileArn to send. The runtime host needs it for every auth type; the q host rejects it for SSO."""
    arn = creds.profile_arn or settings.profile_arn
    if settings.kiro_api_host == "q" and creds.auth_type != "kiro_desktop":
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
        import datetime as _dt

        return (moment - _dt.datetime.now(moment.tzinfo or _dt.UTC)).total_seconds()


class KiroClient:
    """Talks to Kiro's chat and model endpoints with the headers the Kiro IDE sends."""

    def __init__(
        self,
        settings: Settings,
        http: httpx.AsyncClient,
        access_token: Callable[[], Awaitable[str]],
        force_refresh: Callable[[str], Awaitable[str]],
        credentials: Callable[[], Awaitable[Credentials]],
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    ):
        self._settings = settings
        self._http = http
        self._access_token = access_token
        self._force_refresh = force_refresh
        self._credentials = credentials
        self._sleep = sleep
        self._user_agent = kiro_user_agent()
        self._amz_user_agent = f"aws-sdk-js/{SDK_VERSION} KiroIDE-{KIRO_IDE_VERSION}-{machine_fingerprint()}"
        self.retry = RetryPolicy(settings.max_retries, settings.base_retry_delay, settings.max_retry_delay)

    def _headers(self, token: str, attempt: int, target: str | None) -> dict[str, str]:
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
        headers["Content-Type"] = "application/json"
        if target:
            headers["x-amz-target"] = target
        return headers

    async def base_url(self) -> str:
        creds = await self._credentials()
        return api_base_url(self._settings, creds.region)

    async def profile_arn(self) -> str:
        return profile_arn_for(self._settings, await self._credentials())

    async def open_chat_stream(self, body: bytes, on_retry: Callable[[], None] | None = None) -> httpx.Response:
        """POST the payload and return the open 200 response (body not yet read); raises a GatewayError."""
        url = f"{await self.base_url()}{CHAT_PATH}"
        return await self._send_with_retries(
            "POST", url, content=body, stream=True, target=CHAT_TARGET, on_retry=on_retry
        )

    async def list_models(self) -> list[dict[str, Any]]:
        """Every model ListAvailableModels offers (all pages)."""
        base = await self.base_url()
        params: dict[str, str] = {"origin": "AI_EDITOR", "maxResults": "50"}
        arn = await self.profile_arn()
        if arn:
            params["profileArn"] = arn
        models: list[dict[str, Any]] = []
        for _page in range(20):  # bounded: the catalogue is a few dozen models
            response = await self._send_with_retries("GET", f"{base}{MODELS_PATH}", params=params, stream=False)
            data = response.json()
            models.extend(m for m in data.get("models") or [] if isinstance(m, dict) and m.get("modelId"))
            next_token = data.get("nextToken")
            if not next_token:
                break
            params["nextToken"] = str(next_token)
        return models

    async def get_usage_limits(self) -> dict[str, Any]:
        """Kiro's GetUsageLimits answer for this account (plan, credits, reset date, overage)."""
        creds = await self._credentials()
        params = {"origin": "AI_EDITOR", "resourceType": "AGENTIC_REQUEST"}
        arn = creds.profile_arn or self._settings.profile_arn
        if arn and creds.auth_type == "kiro_desktop":  # IdC accounts get 400 with it (kiro-protocol §7)
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
    ) -> httpx.Response:
        refreshed = False
        last_error: GatewayError | None = None
        attempt = 0
        while attempt < self.retry.attempts:
            token = await self._access_token()
            request = self._http.build_request(
                method, url, content=content, params=params, headers=self._headers(token, attempt, target)
            )
            try:
                response = await self._http.send(request, stream=stream)
            except httpx.HTTPError as error:
                last_error, retryable = classify_network_error(error)
                log.warning("kiro request failed: %s", last_error.message)
                if not retryable:
                    raise last_error from None
                attempt += 1
                if attempt < self.retry.attempts:
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
            if not retryable:
                log.warning("kiro answered %s, not retried: %s", response.status_code, last_error.kind.name)
                raise last_error
            attempt += 1
            log.warning("kiro answered %s (attempt %s/%s)", response.status_code, attempt, self.retry.attempts)
            if attempt < self.retry.attempts:
                if on_retry:
                    on_retry()
                await self._sleep(self.retry.delay(attempt - 1, parse_retry_after(response.headers.get("retry-after"))))
        assert last_error is not None
        last_error.message += f" (after {self.retry.attempts} attempts)"
        raise last_error
