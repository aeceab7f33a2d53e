"""Local token stores against the fake Kiro: rotated tokens are written back without losing anything, survive a
restart, and a refresh made by another program or process is picked up instead of repeated."""

from __future__ import annotations

import asyncio
import json
import os
import sqlite3
import stat
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest

from gateway.auth.refresh import TokenRefresher
from gateway.stores.base import Credentials, TokenStore
from gateway.stores.credential_files import parse_timestamp
from gateway.stores.local import EnvTokenStore, InMemoryModelCache, JsonFileTokenStore, SqliteTokenStore
from tests.support.fake_kiro import FakeKiro

EXPIRED = "2020-01-01T00:00:00Z"


@pytest.fixture
def kiro() -> Iterator[FakeKiro]:
    with FakeKiro() as server:
        yield server


def refresher(http: httpx.AsyncClient, fake: FakeKiro) -> TokenRefresher:
    return TokenRefresher(http, desktop_url=f"{fake.url}/refreshToken", oidc_url=f"{fake.url}/token",
                          user_agent="KiroIDE-test")


async def load_and_refresh(store: TokenStore, fake: FakeKiro) -> Credentials:
    async with httpx.AsyncClient(trust_env=False) as http:
        return await store.refresh(await store.load(), refresher(http, fake))


def sent_refresh_tokens(fake: FakeKiro) -> list[str]:
    """Refresh tokens sent to either refresh endpoint, oldest first."""
    return [r.json["refreshToken"] for r in fake.requests() if r.endpoint in ("refreshToken", "token")]


def write_creds(path: Path, refresh_token: str, **extra: Any) -> Path:
    data = {"accessToken": "", "refreshToken": refresh_token, "expiresAt": EXPIRED, "region": "us-east-1", **extra}
    path.write_text(json.dumps(data), encoding="utf-8")
    return path


def make_db(path: Path, key: str, row: dict[str, Any]) -> Path:
    with sqlite3.connect(path) as conn:
        conn.execute("CREATE TABLE auth_kv (key TEXT PRIMARY KEY, value TEXT)")
        conn.execute("INSERT INTO auth_kv VALUES (?, ?)", (key, json.dumps(row)))
        conn.execute("INSERT INTO auth_kv VALUES (?, ?)", ("kirocli:other", json.dumps({"untouched": True})))
    conn.close()
    return path


def db_rows(path: Path) -> dict[str, Any]:
    with sqlite3.connect(path) as conn:
        rows = {k: json.loads(v) for k, v in conn.execute("SELECT key, value FROM auth_kv")}
    conn.close()
    return rows


def test_json_write_back_keeps_unknown_keys_mode_and_survives_restart(kiro: FakeKiro, tmp_path: Path) -> None:
    original = kiro.issue_refresh_token()
    path = write_creds(tmp_path / "kiro-auth-token.json", original, authMethod="social", provider="Github",
                       custom={"nested": [1, 2]})
    path.chmod(0o640)
    new = asyncio.run(load_and_refresh(JsonFileTokenStore(path), kiro))
    text = path.read_text(encoding="utf-8")
    stored = json.loads(text)
    assert stored["custom"] == {"nested": [1, 2]} and stored["provider"] == "Github"
    assert stored["refreshToken"] == new.refresh_token != original
    assert stored["accessToken"] == new.access_token and stored["profileArn"] == kiro.profile_arn
    assert new.expires_at is not None and stored["expiresAt"] == new.expires_at.isoformat()
    assert stored["expiresAt"].endswith("+00:00")
    assert '\n  "refreshToken"' in text  # pretty JSON, indent 2
    assert stat.S_IMODE(path.stat().st_mode) == 0o640
    assert sorted(p.name for p in tmp_path.iterdir()) == ["kiro-auth-token.json"]  # no temp file left over
    restarted = JsonFileTokenStore(path)
    loaded = asyncio.run(restarted.load())
    assert (loaded.refresh_token, loaded.access_token) == (new.refresh_token, new.access_token)
    again = asyncio.run(load_and_refresh(restarted, kiro))  # same tokens as `stale`: refreshes with the rotated one
    assert sent_refresh_tokens(kiro) == [original, new.refresh_token] and again.access_token != new.access_token


