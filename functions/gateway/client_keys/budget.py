"""Daily and monthly credit budgets of a client key: checked before a request starts.

PENDING. The budgets are stored (`KeyLimits.daily_credits` / `monthly_credits`, set by `kiro-gateway keys create
--daily-credits/--monthly-credits` and `keys set-limits`) but not enforced yet: they need the credits spent per key
name today and this month, which the per-key usage counters (credits counted from Kiro's metering events, an
estimate before the answer and the metered figure after it) will provide. Until those land every request is allowed.

How it plugs in: `check_budget` is awaited by `gateway.client_keys.gate.ClientGate` for every generation request of
a named key, after its rpm check and before its concurrency slot (the default key has no budget). Once the counters
exist it reads the key's spent credits for the current UTC day and month and, when a budget is used up, raises
`GatewayError(ErrorKind.RATE_LIMIT, "Daily credit budget of client key 'NAME' used up: 12.5 of 12.5 credits
(dailyCredits). ...", retry_after=<seconds to the next UTC day or month>)`: a 429 in the client's shape with
`Retry-After`, nothing sent upstream.
"""

from __future__ import annotations

from datetime import datetime

from gateway.client_keys.records import ClientKey


async def check_budget(key: ClientKey, now: datetime) -> None:
    """Refuse (GatewayError RATE_LIMIT with retry_after) when `key` has spent its daily or monthly credits.

    Pending: allows everything (see the module docstring)."""
    return None
