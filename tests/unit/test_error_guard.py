"""An unexpected exception must end as a 500 in the client's shape on a keep-alive connection that stays usable
(Starlette's own handler re-raises, and uvicorn then drops the connection without saying so)."""

from __future__ import annotations

import http.client
import json
import threading
import time
from collections.abc import Iterator

import pytest
import uvicorn
from fastapi import FastAPI

from gateway.app import create_app
from gateway.settings import Settings
from tests.support.gateway_process import free_port


def _boom() -> None:
    raise RuntimeError("a bug")


@pytest.fixture()
def served_app() -> Iterator[tuple[int, FastAPI]]:
    app = create_app(Settings(proxy_api_key="k" * 16))
    app.add_api_route("/v1/messages/boom", _boom, methods=["POST"])
    app.add_api_route("/v1/chat/boom", _boom, methods=["POST"])
    port = free_port()
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_config=None, lifespan="off"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started and time.monotonic() < deadline:
        time.sleep(0.02)
    try:
        yield port, app
    finally:
        server.should_exit = True
        thread.join(timeout=10)


@pytest.mark.parametrize(("path", "anthropic"), [("/v1/messages/boom", True), ("/v1/chat/boom", False)])
def test_internal_error_answers_in_shape_and_the_connection_survives(
    served_app: tuple[int, FastAPI], path: str, anthropic: bool, caplog: pytest.LogCaptureFixture
) -> None:
    port, _app = served_app
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    try:
        connection.request("POST", path, body=b"{}")
        first = connection.getresponse()
        body = json.loads(first.read())
        assert first.status == 500
        error = body["error"]
        assert (body["type"] == "error") if anthropic else ("param" in error)
        assert "RuntimeError" in error["message"] and "a bug" not in error["message"]
        connection.request("GET", "/health")  # same socket: must not be reset
        second = connection.getresponse()
        assert second.status == 200 and json.loads(second.read())["status"] == "healthy"
    finally:
        connection.close()
    assert sum("unhandled error" in record.getMessage() for record in caplog.records) == 1
