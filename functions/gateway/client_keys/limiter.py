"""Counting for the limits: fixed windows and leased concurrency slots, behind one Protocol.

Windows are fixed and opened by their first event: the first request of a key opens a 60-second window, every
request in it is counted, and once `limit` are counted the rest are refused until the window ends (`Retry-After` is
the time left). A window starting at the first event rather than on the clock's minute means a burst is never split
across two windows (so `rpm` requests, and never up to twice as many, pass in any burst).

A concurrency slot is a lease: it is released when the response ends, and a slot whose holder crashed (a Lambda
instance killed mid-stream) frees itself when its lease runs out, so no slot leaks for longer than the lease.

`MemoryLimiter` serves one process (`kiro-gateway serve`); `gateway.client_keys.dynamo_limiter.DynamoLimiter`
shares the counts between every Lambda instance (or several local processes) through the state table.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

Clock = Callable[[], float]


@dataclass(frozen=True)
class Verdict:
    """The outcome of counting one event: allowed, or refused with the seconds until the window has room."""

    allowed: bool
    retry_after: float = 0.0
    count: int = 0
    reset_in: float = 0.0  # seconds until the window ends (0 when unknown)

    def state(self, limit: int, now: float) -> RateLimitState | None:
        """The window as the rate-limit headers show it (None when the count was unavailable)."""
        if self.count <= 0 or self.reset_in <= 0:
            return None
        return RateLimitState(limit, max(0, limit - self.count), now + self.reset_in)


@dataclass(frozen=True)
class RateLimitState:
    """A key's rpm window after the gate counted a request: the `x-ratelimit-*` / `anthropic-ratelimit-*` headers
    (gateway.edge.rate_limit_headers) are built from it, with no further read of the store."""

    limit: int
    remaining: int
    reset_at: float  # epoch seconds when the window ends and `remaining` is back to `limit`


class Limiter(Protocol):
    async def hit(self, key: str, limit: int, window: float, *, hold: float = 0.0) -> Verdict:
        """Count one event in `key`'s window (`window` seconds from its first event); refused, and not counted, when
        `limit` events are counted already. With `hold`, the event that fills the window stretches it to `hold`
        seconds from now (a block)."""
        ...

    async def wait_for(self, key: str, limit: int) -> float:
        """Seconds until `key`'s window has room for one more event (0 when it has room now); counts nothing."""
        ...

    async def acquire(self, key: str, limit: int, lease: float) -> str | None:
        """One of `limit` slots of `key` for at most `lease` seconds: its token, or None when all are taken ("" when
        the count is unavailable and the request goes ahead uncounted)."""
        ...

    async def release(self, key: str, token: str) -> None:
        """Give the slot back (unknown or expired tokens are ignored)."""
        ...


class MemoryLimiter:
    """Limiter for one process. Not thread-safe; no awaits inside, so safe for one event loop."""

    PRUNE_EVERY = 1024  # events between sweeps of finished windows (bounds memory under many source addresses)

    def __init__(self, clock: Clock = time.monotonic) -> None:
        self._clock = clock
        self._windows: dict[str, tuple[float, int]] = {}  # key -> (window end, count)
        self._slots: dict[str, dict[str, float]] = {}  # key -> {token: lease end}
        self._events = 0

    def _window(self, key: str, now: float) -> tuple[float, int] | None:
        window = self._windows.get(key)
        return window if window is not None and window[0] > now else None

    async def hit(self, key: str, limit: int, window: float, *, hold: float = 0.0) -> Verdict:
        now = self._clock()
        self._prune(now)
        end, count = self._window(key, now) or (now + window, 0)
        if count >= limit:
            return Verdict(False, end - now, count, end - now)
        count += 1
        if hold and count >= limit:
            end = max(end, now + hold)
        self._windows[key] = (end, count)
        return Verdict(True, 0.0, count, end - now)

    async def wait_for(self, key: str, limit: int) -> float:
        now = self._clock()
        current = self._window(key, now)
        return current[0] - now if current is not None and current[1] >= limit else 0.0

    async def acquire(self, key: str, limit: int, lease: float) -> str | None:
        now = self._clock()
        holders = {token: end for token, end in self._slots.get(key, {}).items() if end > now}
        if len(holders) >= limit:
            self._slots[key] = holders
            return None
        token = uuid.uuid4().hex
        holders[token] = now + lease
        self._slots[key] = holders
        return token

    async def release(self, key: str, token: str) -> None:
        holders = self._slots.get(key)
        if holders is not None:
            holders.pop(token, None)
            if not holders:
                del self._slots[key]

    def _prune(self, now: float) -> None:
        self._events += 1
        if self._events % self.PRUNE_EVERY == 0:
            self._windows = {key: value for key, value in self._windows.items() if value[0] > now}
