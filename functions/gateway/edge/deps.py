"""Request plumbing shared by the edge, the routes and the client-key gate (`gateway.client_keys.gate`): the
runtime and the key a client presented."""

from __future__ import annotations

from typing import TYPE_CHECKING

from fastapi import Request

if TYPE_CHECKING:
    from gateway.runtime import GatewayRuntime
    from gateway.runtime_holder import RuntimeHolder


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
