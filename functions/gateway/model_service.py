"""The model catalogue: ListAvailableModels behind a `ModelCache`, with a fallback list when the upstream has none."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from typing import Any

from gateway.stores.base import ModelCache
from kiro_core.errors import GatewayError
from kiro_core.models_catalog import ModelCatalog

log = logging.getLogger(__name__)

FALLBACK_RETRY_SECONDS = 60.0  # after a failed fetch, serve the fallback list this long before asking again


class ModelService:
    """Resolves the catalogue once per TTL for all requests (single flight), never failing a request over it."""

    def __init__(
        self,
        fetch: Callable[[], Awaitable[list[dict[str, Any]]]] | None,
        cache: ModelCache,
        ttl_seconds: int,
        clock: Callable[[], float] = time.monotonic,
    ):
        self._fetch = fetch
        self._cache = cache
        self._ttl = ttl_seconds
        self._clock = clock
        self._catalog: ModelCatalog | None = None
        self._valid_until = 0.0
        self._lock = asyncio.Lock()

    async def catalog(self) -> ModelCatalog:
        if self._catalog is not None and self._clock() < self._valid_until:
            return self._catalog
        async with self._lock:
            if self._catalog is not None and self._clock() < self._valid_until:
                return self._catalog
            self._catalog, lifetime = await self._load()
            self._valid_until = self._clock() + lifetime
            return self._catalog

    async def _load(self) -> tuple[ModelCatalog, float]:
        models = await self._cache.get()
        if models:
            return ModelCatalog(models), float(min(self._ttl, 300))
        if self._fetch is None:
            return ModelCatalog(None), FALLBACK_RETRY_SECONDS
        try:
            models = await self._fetch()
        except GatewayError as error:
            log.warning("ListAvailableModels failed, serving the fallback list: %s", error.message)
            return ModelCatalog(None), FALLBACK_RETRY_SECONDS
        except Exception as error:  # a catalogue problem must never fail a chat request
            log.warning("ListAvailableModels failed, serving the fallback list: %s", type(error).__name__)
            return ModelCatalog(None), FALLBACK_RETRY_SECONDS
        if not models:
            log.warning("ListAvailableModels returned no models, serving the fallback list")
            return ModelCatalog(None), FALLBACK_RETRY_SECONDS
        await self._cache.put(models, self._ttl)
        return ModelCatalog(models), float(self._ttl)
