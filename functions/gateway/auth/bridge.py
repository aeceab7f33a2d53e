"""The auth manager as the Kiro client needs it: refresh failures become classified gateway errors (a 502 naming the
credential, `CredentialError`), and every token handed out (rotations included) is registered with the log scrubber
first."""

from __future__ import annotations

from gateway.auth.manager import AuthManager
from gateway.auth.refresh import RefreshError
from gateway.logging_setup import SCRUBBER
from gateway.stores.base import Credentials


class AuthBridge:
    """`access_token`, `force_refresh` and `credentials` for one `KiroClient`, never raising a bare RefreshError."""

    def __init__(self, auth: AuthManager):
        self._auth = auth

    async def access_token(self) -> str:
        try:
            token = await self._auth.access_token()
        except RefreshError as error:
            raise error.as_gateway_error() from None
        SCRUBBER.add(token)
        return token

    async def force_refresh(self, rejected_token: str | None = None) -> str:
        try:
            token = await self._auth.force_refresh(rejected_token)
        except RefreshError as error:
            raise error.as_gateway_error() from None
        SCRUBBER.add(token)
        return token

    async def credentials(self) -> Credentials:
        try:
            creds = await self._auth.credentials()
        except RefreshError as error:
            raise error.as_gateway_error() from None
        SCRUBBER.add(creds.refresh_token, creds.access_token, creds.client_secret)
        return creds
