"""A key revocation during a token refresh stays revoked, and the rotated token stays saved (issue 17, finding 3).

The gateway's token store refreshes against moto while `kiro-gateway keys revoke` (the real CLI, a subprocess) runs
in the middle of that refresh, in both secret layouts (`secret push`'s single credential, and `accounts`), with the
CLI holding the secret's write lease (the state table known through KIRO_STATE_TABLE) and without it (a bare
`--secret-id`: the gateway's re-read-and-merge alone must keep the revocation).
"""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from gateway.stores.base import Credentials
from tests.aws.awsutil import aws_environment, client, create_secret, create_table, read_secret


def iso(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.000Z")


def credentials(refresh_token: str) -> dict[str, Any]:
    return {"refreshToken": refresh_token, "accessToken": "access-0", "region": "us-east-1",
            "expiresAt": iso(datetime.now(UTC) - timedelta(hours=1))}


def run_cli(aws: str, home: Path, *args: str, table: str = "") -> subprocess.CompletedProcess[str]:
    env = {"PATH": os.environ.get("PATH", ""), "HOME": str(home), "PYTHONPATH": os.pathsep.join(sys.path),
           "NO_PROXY": "127.0.0.1,localhost", **aws_environment(aws)}
    if table:
        env["KIRO_STATE_TABLE"] = table
    return subprocess.run([sys.executable, "-m", "gateway.cli", *args], capture_output=True, text=True, env=env,
                          cwd=home, timeout=120)


def ring_state(secret: str, name: str) -> bool:
    """Whether key `name` is enabled in the secret's ring."""
    keys = read_secret(secret)["clientKeys"]["keys"]
    return next(record for record in keys if record["name"] == name).get("enabled", True)


def stored_refresh_token(document: dict[str, Any], layout: str) -> str:
    return document["refreshToken"] if layout == "single" else document["accounts"][0]["refreshToken"]


@pytest.mark.parametrize("where", ["env", "secret", "nowhere"],
                         ids=["cli-table-from-env", "cli-table-from-secret", "cli-without-table"])
@pytest.mark.parametrize("layout", ["single", "accounts"])
def test_a_revocation_during_a_refresh_stays_revoked(aws: str, tmp_path: Path, layout: str, where: str) -> None:
    from gateway.accounts.stores import SecretAccountTokenStore
    from gateway.stores.secrets_manager import SecretsManagerTokenStore

    home = tmp_path / "home"
    home.mkdir()
    table = create_table()
    document: dict[str, Any] = {"proxyApiKey": "owner-key-0123456789"}
    if where == "secret":  # a deployment whose gateway has written the secret once: the CLI finds the lease there
        document["stateTable"] = table
    if layout == "single":
        document.update(credentials("refresh-0"))
    else:
        document["accounts"] = [{"name": "main", **credentials("refresh-0")}]
    secret = create_secret(document)
    created = run_cli(aws, home, "keys", "create", "--name", "alice", "--rpm", "10", "--secret-id", secret)
    assert created.returncode == 0, created.stderr
    assert ring_state(secret, "alice")

    store: SecretsManagerTokenStore
    if layout == "single":
        store = SecretsManagerTokenStore(secret, table, client=client("secretsmanager"))
    else:
        store = SecretAccountTokenStore(secret, table, "main", client=client("secretsmanager"))
    revocations: list[asyncio.Task[subprocess.CompletedProcess[str]]] = []

    async def refresh_while_revoking(creds: Credentials) -> Credentials:
        """The upstream refresh, slow enough that the CLI's revocation runs in the middle of it."""
        revoke = asyncio.create_task(asyncio.to_thread(run_cli, aws, home, "keys", "revoke", "alice",
                                                       "--secret-id", secret, table=table if where == "env" else ""))
        revocations.append(revoke)
        await asyncio.wait([revoke], timeout=3.0)  # done unless it waits for the lease this refresh holds
        return creds.rotated(access_token="access-1", refresh_token="refresh-1",
                             expires_at=datetime.now(UTC) + timedelta(hours=1))

    async def scenario() -> None:
        stale = await store.load()
        rotated = await store.refresh(stale, refresh_while_revoking)
        assert rotated.refresh_token == "refresh-1"
        result = await revocations[0]
        assert result.returncode == 0, result.stderr

    asyncio.run(scenario())
    final = read_secret(secret)
    assert ring_state(secret, "alice") is False, "the refresh's write undid the revocation"
    assert stored_refresh_token(final, layout) == "refresh-1", "the revocation's write undid the rotated token"
    assert final["proxyApiKey"] == "owner-key-0123456789"


def test_rotating_the_api_key_during_a_refresh_is_kept(aws: str, tmp_path: Path) -> None:
    """`secret push --rotate-api-key` while the gateway refreshes: the new client API key survives the refresh."""
    from gateway.stores.secrets_manager import SecretsManagerTokenStore

    home = tmp_path / "home"
    cache = home / ".aws" / "sso" / "cache"
    cache.mkdir(parents=True)
    (cache / "kiro-auth-token.json").write_text(json.dumps({
        "accessToken": "pushed-access", "refreshToken": "refresh-0", "expiresAt": "2030-01-01T00:00:00.000Z",
        "region": "us-east-1", "authMethod": "social", "provider": "Github"}), encoding="utf-8")
    table = create_table()
    secret = create_secret({**credentials("refresh-0"), "proxyApiKey": "owner-key-0123456789",
                            "pushedAt": "2026-01-01T00:00:00Z"})
    store = SecretsManagerTokenStore(secret, table, client=client("secretsmanager"))
    pushes: list[subprocess.CompletedProcess[str]] = []

    async def refresh_while_rotating(creds: Credentials) -> Credentials:
        pushes.append(await asyncio.to_thread(run_cli, aws, home, "secret", "push", "--secret-id", secret,
                                              "--rotate-api-key"))  # no table known: no lease
        return creds.rotated(access_token="access-1", refresh_token="refresh-1",
                             expires_at=datetime.now(UTC) + timedelta(hours=1))

    async def scenario() -> None:
        await store.refresh(await store.load(), refresh_while_rotating)

    asyncio.run(scenario())
    assert pushes[0].returncode == 0, pushes[0].stderr
    final = read_secret(secret)
    assert final["proxyApiKey"] != "owner-key-0123456789", "the refresh's write undid the rotated client API key"
    assert final["proxyApiKey"] in pushes[0].stdout
