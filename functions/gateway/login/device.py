"""Device-code sign-in (docs/protocol.md §Device login): nothing to click on this machine and no inbound redirect.

AWS SSO OIDC (Builder ID, IAM Identity Center): `POST /client/register` (a public client, ~90 days), `POST
/device_authorization` (startUrl), then `POST /token` with the device-code grant at the interval the service asks
for; `authorization_pending` waits, `slow_down` adds 5 s (RFC 8628), `expired_token` / `access_denied` end the login.
The registration is cached and renewed by itself when the service says it expired (`invalid_client`).

Kiro social (Google, GitHub): `POST /oauth/device/authorization` `{clientId:"kiro-cli", loginProvider}`, then `POST
/oauth/device/poll` `{deviceCode, clientId}` until `status` is `authorized`; refreshed later through Kiro desktop's
`/refreshToken`.

Every wait is bounded by the code's own expiry: a login ends, successfully or with a `LoginError`, never loops.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import httpx

OIDC_URL = "https://oidc.{region}.amazonaws.com"
SOCIAL_URL = "https://prod.us-east-1.auth.desktop.kiro.dev"
BUILDER_ID_START_URL = "https://view.awsapps.com/start"
DEVICE_GRANT = "urn:ietf:params:oauth:grant-type:device_code"
SOCIAL_CLIENT_ID = "kiro-cli"
CLIENT_NAME = "kiro-gateway"
SCOPES = ("codewhisperer:completions", "codewhisperer:analysis", "codewhisperer:conversations",
          "codewhisperer:transformations", "codewhisperer:taskassist")
SLOW_DOWN_STEP = 5.0  # seconds added to the interval on `slow_down` (RFC 8628 §3.5)
DEFAULT_INTERVAL = 5.0
REQUEST_TIMEOUT = 30.0
NETWORK_RETRIES = 3  # consecutive network failures tolerated while polling
RENEW_MARGIN = 3600  # a cached registration expiring within this many seconds is renewed before use

Say = Callable[[str], None]


class LoginError(Exception):
    """The login cannot finish; the message says why and what to do (never a token or secret)."""


@dataclass(frozen=True)
class Registration:
    client_id: str
    client_secret: str = field(repr=False)  # secrets never appear in repr() / str()
    expires_at: float  # epoch seconds (clientSecretExpiresAt)

    def usable(self, now: float) -> bool:
        return bool(self.client_id and self.client_secret) and self.expires_at - now > RENEW_MARGIN


@dataclass(frozen=True)
class DeviceCode:
    device_code: str = field(repr=False)  # the bearer of the pending sign-in
    user_code: str
    url: str
    interval: float
    expires_at: float  # monotonic


@dataclass(frozen=True)
class Tokens:
    access_token: str = field(repr=False)  # secrets never appear in repr() / str()
    refresh_token: str = field(repr=False)
    expires_in: float
    profile_arn: str = ""


def _json(response: httpx.Response) -> dict[str, Any]:
    try:
        data = response.json()
    except ValueError:
        return {}
    return data if isinstance(data, dict) else {}


def error_code(response: httpx.Response) -> str:
    """The OAuth error of a failed call: `error`, an AWS `__type` / `x-amzn-ErrorType`, or a social `status`."""
    data = _json(response)
    code = str(data.get("error") or data.get("status") or "")
    if not code:
        kind = str(data.get("__type") or response.headers.get("x-amzn-ErrorType") or "").rsplit("#", 1)[-1]
        kind = kind.split(":", 1)[0]
        aws = {"AuthorizationPendingException": "authorization_pending", "SlowDownException": "slow_down",
               "ExpiredTokenException": "expired_token", "AccessDeniedException": "access_denied",
               "InvalidClientException": "invalid_client", "UnauthorizedClientException": "invalid_client",
               "InvalidGrantException": "invalid_grant"}
        code = aws.get(kind, kind)
    return code


class _Poller:
    """Shared waiting logic: interval, slow_down, expiry, network hiccups."""

    def __init__(self, http: httpx.Client, say: Say, sleep: Callable[[float], None],
                 clock: Callable[[], float]) -> None:
        self.http = http
        self.say = say
        self.sleep = sleep
        self.clock = clock

    def post(self, url: str, body: dict[str, Any], what: str) -> httpx.Response:
        try:
            return self.http.post(url, json=body, timeout=REQUEST_TIMEOUT)
        except httpx.HTTPError as error:
            raise LoginError(f"Could not reach {what} at {httpx.URL(url).host} ({type(error).__name__}).") from None

    def show(self, code: DeviceCode) -> None:
        self.say(f"Verification URL: {code.url}")
        self.say(f"User code: {code.user_code}")
        self.say("Open the URL in a browser on any device, check that it shows this code, and approve the sign-in. "
                 "Waiting…")

    def wait(self, code: DeviceCode, poll: Callable[[], httpx.Response | None],
             done: Callable[[httpx.Response], Tokens | None]) -> Tokens:
        interval = code.interval
        failures = 0
        while True:
            if self.clock() + interval > code.expires_at:
                raise LoginError("The code expired before the sign-in was approved; run the command again.")
            self.sleep(interval)
            try:
                response = poll()
            except LoginError:
                failures += 1
                if failures >= NETWORK_RETRIES:
                    raise
                continue
            failures = 0
            if response is None:
                continue
            tokens = done(response)
            if tokens is not None:
                return tokens
            code_name = error_code(response)
            if code_name == "authorization_pending":
                continue
            if code_name == "slow_down":
                interval += SLOW_DOWN_STEP
                continue
            if code_name in ("expired_token", "expired"):
                raise LoginError("The code expired before the sign-in was approved; run the command again.")
            if code_name in ("access_denied", "denied", "rejected"):
                raise LoginError("The sign-in was denied in the browser; nothing was saved. Run the command again "
                                 "to retry.")
            if code_name == "invalid_client":
                raise LoginError("The client registration was refused while waiting (it expired); run the command "
                                 "again: a new one is registered.")
            raise LoginError(f"The sign-in failed (HTTP {response.status_code}"
                             f"{', ' + code_name if code_name else ''}); run the command again.")


class OidcDeviceLogin:
    """AWS SSO OIDC device authorization against `base_url` (`https://oidc.{region}.amazonaws.com`)."""

    def __init__(self, http: httpx.Client, base_url: str, *, say: Say = print,
                 sleep: Callable[[float], None] = time.sleep, clock: Callable[[], float] = time.monotonic,
                 wall: Callable[[], float] = time.time) -> None:
        self.base_url = base_url.rstrip("/").removesuffix("/token")
        self._poller = _Poller(http, say, sleep, clock)
        self._say = say
        self._clock = clock
        self._wall = wall

    def register(self) -> Registration:
        response = self._poller.post(f"{self.base_url}/client/register",
                                     {"clientName": CLIENT_NAME, "clientType": "public", "scopes": list(SCOPES)},
                                     "the AWS SSO OIDC service")
        data = _json(response)
        if response.status_code != 200 or not data.get("clientId") or not data.get("clientSecret"):
            raise LoginError(f"Registering the gateway with AWS SSO OIDC failed (HTTP {response.status_code}"
                             f"{', ' + error_code(response) if error_code(response) else ''}).")
        expires = data.get("clientSecretExpiresAt")
        expires_at = float(expires) if isinstance(expires, int | float) else self._wall() + 89 * 86400
        return Registration(str(data["clientId"]), str(data["clientSecret"]), expires_at)

    def _authorize(self, registration: Registration, start_url: str) -> httpx.Response:
        return self._poller.post(f"{self.base_url}/device_authorization",
                                 {"clientId": registration.client_id, "clientSecret": registration.client_secret,
                                  "startUrl": start_url}, "the AWS SSO OIDC service")

    def login(self, start_url: str, cached: Registration | None) -> tuple[Registration, Tokens]:
        """Sign in; returns the registration used (new when the cached one was missing or expired) and the tokens."""
        registration = cached if cached is not None and cached.usable(self._wall()) else None
        if cached is not None and registration is None:
            self._say("The saved client registration has expired; registering a new one.")
        registration = registration or self.register()
        response = self._authorize(registration, start_url)
        if response.status_code in (400, 401) and error_code(response) == "invalid_client":
            self._say("The client registration was refused (expired); registering a new one.")
            registration = self.register()
            response = self._authorize(registration, start_url)
        data = _json(response)
        if response.status_code != 200 or not data.get("deviceCode"):
            raise LoginError(f"Starting the sign-in failed (HTTP {response.status_code}"
                             f"{', ' + error_code(response) if error_code(response) else ''}); check --start-url "
                             "and --region.")
        code = DeviceCode(
            device_code=str(data["deviceCode"]), user_code=str(data.get("userCode") or ""),
            url=str(data.get("verificationUriComplete") or data.get("verificationUri") or ""),
            interval=float(data["interval"]) if isinstance(data.get("interval"), int | float) else DEFAULT_INTERVAL,
            expires_at=self._clock() + float(data.get("expiresIn") or 600))
        self._poller.show(code)
        body = {"clientId": registration.client_id, "clientSecret": registration.client_secret,
                "grantType": DEVICE_GRANT, "deviceCode": code.device_code}

        def poll() -> httpx.Response:
            return self._poller.post(f"{self.base_url}/token", body, "the AWS SSO OIDC service")

        return registration, self._poller.wait(code, poll, _tokens_from)


class SocialDeviceLogin:
    """Kiro's own device flow for Google and GitHub sign-in, against `base_url` (the Kiro desktop auth service)."""

    def __init__(self, http: httpx.Client, base_url: str, *, say: Say = print,
                 sleep: Callable[[float], None] = time.sleep, clock: Callable[[], float] = time.monotonic) -> None:
        self.base_url = base_url.rstrip("/").removesuffix("/refreshToken")
        self._poller = _Poller(http, say, sleep, clock)
        self._clock = clock

    def login(self, provider: str) -> Tokens:
        response = self._poller.post(f"{self.base_url}/oauth/device/authorization",
                                     {"clientId": SOCIAL_CLIENT_ID, "loginProvider": provider},
                                     "the Kiro sign-in service")
        data = _json(response)
        if response.status_code != 200 or not data.get("deviceCode"):
            raise LoginError(f"Starting the {provider} sign-in failed (HTTP {response.status_code}).")
        interval_ms = data.get("intervalInMilliseconds")
        expires_ms = data.get("expiresInMilliseconds")
        code = DeviceCode(
            device_code=str(data["deviceCode"]), user_code=str(data.get("userCode") or ""),
            url=str(data.get("verificationUriComplete") or data.get("verificationUri") or ""),
            interval=float(interval_ms) / 1000 if isinstance(interval_ms, int | float) else DEFAULT_INTERVAL,
            expires_at=self._clock() + (float(expires_ms) / 1000 if isinstance(expires_ms, int | float) else 300))
        self._poller.show(code)
        body = {"deviceCode": code.device_code, "clientId": SOCIAL_CLIENT_ID}

        def poll() -> httpx.Response:
            return self._poller.post(f"{self.base_url}/oauth/device/poll", body, "the Kiro sign-in service")

        def done(response: httpx.Response) -> Tokens | None:
            status = str(_json(response).get("status") or "")
            if response.status_code == 200 and status in ("authorized", "success", "complete", ""):
                return _tokens_from(response)
            return None

        return self._poller.wait(code, poll, done)


def _tokens_from(response: httpx.Response) -> Tokens | None:
    data = _json(response)
    if response.status_code != 200:
        return None
    access, refresh = data.get("accessToken"), data.get("refreshToken")
    if not isinstance(access, str) or not access or not isinstance(refresh, str) or not refresh:
        return None
    expires_in = data.get("expiresIn")
    return Tokens(access, refresh, float(expires_in) if isinstance(expires_in, int | float) else 3600.0,
                  str(data.get("profileArn") or ""))
