"""Reading client requests and writing errors in the client's own shape (OpenAI or Anthropic)."""

from __future__ import annotations

import logging
import math
from typing import Any, TypeVar

from fastapi import Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ValidationError
from starlette.requests import ClientDisconnect

from gateway.edge.json_limits import JsonLimits, JsonRejected, loads_strict
from gateway.edge.request_log import record_of
from kiro_core.error_text import field_path
from kiro_core.errors import ErrorKind, GatewayError, anthropic_error_body, openai_error_body

ModelT = TypeVar("ModelT", bound=BaseModel)

log = logging.getLogger(__name__)

UNRENDERABLE_MESSAGE = "The request failed, and the gateway could not describe why; its log has the details."
SSE_HEADERS = {"Cache-Control": "no-cache", "X-Accel-Buffering": "no"}  # no hop-by-hop headers (HTTP/2 forbids them)


def is_anthropic_path(path: str) -> bool:
    return path.startswith("/v1/messages")


def error_response(path: str, error: GatewayError) -> JSONResponse:
    """The error as the API behind `path` shapes it, with the classified status and, when known, `Retry-After`
    in whole seconds (rounded up: a client that waits exactly that long must not be early).

    Never fails: an error that cannot be rendered is logged and answered with the same kind and a fixed message,
    so a refusal cannot turn into a 500 (or into no answer at all) while it is being written."""
    anthropic = is_anthropic_path(path)
    try:
        return _rendered(anthropic, error)
    except Exception:
        log.exception("could not render a %s error; answering with a generic one", getattr(error, "kind", "?"))
        kind = error.kind if isinstance(getattr(error, "kind", None), ErrorKind) else ErrorKind.INTERNAL
        return _rendered(anthropic, GatewayError(kind, UNRENDERABLE_MESSAGE))


def _rendered(anthropic: bool, error: GatewayError) -> JSONResponse:
    body = anthropic_error_body(error) if anthropic else openai_error_body(error)
    status = error.status_for(anthropic)
    headers: dict[str, str] = {}
    if status < 500 and status != 429:
        headers["x-should-retry"] = "false"
    if error.retry_after is not None:
        headers["retry-after"] = str(max(1, math.ceil(error.retry_after)))
    return JSONResponse(body, status_code=status, headers=headers or None)


class ClientGone(Exception):
    """The client hung up before its request body arrived: nothing to answer, and not the gateway's failure."""


async def read_json(request: Request, limit: int, limits: JsonLimits) -> dict[str, Any]:
    """The request body as a strict, bounded JSON object; every refusal is a 4xx naming the field.

    This is the only way a route reads its body, so no model parsing or upstream call ever sees a body that is too
    large, too deep, non-finite or not valid Unicode.
    """
    return decode_json(await read_body(request, limit), limits)


async def read_body(request: Request, limit: int) -> bytes:
    """The raw request body, refused with 413 as soon as it passes `limit`; kept on the request record."""
    declared = request.headers.get("content-length")
    if declared and declared.isdigit() and int(declared) > limit:
        raise GatewayError(ErrorKind.REQUEST_TOO_LARGE, f"Request body exceeds the gateway limit of {limit} bytes.")
    chunks: list[bytes] = []
    size = 0
    try:
        async for chunk in request.stream():
            chunks.append(chunk)
            size += len(chunk)
            if size > limit:
                raise GatewayError(ErrorKind.REQUEST_TOO_LARGE,
                                   f"Request body exceeds the gateway limit of {limit} bytes.")
    except ClientDisconnect:
        raise ClientGone(f"client disconnected after {size} of {declared or 'unknown'} body bytes") from None
    body = chunks[0] if len(chunks) == 1 else b"".join(chunks)  # one copy of the body, whatever its size
    record_of(request).request_body = body
    return body


def decode_json(body: bytes, limits: JsonLimits) -> dict[str, Any]:
    """`body` as a strict, bounded JSON object (read_json's checks); pure CPU, so it may run in a worker thread."""
    if not body:
        raise GatewayError(ErrorKind.INVALID_REQUEST, "The request body is empty; a JSON object is required.")
    try:
        data = loads_strict(body, limits)
    except JsonRejected as rejected:
        kind = ErrorKind.REQUEST_TOO_LARGE if rejected.too_large else ErrorKind.INVALID_REQUEST
        raise GatewayError(kind, rejected.message, param=rejected.path) from None
    if not isinstance(data, dict):
        raise GatewayError(ErrorKind.INVALID_REQUEST, "The request body must be a JSON object.")
    return data


def parse_model(model: type[ModelT], data: dict[str, Any]) -> ModelT:
    """Validate `data`; a failure becomes one readable 400 naming each bad field."""
    try:
        return model.model_validate(data)
    except ValidationError as error:
        problems = []
        for item in error.errors(include_url=False, include_input=False)[:8]:
            location = field_path(item.get("loc", ())) or "body"
            problems.append(f"{location}: {item.get('msg', 'invalid')}")
        first = error.errors(include_url=False, include_input=False)
        param = field_path(first[0].get("loc", ())) if first else None
        raise GatewayError(ErrorKind.INVALID_REQUEST, "Invalid request: " + "; ".join(problems), param=param) from None
