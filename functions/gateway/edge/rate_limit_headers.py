"""Rate-limit headers for a client key with an rpm limit, in the two conventions clients already read
(docs/client-keys.md "Rate-limit headers").

Built from the `RateLimitState` the gate kept when it counted the request (gateway.client_keys.gate): no second
read of the store. OpenAI's convention gives the reset as a duration (`x-ratelimit-reset-requests: 42s`),
Anthropic's as an RFC 3339 time (`anthropic-ratelimit-requests-reset: 2026-12-08T02:01:00Z`). Only requests are
limited per minute, so no `-tokens` headers: there is no figure to give.
"""

from __future__ import annotations

import math
import time
from datetime import UTC, datetime
from typing import Any

from starlette.types import Scope


def duration(seconds: float) -> str:
    """OpenAI's duration form, rounded up to whole seconds: `7s`, `1m5s`."""
    whole = max(0, math.ceil(seconds))
    minutes, rest = divmod(whole, 60)
    return f"{minutes}m{rest}s" if minutes else f"{rest}s"


def rate_limit_headers(state: Any, now: float) -> list[tuple[bytes, bytes]]:
    """The headers of one `RateLimitState` (limit, remaining, reset_at in epoch seconds)."""
    reset = datetime.fromtimestamp(math.ceil(state.reset_at), UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    values = {
        "x-ratelimit-limit-requests": str(state.limit),
        "x-ratelimit-remaining-requests": str(state.remaining),
        "x-ratelimit-reset-requests": duration(state.reset_at - now),
        "anthropic-ratelimit-requests-limit": str(state.limit),
        "anthropic-ratelimit-requests-remaining": str(state.remaining),
        "anthropic-ratelimit-requests-reset": reset,
    }
    return [(name.encode(), value.encode()) for name, value in values.items()]


def headers_for_scope(scope: Scope) -> list[tuple[bytes, bytes]]:
    """The rate-limit headers of this request's caller, if the gate counted it against an rpm limit."""
    caller = scope.get("state", {}).get("client_key")
    state = getattr(caller, "rate_limit", None)
    return rate_limit_headers(state, time.time()) if state is not None else []
