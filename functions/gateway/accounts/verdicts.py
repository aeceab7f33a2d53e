"""What an upstream failure means for the account that met it (docs/protocol.md §Errors): rest, exhausted, suspended,
revoked, or nothing (the request's own fault, or a failure another account would meet as well: no failover).

Pure: an error, the account's kind and its previous state in; a `Health` (or None) and the error the client should see
out. Times are epoch seconds on the clock handed in.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from gateway.accounts.health import COOLING, EXHAUSTED, REVOKED, SUSPENDED, Health
from gateway.stores.base import CredentialError
from gateway.upstream.errors import upstream_failure
from kiro_core.errors import ErrorKind, GatewayError
from kiro_core.upstream_reasons import FailureClass

REPEAT_WINDOW = 120.0  # a throttle this soon after the last rest ended counts as a repeat (docs/protocol.md §Errors)


@dataclass(frozen=True)
class Policy:
    """The account settings that shape verdicts (ACCOUNT_* variables)."""

    throttle_cooldown: float = 8.0
    throttle_repeat_cooldown: float = 60.0
    error_cooldown: float = 30.0
    suspended_retry: float = 0.0


@dataclass(frozen=True)
class Verdict:
    health: Health
    error: GatewayError  # what the client sees if no other account takes over


def quota_reset(reason: str | None, now: float) -> float:
    """When a usage limit resets, when Kiro did not say: the next hour, day, week (Monday) or month, in UTC."""
    moment = datetime.fromtimestamp(now, UTC)
    if reason == "HOURLY_REQUEST_COUNT":
        reset = moment.replace(minute=0, second=0, microsecond=0) + timedelta(hours=1)
    elif reason == "DAILY_REQUEST_COUNT":
        reset = moment.replace(hour=0, minute=0, second=0, microsecond=0) + timedelta(days=1)
    elif reason == "WEEKLY_REQUEST_COUNT":
        start = moment.replace(hour=0, minute=0, second=0, microsecond=0)
        reset = start + timedelta(days=7 - start.weekday())
    else:  # MONTHLY_REQUEST_COUNT, OVERAGE_REQUEST_LIMIT_EXCEEDED, USAGE_LIMIT_REACHED, none given
        first = moment.replace(day=1, hour=0, minute=0, second=0, microsecond=0)
        reset = (first + timedelta(days=32)).replace(day=1)
    return reset.timestamp()


def judge(error: GatewayError, *, name: str, api_key: bool, fingerprint: str, previous: Health | None, now: float,
          policy: Policy) -> Verdict | None:
    """The account-level meaning of `error`, or None when it says nothing about the account."""
    read = upstream_failure(error)
    failure = read.failure if read is not None else None
    reason = (read.reason if read is not None else None) or ""
    if isinstance(error, CredentialError):
        if error.rejected:
            return Verdict(Health(REVOKED, None, "refresh rejected", error.message, now, fingerprint=fingerprint),
                           error)
        until = now + policy.error_cooldown
        return Verdict(Health(COOLING, until, "token service failed", error.message, now), error)
    if error.kind in (ErrorKind.THROTTLED, ErrorKind.RATE_LIMIT):
        wait = max(error.retry_after or 0.0, policy.throttle_cooldown)
        strikes = 1
        if previous is not None and previous.state == COOLING and previous.until is not None \
                and now - previous.until < REPEAT_WINDOW:
            strikes = previous.strikes + 1
            wait = max(wait, policy.throttle_repeat_cooldown)
        return Verdict(Health(COOLING, now + wait, reason or "throttled", error.message, now, strikes=strikes), error)
    if error.kind is ErrorKind.QUOTA:
        return Verdict(Health(EXHAUSTED, quota_reset(reason or None, now), reason or "usage limit", error.message,
                              now), error)
    if error.kind is ErrorKind.PERMISSION:
        if failure is FailureClass.SUSPENDED or "suspended" in error.message.lower():
            until = now + policy.suspended_retry if policy.suspended_retry > 0 else None
            return Verdict(Health(SUSPENDED, until, reason or "suspended", error.message, now), error)
        if api_key:  # the gateway's own upstream credential, not the client's key: a 502 that names it
            said = f"HTTP {error.status}: {read.message}" if read is not None else error.message
            message = (f"Kiro refused the API key of account {name!r} ({said}). Check the key at "
                       "app.kiro.dev (API Keys) and replace it: `kiro-gateway accounts add --api-key --name "
                       f"{name}`, or KIRO_API_KEY / `kiro-gateway secret push --api-key`.")
            shown = GatewayError(ErrorKind.UPSTREAM, message)
        else:  # a refreshed token refused (IdC profile assignment missing, or revoked): the client error is unchanged
            message = (f"Kiro refused the credentials of account {name!r} even after a token refresh; log in again "
                       f"(`kiro-gateway login --device --name {name}`). {error.message}")
            shown = error
        return Verdict(Health(REVOKED, None, "credential refused", message, now, fingerprint=fingerprint), shown)
    return None
