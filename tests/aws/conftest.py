"""moto in server mode: a real HTTP endpoint on 127.0.0.1 serving Secrets Manager and DynamoDB.

The session fixture starts one server; `aws` points boto3 at it through AWS_ENDPOINT_URL (no code change in the
stores) with fake credentials, and resets its state before each test. Subprocesses inherit the same environment.
"""

from __future__ import annotations

import logging
import urllib.request
from collections.abc import Iterator

import pytest

from tests.aws.awsutil import aws_environment


@pytest.fixture(scope="session")
def moto_endpoint() -> Iterator[str]:
    from moto.server import ThreadedMotoServer

    logging.getLogger("werkzeug").setLevel(logging.ERROR)
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    try:
        yield f"http://{host}:{port}"
    finally:
        server.stop()


@pytest.fixture
def aws(moto_endpoint: str, monkeypatch: pytest.MonkeyPatch) -> str:
    """moto's endpoint, with boto3 routed to it and its state cleared."""
    for name, value in aws_environment(moto_endpoint).items():
        monkeypatch.setenv(name, value)
    monkeypatch.delenv("AWS_PROFILE", raising=False)
    request = urllib.request.Request(f"{moto_endpoint}/moto-api/reset", method="POST", data=b"")
    urllib.request.urlopen(request, timeout=10).close()
    return moto_endpoint
