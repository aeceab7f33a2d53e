"""Error taxonomy shared by every layer, and its two client-facing shapes.

One `ErrorKind` per failure class; each kind knows its HTTP status and how OpenAI and Anthropic clients name it, so
routes, the Kiro client and the stream formatters never invent error shapes of their own.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum
from typing import Any

from kiro_core.error_text import printable


@dataclass(frozen=True, slots=True)
class _KindInfo:
    status: int
    openai_type: str
    openai_code: str | None
    anthropic_type: str
    anthropic_status: int | None = None  # where Anthropic's API uses another status (quota: 402, not 429)


class ErrorKind(Enum):
    """Classified failure; the value carries the status and both API vocabularies."""

    INVALID_REQUEST = _KindInfo(400, "invalid_request_error", None, "invalid_request_error")
    CONTEXT_TOO_LONG = _KindInfo(400, "invalid_request_error", "context_length_exceeded", "invalid_request_error")
    AUTHENTICATION = _KindInfo(401, "invalid_request_error", "invalid_api_key", "authentication_error")
    PERMISSION = _KindInfo(403, "invalid_request_error", "permission_denied", "permission_error")
    NOT_FOUND = _KindInfo(404, "invalid_request_error", "not_found", "not_found_error")
    REQUEST_TOO_LARGE = _KindInfo(413, "invalid_request_error", "request_too_large", "request_too_large")
    RATE_LIMIT = _KindInfo(429, "rate_limit_error", "rate_limit_exceeded", "rate_limit_error")
    THROTTLED = _KindInfo(429, "rate_limit_error", "rate_limit_exceeded", "rate_limit_error")  # not retried here
    QUOTA = _KindInfo(429, "insufficient_quota", "insufficient_quota", "billing_error", anthropic_status=402)
    UPSTREAM = _KindInfo(502, "api_error", "upstream_error", "api_error")
    OVERLOADED = _KindInfo(529, "api_error", "overloaded", "overloaded_error")
    TIMEOUT = _KindInfo(504, "timeout_error", "timeout", "timeout_error")
    TRUNCATED = _KindInfo(502, "api_error", "upstream_truncated", "api_error")
    INTERNAL = _KindInfo(500, "api_error", "internal_error", "api_error")

    @property
    def status(self) -> int:
        return self.value.status


class GatewayError(Exception):
    """A failure the client must hear about, already classified.

    `status` defaults to the kind's status but may carry the upstream's own (e.g. 503) so clients see the truth.
    """

    def __init__(self, kind: ErrorKind, message: str, *, status: int | None = None, param: str | None = None,
                 retry_after: float | None = None):
        super().__init__(message)
        self.kind = kind
        self.message = message
        self.status = status if status is not None else kind.status
        self.param = param
        self.retry_after = retry_after  # seconds the client should wait (→ `Retry-After`), when known
        # What the upstream said, when the error is its answer (set by the gateway's classifier; never shown as is).
        self.upstream_reason: str | None = None
        self.upstream_message: str | None = None
        # The message Anthropic clients get instead of `message`, when their API words it its own way.
        self.anthropic_message: str | None = None

    def status_for(self, anthropic: bool) -> int:
        """The HTTP status in the client's own API: the kind's Anthropic status unless a specific one was given."""
        special = self.kind.value.anthropic_status
        return special if anthropic and special is not None and self.status == self.kind.status else self.status

    def __repr__(self) -> str:
        return f"GatewayError({self.kind.name}, {self.status}, {self.message!r})"


class InvalidRequestError(GatewayError):
    """The client's request cannot be translated (bad shape, unsupported content)."""

    def __init__(self, message: str, *, param: str | None = None):
        super().__init__(ErrorKind.INVALID_REQUEST, message, param=param)


class ContextTooLongError(GatewayError):
    """The converted payload is larger than Kiro accepts; never sent upstream."""

    def __init__(self, size_bytes: int, limit_bytes: int):
        super().__init__(
            ErrorKind.CONTEXT_TOO_LONG,
            f"The conversation is too long for the model's context: the request is {size_bytes} bytes once "
            f"converted and the upstream accepts at most {limit_bytes}. Shorten or compact the conversation.",
        )
        self.size_bytes = size_bytes
        self.limit_bytes = limit_bytes


def prompt_too_long_message(tokens: int, maximum: int) -> str:
    """Anthropic's own wording of a size rejection; Claude Code compacts by itself when it reads it (and sizes the
    compaction from the two figures): docs/protocol.md §Compaction."""
    return f"prompt is too long: {tokens} tokens > {maximum} maximum"


def openai_error_body(error: GatewayError) -> dict[str, Any]:
    """`{"error": {...}}` as the OpenAI API and SDK expect it; message and param always encodable (error_text)."""
    info = error.kind.value
    return {
        "error": {
            "message": printable(error.message),
            "type": info.openai_type,
            "param": None if error.param is None else printable(error.param),
            "code": info.openai_code,
        }
    }


def anthropic_error_body(error: GatewayError) -> dict[str, Any]:
    """`{"type": "error", "error": {...}}` as the Anthropic API and SDK expect it; the message always encodable."""
    message = error.anthropic_message or error.message
    return {"type": "error", "error": {"type": error.kind.value.anthropic_type, "message": printable(message)}}
