"""The last line of defence: an unexpected exception becomes a 500 in the client's shape on a connection that stays
usable, and a client that hangs up mid-request is an outcome of its own, not a server error.

Starlette's `ServerErrorMiddleware` re-raises after sending its 500, so uvicorn logs the error a second time and
drops the keep-alive connection without `Connection: close`: a pooled client's next, valid request then fails with
a reset. Handling the exception here, inside it, ends the exchange cleanly.
"""

from __future__ import annotations

import logging

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from gateway.edge.http_io import ClientGone, error_response
from gateway.edge.request_log import record_of_scope
from kiro_core.errors import ErrorKind, GatewayError

log = logging.getLogger(__name__)

CLIENT_CLOSED_STATUS = 499  # nginx's "client closed request": never sent to anyone, it only labels the log line


class ErrorGuardMiddleware:
    """Innermost middleware: sees every exception the routes' own handlers did not turn into a response."""

    def __init__(self, app: ASGIApp):
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = False

        async def watch(message: Message) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        try:
            await self.app(scope, receive, watch)
        except ClientGone as gone:
            log.info("client disconnected before its request was read: %s", gone,
                     extra={"request_id": record_of_scope(scope).request_id})
            record_of_scope(scope).update(outcome="client_disconnected")
            if not started:
                await send({"type": "http.response.start", "status": CLIENT_CLOSED_STATUS, "headers": []})
                await send({"type": "http.response.body", "body": b""})
        except Exception as error:
            log.exception("unhandled error on %s", scope.get("path", "?"),
                          extra={"request_id": record_of_scope(scope).request_id})
            record_of_scope(scope).update(outcome="internal_error")
            if started:
                return  # the body is cut; uvicorn closes the connection since the response never completed
            failure = GatewayError(ErrorKind.INTERNAL, f"Internal gateway error ({type(error).__name__}).")
            await error_response(scope.get("path", ""), failure)(scope, receive, send)
