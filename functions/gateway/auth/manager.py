"""The access token the Kiro client sends, kept fresh with as few refreshes as possible.

Refresh tokens are single use: two concurrent refreshes with the same token lock the account out until the user logs
in again. So all refreshes of one process go through a single flight (concurrent callers await the same task), and
the store coordinates with other processes and programs. A refused refresh re-reads the source once (Kiro IDE or
kiro-cli may have rotated it) and, while the current access token has not actually expired, the gateway keeps
using it instead of failing every request.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from datetime import datetime

from gateway.auth.refresh import RefreshError, TokenRefresher
from gateway.stores.base import Credentials, RefreshFn, TokenStore
from gateway.stores.credential_files import utc_now

log = logging.getLogger(__name__)

RETRY_AFTER_FAILURE = 30.0  # seconds before a failed refresh is tried again while the old token still works


class AuthManager:
    """Hands out access tokens from a TokenStore, refreshing ahead of expiry (REFRESH_AHEAD) and after a 403."""

    def __init__(self, store: TokenStore, refresher: TokenRefresher | RefreshFn,
                 clock: Callable[[], datetime] = utc_now) -> None:
        self._store = store
        self._refresher = refresher
        self._clock = clock
        self._creds: Credentials | None = None
        self._flight: asyncio.Future[Credentials] | None = None
        self._quiet_until = float("-inf")  # after a failed refresh, no retry before this while the token still works

    async def access_token(self) -> str:
        """A usable access token; refreshes (once, for all concurrent callers) when it is missing or expiring."""
        creds = self._creds
        if creds is not None and (creds.is_fresh(self._clock()) or self._in_quiet_period(creds)):
            return creds.access_token
        return (await self._join(force=False)).access_token

    async def force_refresh(self, rejected_token: str | None = None) -> str:
        """After the upstream refused a token (403): a new access token, even if the old one has not expired.

        A refresh already in flight is joined rather than repeated. Pass the token the upstream rejected: if another
        coroutine has replaced it in the meantime, the replacement is returned without refreshing again.
        """
        rejected = rejected_token if rejected_token is not None else (self._creds.access_token if self._creds else "")
        if self._flight is not None:
            creds = await asyncio.shield(self._flight)
            if creds.access_token and creds.access_token != rejected:
                return creds.access_token
        elif rejected_token is not None:
            held = self._creds
            if held is not None and held.access_token not in ("", rejected_token) and not self._expired(held):
                return held.access_token
        return (await self._join(force=True)).access_token

    async def credentials(self) -> Credentials:
        """The current credentials with a usable access token (profile ARN and auth type for requests)."""
        await self.access_token()
        assert self._creds is not None
        return self._creds

    def describe(self) -> str:
        """Where the credentials come from and their state, for the start-up banner (never a token)."""
        creds = self._creds
        if creds is None:
            return f"{self._store.describe()} (not loaded yet)"
        kind = "AWS SSO OIDC" if creds.auth_type == "aws_sso_oidc" else "Kiro desktop"
        until = f", access token valid until {creds.expires_at:%Y-%m-%d %H:%M:%S} UTC" if creds.expires_at else ""
        return f"{self._store.describe()} ({kind} auth, region {creds.region or '-'}{until})"

    # -- internals -------------------------------------------------------------------------------------------------

    def _expired(self, creds: Credentials) -> bool:
        return creds.expires_at is None or creds.expires_at <= self._clock()

    def _in_quiet_period(self, creds: Credentials) -> bool:
        return time.monotonic() < self._quiet_until and bool(creds.access_token) and not self._expired(creds)

    async def _join(self, *, force: bool) -> Credentials:
        """Join the refresh in flight, or start one; shielded so one cancelled caller does not cancel the others."""
        if self._flight is None:
            self._flight = asyncio.ensure_future(self._fly(force))
        return await asyncio.shield(self._flight)

    async def _fly(self, force: bool) -> Credentials:
        try:
            if self._creds is None:
                self._creds = await self._store.load()
                if not force and self._creds.is_fresh(self._clock()):
                    return self._creds
            stale = self._creds
            try:
                new = await self._refresh(stale)
            except RefreshError as exc:
                return self._degrade(stale, exc, force)
            self._creds = new
            self._quiet_until = float("-inf")
            return new
        finally:
            self._flight = None

    async def _refresh(self, stale: Credentials) -> Credentials:
        used: list[str] = []

        async def do_refresh(creds: Credentials) -> Credentials:
            used.append(creds.refresh_token)
            return await self._refresher(creds)

        try:
            return await self._store.refresh(stale, do_refresh)
        except RefreshError as exc:
            if not exc.rejected:
                raise
            # Kiro IDE / kiro-cli may have rotated the token between our read and our request: re-read once.
            reread = await self._store.load()
            if reread.refresh_token in used:
                raise
            log.info("Refresh token was rotated by another program; retrying with the one it stored")
            return await self._store.refresh(stale, do_refresh)

    def _degrade(self, stale: Credentials, exc: RefreshError, force: bool) -> Credentials:
        """Keep serving with a token that still works (not after a 403, which said it does not); else raise."""
        if force or not stale.access_token or self._expired(stale):
            log.error("Kiro token refresh failed: %s", exc.message)
            raise exc
        self._quiet_until = time.monotonic() + RETRY_AFTER_FAILURE
        log.warning("Kiro token refresh failed (%s); the current access token is still valid until %s, using it",
                    exc.message, stale.expires_at)
        return stale
