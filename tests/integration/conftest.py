"""A fake Kiro upstream and the real gateway process in front of it, shared by the SDK-driven tests."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.aws.awsutil import aws_environment, create_secret, create_table
from tests.support.fake_kiro import FakeKiro
from tests.support.gateway_process import GatewayProcess
from tests.support.sdk_clients import TEST_API_KEY as API_KEY

# Short timings so fault tests run in seconds; the logic is the same as with the defaults.
FAST_TIMINGS = {
    "FIRST_TOKEN_TIMEOUT": "1.5",
    "FIRST_TOKEN_MAX_RETRIES": "2",
    "BASE_RETRY_DELAY": "0.05",
    "MAX_RETRIES": "3",
    "KEEPALIVE_INTERVAL": "0.3",
    "STREAMING_READ_TIMEOUT": "10",
}


def gateway_env(fake: FakeKiro, home: Path, **extra: str) -> dict[str, str]:
    """Everything a gateway needs to talk to `fake` only: no real credentials of this machine are ever found."""
    env = fake.gateway_env()
    env.update(FAST_TIMINGS)
    env.update({"PROXY_API_KEY": API_KEY, "HOME": str(home), "KIRO_STATE_FILE": str(home / "state.json"),
                "LOG_LEVEL": "DEBUG"})
    env.update(extra)
    return env


@pytest.fixture(scope="module")
def fake() -> Iterator[FakeKiro]:
    with FakeKiro() as server:
        yield server


def aws_backed(env: dict[str, str], moto_endpoint: str) -> dict[str, str]:
    """The same gateway with the Lambda deployment's state: credentials and client key in a Secrets Manager secret,
    models and the refresh lease in a DynamoDB table (moto in server mode)."""
    aws_env = aws_environment(moto_endpoint)
    with pytest.MonkeyPatch.context() as patch:
        for name, value in aws_env.items():
            patch.setenv(name, value)
        secret = create_secret({"refreshToken": env.pop("REFRESH_TOKEN"), "profileArn": env.pop("PROFILE_ARN"),
                                "region": "us-east-1", "proxyApiKey": env.pop("PROXY_API_KEY")})
        table = create_table()
    return {**env, **aws_env, "KIRO_SECRET_ID": secret, "KIRO_STATE_TABLE": table}


@pytest.fixture(scope="module", params=["local-stores", "aws-stores"])
def gateway(request: pytest.FixtureRequest, fake: FakeKiro,
            tmp_path_factory: pytest.TempPathFactory) -> Iterator[GatewayProcess]:
    """The gateway process; every SDK test runs once with the local defaults and once with the AWS stores."""
    home = tmp_path_factory.mktemp("home")
    env = gateway_env(fake, home)
    if request.param == "aws-stores":
        env = aws_backed(env, request.getfixturevalue("moto_endpoint"))
    with GatewayProcess(env, home) as process:
        yield process


@pytest.fixture(scope="module")
def local_gateway(fake: FakeKiro, tmp_path_factory: pytest.TempPathFactory) -> Iterator[GatewayProcess]:
    """The gateway process with the local stores only, for behaviour the store kind cannot change."""
    home = tmp_path_factory.mktemp("home")
    with GatewayProcess(gateway_env(fake, home), home) as process:
        yield process


@pytest.fixture(autouse=True)
def _clean_fake_queue(request: pytest.FixtureRequest) -> None:
    """Each test starts with the fake's request log empty (scripts are consumed by the test that queued them)."""
    if "fake" in request.fixturenames:
        request.getfixturevalue("fake").clear_requests()
