"""Turning upstream failures into classified `GatewayError`s with messages a user can act on.

Kiro's bodies are read by `kiro_core.upstream_reasons` (its error vocabulary); network failures are httpx exceptions.
Nothing here ever echoes request headers or tokens.
"""

from __future__ import annotations

import ssl

import httpx

from kiro_core.errors import ErrorKind, GatewayError
from kiro_core.upstream_reasons import FailureClass, UpstreamFailure, read_failure

_CAPACITY_HINT = "Kiro has no capacity for this model right now: try again in a minute or pick another model."


def classify_upstream(status: int, body: bytes) -> tuple[GatewayError, bool]:
    """(the error as the client should see it, worth retrying on the same account a moment later).

    Only a bare 429 or 5xx, or Kiro's "service busy" reasons, are worth a retry; throttling penalties, quota,
    suspension, named capacity shortages and refused requests never are (a retry sends the same bytes again, or
    extends the penalty)."""
    read = read_failure(status, body)
    retryable = read.failure in (FailureClass.BUSY, FailureClass.UNKNOWN) and (status == 429 or status >= 500) \
        and status != 524
    error = _client_error(status, read)
    error.upstream_reason, error.upstream_message = read.reason, read.message
    setattr(error, _READ_ATTRIBUTE, read)  # kept for the account pool (`upstream_failure`)
    return error, retryable


_READ_ATTRIBUTE = "upstream_failure"


def upstream_failure(error: GatewayError) -> UpstreamFailure | None:
    """Kiro's own reading of an HTTP failure behind `error` (class, reason), when it came from `classify_upstream`."""
    read = getattr(error, _READ_ATTRIBUTE, None)
    return read if isinstance(read, UpstreamFailure) else None


def refresh_may_help(status: int, body: bytes) -> bool:
    """A 401/403 is worth one token refresh unless Kiro said why and the why is not the token (quota, throttling,
    a refused request); a suspension still gets its one refresh-and-retry, as a stale token can look alike."""
    return read_failure(status, body).failure in (FailureClass.UNKNOWN, FailureClass.SUSPENDED)


SIGNATURE_REASON = "THINKING_SIGNATURE_INVALID"
SIGNATURE_MESSAGE = "Invalid `signature`"


def is_signature_rejection(error: GatewayError) -> bool:
    """Kiro refused a replayed reasoning signature (400 `THINKING_SIGNATURE_INVALID`; docs/protocol.md §Native
    reasoning)."""
    if error.status != 400:
        return False
    return error.upstream_reason == SIGNATURE_REASON or SIGNATURE_MESSAGE in (error.upstream_message or "")


def classify_status(status: int, body: bytes) -> GatewayError:
    """An upstream HTTP error as the client should see it (see `classify_upstream`)."""
    return classify_upstream(status, body)[0]


