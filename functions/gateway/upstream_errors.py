"""Turning upstream failures into classified `GatewayError`s with messages a user can act on.

Kiro error bodies look like `{"message": ..., "reason": ...}` (runtime host: `{"__type": "...#ValidationException",
"message": ...}`); network failures are httpx exceptions. Nothing here ever echoes request headers or tokens.
"""

from __future__ import annotations

import json
import ssl

import httpx

from kiro_core.errors import ErrorKind, GatewayError

# Known `reason` codes → what the user should understand (Kiro's own messages are terse).
_REASON_MESSAGES = {
    "CONTENT_LENGTH_EXCEEDS_THRESHOLD": "Model context limit reached: the conversation is larger than the model "
    "accepts. Compact or shorten it.",
    "MONTHLY_REQUEST_COUNT": "Monthly request limit reached: the Kiro account has used its monthly quota.",
    "INVALID_MODEL_ID": "Kiro does not know this model. Call /v1/models for the available ones.",
}


def _upstream_message(body: bytes) -> tuple[str, str | None]:
    """(message, reason) from a Kiro error body; falls back to the raw text, shortened."""
    text = body.decode("utf-8", errors="replace").strip()
    try:
        data = json.loads(text)
    except ValueError:
        return (text[:500] or "(empty body)"), None
    if not isinstance(data, dict):
        return text[:500], None
    message = str(data.get("message") or data.get("Message") or data.get("error_description") or text[:500])
    reason = data.get("reason") or data.get("__type")
    return message, (str(reason) if reason else None)


SIGNATURE_REASON = "THINKING_SIGNATURE_INVALID"
SIGNATURE_MESSAGE = "Invalid `signature`"


def is_signature_rejection(error: GatewayError) -> bool:
    """Kiro refused a replayed reasoning signature (400 `THINKING_SIGNATURE_INVALID`, protocol-2026 §1.5)."""
    if error.status != 400:
        return False
    return error.upstream_reason == SIGNATURE_REASON or SIGNATURE_MESSAGE in (error.upstream_message or "")


def classify_status(status: int, body: bytes) -> GatewayError:
    """An upstream HTTP error as the client should see it: the upstream's status, an explained message."""
    message, reason = _upstream_message(body)
    short_reason = reason.rsplit("#", 1)[-1] if reason else None
    error = _classify(status, message, short_reason)
    error.upstream_reason, error.upstream_message = short_reason, message
    return error


def _classify(status: int, message: str, short_reason: str | None) -> GatewayError:
    explained = _REASON_MESSAGES.get(short_reason or "")
    text = f"Kiro API error {status}: {explained or message}"
    if short_reason and not explained:
        text += f" (reason: {short_reason})"
    if short_reason == "CONTENT_LENGTH_EXCEEDS_THRESHOLD" or "too long" in message.lower():
        return GatewayError(ErrorKind.CONTEXT_TOO_LONG, text, status=400)
    if short_reason == "MONTHLY_REQUEST_COUNT":
        return GatewayError(ErrorKind.QUOTA, text, status=429)
    if status == 429:
        return GatewayError(ErrorKind.RATE_LIMIT, text, status=429)
    if status in (401, 403):
        return GatewayError(
            ErrorKind.PERMISSION,
            f"{text}. The Kiro access token was refused even after a refresh: log in to Kiro again "
            "or check the credentials the gateway uses.",
            status=status,
        )
    if status == 404:
        return GatewayError(ErrorKind.NOT_FOUND, text, status=404)
    if 400 <= status < 500:
        return GatewayError(ErrorKind.INVALID_REQUEST, text, status=status)
    if status in (502, 503, 529):
        return GatewayError(ErrorKind.OVERLOADED, text, status=status)
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
