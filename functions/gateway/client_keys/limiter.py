"""Counting for the limits: fixed windows and leased concurrency slots, behind one Protocol.

Two kinds of window:

* `hit` counts in a fixed window opened by its first event (60 s for the failed-auth throttle): once `limit` are
  counted the rest are refused until the window ends. A fixed window lets up to `2 x limit` events through within
  moments across its edge (the end of one window and the start of the next); the failed-auth throttle accepts that.
* `admit_key` (a client key's rpm and concurrency) keeps a sliding log: the times of the key's last `rpm` admissions,
  one slot each, and a request is admitted only into a slot whose time is over 60 s old. So no 60-second span, at any
  offset, holds more than `rpm` admitted requests; `Retry-After` is the time until the oldest of them is 60 s old.

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
KEY_WINDOW = 60.0  # seconds: a client key's rpm is counted over any 60-second span


@dataclass(frozen=True)
class Verdict:
    """The outcome of counting one event: allowed, or refused with the seconds until the window has room."""

    allowed: bool
    retry_after: float = 0.0
    count: int = 0
    reset_in: float = 0.0  # seconds until the window ends (0 when unknown)


@dataclass(frozen=True)
class RateLimitState:
    """A key's rpm window after the gate counted a request: the `x-ratelimit-*` / `anthropic-ratelimit-*` headers
    (gateway.edge.rate_limit_headers) are built from it, with no further read of the store."""

    limit: int
    remaining: int
    reset_at: float  # epoch seconds when the window is fully replenished (`remaining` back to `limit`)


@dataclass(frozen=True)
class Budget:
    """A key's credit budgets and the periods they count in (UTC day `YYYY-MM-DD`, month `YYYY-MM`)."""

    daily: float | None
    monthly: float | None
    day: str
    month: str


@dataclass(frozen=True)
class Spent:
    """Credits a key spent in `day` and `month`, as the limiter's own counters held them at the admission."""

    day: str
    today: float
    month: str
    this_month: float


@dataclass(frozen=True)
class KeyAdmission:
    """One atomic decision on a key's rpm window and concurrency slot.

    `refused` names the limit that refused it ("rpm" or "concurrency"), None when admitted; `token` is the slot to
    give back (None when the key has no concurrency limit, "" when the count was unavailable and the request goes
    ahead uncounted); `unavailable` is True when the counts could not be reached (the outage policy: allowed)."""

    refused: str | None = None
    retry_after: float = 0.0
    token: str | None = None
    rate: RateLimitState | None = None
    unavailable: bool = False
    spent: Spent | None = None  # the key's spending as its counters held it (None: this limiter keeps none)


def rate_state(times: list[float], limit: int, now: float, window: float) -> RateLimitState:
    """The rate state of a sliding log holding the admission `times` of its `limit` slots."""
    recent = sorted(t for t in times if t > now - window)
    remaining = max(0, limit - len(recent))
    reset_at = recent[-1] + window if recent else now  # fully replenished: the newest admission has left the window
    return RateLimitState(limit, remaining, reset_at)


class Limiter(Protocol):
    async def admit_key(self, name: str, rpm: int | None, concurrency: int | None, lease: float) -> KeyAdmission:
        """Count one request of client key `name` against its rpm (sliding 60 s) and take one of its concurrency
        slots, both or neither, in one step (one conditional write on the state table)."""
        ...

    async def release_key(self, name: str, token: str) -> None:
        """Give back the concurrency slot `token` of key `name` (unknown or expired tokens are ignored)."""
        ...

    counts_spending: bool  # True: admit_key checks budgets on its own counters (settle_key records spending)

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
    """Limiter for one process. Not thread-safe; no awaits inside, so safe for one event loop.

    It keeps no spending: budgets are checked against the usage counters (SQLite, shared by local processes)."""

    counts_spending = False

    PRUNE_EVERY = 1024  # events between sweeps of finished windows (bounds memory under many source addresses)

    def __init__(self, clock: Clock = time.monotonic, wall: Clock = time.time) -> None:
        self._clock = clock
        self._wall = wall  # epoch seconds, for `RateLimitState.reset_at`
        self._windows: dict[str, tuple[float, int]] = {}  # key -> (window end, count)
        self._logs: dict[str, list[float]] = {}  # key name -> its last rpm admission times (monotonic)
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

    async def admit_key(self, name: str, rpm: int | None, concurrency: int | None, lease: float) -> KeyAdmission:
        now = self._clock()
        self._prune(now)
        times = [t for t in self._logs.get(name, []) if t > now - KEY_WINDOW]
        if rpm is not None and len(times) >= rpm:
            self._logs[name] = times
            wait = min(times) + KEY_WINDOW - now
            return KeyAdmission("rpm", wait, rate=self._rate(times, rpm, now))
        token = None
        if concurrency is not None:
            token = await self.acquire(f"ckslots#{name}", concurrency, lease)
            if token is None:
                return KeyAdmission("concurrency", 1.0, rate=self._rate(times, rpm, now) if rpm else None)
        if rpm is None:
            self._logs.pop(name, None)
            return KeyAdmission(token=token)
        times.append(now)
        self._logs[name] = times
        return KeyAdmission(token=token, rate=self._rate(times, rpm, now))

    def _rate(self, times: list[float], rpm: int, now: float) -> RateLimitState:
        state = rate_state(times, rpm, now, KEY_WINDOW)
        return RateLimitState(state.limit, state.remaining, state.reset_at - now + self._wall())

    async def release_key(self, name: str, token: str) -> None:
        await self.release(f"ckslots#{name}", token)

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
            self._logs = {key: times for key, times in self._logs.items() if times and max(times) > now - KEY_WINDOW}
