"""Shared route plumbing: the runtime and the client API key check."""

from __future__ import annotations

import hmac
from typing import TYPE_CHECKING

from fastapi import Request

from kiro_core.errors import ErrorKind, GatewayError

if TYPE_CHECKING:
    from gateway.runtime import GatewayRuntime
    from gateway.runtime_holder import RuntimeHolder

OPEN_PATHS = {"/", "/health", "/docs", "/openapi.json"}


async def runtime_of(request: Request) -> GatewayRuntime:
    holder: RuntimeHolder = request.app.state.runtime
    return await holder.get()


def presented_key(request: Request) -> str:
    """The key from `x-api-key` (Anthropic style) or `Authorization: Bearer` (OpenAI style)."""
    key = request.headers.get("x-api-key", "")
    if not key:
        scheme, _, value = request.headers.get("authorization", "").partition(" ")
        if scheme.lower() == "bearer":
            key = value.strip()
    return key


def check_api_key(expected: str, presented: str) -> None:
    """Constant-time comparison; a missing or wrong key never reaches upstream."""
    if not expected:
        raise GatewayError(ErrorKind.AUTHENTICATION, "The gateway has no PROXY_API_KEY configured; set one and "
                           "restart it.")
    if not presented:
        raise GatewayError(ErrorKind.AUTHENTICATION, "Missing API key: send it as 'x-api-key' or "
                           "'Authorization: Bearer <key>'.")
    if not hmac.compare_digest(expected.encode(), presented.encode()):
        raise GatewayError(ErrorKind.AUTHENTICATION, "Invalid API key.")