def test_sqlite_write_back_merges_into_the_matched_row(kiro: FakeKiro, tmp_path: Path) -> None:
    original = kiro.issue_refresh_token()
    row = {"access_token": "old", "refresh_token": original, "expires_at": "2020-01-01T00:00:00.123456789Z",
           "region": "us-east-1", "provider": "Google", "unknown_field": 42}
    db = make_db(tmp_path / "data.sqlite3", "kirocli:social:token", row)
    store = SqliteTokenStore(db)
    new = asyncio.run(load_and_refresh(store, kiro))
    rows = db_rows(db)
    stored = rows["kirocli:social:token"]
    assert store.key == "kirocli:social:token"
    assert stored["unknown_field"] == 42 and stored["provider"] == "Google" and stored["region"] == "us-east-1"
    assert stored["refresh_token"] == new.refresh_token != original and stored["access_token"] == new.access_token
    assert parse_timestamp(stored["expires_at"]) == new.expires_at and stored["profile_arn"] == kiro.profile_arn
    assert rows["kirocli:other"] == {"untouched": True}
    asyncio.run(load_and_refresh(SqliteTokenStore(db), kiro))  # restart: the rotated token is accepted
    assert sent_refresh_tokens(kiro) == [original, new.refresh_token]


def test_sqlite_readonly_keeps_rotated_tokens_in_the_state_file(kiro: FakeKiro, tmp_path: Path) -> None:
    original = kiro.issue_refresh_token()
    db = make_db(tmp_path / "data.sqlite3", "kirocli:odic:token", {"refresh_token": original})
    client_id, secret = kiro.register_client()
    with sqlite3.connect(db) as conn:
        registration = {"client_id": client_id, "client_secret": secret, "region": "us-east-1"}
        conn.execute("INSERT INTO auth_kv VALUES (?, ?)",
                     ("kirocli:odic:device-registration", json.dumps(registration)))
    conn.close()
    before = db_rows(db)
    state = tmp_path / "gateway" / "state.json"
    new = asyncio.run(load_and_refresh(SqliteTokenStore(db, readonly=True, state_file=state), kiro))
    assert db_rows(db) == before  # the database was not written
    assert stat.S_IMODE(state.stat().st_mode) == 0o600 and new.refresh_token in state.read_text()
    assert kiro.requests("oidc")[0].json["clientId"] == client_id
    restarted = SqliteTokenStore(db, readonly=True, state_file=state)
    assert asyncio.run(restarted.load()).refresh_token == new.refresh_token
    asyncio.run(load_and_refresh(restarted, kiro))
    assert sent_refresh_tokens(kiro) == [original, new.refresh_token]
    relogin = kiro.issue_refresh_token()  # kiro-cli logs in again: the database wins over older state
    with sqlite3.connect(db) as conn:
        conn.execute("UPDATE auth_kv SET value = ? WHERE key = ?", (json.dumps({"refresh_token": relogin}),
                                                                    "kirocli:odic:token"))
    conn.close()
    assert asyncio.run(restarted.load()).refresh_token == relogin


def test_env_token_rotation_persists_to_the_state_file(kiro: FakeKiro, tmp_path: Path) -> None:
    original = kiro.issue_refresh_token()
    state = tmp_path / "dir" / "state.json"
    env = Credentials(refresh_token=original, region="us-east-1")
    new = asyncio.run(load_and_refresh(EnvTokenStore(env, state_file=state), kiro))
    assert stat.S_IMODE(state.stat().st_mode) == 0o600 and original not in state.read_text()
    restarted = EnvTokenStore(env, state_file=state)  # same REFRESH_TOKEN in the environment after a restart
    assert asyncio.run(restarted.load()).refresh_token == new.refresh_token
    third = asyncio.run(load_and_refresh(restarted, kiro))
    assert sent_refresh_tokens(kiro) == [original, new.refresh_token]
    assert asyncio.run(EnvTokenStore(env, state_file=state).load()).refresh_token == third.refresh_token
    changed = Credentials(refresh_token="aor-a-new-login", region="us-east-1")  # the user set a new REFRESH_TOKEN
    assert asyncio.run(EnvTokenStore(changed, state_file=state).load()).refresh_token == "aor-a-new-login"


def ide_refreshes(fake: FakeKiro, path: Path, *, fresh: bool) -> dict[str, Any]:
    """Kiro IDE refreshing the same login behind the gateway's back and saving its result."""
    data = json.loads(path.read_text())
    answer = httpx.post(f"{fake.url}/refreshToken", json={"refreshToken": data["refreshToken"]}).json()
    expires = datetime.now(UTC) + (timedelta(hours=1) if fresh else timedelta(seconds=30))
    data.update(refreshToken=answer["refreshToken"], accessToken=answer["accessToken"], expiresAt=expires.isoformat())
    path.write_text(json.dumps(data))
    return answer


