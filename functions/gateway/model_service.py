"""The model catalogue: ListAvailableModels behind a `ModelCache`, with a fallback list when the upstream has none.

The catalogue is per account, so everything is keyed by the account key the client derives from the credentials:
a credential swap (a new secret, another profile) gets its own list instead of the previous account's."""

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
        account: Callable[[], Awaitable[str]] | None = None,
    ):
        self._fetch = fetch
        self._cache = cache
        self._ttl = ttl_seconds
        self._clock = clock
        self._account = account
        self._catalogs: dict[str, tuple[ModelCatalog, float]] = {}  # account -> (catalogue, valid until)
        self._lock = asyncio.Lock()

    async def catalog(self) -> ModelCatalog:
        key = await self._account_key()
        held = self._catalogs.get(key)
        if held is not None and self._clock() < held[1]:
            return held[0]
        async with self._lock:
            held = self._catalogs.get(key)
            if held is not None and self._clock() < held[1]:
                return held[0]
            catalog, lifetime = await self._load(key)
            if held is not None and held[0].from_upstream and not catalog.from_upstream:
                catalog = held[0]  # a failed refresh (every account busy, say) keeps the last live list
            self._catalogs[key] = (catalog, self._clock() + lifetime)
            return catalog

    @property
    def cache(self) -> ModelCache:
        return self._cache

    async def cache_key(self) -> str:
        """The account key the catalogue is cached under (for `gateway.stores.state_prefetch`)."""
        return await self._account_key()

    def holds(self, key: str) -> bool:
        """Whether this instance holds a current catalogue for `key` (no read needed)."""
        held = self._catalogs.get(key)
        return held is not None and self._clock() < held[1]

    async def _account_key(self) -> str:
        if self._account is None:
            return ""
        try:
            return await self._account()
        except Exception as error:  # no usable credentials: the fetch fails too, and the fallback list is served
            log.debug("no catalogue account key: %s", type(error).__name__)
            return ""

    async def _load(self, key: str) -> tuple[ModelCatalog, float]:
        models = await self._cache.get(key)
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
        await self._cache.put(models, self._ttl, key)
        return ModelCatalog(models), float(self._ttl)
