"""The two seams with a local and an AWS implementation: where Kiro credentials live, where the model list is cached.

Local defaults: `gateway.stores.local` (credential file / kiro-cli SQLite / state file; in-process model cache).
AWS: `gateway.stores.secrets_manager` (Secrets Manager with a DynamoDB refresh lease, `refresh_lease`) and
`gateway.stores.dynamo_models` (DynamoDB model cache).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from typing import Any, Literal, Protocol

from kiro_core.errors import ErrorKind, GatewayError

AuthType = Literal["kiro_desktop", "aws_sso_oidc"]

# Refresh this long before the access token expires (the reference gateway's TOKEN_REFRESH_THRESHOLD).
REFRESH_AHEAD = timedelta(seconds=600)


@dataclass(frozen=True)
class Credentials:
    """Kiro credentials, whatever their source.

    `region` is the SSO/auth region (refresh URLs). `client_id`+`client_secret` make it AWS SSO OIDC; otherwise Kiro
    desktop. `expires_at` is timezone-aware UTC, or None (treated as expired, so the first use refreshes).
    """

    refresh_token: str = field(repr=False)  # secrets never appear in repr() / str()
    access_token: str = field(default="", repr=False)
    expires_at: datetime | None = None
    profile_arn: str = ""
    region: str = ""
    client_id: str = ""
    client_secret: str = field(default="", repr=False)
    scopes: str = ""
    extra: dict[str, Any] = field(default_factory=dict, compare=False, repr=False)

    @property
    def auth_type(self) -> AuthType:
        return "aws_sso_oidc" if self.client_id and self.client_secret else "kiro_desktop"

    def is_fresh(self, now: datetime, margin: timedelta = REFRESH_AHEAD) -> bool:
        """True when the access token exists and will not expire within `margin`."""
        return bool(self.access_token) and self.expires_at is not None and self.expires_at - margin > now

    def rotated(self, *, access_token: str, refresh_token: str | None, expires_at: datetime,
                profile_arn: str | None = None) -> Credentials:
        """These credentials after a refresh; a refresh response without a new refresh token keeps the old one."""
        return replace(
            self,
            access_token=access_token,
            refresh_token=refresh_token or self.refresh_token,
            expires_at=expires_at,
            profile_arn=profile_arn or self.profile_arn,
        )


RefreshFn = Callable[[Credentials], Awaitable[Credentials]]


class TokenStore(Protocol):
    """Where credentials are read from and where rotated refresh tokens are persisted."""

    def describe(self) -> str:
        """Where the credentials come from, for the start-up banner (never the tokens themselves)."""
        ...

    async def load(self) -> Credentials:
        """Read the current credentials from the source (raises `CredentialsNotFound` if there are none)."""
        ...

    async def refresh(self, stale: Credentials, do_refresh: RefreshFn) -> Credentials:
        """Coordinated refresh.

        Re-read the source: if another program or instance already rotated the token (the stored refresh token
        differs from `stale`'s, and its access token is fresh), return the stored credentials without refreshing.
        Otherwise call `do_refresh` on the stored credentials and persist the result **before** returning it, so a
        rotated refresh token is never lost.
        """
        ...


class CredentialsNotFound(Exception):
    """No credential source is configured or found; the message says what to set."""


class ModelCache(Protocol):
    """The ListAvailableModels result (the raw `models` entries), shared for `ttl_seconds`, one list per `account`
    (a non-secret key; the catalogue differs between accounts, so two credentials never share a list)."""

    async def get(self, account: str = "") -> list[dict[str, Any]] | None:
        """The cached models, or None when absent or expired (expiry checked in code)."""
        ...

    async def put(self, models: list[dict[str, Any]], ttl_seconds: int, account: str = "") -> None:
        ...


class CredentialError(GatewayError):
    """The gateway's own Kiro credential failed (a refresh was refused, or the token service could not be used).

    A 502 (`api_error`) to clients: it is the gateway's upstream credential, not the client's key. `rejected` says the
    credential itself is dead (log in again), as opposed to a token service that failed for now."""

    def __init__(self, message: str, *, rejected: bool) -> None:
        super().__init__(ErrorKind.UPSTREAM, message)
        self.rejected = rejected


class RefreshError(Exception):
    """A token refresh failed (raised by `gateway.auth.refresh` and by the stores that refresh under a lease).
    `status` is the token service's HTTP status, None when it could not be reached."""

    def __init__(self, status: int | None, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message

    @property
    def rejected(self) -> bool:
        """The refresh token itself was refused (rotated elsewhere, revoked, or the client registration expired)."""
        return self.status in (400, 401)

    @property
    def retryable(self) -> bool:
        return self.status is None or self.status == 429 or self.status >= 500

    def as_gateway_error(self) -> GatewayError:
        """For routes: the client gets a 502 naming the cause, not the upstream's 400 (its request was fine)."""
        return CredentialError(f"Kiro authentication failed: {self.message}", rejected=self.rejected)
