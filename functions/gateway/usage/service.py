"""Counting requests into the usage store and reporting them with Kiro's limits (the `GET /v1/usage` body)."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from gateway.usage import counters
from gateway.usage.limits import UsageLimitsCache, empty_limits
from gateway.usage.store import UsageStore

log = logging.getLogger(__name__)

WRITE_TIMEOUT = 3.0  # seconds; counting must never hold an answer for long
HISTORY_DAYS = 31  # days shown in the daily series


class UsageService:
    def __init__(self, store: UsageStore, limits: UsageLimitsCache, retention_days: int,
                 clock: Callable[[], float] = time.time) -> None:
        self.store = store
        self.limits = limits
        self._retention = retention_days * 86_400
        self._clock = clock

    async def record(self, usage: counters.RequestUsage) -> None:
        """Add one request to today's counters; never raises (a failed write is a warning, not a failed answer)."""
        adds, maxes = counters.increments(usage)
        try:
            await asyncio.wait_for(self.store.add(counters.day_of(usage.at), adds, maxes,
                                                  int(usage.at + self._retention)), WRITE_TIMEOUT)
        except Exception as error:
            log.warning("could not count usage in %s: %s: %s", self.store.describe(), type(error).__name__,
                        str(error)[:200])

    async def key_credits(self, key_name: str) -> tuple[float, float]:
        """(credits spent today, credits spent this month) by the client key `key_name`, UTC days (budgets): Kiro's
        metered credits plus the nominal credits of its web searches."""
        today = datetime.fromtimestamp(self._clock(), UTC).date()
        month = counters.month_days(today)
        days = await self.store.read(month)
        by_key = counters.summary(days.get(day, {}) for day in month)["byKey"]
        today_by_key = counters.summary([days.get(today.isoformat(), {})])["byKey"]
        name = counters.label(key_name)

        def spent(row: dict[str, Any]) -> float:
            return float(row.get("credits", 0.0)) + float(row.get("nominalCredits", 0.0))

        return spent(today_by_key.get(name, {})), spent(by_key.get(name, {}))

    async def report(self, key_name: str | None = None) -> dict[str, Any]:
        """Kiro's plan and credits (cached) and the gateway's counters for today, this month and the last days.

        With `key_name` (a named client key), only that key's own figures: its totals and its `byKey` row, no other
        key's, no per-model split (models are counted across keys) and not the owner's Kiro plan."""
        now = self._clock()
        today = datetime.fromtimestamp(now, UTC).date()
        month = counters.month_days(today)
        history = counters.last_days(today, HISTORY_DAYS)
        if key_name is not None:
            days = counters.only_key(await self.store.read(sorted(set(month) | set(history))), key_name)
            return {"object": "usage", **empty_limits(), "limitsError": "Kiro's plan is shown to the owner's key only",
                    "key": key_name,
                    "generatedAt": datetime.fromtimestamp(now, UTC).isoformat().replace("+00:00", "Z"),
                    "gateway": {"today": counters.summary([days.get(today.isoformat(), {})]),
                                "month": counters.summary(days.get(day, {}) for day in month),
                                "days": counters.daily_series(days, history),
                                "timeToFirstTokenMs": counters.ttft_percentiles([]), "errors": {}}}
        (limits, problem), days = await asyncio.gather(self.limits.get(),
                                                      self.store.read(sorted(set(month) | set(history))))
        gateway = {
            "today": counters.summary([days.get(today.isoformat(), {})]),
            "month": counters.summary(days.get(day, {}) for day in month),
            "days": counters.daily_series(days, history),
            "timeToFirstTokenMs": counters.ttft_percentiles(days.get(day, {}) for day in history),
            "errors": counters.errors_by_class({day: days[day] for day in history if day in days}),
        }
        return {"object": "usage", **limits, "limitsError": problem,
                "generatedAt": datetime.fromtimestamp(now, UTC).isoformat().replace("+00:00", "Z"),
                "gateway": gateway}
