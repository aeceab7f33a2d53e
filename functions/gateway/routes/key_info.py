"""`GET /key/info` and `GET /user/info` in LiteLLM's shape, for the calling key only (docs/client-keys.md).

Usage widgets that already speak to LiteLLM proxies (CodexBar's LiteLLM provider, for one) read `/key/info` with the
key as bearer, take its `user_id`, then read `/user/info?user_id=…` for `spend`, `max_budget` and
`budget_reset_at`. Here the "user" of a key is the key itself (its name), so both answer with the same figures: the
calling key's own, never another key's. Money is Kiro credits, not USD (`metadata.spend_unit` says so), counted by
the gateway's usage counters (the figures `GET /v1/usage` shows). The budget shown is the key's monthly credit
budget, else its daily one; a key without a budget (the owner key `PROXY_API_KEY`, "default", included) shows its
spend this month with `max_budget: null`.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from fastapi import APIRouter, Request

from gateway.client_keys.records import fingerprint, format_time
from gateway.edge.deps import presented_key, runtime_of
from kiro_core.errors import ErrorKind, GatewayError

router = APIRouter()  # behind the client key


def _period_end(now: datetime, duration: str) -> datetime:
    """The start of the next UTC day ("1d") or month ("1mo"): when a budget of that duration resets."""
    if duration == "1d":
        return datetime(now.year, now.month, now.day, tzinfo=UTC) + timedelta(days=1)
    return datetime(now.year + now.month // 12, now.month % 12 + 1, 1, tzinfo=UTC)


async def key_figures(request: Request) -> dict[str, Any]:
    """The calling key's own record, limits and spend, in LiteLLM's field names."""
    caller = request.state.client_key
    key = caller.key  # None for the owner key
    limits = key.limits if key is not None else None
    today, month = await (await runtime_of(request)).usage.key_credits(caller.name)
    now = datetime.now(UTC)
    budget, duration, spend = None, None, month
    if limits is not None and limits.monthly_credits is not None:
        budget, duration = limits.monthly_credits, "1mo"
    elif limits is not None and limits.daily_credits is not None:
        budget, duration, spend = limits.daily_credits, "1d", today
    return {
        "key_name": f"{caller.name} ({key.fingerprint if key is not None else fingerprint(presented_key(request))})",
        "key_alias": caller.name,
        "user_id": caller.name,
        "team_id": None,
        "spend": round(spend, 6),
        "max_budget": budget,
        "budget_duration": duration,
        "budget_reset_at": format_time(_period_end(now, duration)) if duration else None,
        "soft_budget": None,
        "rpm_limit": limits.rpm if limits is not None else None,
        "tpm_limit": None,
        "max_parallel_requests": limits.concurrency if limits is not None else None,
        "expires": format_time(key.expires_at) if key is not None and key.expires_at else None,
        "created_at": key.created_at if key is not None else None,
        "blocked": False,
        "models": [],
        "metadata": {
            "spend_unit": "Kiro credits",
            "owner_key": key is None,
            "spend_today": round(today, 6),
            "spend_this_month": round(month, 6),
            "daily_budget": limits.daily_credits if limits is not None else None,
            "monthly_budget": limits.monthly_credits if limits is not None else None,
        },
    }


@router.get("/key/info", response_model=None)  # no inferred model: keeps pydantic.v1 out of start-up
async def key_info(request: Request) -> dict[str, Any]:
    """LiteLLM's `/key/info`: `{"key": <fingerprint>, "info": {...}}` for the key this request presents."""
    presented = presented_key(request)
    key = request.query_params.get("key")  # read by hand: a declared parameter costs a pydantic field at start
    if key is not None and key != presented:
        raise GatewayError(ErrorKind.PERMISSION, "A key can read only its own /key/info (omit ?key=).")
    return {"key": fingerprint(presented), "info": await key_figures(request)}


@router.get("/user/info", response_model=None)
async def user_info(request: Request) -> dict[str, Any]:
    """LiteLLM's `/user/info`: the calling key as its own user (`user_id` is the key's name)."""
    info = await key_figures(request)
    user_id = request.query_params.get("user_id")
    if user_id is not None and user_id != info["user_id"]:
        raise GatewayError(ErrorKind.PERMISSION, "A key can read only its own /user/info (its user_id is its name).")
    user = {name: info[name] for name in ("user_id", "spend", "max_budget", "budget_duration", "budget_reset_at",
                                          "rpm_limit", "tpm_limit", "max_parallel_requests", "metadata")}
    user["user_alias"] = info["key_alias"]
    return {"user_id": info["user_id"], "user_info": user, "keys": [], "teams": []}
