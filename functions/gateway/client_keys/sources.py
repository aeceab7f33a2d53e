"""Where the key ring lives, and the per-process copy of it that every request reads.

Locally the ring is the file `KIRO_CLIENT_KEYS_FILE` (default `~/.kiro-gateway/client-keys.json`); on AWS it is the
`clientKeys` entry of the gateway's secret. `KeyRegistry` re-reads it at most every `max_age` seconds: 1 s for the
file (a revoked key stops working at once), `CLIENT_KEYS_CACHE_SECONDS` (default 30, at most 60) for the secret. So
a key revoked with `kiro-gateway keys revoke` is refused (401) within that interval on every instance.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from pathlib import Path
from typing import Any, Protocol

from gateway.client_keys.limiter import Clock
from gateway.client_keys.records import KeyRecordError, KeyRing
from gateway.stores.aws_clients import LazyClient, client_config, region_of, short_error

log = logging.getLogger(__name__)

RETRY_AFTER_FAILURE = 5.0  # seconds before a source that failed to load is asked again
SECRET_FIELD = "clientKeys"


class KeySource(Protocol):
    def describe(self) -> str: ...

    async def load(self) -> Any:
        """The raw key document (None when there is none); raises on a read failure."""
        ...


class FileKeySource:
    def __init__(self, path: Path) -> None:
        self.path = path

    def describe(self) -> str:
        return f"client keys file {self.path}"

    async def load(self) -> Any:
        try:
            text = self.path.read_text(encoding="utf-8")
        except FileNotFoundError:
            return None
        return json.loads(text) if text.strip() else None


class SecretKeySource:
    """`clientKeys` of the Secrets Manager secret: from the gateway's own copy of the secret once it is bound to the
    token store (`use_store`: one read serves credentials, client API key and ring), else its own read."""

    def __init__(self, secret_id: str, *, client: Any = None, max_age: float = 30.0) -> None:
        self.secret_id = secret_id
        self.max_age = max_age
        self._secrets = LazyClient("secretsmanager", region_of(secret_id), client_config(3, 10, 3), client)
        self._store: Any = None

    def use_store(self, store: Any) -> bool:
        """Read the ring from `store`'s copy of this secret (a SecretsManagerTokenStore of the same id); True when
        bound (the first time)."""
        if self._store is None and getattr(store, "secret_id", None) == self.secret_id \
                and hasattr(store, "fresh_document"):
            self._store = store
            return True
        return False

    def describe(self) -> str:
        return f"`{SECRET_FIELD}` of the secret {self.secret_id}"

    async def load(self) -> Any:
        if self._store is not None:
            document = await self._store.fresh_document(self.max_age)
            return document.get(SECRET_FIELD) if isinstance(document, dict) else None
        answer = await asyncio.to_thread(self._secrets.get().get_secret_value, SecretId=self.secret_id)
        document = json.loads(answer.get("SecretString") or "{}")
        return document.get(SECRET_FIELD) if isinstance(document, dict) else None


class KeyRegistry:
    """The current key ring of one source, cached for `max_age` seconds.

    A malformed document is an empty ring (only the default key works) with an error in the log; a failed read
    keeps the last good ring and is retried after a few seconds.
    """

    def __init__(self, source: KeySource, max_age: float, clock: Clock = time.monotonic) -> None:
        self.source = source
        self.max_age = max_age
        self._clock = clock
        self._ring: KeyRing | None = None
        self._next_read = float("-inf")
        self._lock = asyncio.Lock()

    async def ring(self) -> KeyRing | None:
        if self._clock() < self._next_read:
            return self._ring
        async with self._lock:
            if self._clock() >= self._next_read:
                await self._reload()
        return self._ring

    async def _reload(self) -> None:
        try:
            raw = await self.source.load()
        except Exception as error:  # unreadable file, bad JSON, AWS error: keep what we had
            log.error("could not read the %s (%s: %s); keeping the keys read before", self.source.describe(),
                      type(error).__name__, short_error(error))
            self._next_read = self._clock() + min(self.max_age, RETRY_AFTER_FAILURE)
            return
        try:
            self._ring = KeyRing.from_document(raw)
        except KeyRecordError as error:
            log.error("the %s is malformed (%s); no client key is accepted until it is fixed",
                      self.source.describe(), error)
            self._ring = None
        self._next_read = self._clock() + self.max_age
