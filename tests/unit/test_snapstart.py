"""SnapStart hooks (gateway.snapstart): what the Lambda Web Adapter calls around the snapshot, simulated in-process.

A restore is simulated the way the adapter drives it: POST to the after-restore path on the app. Afterwards the
runtime must be a new one: a new HTTP client (the old one closed) and no cached Kiro credentials or client key.
"""

from __future__ import annotations

import asyncio
import random
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest

from gateway.app import create_app
from gateway.settings import Settings
from gateway.snapstart import AFTER_RESTORE_ENV, BEFORE_CHECKPOINT_ENV, SnapStartHooks, install
from gateway.stores.base import Credentials

BEFORE = "/snapstart/before-checkpoint"
AFTER = "/snapstart/after-restore"


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return Settings(proxy_api_key="client-key", refresh_token="aor-refresh-token",
                    kiro_state_file=str(tmp_path / "state.json"))


@pytest.fixture
def hook_env(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(BEFORE_CHECKPOINT_ENV, BEFORE)
    monkeypatch.setenv(AFTER_RESTORE_ENV, AFTER)


def _client(app) -> httpx.AsyncClient:
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://127.0.0.1:8000")


def test_after_restore_rebuilds_the_http_client_and_drops_cached_credentials(settings, hook_env):
    app = create_app(settings)
    hooks: SnapStartHooks = app.state.snapstart
    assert hooks is not None

    async def scenario() -> None:
        holder = app.state.runtime
        before = await holder.get()
        assert before.pool.first().auth is not None
        # Credentials as they would be cached after a first request (an access token in memory).
        cached = Credentials(refresh_token="aor-refresh-token", access_token="aoa-cached-access",
                             expires_at=datetime.now(UTC) + timedelta(hours=1))
        before.pool.first().auth._creds = cached
        async with _client(app) as client:
            answer = await client.post(AFTER)
            assert answer.status_code == 200 and answer.json()["hook"] == "after-restore"
            after = await holder.get()
            assert after is not before
            assert after.http is not before.http
            assert before.http.is_closed and not after.http.is_closed
            fresh = after.pool.first().auth
            assert fresh is not None and fresh is not before.pool.first().auth
            assert fresh._creds is None  # loaded again from the store on first use, not the snapshot's copy
            assert after.store is not before.store
            # The app still serves after the restore.
            assert (await client.get("/health")).status_code == 200
        await holder.aclose()

    asyncio.run(scenario())
    assert hooks.restores == 1


def test_before_checkpoint_warms_and_leaves_nothing_built(settings, hook_env):
    app = create_app(settings)
    warmed: list[bool] = []
    hooks = SnapStartHooks(app.state.runtime, warm=lambda: warmed.append(True))

    async def scenario() -> None:
        built = await app.state.runtime.get()
        await hooks.before_checkpoint()
        assert warmed == [True]
        assert built.http.is_closed
        assert app.state.runtime._runtime is None  # nothing with sockets or secrets goes into the snapshot

    asyncio.run(scenario())
    assert hooks.checkpoints == 1


def test_a_failing_warm_up_does_not_fail_the_snapshot(settings):
    app = create_app(settings)

    def broken() -> None:
        raise OSError("no tokenizer file")

    hooks = SnapStartHooks(app.state.runtime, warm=broken)
    asyncio.run(hooks.before_checkpoint())
    assert hooks.checkpoints == 1


def test_real_warm_up_runs_offline(settings, hook_env):
    app = create_app(settings)

    async def scenario() -> None:
        async with _client(app) as client:
            answer = await client.post(BEFORE)
            assert answer.status_code == 200 and answer.json()["hook"] == "before-checkpoint"

    asyncio.run(scenario())
    assert app.state.snapstart.checkpoints == 1


def test_restore_reseeds_random(settings):
    app = create_app(settings)
    hooks = SnapStartHooks(app.state.runtime, warm=lambda: None)
    random.seed(1234)  # the state every restored copy would share
    shared = random.random()
    random.seed(1234)
    asyncio.run(hooks.after_restore())
    assert random.random() != shared


def test_no_hook_routes_without_the_adapter_variables(settings, monkeypatch):
    monkeypatch.delenv(BEFORE_CHECKPOINT_ENV, raising=False)
    monkeypatch.delenv(AFTER_RESTORE_ENV, raising=False)
    app = create_app(settings)
    assert app.state.snapstart is None

    async def scenario() -> None:
        async with _client(app) as client:
            for path in (BEFORE, AFTER):
                assert (await client.post(path)).status_code == 404

    asyncio.run(scenario())


def test_hook_routes_stay_out_of_the_openapi_schema(settings):
    app = create_app(settings)
    install(app, app.state.runtime, {BEFORE_CHECKPOINT_ENV: "/x/before", AFTER_RESTORE_ENV: "/x/after"})
    assert not any(path.startswith("/x/") for path in app.openapi()["paths"])


def test_hook_routes_answer_only_the_adapter(settings, hook_env):
    """A forwarded Function URL request (it carries the adapter's request context) or a peer that is not loopback
    gets 403 and runs no hook; the adapter's own call (loopback, no context) runs it."""
    app = create_app(settings)
    hooks: SnapStartHooks = app.state.snapstart

    async def scenario() -> None:
        outside = httpx.AsyncClient(transport=httpx.ASGITransport(app=app, client=("203.0.113.9", 40000)),
                                    base_url="http://gateway")
        async with outside, _client(app) as inside:
            assert (await outside.post(AFTER)).status_code == 403
            forwarded = await inside.post(AFTER, headers={"x-amzn-request-context": '{"http":{"sourceIp":"1.2.3.4"}}'})
            assert forwarded.status_code == 403
            assert hooks.restores == 0
            assert (await inside.post(AFTER)).status_code == 200
        await app.state.runtime.aclose()

    asyncio.run(scenario())
    assert hooks.restores == 1
