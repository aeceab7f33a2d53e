"""uvicorn's httptools protocol with the bounds `kiro-gateway serve` needs facing a network (docs/serve.md).

uvicorn bounds idle keep-alive connections (`timeout_keep_alive`) and the number of connections
(`limit_concurrency`), but not a request in progress: a client may send its headers or its body one byte at a time
(slowloris) and hold a connection and its memory for as long as it likes, and the httptools parser accepts any number
of headers of any size. This subclass adds, per connection:

* a header deadline: the request line and headers must be complete within `header_timeout` seconds of the
  connection (or of the request's first byte on a kept-alive connection), else 408 and the connection is closed;
* a body deadline: the whole body must have arrived within `body_timeout` seconds of the headers, else the
  connection is closed (the app sees a client disconnect);
* header limits: more than `max_headers` fields, or more than `max_header_bytes` of request line and headers, is
  431 and the connection is closed, before the oversized head is buffered whole.

The limits are class attributes set by `bounded_protocol`, since uvicorn builds one protocol per connection from a
class (`uvicorn.run(http=...)`).
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass
from typing import Any, ClassVar

import httptools
from uvicorn.protocols.http.httptools_impl import STATUS_LINE, HttpToolsProtocol

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class ServeLimits:
    header_timeout: float = 10.0
    body_timeout: float = 60.0
    max_header_bytes: int = 64 * 1024
    max_headers: int = 100


class _Refused(httptools.HttpParserError):
    """Stops the parser from a callback; uvicorn catches HttpParserError and calls `send_400_response`."""


class BoundedHttpToolsProtocol(HttpToolsProtocol):
    limits: ClassVar[ServeLimits] = ServeLimits()

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._phase = "idle"  # idle (between requests) → head (line and headers) → body → idle
        self._head_bytes = 0
        self._header_count = 0
        self._refusal: tuple[int, str] | None = None
        self._deadline: asyncio.TimerHandle | None = None

    # -- deadlines ---------------------------------------------------------------------------------------------

    def _arm(self, seconds: float, on_expiry: Any) -> None:
        self._disarm()
        self._deadline = self.loop.call_later(seconds, on_expiry)

    def _disarm(self) -> None:
        if self._deadline is not None:
            self._deadline.cancel()
            self._deadline = None

    def _head_expired(self) -> None:
        self._deadline = None
        if self._phase != "body" and not self.transport.is_closing():
            log.warning("cut a connection from %s: its request headers took over %g s", self._peer(),
                        self.limits.header_timeout)
            self._respond(408, "Request headers not received in time.")

    def _body_expired(self) -> None:
        self._deadline = None
        if not self.transport.is_closing():
            log.warning("cut a connection from %s: its request body took over %g s", self._peer(),
                        self.limits.body_timeout)
            self.transport.close()

    # -- protocol events ---------------------------------------------------------------------------------------

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._arm(self.limits.header_timeout, self._head_expired)

    def connection_lost(self, exc: Exception | None) -> None:
        self._disarm()
        super().connection_lost(exc)

    def data_received(self, data: bytes) -> None:
        before = self._phase
        super().data_received(data)
        # A chunk that leaves a head unfinished, and held no body of the previous request, is all head bytes.
        if self._phase == "head" and before != "body" and not self.transport.is_closing():
            self._head_bytes += len(data)
            if self._head_bytes > self.limits.max_header_bytes:
                self._refuse_now(431, "Request header fields too large.")

    def on_message_begin(self) -> None:
        super().on_message_begin()
        self._phase, self._head_bytes, self._header_count = "head", 0, 0
        if self._deadline is None:  # a kept-alive connection's next request: its headers get the same time
            self._arm(self.limits.header_timeout, self._head_expired)

    def on_header(self, name: bytes, value: bytes) -> None:
        self._header_count += 1
        if self._header_count > self.limits.max_headers:
            self._refusal = (431, "Too many request header fields.")
            log.warning("refused a request from %s: over %d header fields", self._peer(), self.limits.max_headers)
            raise _Refused("too many headers")  # uvicorn answers through send_400_response: the 431 above
        super().on_header(name, value)

    def on_headers_complete(self) -> None:
        self._phase = "body"
        self._arm(self.limits.body_timeout, self._body_expired)
        super().on_headers_complete()

    def on_message_complete(self) -> None:
        self._disarm()
        self._phase = "idle"
        super().on_message_complete()

    # -- refusals ----------------------------------------------------------------------------------------------

    def send_400_response(self, msg: str) -> None:
        status, message = self._refusal or (400, msg)
        self._respond(status, message)

    def _refuse_now(self, status: int, message: str) -> None:
        log.warning("refused a request from %s: %s", self._peer(), message)
        self._respond(status, message)

    def _respond(self, status: int, message: str) -> None:
        """A short plain-text answer, then close: the connection is in no state to carry another request."""
        self._disarm()
        body = message.encode("ascii")
        self.transport.write(b"".join([
            STATUS_LINE[status], b"content-type: text/plain; charset=utf-8\r\n",
            b"content-length: " + str(len(body)).encode() + b"\r\n", b"connection: close\r\n\r\n", body]))
        self.transport.close()

    def _peer(self) -> str:
        return self.client[0] if self.client else "?"


def bounded_protocol(limits: ServeLimits) -> type[BoundedHttpToolsProtocol]:
    """A protocol class carrying `limits`, for `uvicorn.run(http=...)`."""
    return type("BoundedHttpToolsProtocol", (BoundedHttpToolsProtocol,), {"limits": limits})