def _client_error(status: int, read: UpstreamFailure) -> GatewayError:
    """Classified by Kiro's reason, with a message that says what to do and, for throttling, when to come back
    (`retry_after`). Raw upstream bodies are not echoed: they can carry account ids and profile ARNs (only Kiro's
    message text is)."""
    said = f"{read.message} (reason: {read.reason})" if read.reason else \
        f"{read.message} ({read.exception})" if read.exception else read.message
    failure = read.failure
    if failure is FailureClass.THROTTLED:
        wait = read.retry_after or 8.0
        return GatewayError(ErrorKind.THROTTLED, f"Kiro is throttling this account: {said}. Wait {wait:g}s "
                            "before the next request; retrying sooner extends the penalty.", retry_after=wait)
    if failure is FailureClass.QUOTA:
        return GatewayError(ErrorKind.QUOTA, f"The Kiro account's usage limit is reached: {said}. Requests fail "
                            "until the plan's limit resets (see app.kiro.dev) or overage is enabled.")
    if failure is FailureClass.SUSPENDED:
        return GatewayError(ErrorKind.PERMISSION, f"The Kiro account is suspended: {said}. Contact Kiro support "
                            "to restore access; the gateway does not retry.", status=403)
    if failure is FailureClass.CONTEXT:
        return GatewayError(ErrorKind.CONTEXT_TOO_LONG, f"The conversation is too large for Kiro: {said}. Compact "
                            "or shorten it (Claude Code: /compact).", status=400)
    if failure is FailureClass.CAPACITY:
        return GatewayError(ErrorKind.OVERLOADED, f"{_CAPACITY_HINT} ({said})", status=503,
                            retry_after=read.retry_after)
    if failure is FailureClass.MODEL:
        return GatewayError(ErrorKind.INVALID_REQUEST, f"Kiro does not offer this model to this account: {said}. "
                            "See /v1/models for the available ones.", status=400)
    if failure in (FailureClass.VALIDATION, FailureClass.SIGNATURE):
        return GatewayError(ErrorKind.INVALID_REQUEST, f"Kiro refused the request: {said}.", status=400)
    text = f"Kiro API error {status}: {said}"
    if status == 429:
        return GatewayError(ErrorKind.RATE_LIMIT, text, status=429, retry_after=read.retry_after)
    if status in (401, 403):
        return GatewayError(
            ErrorKind.PERMISSION,
            f"{text}. The Kiro access token was refused even after a refresh: log in to Kiro again "
            "or check the credentials the gateway uses.",
            status=status,
        )
    if status == 404:
        return GatewayError(ErrorKind.NOT_FOUND, text, status=404)
    if status == 524:
        return GatewayError(ErrorKind.TIMEOUT, f"{text}. Kiro's edge timed out; the gateway does not retry.",
                            status=504)
    if 400 <= status < 500:
        return GatewayError(ErrorKind.INVALID_REQUEST, text, status=status)
    if status in (502, 503, 529):
        return GatewayError(ErrorKind.OVERLOADED, text, status=status, retry_after=read.retry_after)
    return GatewayError(ErrorKind.UPSTREAM, text, status=status if status >= 500 else 502)


def classify_network_error(error: Exception) -> tuple[GatewayError, bool]:
    """A network failure as (classified error, worth retrying)."""
    detail = f"{type(error).__name__}: {error}".strip()
    if isinstance(error, httpx.ConnectTimeout):
        return GatewayError(ErrorKind.TIMEOUT, f"Could not connect to Kiro in time ({detail})."), True
    if isinstance(error, httpx.TimeoutException):
        return GatewayError(ErrorKind.TIMEOUT, f"Kiro stopped sending data ({detail})."), True
    if isinstance(error, httpx.ProxyError):
        return GatewayError(ErrorKind.UPSTREAM, f"The proxy in VPN_PROXY_URL failed ({detail})."), True
    if isinstance(error, httpx.TooManyRedirects):
        return GatewayError(ErrorKind.UPSTREAM, f"Kiro redirected too many times ({detail})."), False
    lowered = detail.lower()
    if isinstance(error.__cause__, ssl.SSLError) or any(w in lowered for w in ("ssl", "certificate", "tls")):
        return GatewayError(ErrorKind.UPSTREAM, f"TLS failure talking to Kiro ({detail}); check proxies "
                            "that intercept HTTPS."), False
    if "name or service not known" in lowered or "nodename nor servname" in lowered or "getaddrinfo" in lowered:
        return GatewayError(ErrorKind.UPSTREAM, f"Could not resolve the Kiro host ({detail}); check DNS, "
                            "KIRO_API_REGION or KIRO_API_BASE_URL."), True
    if "refused" in lowered:
        return GatewayError(ErrorKind.UPSTREAM, f"Kiro refused the connection ({detail})."), True
    if isinstance(error, httpx.RemoteProtocolError):
        return GatewayError(ErrorKind.UPSTREAM, f"Kiro closed the connection unexpectedly ({detail})."), True
    return GatewayError(ErrorKind.UPSTREAM, f"Network error talking to Kiro ({detail})."), True
