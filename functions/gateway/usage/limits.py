"""Kiro's own view of the account: plan, credits used and allowed, reset date, overage (GetUsageLimits).

The answer (docs/protocol.md §Credits and usage): `subscriptionInfo.{subscriptionTitle,type}`, `usageBreakdownList[]`
with `currentUsage(WithPrecision)`, `usageLimit(WithPrecision)`, `unit` names, `overageCharges`, `overageRate`,
`overageCap`, `currency`, `nextDateReset`; top-level `daysUntilReset`, `nextDateReset` (epoch seconds) and
`overageConfiguration.overageStatus`. `userInfo` (account ids) is never passed on. Answers are cached for a few
minutes: the figures move slowly and every call is an upstream request.
"""

from __future__ import annotations

import asyncio
import logging
import math
import time
from collections.abc import Awaitable, Callable, Mapping
from datetime import UTC, datetime
from typing import Any

log = logging.getLogger(__name__)

CREDIT_RESOURCE = "AGENTIC_REQUEST"


def _number(*values: Any) -> float | None:
    for value in values:
        if isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value):
            return float(value)
        if isinstance(value, str):
            try:
                number = float(value)
            except ValueError:
                continue
            if math.isfinite(number):
                return number
    return None


def _iso(epoch: float | None) -> str | None:
    if epoch is None:
        return None
    if epoch > 1e11:  # milliseconds
        epoch /= 1000
    return datetime.fromtimestamp(epoch, UTC).isoformat().replace("+00:00", "Z")


def _breakdown(raw: Mapping[str, Any]) -> Mapping[str, Any]:
    entries = [e for e in raw.get("usageBreakdownList") or [] if isinstance(e, Mapping)]
    credit = next((e for e in entries if e.get("resourceType") == CREDIT_RESOURCE), None)
    return credit or (entries[0] if entries else {})


def parse_usage_limits(raw: Mapping[str, Any]) -> dict[str, Any]:
    """The client-facing summary of a GetUsageLimits answer (plan, credits, reset, overage); no account ids."""
    subscription = raw.get("subscriptionInfo") if isinstance(raw.get("subscriptionInfo"), Mapping) else {}
    entry = _breakdown(raw)
    used = _number(entry.get("currentUsageWithPrecision"), entry.get("currentUsage"))
    limit = _number(entry.get("usageLimitWithPrecision"), entry.get("usageLimit"))
    remaining = max(0.0, limit - used) if used is not None and limit is not None else None
    overage_config = raw.get("overageConfiguration") if isinstance(raw.get("overageConfiguration"), Mapping) else {}
    reset = _number(raw.get("nextDateReset"), entry.get("nextDateReset"))
    days = _number(raw.get("daysUntilReset"))
    return {
        "plan": subscription.get("subscriptionTitle") or subscription.get("type"),
        "planType": subscription.get("type"),
        "credits": {
            "used": used,
            "limit": limit,
            "remaining": remaining,
            "unit": str(entry.get("displayName") or entry.get("unit") or "credit").lower(),
        },
        "resetsAt": _iso(reset),
        "daysUntilReset": int(days) if days is not None else None,
        "overage": {
            "status": overage_config.get("overageStatus"),
            "charges": _number(entry.get("overageCharges")),
            "rate": _number(entry.get("overageRate")),
            "cap": _number(entry.get("overageCapWithPrecision"), entry.get("overageCap")),
            "currency": entry.get("currency"),
        },
    }


def empty_limits() -> dict[str, Any]:
    """The same shape when Kiro could not be asked: every figure unknown (null), never invented."""
    return {"plan": None, "planType": None, "credits": {"used": None, "limit": None, "remaining": None,
                                                        "unit": "credit"},
            "resetsAt": None, "daysUntilReset": None,
            "overage": {"status": None, "charges": None, "rate": None, "cap": None, "currency": None}}


class UsageLimitsCache:
    """GetUsageLimits behind a short cache with a single flight; a failure is reported, not cached for long."""

    FAILURE_SECONDS = 30.0

    def __init__(self, fetch: Callable[[], Awaitable[Mapping[str, Any]]] | None, ttl_seconds: float,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self._fetch = fetch
        self._ttl = ttl_seconds
        self._clock = clock
        self._value: tuple[dict[str, Any], str | None] | None = None
        self._until = 0.0
        self._lock = asyncio.Lock()

    async def get(self) -> tuple[dict[str, Any], str | None]:
        """(summary, problem): the problem says why the figures are unknown, else None."""
        if self._value is not None and self._clock() < self._until:
            return self._value
        async with self._lock:
            if self._value is not None and self._clock() < self._until:
                return self._value
            self._value, lifetime = await self._load()
            self._until = self._clock() + lifetime
            return self._value

    async def _load(self) -> tuple[tuple[dict[str, Any], str | None], float]:
        if self._fetch is None:
            return (empty_limits(), "the gateway has no Kiro credentials"), self.FAILURE_SECONDS
        try:
            raw = await self._fetch()
        except Exception as error:  # the report must still show the gateway's own counters
            message = getattr(error, "message", None) or type(error).__name__
            log.warning("GetUsageLimits failed: %s", message)
            return (empty_limits(), f"Kiro's usage limits are unavailable: {message}"), self.FAILURE_SECONDS
        return (parse_usage_limits(raw if isinstance(raw, Mapping) else {}), None), float(self._ttl)
