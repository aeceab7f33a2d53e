"""moto in server mode (the session fixture `moto_endpoint` in tests/conftest.py).

`aws` points boto3 at it through AWS_ENDPOINT_URL (no code change in the
stores) with fake credentials, and resets its state before each test. Subprocesses inherit the same environment.
"""

from __future__ import annotations

import urllib.request

import pytest

from tests.aws.awsutil import aws_environment


@pytest.fixture
def aws(moto_endpoint: str, monkeypatch: pytest.MonkeyPatch) -> str:
    """moto's endpoint, with boto3 routed to it and its state cleared."""
    for name, value in aws_environment(moto_endpoint).items():
        monkeypatch.setenv(name, value)
    monkeypatch.delenv("AWS_PROFILE", raising=False)
    request = urllib.request.Request(f"{moto_endpoint}/moto-api/reset", method="POST", data=b"")
    urllib.request.urlopen(request, timeout=10).close()
    return moto_endpoint
