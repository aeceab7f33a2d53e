"""Per-request bookkeeping: a request id, one structured log line when the response ends, optional debug dumps.

A pure ASGI middleware so that it sees the true end of streamed responses (the last body message), which is when
time to first token and token counts are known.
"""

from __future__ import annotations

import json
import logging
import os
import re
import time
import uuid
from pathlib import Path
from typing import Any

from starlette.requests import Request
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from gateway.edge.rate_limit_headers import headers_for_scope
from gateway.logging_setup import SCRUBBER
from gateway.observability import request_context

log = logging.getLogger("gateway.request")

DUMP_LIMIT = 256 * 1024  # bytes of request/response kept per debug dump
_REQUEST_ID = re.compile(rb"[A-Za-z0-9._:-]{1,64}")


class RequestRecord:
    """Facts routes add while serving; logged once at the end."""

    def __init__(self, request_id: str):
        self.request_id = request_id
        self.fields: dict[str, Any] = {}
        self.request_body: bytes = b""
        self.kiro_payload: bytes = b""

    def update(self, **fields: Any) -> None:
        self.fields.update({k: v for k, v in fields.items() if v is not None})


def record_of(request: Request) -> RequestRecord:
    """The record the middleware attached to this request (a throwaway one outside the middleware)."""
    return record_of_scope(request.scope)


def record_of_scope(scope: Scope) -> RequestRecord:
    record = scope.get("state", {}).get("record")
    return record if isinstance(record, RequestRecord) else RequestRecord("-")


def _safe_request_id(raw: bytes) -> str:
    """A client's `x-request-id` if it is a plain token (it is echoed in a header and logged); else ""."""
    return raw.decode("ascii") if _REQUEST_ID.fullmatch(raw) else ""


class RequestLogMiddleware:
    def __init__(self, app: ASGIApp, debug_mode: str = "off", debug_dir: str = "debug_logs"):
        self.app = app
        self.debug_mode = debug_mode
        self.debug_dir = Path(debug_dir)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        incoming = dict(scope.get("headers") or [])
        request_id = _safe_request_id(incoming.get(b"x-request-id", b"")) or uuid.uuid4().hex[:16]
        record = RequestRecord(request_id)
        aws_headers = {k.decode("latin-1"): v.decode("latin-1")
                       for k, v in incoming.items() if k.startswith(b"x-amzn-")}
        if aws_headers:
            record.update(**request_context(aws_headers))  # the Lambda request id, under the Web Adapter
        scope.setdefault("state", {})["record"] = record
        started = time.perf_counter()
        status = 500
        response_body = bytearray()
        logged = False

        def finish() -> None:
            nonlocal logged
            if logged:
                return
            logged = True
            elapsed = round((time.perf_counter() - started) * 1000, 1)
            level = logging.WARNING if status >= 500 else logging.INFO
            extra = {"request_id": request_id, "method": scope["method"], "path": scope["path"], "status": status,
                     "duration_ms": elapsed, **record.fields}
            log.log(level, "%s %s %s %.1fms", scope["method"], scope["path"], status, elapsed, extra=extra)
            if self.debug_mode == "all" or (self.debug_mode == "errors" and status >= 400):
                self._dump(record, status, bytes(response_body))

        async def send_wrapper(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                message.setdefault("headers", [])
                message["headers"] = [*message["headers"], (b"x-request-id", request_id.encode()),
                                      *headers_for_scope(scope)]
            elif message["type"] == "http.response.body":
                if self.debug_mode != "off" and len(response_body) < DUMP_LIMIT:
                    response_body.extend(message.get("body", b"")[: DUMP_LIMIT - len(response_body)])
                await send(message)
                if not message.get("more_body", False):
                    finish()
                return
            await send(message)

        try:
            await self.app(scope, receive, send_wrapper)
        finally:
            finish()

    def _dump(self, record: RequestRecord, status: int, response_body: bytes) -> None:
        """DEBUG_MODE dump: request, Kiro payload, response; secrets scrubbed. Never fails the request."""
        try:
            # Dumps hold whole prompts and the profile ARN: owner-only (0700 directory, 0600 files), whatever umask.
            self.debug_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
            os.chmod(self.debug_dir, 0o700)
            dump = {
                "request_id": record.request_id,
                "status": status,
                "fields": record.fields,
                "request_body": record.request_body[:DUMP_LIMIT].decode("utf-8", "replace"),
                "kiro_payload": record.kiro_payload[:DUMP_LIMIT].decode("utf-8", "replace"),
                "response_body": response_body.decode("utf-8", "replace"),
            }
            text = SCRUBBER.scrub(json.dumps(dump, ensure_ascii=False, indent=2))
            path = self.debug_dir / f"{int(time.time())}-{record.request_id}.json"
            descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
            with os.fdopen(descriptor, "w", encoding="utf-8") as dump_file:
                if hasattr(os, "fchmod"):  # POSIX: an existing file keeps its mode under O_CREAT
                    os.fchmod(dump_file.fileno(), 0o600)
                dump_file.write(text)
        except OSError as error:
            log.warning("could not write the debug dump: %s", error)
