"""Daily and monthly credit budgets of a client key: checked before a request starts.

Credits are the ones Kiro's metering events reported. On the state table a key's spending is kept on its own item
and checked in the admission write (`gateway.client_keys.dynamo_limiter`); locally it is what the usage counters
(`gateway.usage`, the figures `GET /v1/usage` shows) hold per key and UTC day. A budget is checked against what the
key has spent before the request starts: requests already running when the budget runs out finish (their credits are
known only at their end), so a key can overshoot by the cost of the answers it had in flight — bounded by its
concurrency limit. A used-up budget is a 429 in the client's shape with `Retry-After` (seconds to the next UTC day
or month) and a message naming the budget; nothing is sent upstream.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta

from gateway.client_keys.records import ClientKey
from kiro_core.errors import ErrorKind, GatewayError

# (credits spent today, credits spent this month) by a key name.
SpentCredits = Callable[[str], Awaitable[tuple[float, float]]]


def _next_day(now: datetime) -> datetime:
    return datetime(now.year, now.month, now.day, tzinfo=UTC) + timedelta(days=1)


def _next_month(now: datetime) -> datetime:
    return datetime(now.year + now.month // 12, now.month % 12 + 1, 1, tzinfo=UTC)


async def check_budget(key: ClientKey, now: datetime, spent: SpentCredits) -> None:
    """Refuse (GatewayError RATE_LIMIT with retry_after) when `key` has spent its daily or monthly credits."""
    daily, monthly = key.limits.daily_credits, key.limits.monthly_credits
    if daily is None and monthly is None:
        return
    today, month = await spent(key.name)
    if (daily is not None and today >= daily) or (monthly is not None and month >= monthly):
        raise budget_error(key, now, today, month)


def budget_error(key: ClientKey, now: datetime, today: float, month: float) -> GatewayError:
    """The 429 for a used-up budget (the daily one first), with `Retry-After` to its reset."""
    daily, monthly = key.limits.daily_credits, key.limits.monthly_credits
    for budget, used, name, period, resets in ((daily, today, "dailyCredits", "Daily", _next_day(now)),
                                               (monthly, month, "monthlyCredits", "Monthly", _next_month(now))):
        if budget is not None and used >= budget:
            wait = max(1.0, (resets - now).total_seconds())
            return GatewayError(ErrorKind.RATE_LIMIT, (
                f"{period} credit budget of client key '{key.name}' used up: {used:g} of {budget:g} credits "
                f"({name}). It resets at {resets.isoformat().replace('+00:00', 'Z')}."), retry_after=wait)
    return GatewayError(ErrorKind.RATE_LIMIT, f"Credit budget of client key '{key.name}' used up.", retry_after=60)
