"""boto3 plumbing shared by the AWS stores: lazily created clients, their config, region detection, error checks.

boto3 and botocore are imported only inside these functions, so a local run never loads them. Clients honour
`AWS_ENDPOINT_URL` (moto in tests) because boto3 reads it itself.
"""

from __future__ import annotations

import threading
from collections.abc import Awaitable, Callable
from typing import Any

Clock = Callable[[], float]
Sleep = Callable[[float], Awaitable[None]]


def client_config(connect: float, read: float, attempts: int) -> Any:
    """A botocore Config with these timeouts (seconds) and standard-mode retries."""
    # lazy: boto3/botocore (~0.2 s) load only when an AWS client is first used
    from botocore.config import Config

    return Config(connect_timeout=connect, read_timeout=read, retries={"max_attempts": attempts, "mode": "standard"})


def region_of(resource_id: str) -> str | None:
    """The region inside an ARN (`arn:aws:secretsmanager:REGION:...`), else None (the default chain decides)."""
    parts = resource_id.split(":")
    if len(parts) > 4 and parts[0] == "arn" and parts[3]:
        return parts[3]
    return None


class LazyClient:
    """A boto3 client made on first use, from its own session (boto3's default session is not thread-safe)."""

    def __init__(self, service: str, region: str | None, config: Any, given: Any = None) -> None:
        self._service = service
        self._region = region
        self._config = config
        self._client = given
        self._lock = threading.Lock()

    def get(self) -> Any:
        if self._client is None:
            with self._lock:
                if self._client is None:
                    # lazy: boto3/botocore (~0.2 s) load only when an AWS client is first used
                    import boto3

                    session = boto3.session.Session()
                    self._client = session.client(self._service, region_name=self._region, config=self._config)
        return self._client


def is_client_error(error: BaseException, *codes: str) -> bool:
    """Whether `error` is a botocore ClientError (with one of `codes`, when any are given)."""
    # lazy: boto3/botocore (~0.2 s) load only when an AWS client is first used
    from botocore.exceptions import ClientError

    if not isinstance(error, ClientError):
        return False
    return not codes or error.response.get("Error", {}).get("Code") in codes


def aws_errors() -> tuple[type[BaseException], ...]:
    """The exception types an AWS call raises (for `except aws_errors():`)."""
    # lazy: boto3/botocore (~0.2 s) load only when an AWS client is first used
    from botocore.exceptions import BotoCoreError, ClientError

    return (ClientError, BotoCoreError)


def short_error(error: BaseException) -> str:
    """The first line of an error's message, at most 200 characters (for one-line warnings)."""
    return str(error).splitlines()[0][:200] if str(error) else ""
