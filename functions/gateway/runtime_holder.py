"""The one `GatewayRuntime` of a process, built on first use.

Apart from `gateway.runtime` so that the app can be created (and answer `/health`) without importing the upstream
machinery (httpx, auth, stores, the pipeline): that import happens with the first request that needs it.
"""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING

from gateway.settings import Settings

if TYPE_CHECKING:
    from gateway.runtime import GatewayRuntime


class RuntimeHolder:
    """Builds the runtime on first use, once, even under concurrent first requests."""

    def __init__(self, settings: Settings):
        self.settings = settings
        self._runtime: GatewayRuntime | None = None
        self._lock = asyncio.Lock()

    async def get(self) -> GatewayRuntime:
        if self._runtime is None:
            async with self._lock:
                if self._runtime is None:
                    # lazy: the upstream machinery loads with the first request that needs it (see the module docstring)
                    from gateway.runtime import GatewayRuntime

                    self._runtime = await GatewayRuntime.create(self.settings)
        return self._runtime

    async def aclose(self) -> None:
        if self._runtime is not None:
            await self._runtime.aclose()
            self._runtime = None

    async def reset(self) -> None:
        """Close and forget the runtime (HTTP pool, cached Kiro credentials and client key, AWS clients): the next
        request builds a fresh one. For SnapStart, whose snapshot must not carry sockets or secrets across restores
        (`gateway.snapstart`)."""
        async with self._lock:
            runtime, self._runtime = self._runtime, None
        if runtime is not None:
            await runtime.aclose()
