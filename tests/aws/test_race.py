"""Cold-start refresh race across processes: exactly one refresh, every instance gets a working token.

Several processes (multiprocessing, spawn: each a fresh interpreter, like separate Lambda instances) start with the
same expired access token in the secret and ask their own AuthManager for an access token at the same moment. The
upstream is the fake Kiro over real HTTP, where each refresh token is accepted exactly once; the secret and the lease
table are moto over real HTTP. Nothing of ours is mocked: real AuthManager, TokenRefresher, SecretsManagerTokenStore.
"""

from __future__ import annotations

import asyncio
import multiprocessing
import os
import time
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest

from tests.aws.awsutil import aws_environment, create_secret, create_table, read_secret
from tests.support.fake_kiro import FakeKiro

WORKERS = 4
pytestmark = pytest.mark.slow


def _worker(env: dict[str, str], secret: str, table: str, fake_url: str, barrier: Any, results: Any) -> None:
    os.environ.update(env)

    from gateway.auth.manager import AuthManager
    from gateway.auth.refresh import TokenRefresher
    from gateway.stores.secrets_manager import SecretsManagerTokenStore

    async def run() -> str:
        async with httpx.AsyncClient(trust_env=False) as http:
            store = SecretsManagerTokenStore(secret, table)
            refresher = TokenRefresher(http, desktop_url=f"{fake_url}/refreshToken", oidc_url=f"{fake_url}/token",
                                       user_agent="kiro-gateway-race-test")
            manager = AuthManager(store, refresher)
            await asyncio.to_thread(barrier.wait, 60)  # everyone starts together, cold (no client, nothing read)
            return await manager.access_token()

    try:
        results.put(("ok", os.getpid(), asyncio.run(run())))
    except BaseException as error:  # report, never hang the parent
        results.put(("error", os.getpid(), f"{type(error).__name__}: {error}"))


@pytest.mark.parametrize("refresh_delay", [0.0, 0.5], ids=["fast-upstream", "slow-upstream"])
def test_cold_instances_refresh_exactly_once(aws, refresh_delay):
    # A slow upstream keeps the lease held while the others arrive; a fast one lets late starters find it done.
    with FakeKiro(refresh_delay=refresh_delay) as fake:
        first_refresh = fake.issue_refresh_token()
        expired = (datetime.now(UTC) - timedelta(minutes=5)).strftime("%Y-%m-%dT%H:%M:%S.000Z")
        secret = create_secret({
            "refreshToken": first_refresh,
            "accessToken": fake.issue_access_token(ttl=0),
            "expiresAt": expired,
            "profileArn": fake.profile_arn,
            "region": "us-east-1",
            "proxyApiKey": "race-client-key",
        })
        table = create_table()
        env = aws_environment(aws) | {"NO_PROXY": "127.0.0.1,localhost", "no_proxy": "127.0.0.1,localhost"}

        context = multiprocessing.get_context("spawn")
        barrier = context.Barrier(WORKERS)
        results = context.Queue()
        processes = [
            context.Process(target=_worker, args=(env, secret, table, fake.url, barrier, results), daemon=True)
            for _ in range(WORKERS)
        ]
        started = time.monotonic()
        for process in processes:
            process.start()
        outcomes = [results.get(timeout=60) for _ in processes]
        for process in processes:
            process.join(timeout=10)
        elapsed = time.monotonic() - started

        errors = [o for o in outcomes if o[0] != "ok"]
        assert not errors, errors
        tokens = {o[2] for o in outcomes}

        # Exactly one upstream refresh for all instances together.
        assert fake.refresh_count == 1
        assert len(fake.requests("refresh")) == 1  # not even a refused second attempt
        # Every instance got the same, working access token.
        assert len(tokens) == 1
        token = tokens.pop()
        with httpx.Client(trust_env=False) as http:
            answer = http.get(f"{fake.url}/ListAvailableModels", headers={"Authorization": f"Bearer {token}"})
            assert answer.status_code == 200, answer.text
            # The secret holds the newest refresh token: the original is spent, the stored one still works.
            stored = read_secret(secret)
            assert stored["refreshToken"] != first_refresh
            assert stored["accessToken"] == token
            assert stored["proxyApiKey"] == "race-client-key"
            spent = http.post(f"{fake.url}/refreshToken", json={"refreshToken": first_refresh})
            assert spent.status_code == 401
            newest = http.post(f"{fake.url}/refreshToken", json={"refreshToken": stored["refreshToken"]})
            assert newest.status_code == 200
        assert elapsed < 30, f"took {elapsed:.1f} s"
