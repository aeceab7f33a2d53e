"""`kiro-gateway login --device --push`, `secret push --api-key` and `kiro-gateway accounts` against moto (and the
fake's device flow), run as a user runs them: subprocesses, credentials from the environment, nothing in argv."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.aws.awsutil import aws_environment, client, create_secret, create_table, read_secret
from tests.support.fake_kiro import FakeKiro

KEY = "ksk_" + "K" * 40
OLD_REFRESH = "aorIDEtoken-" + "r" * 50


def run(aws: str, home: Path, *args: str, stdin_closed: bool = True, **extra: str) -> subprocess.CompletedProcess[str]:
    env = {"PATH": os.environ.get("PATH", ""), "HOME": str(home), "PYTHONPATH": os.pathsep.join(sys.path),
           "NO_PROXY": "127.0.0.1,localhost", **aws_environment(aws), **extra}
    command = [sys.executable, "-m", "gateway.cli", *args]
    if stdin_closed:
        command = ["sh", "-c", 'exec 0<&-; exec "$@"', "sh", *command]
    return subprocess.run(command, capture_output=True, text=True, env=env, cwd=home, timeout=120)


@pytest.fixture
def home(tmp_path: Path) -> Path:
    return tmp_path


def test_device_login_push_lands_in_the_secret(aws: str, home: Path) -> None:
    secret = create_secret({"refreshToken": OLD_REFRESH, "region": "us-east-1", "proxyApiKey": "client-key-1234567",
                            "pushedAt": "2026-01-01T00:00:00Z"})
    with FakeKiro() as fake:
        fake.oidc.next_login(pending=1, slow_down=False)
        result = run(aws, home, "login", "--device", "--push", "--secret-id", secret, "--name", "gateway",
                     "--start-url", "https://org.awsapps.com/start", KIRO_OIDC_URL=fake.url,
                     KIRO_API_BASE_URL=fake.url)
    assert result.returncode == 0, result.stderr
    document = read_secret(secret)
    assert "refreshToken" not in document  # the IDE's token is gone: the gateway has its own login now
    assert document["proxyApiKey"] == "client-key-1234567"
    [entry] = document["accounts"]
    assert entry["name"] == "gateway" and entry["kind"] == "refresh_token" and entry["clientId"]
    assert entry["profileArn"] == fake.profile_arn
    assert entry["refreshToken"] not in result.stdout and "replaced by the account list" in result.stdout
    assert not (home / ".kiro-gateway" / "accounts.json").exists()  # nothing written locally


def test_secret_push_api_key_reads_the_key_from_the_environment_only(aws: str, home: Path) -> None:
    secret = create_secret({"refreshToken": ""})
    refused = run(aws, home, "secret", "push", "--secret-id", secret, "--api-key", KEY)
    assert refused.returncode == 1 and "never put it on the command line" in refused.stderr
    missing = run(aws, home, "secret", "push", "--secret-id", secret, "--api-key")
    assert missing.returncode == 1 and "KIRO_API_KEY" in missing.stderr  # no terminal to ask on: a clear error

    result = run(aws, home, "secret", "push", "--secret-id", secret, "--api-key", KIRO_API_KEY=KEY)
    assert result.returncode == 0, result.stderr
    document = read_secret(secret)
    assert document["accounts"] == [{"name": "default", "kind": "api_key", "apiKey": KEY, "enabled": True}]
    assert len(document["proxyApiKey"]) >= 40 and document["proxyApiKey"] in result.stdout
    assert KEY not in result.stdout + result.stderr and KEY[:12] not in result.stdout


def test_accounts_on_the_stack_secret_show_states_and_enable_clears_them(aws: str, home: Path) -> None:
    secret = create_secret({"proxyApiKey": "client-key-1234567", "accounts": [
        {"name": "one", "kind": "api_key", "apiKey": KEY},
        {"name": "two", "kind": "refresh_token", "refreshToken": OLD_REFRESH}]})
    table = create_table()
    until = time.time() + 3600
    client("dynamodb").put_item(TableName=table, Item={
        "pk": {"S": "account#one"}, "until": {"N": str(until)}, "expires_at": {"N": str(int(until + 86400))},
        "state": {"S": json.dumps({"state": "exhausted", "until": until, "reason": "MONTHLY_REQUEST_COUNT",
                                   "message": "You have reached the limit.", "since": time.time()})}})
    where = ("--secret-id", secret, "--table", table)

    listing = run(aws, home, "accounts", "list", *where)
    assert listing.returncode == 0, listing.stderr
    lines = listing.stdout.splitlines()
    one = next(line for line in lines if line.strip().startswith("one "))
    assert "api_key" in one and "state: exhausted (MONTHLY_REQUEST_COUNT)" in one and "cooldown: until 20" in one
    assert "two  refresh_token  enabled  state: ok" in listing.stdout
    assert KEY not in listing.stdout and OLD_REFRESH not in listing.stdout and "ksk_…(44 chars)" in listing.stdout

    assert run(aws, home, "accounts", "disable", "two", *where).returncode == 0
    assert read_secret(secret)["accounts"][1]["enabled"] is False
    assert run(aws, home, "accounts", "enable", "one", *where).returncode == 0
    assert "Item" not in client("dynamodb").get_item(TableName=table, Key={"pk": {"S": "account#one"}})
    after = run(aws, home, "accounts", "list", *where).stdout
    assert "one  api_key  enabled  state: ok" in after and "two  refresh_token  disabled" in after

    added = run(aws, home, "accounts", "add", "--name", "three", "--api-key", *where, KIRO_API_KEY="ksk_" + "T" * 30)
    assert added.returncode == 0, added.stderr
    assert [e["name"] for e in read_secret(secret)["accounts"]] == ["one", "two", "three"]
    assert run(aws, home, "accounts", "remove", "two", *where).returncode == 0
    assert [e["name"] for e in read_secret(secret)["accounts"]] == ["one", "three"]
    assert read_secret(secret)["proxyApiKey"] == "client-key-1234567"
    unknown = run(aws, home, "accounts", "enable", "nope", *where)
    assert unknown.returncode == 1 and "no account named 'nope'" in unknown.stderr


def test_local_accounts_file_commands(aws: str, home: Path) -> None:
    state = home / ".kiro-gateway" / "accounts-state.json"
    added = run(aws, home, "accounts", "add", "--name", "main", "--api-key", KIRO_API_KEY=KEY)
    assert added.returncode == 0, added.stderr
    path = home / ".kiro-gateway" / "accounts.json"
    assert json.loads(path.read_text()) == [{"name": "main", "kind": "api_key", "apiKey": KEY, "enabled": True}]
    assert path.stat().st_mode & 0o077 == 0
    state.write_text(json.dumps({"version": 1, "accounts": {"main": {
        "state": "suspended", "until": None, "reason": "suspended", "message": "locked", "since": 1.0}}}))
    listing = run(aws, home, "accounts")  # `list` is the default
    assert "main  api_key  enabled  state: suspended (suspended)  cooldown: until enabled again" in listing.stdout
    assert KEY not in listing.stdout
    assert run(aws, home, "accounts", "enable", "main").returncode == 0
    assert json.loads(state.read_text())["accounts"] == {}
    assert run(aws, home, "accounts", "disable", "main").returncode == 0
    assert json.loads(path.read_text())[0]["enabled"] is False
    bad = run(aws, home, "accounts", "add", "--name", "bad name", "--api-key", KIRO_API_KEY=KEY)
    assert bad.returncode == 1 and "name" in bad.stderr and "Traceback" not in bad.stderr