def test_refresh_by_another_program_is_reused_not_repeated(kiro: FakeKiro, tmp_path: Path) -> None:
    path = write_creds(tmp_path / "creds.json", kiro.issue_refresh_token())
    store = JsonFileTokenStore(path)

    async def scenario() -> Credentials:
        stale = await store.load()
        ide = ide_refreshes(kiro, path, fresh=True)
        async with httpx.AsyncClient(trust_env=False) as http:
            result = await store.refresh(stale, refresher(http, kiro))
        assert result.access_token == ide["accessToken"]
        return result

    asyncio.run(scenario())
    assert kiro.refresh_count == 1  # the IDE's refresh only; the stale token was never sent again


def test_rotated_but_expiring_token_is_refreshed_with_the_new_refresh_token(kiro: FakeKiro, tmp_path: Path) -> None:
    path = write_creds(tmp_path / "creds.json", kiro.issue_refresh_token())
    store = JsonFileTokenStore(path)

    async def scenario() -> None:
        stale = await store.load()
        ide = ide_refreshes(kiro, path, fresh=False)
        async with httpx.AsyncClient(trust_env=False) as http:
            await store.refresh(stale, refresher(http, kiro))
        assert sent_refresh_tokens(kiro)[-1] == ide["refreshToken"]

    asyncio.run(scenario())
    assert kiro.refresh_count == 2


def test_two_stores_on_one_file_refresh_once(kiro: FakeKiro, tmp_path: Path) -> None:
    kiro.refresh_delay = 0.1
    path = write_creds(tmp_path / "creds.json", kiro.issue_refresh_token())

    async def scenario() -> list[Credentials]:
        stores = [JsonFileTokenStore(path), JsonFileTokenStore(path)]
        stale = await stores[0].load()
        async with httpx.AsyncClient(trust_env=False) as http:
            return await asyncio.gather(*(s.refresh(stale, refresher(http, kiro)) for s in stores))

    first, second = asyncio.run(scenario())
    assert first.access_token == second.access_token and kiro.refresh_count == 1


_PROCESS_SCRIPT = textwrap.dedent("""
    import asyncio, sys, time
    from pathlib import Path
    import httpx
    from gateway.auth.refresh import TokenRefresher
    from gateway.stores.local import JsonFileTokenStore

    async def main(path, url, go):
        store = JsonFileTokenStore(Path(path))
        stale = await store.load()
        print("loaded", flush=True)  # every process holds the stale tokens before any of them refreshes
        while not Path(go).exists():
            time.sleep(0.01)
        async with httpx.AsyncClient(trust_env=False) as http:
            refresher = TokenRefresher(http, desktop_url=url + "/refreshToken", oidc_url=url + "/token",
                                       user_agent="race")
            creds = await store.refresh(stale, refresher)
        print(creds.access_token)

    asyncio.run(main(sys.argv[1], sys.argv[2], sys.argv[3]))
""")


@pytest.mark.slow
def test_processes_sharing_a_file_refresh_once(kiro: FakeKiro, tmp_path: Path) -> None:
    """Four processes that all loaded the same stale tokens race to refresh them: the file lock lets one refresh and
    the others read its result. The start is a barrier (each process says it loaded, then waits for a go file), so a
    process that starts late cannot load the already rotated tokens and ask for a second refresh of its own."""
    kiro.refresh_delay = 0.3
    path = write_creds(tmp_path / "creds.json", kiro.issue_refresh_token())
    go = tmp_path / "go"
    processes = [subprocess.Popen([sys.executable, "-c", _PROCESS_SCRIPT, str(path), kiro.url, str(go)],
                                  stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=dict(os.environ))
                 for _ in range(4)]
    for process in processes:
        assert process.stdout is not None and process.stdout.readline().strip() == "loaded"
    go.touch()
    outputs = [p.communicate(timeout=60) for p in processes]
    assert all(p.returncode == 0 for p in processes), [err for _, err in outputs]
    assert len({out.strip() for out, _ in outputs}) == 1 and kiro.refresh_count == 1


def test_in_memory_model_cache_expires_on_its_clock() -> None:
    now = [100.0]
    cache = InMemoryModelCache(clock=lambda: now[0])

    async def scenario() -> None:
        assert await cache.get() is None
        await cache.put([{"modelId": "claude-sonnet-4.5"}], ttl_seconds=60)
        models = await cache.get()
        assert models == [{"modelId": "claude-sonnet-4.5"}]
        models.append({"modelId": "mutated"})
        now[0] += 59.9
        assert await cache.get() == [{"modelId": "claude-sonnet-4.5"}]
        now[0] += 0.1
        assert await cache.get() is None

    asyncio.run(scenario())
