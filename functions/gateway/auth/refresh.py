"""The two refresh calls: Kiro desktop (`/refreshToken`) and AWS SSO OIDC CreateToken (`/token`).

A refresh consumes the refresh token (it rotates), so the caller (a TokenStore) must persist the result at once.
Failures are classified into `RefreshError` with a message a user can act on and that never carries a token or the
client secret, because these messages end up in logs and in client-facing errors.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any
from urllib.parse import urlsplit

import httpx

from gateway.redact import redact_text
from gateway.settings import Settings
from gateway.stores.base import Credentials, RefreshError  # RefreshError: re-exported
from gateway.stores.credential_files import utc_now

DESKTOP_URL = "https://prod.{region}.auth.desktop.kiro.dev/refreshToken"
OIDC_URL = "https://oidc.{region}.amazonaws.com/token"
REFRESH_TIMEOUT = 30.0  # seconds, as the original gateway
EXPIRY_SAFETY = timedelta(seconds=60)  # expires_at = now + expiresIn - 60 s (the original gateway's margin)
DEFAULT_EXPIRES_IN = 3600


def _with_path(base: str, path: str) -> str:
    base = base.rstrip("/")
    return base if base.endswith(path) else base + path


def refresh_urls(settings: Settings, creds_region: str | None = None) -> tuple[str, str]:
    """(desktop URL, OIDC URL) for the SSO region (the credentials' own, else KIRO_REGION).

    KIRO_DESKTOP_AUTH_URL / KIRO_OIDC_URL replace the base URL; `/refreshToken` / `/token` is appended unless the
    override already ends with it. Passing `"{region}"` as the region gives templates for `TokenRefresher`.
    """
    region = creds_region or settings.credentials.kiro_region
    endpoints = settings.endpoints
    desktop = (_with_path(endpoints.kiro_desktop_auth_url, "/refreshToken") if endpoints.kiro_desktop_auth_url
               else DESKTOP_URL.replace("{region}", region))
    oidc = (_with_path(endpoints.kiro_oidc_url, "/token") if endpoints.kiro_oidc_url
            else OIDC_URL.replace("{region}", region))
    return desktop, oidc


class TokenRefresher:
    """Calls the refresh endpoint matching `creds.auth_type`. URLs may hold `{region}`, filled per call with the
    credentials' SSO region (else `default_region`)."""

    def __init__(self, http: httpx.AsyncClient, *, desktop_url: str, oidc_url: str, user_agent: str,
                 default_region: str = "us-east-1", timeout: float = REFRESH_TIMEOUT,
                 clock: Callable[[], datetime] = utc_now) -> None:
        self._http = http
        self._desktop_url = desktop_url
        self._oidc_url = oidc_url
        self._user_agent = user_agent
        self._default_region = default_region
        self._timeout = timeout
        self._clock = clock

    @classmethod
    def from_settings(cls, http: httpx.AsyncClient, settings: Settings, *, user_agent: str) -> TokenRefresher:
        desktop, oidc = refresh_urls(settings, "{region}")
        return cls(http, desktop_url=desktop, oidc_url=oidc, user_agent=user_agent,
                   default_region=settings.credentials.kiro_region)

    async def __call__(self, creds: Credentials) -> Credentials:
        oidc = creds.auth_type == "aws_sso_oidc"
        template = self._oidc_url if oidc else self._desktop_url
        url = template.replace("{region}", creds.region or self._default_region)
        if oidc:
            body = {"grantType": "refresh_token", "clientId": creds.client_id, "clientSecret": creds.client_secret,
                    "refreshToken": creds.refresh_token}
        else:
            body = {"refreshToken": creds.refresh_token}
        service = "AWS SSO OIDC" if oidc else "Kiro"
        secrets = (creds.refresh_token, creds.access_token, creds.client_secret)
        headers = {"Content-Type": "application/json", "User-Agent": self._user_agent}
        try:
            response = await self._http.post(url, json=body, headers=headers, timeout=self._timeout)
        except httpx.HTTPError as exc:
            detail = redact_text(str(exc) or type(exc).__name__, secrets)
            raise RefreshError(None, f"could not reach the {service} token service at {urlsplit(url).netloc} "
                                     f"({type(exc).__name__}: {detail})") from None
        if response.status_code != 200:
            raise RefreshError(response.status_code, _failure_message(service, oidc, response, secrets))
        data = _json_object(response) or {}
        access_token = data.get("accessToken")
        if not isinstance(access_token, str) or not access_token:
            raise RefreshError(200, f"the {service} token service answered without an access token")
        expires_in = data.get("expiresIn")
        seconds = int(expires_in) if isinstance(expires_in, int | float) and expires_in > 0 else DEFAULT_EXPIRES_IN
        new_refresh = data.get("refreshToken")
        profile_arn = data.get("profileArn")
        return creds.rotated(
            access_token=access_token,
            refresh_token=new_refresh if isinstance(new_refresh, str) and new_refresh else None,
            expires_at=self._clock() + timedelta(seconds=seconds) - EXPIRY_SAFETY,
            profile_arn=profile_arn if isinstance(profile_arn, str) else None,
        )


def _json_object(response: httpx.Response) -> dict[str, Any] | None:
    try:
        data = response.json()
    except ValueError:
        return None
    return data if isinstance(data, dict) else None


def _failure_message(service: str, oidc: bool, response: httpx.Response, secrets: tuple[str, ...]) -> str:
    status = response.status_code
    data = _json_object(response) or {}
    code = str(data.get("error") or data.get("__type") or "").rsplit("#", 1)[-1]
    text = str(data.get("error_description") or data.get("message") or "")
    detail = redact_text(": ".join(p for p in (code, text) if p)[:200], secrets)
    shown = f"HTTP {status}" + (f", {detail}" if detail else "")
    if status in (400, 401):
        if code == "invalid_client":
            return (f"{service} rejected the client registration ({shown}): it has expired; "
                    "log in again (kiro-cli login or Kiro IDE, or `kiro-gateway login --device`)")
        relogin = ("log in again (kiro-cli login or Kiro IDE, or `kiro-gateway login --device`)" if oidc else
                   "log in to Kiro again (`kiro-gateway login --device`, or the Kiro IDE / kiro-cli)")
        return f"{service} rejected the refresh token ({shown}): it was rotated or revoked; {relogin}"
    if status == 429:
        return f"the {service} token service is throttling refreshes ({shown}); try again shortly"
    if status >= 500:
        return f"the {service} token service failed ({shown}); try again shortly"
    return f"the {service} token service refused the refresh ({shown})"
