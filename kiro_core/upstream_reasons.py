"""Kiro's error vocabulary (docs/protocol.md §Errors): which failure a status and body mean, and what to do.

Kiro says why in a `reason` field (`{"message", "reason"}`, `{"__type": "…#ThrottlingException", "message", "reason",
"retryAfterMilliseconds"}`, or nested under `error`); we match on it, not on message text, except for the few
failures Kiro sends with `reason: null` (suspension, "suspicious activity", size texts). Pure: bytes in, a verdict out.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from enum import Enum
from typing import Any


class FailureClass(Enum):
    """What a failure means for the request in hand (the account-level meaning is issue 9's business)."""

    THROTTLED = "throttled"  # the account is in a penalty window: retrying now only extends it
    BUSY = "busy"  # the service is busy: a short backoff and retry is fine
    CAPACITY = "capacity"  # this model has no capacity: retrying in-request rarely helps; another model might
    QUOTA = "quota"  # the plan's credits/requests are used up until the reset: never retried
    SUSPENDED = "suspended"  # the account is locked: never retried in a loop
    CONTEXT = "context"  # the conversation is too large: the client must compact
    VALIDATION = "validation"  # the request itself was refused: retrying sends the same bytes again
    SIGNATURE = "signature"  # replayed reasoning was refused (strip it and resend once)
    MODEL = "model"  # the account cannot use this model
    UNKNOWN = "unknown"  # no reason we know: the status decides (bare 429/5xx keep the bounded retry)


_BY_REASON: dict[str, FailureClass] = {
    "USER_REQUEST_RATE_EXCEEDED": FailureClass.THROTTLED,
    "CREDIT_CONSUMPTION_RATE_EXCEEDED": FailureClass.THROTTLED,
    "SERVICE_REQUEST_RATE_EXCEEDED": FailureClass.BUSY,
    "INSUFFICIENT_THROUGHPUT": FailureClass.BUSY,
    "INSUFFICIENT_MODEL_CAPACITY": FailureClass.CAPACITY,
    "MODEL_TEMPORARILY_UNAVAILABLE": FailureClass.CAPACITY,
    "MONTHLY_REQUEST_COUNT": FailureClass.QUOTA,
    "DAILY_REQUEST_COUNT": FailureClass.QUOTA,
    "HOURLY_REQUEST_COUNT": FailureClass.QUOTA,
    "WEEKLY_REQUEST_COUNT": FailureClass.QUOTA,
    "USAGE_LIMIT_REACHED": FailureClass.QUOTA,
    "OVERAGE_REQUEST_LIMIT_EXCEEDED": FailureClass.QUOTA,
    "TEMPORARILY_SUSPENDED": FailureClass.SUSPENDED,
    "CONTENT_LENGTH_EXCEEDS_THRESHOLD": FailureClass.CONTEXT,
    "CONVERSATION_LIMIT_EXCEEDED": FailureClass.CONTEXT,
    "REQUEST_BODY_INVALID": FailureClass.VALIDATION,
    "TOOL_SCHEMA_INVALID": FailureClass.VALIDATION,
    "TOOL_USE_RESULT_MISMATCH": FailureClass.VALIDATION,
    "INVALID_CONVERSATION_ID": FailureClass.VALIDATION,
    "INVALID_KMS_GRANT": FailureClass.VALIDATION,
    "FEATURE_NOT_SUPPORTED": FailureClass.VALIDATION,
    "THINKING_SIGNATURE_INVALID": FailureClass.SIGNATURE,
    "INVALID_MODEL_ID": FailureClass.MODEL,
}

# Failures Kiro sends without a reason, recognised by their own words (lower-cased substrings).
_BY_TEXT: tuple[tuple[str, FailureClass], ...] = (
    ("temporarily is suspended", FailureClass.SUSPENDED),
    ("locked your account", FailureClass.SUSPENDED),
    ("suspicious activity", FailureClass.THROTTLED),
    ("invalid `signature`", FailureClass.SIGNATURE),
    ("input is too long", FailureClass.CONTEXT),
    ("prompt is too long", FailureClass.CONTEXT),
    ("context window is full", FailureClass.CONTEXT),
    ("request entity too large", FailureClass.CONTEXT),
    ("expected toolresult blocks", FailureClass.VALIDATION),
    ("improperly formed request", FailureClass.VALIDATION),
)

NO_REASON_PENALTY_SECONDS = {  # how long to wait when Kiro gives no retryAfterMilliseconds (docs/protocol.md §Errors)
    "USER_REQUEST_RATE_EXCEEDED": 8.0,
    "CREDIT_CONSUMPTION_RATE_EXCEEDED": 300.0,
    "suspicious activity": 300.0,
}


@dataclass(frozen=True, slots=True)
class UpstreamFailure:
    """One failure, read: its class, Kiro's reason and message, and Kiro's own retry hint in seconds."""

    failure: FailureClass
    reason: str | None
    message: str
    retry_after: float | None
    exception: str | None = None  # the `__type` short name, e.g. "ValidationException", when the body has one


def _first(data: dict[str, Any], *names: str) -> Any:
    for name in names:
        value = data.get(name)
        if value not in (None, ""):
            return value
    return None


def read_failure(status: int, body: bytes | str) -> UpstreamFailure:
    """Classify an upstream failure from its status and body (any of Kiro's body shapes, or plain text)."""
    text = body.decode("utf-8", errors="replace") if isinstance(body, bytes) else body
    text = text.strip()
    data: Any = None
    try:
        data = json.loads(text) if text.startswith("{") else None
    except ValueError:
        data = None
    message, reason, retry_ms = text[:500] or "(empty body)", None, None
    if isinstance(data, dict):
        nested = data.get("error") if isinstance(data.get("error"), dict) else {}
        message = str(_first(data, "message", "Message", "error_description") or _first(nested, "message")
                      or text[:500])
        raw_reason = _first(data, "reason") or _first(nested, "reason")
        reason = str(raw_reason) if raw_reason is not None else None
        retry_ms = _first(data, "retryAfterMilliseconds") or _first(nested, "retryAfterMilliseconds")
        exception = data.get("__type")
        if isinstance(exception, str) and exception:
            read = classify(status, reason, message, retry_ms)
            return UpstreamFailure(read.failure, read.reason, read.message, read.retry_after,
                                   exception.rsplit("#", 1)[-1])
    return classify(status, reason, message, retry_ms)


def classify(status: int, reason: str | None, message: str, retry_after_ms: Any = None) -> UpstreamFailure:
    """The class of a failure from its parts (also used for in-stream exception frames, where status is 0)."""
    failure = _BY_REASON.get(reason or "")
    lowered = message.lower()
    if failure is None:
        failure = next((cls for text, cls in _BY_TEXT if text in lowered), None)
    if failure is None and status == 413:
        failure = FailureClass.CONTEXT
    retry_after = None
    if isinstance(retry_after_ms, int | float) and not isinstance(retry_after_ms, bool) and retry_after_ms > 0:
        retry_after = float(retry_after_ms) / 1000
    elif failure is FailureClass.THROTTLED:
        key = reason if reason in NO_REASON_PENALTY_SECONDS else "suspicious activity" \
            if "suspicious activity" in lowered else "USER_REQUEST_RATE_EXCEEDED"
        retry_after = NO_REASON_PENALTY_SECONDS[key]
    return UpstreamFailure(failure or FailureClass.UNKNOWN, reason, message, retry_after)
