"""Reading credentials from the Kiro IDE file, the kiro-cli database and the environment, and choosing one."""

from __future__ import annotations

import json
import sqlite3
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from gateway.auth.refresh import refresh_urls
from gateway.redact import mask, redact_text
from gateway.settings import Settings
from gateway.stores.base import CredentialsNotFound
from gateway.stores.credential_files import parse_timestamp, read_json_file, read_sqlite
from gateway.stores.local import EnvTokenStore, JsonFileTokenStore, SqliteTokenStore
from gateway.stores.sources import build_token_store

ARN = "arn:aws:codewhisperer:us-east-1:123456789012:profile/ABCDEF"


def write_json(path: Path, data: dict[str, Any]) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(data), encoding="utf-8")
    return path


def make_db(path: Path, rows: dict[str, Any], state: dict[str, Any] | None = None) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    with sqlite3.connect(path) as conn:
        conn.execute("CREATE TABLE auth_kv (key TEXT PRIMARY KEY, value TEXT)")
        conn.executemany("INSERT INTO auth_kv VALUES (?, ?)", [(k, json.dumps(v)) for k, v in rows.items()])
        if state is not None:
            conn.execute("CREATE TABLE state (key TEXT PRIMARY KEY, value BLOB)")
            conn.executemany("INSERT INTO state VALUES (?, ?)", [(k, json.dumps(v)) for k, v in state.items()])
    conn.close()
    return path


def settings(**values: Any) -> Settings:
    return Settings(**values)


@pytest.mark.parametrize(("raw", "expected"), [
    ("2026-01-12T23:00:00Z", datetime(2026, 1, 12, 23, 0, tzinfo=UTC)),
    ("2026-01-12T23:00:00.123456789Z", datetime(2026, 1, 12, 23, 0, 0, 123456, tzinfo=UTC)),
    ("2026-01-13T01:00:00+02:00", datetime(2026, 1, 12, 23, 0, tzinfo=UTC)),
    ("2026-01-12T23:00:00", datetime(2026, 1, 12, 23, 0, tzinfo=UTC)),
    ("not a time", None),
    (None, None),
    ("", None),
])
def test_parse_timestamp(raw: Any, expected: datetime | None) -> None:
    assert parse_timestamp(raw) == expected


def test_json_file_fields(tmp_path: Path) -> None:
    path = write_json(tmp_path / "kiro-auth-token.json", {
        "accessToken": "aoa-access", "refreshToken": "aor-refresh", "expiresAt": "2026-01-12T23:00:00.000Z",
        "profileArn": ARN, "region": "eu-central-1", "authMethod": "social", "provider": "Github"})
    creds = read_json_file(path)
    assert (creds.access_token, creds.refresh_token, creds.profile_arn) == ("aoa-access", "aor-refresh", ARN)
    assert creds.region == "eu-central-1" and creds.auth_type == "kiro_desktop"
    assert creds.expires_at == datetime(2026, 1, 12, 23, 0, tzinfo=UTC)


def test_json_file_client_id_hash_loads_device_registration(tmp_path: Path) -> None:
    path = write_json(tmp_path / "kiro-auth-token.json", {"refreshToken": "aor-x", "clientIdHash": "abc123",
                                                          "scopes": ["codewhisperer:completions", "sso:account"]})
    with pytest.raises(CredentialsNotFound, match=r"abc123\.json"):
        read_json_file(path)
    write_json(tmp_path / "abc123.json", {"clientId": "cid", "clientSecret": "csecret",
                                          "expiresAt": "2027-01-01T00:00:00Z"})
    creds = read_json_file(path, default_region="us-west-2")
    assert creds.auth_type == "aws_sso_oidc" and (creds.client_id, creds.client_secret) == ("cid", "csecret")
    assert creds.region == "us-west-2" and creds.scopes == "codewhisperer:completions sso:account"


def test_json_file_only_client_id_stays_desktop(tmp_path: Path) -> None:
    path = write_json(tmp_path / "creds.json", {"refreshToken": "aor-x", "clientId": "only-id"})
    assert read_json_file(path).auth_type == "kiro_desktop"


@pytest.mark.parametrize("content", ["{not json", "[]", json.dumps({"accessToken": "a"})])
def test_json_file_unusable(tmp_path: Path, content: str) -> None:
    path = tmp_path / "creds.json"
    path.write_text(content)
    with pytest.raises(CredentialsNotFound, match=str(path)):
        read_json_file(path)


def test_sqlite_social_login_wins_and_refreshes_as_desktop(tmp_path: Path) -> None:
    db = make_db(tmp_path / "data.sqlite3", {
        "kirocli:odic:token": {"refresh_token": "aor-oidc", "access_token": "a1"},
        "kirocli:social:token": {"refresh_token": "aor-social", "access_token": "a2", "provider": "Google",
                                 "expires_at": "2026-01-12T23:00:00.987654321Z", "profile_arn": ARN},
        "kirocli:odic:device-registration": {"client_id": "cid", "client_secret": "cs", "region": "eu-west-1"},
    })
    creds, key = read_sqlite(db)
    assert key == "kirocli:social:token" and creds.refresh_token == "aor-social"
    assert creds.auth_type == "kiro_desktop" and creds.profile_arn == ARN
    assert creds.expires_at == datetime(2026, 1, 12, 23, 0, 0, 987654, tzinfo=UTC)


def test_sqlite_oidc_login_takes_device_registration_and_state_profile(tmp_path: Path) -> None:
    db = make_db(tmp_path / "data.sqlite3", {
        "codewhisperer:odic:token": {"refresh_token": "aor-legacy", "access_token": "a", "scopes": ["s1", "s2"]},
        "kirocli:odic:device-registration": {"client_id": "new-cid", "client_secret": "new-cs"},
        "codewhisperer:odic:device-registration": {"client_id": "cid", "client_secret": "cs", "region": "eu-west-1"},
    }, state={"api.codewhisperer.profile": {"arn": ARN, "profileName": "x"}})
    creds, key = read_sqlite(db, default_region="us-east-1")
    assert key == "codewhisperer:odic:token" and creds.auth_type == "aws_sso_oidc"
    assert (creds.client_id, creds.client_secret, creds.region) == ("cid", "cs", "eu-west-1")
    assert creds.profile_arn == ARN and creds.scopes == "s1 s2"


def test_sqlite_without_login(tmp_path: Path) -> None:
    db = make_db(tmp_path / "empty.sqlite3", {"kirocli:external-idp:token": {"refresh_token": "x"}})
    with pytest.raises(CredentialsNotFound, match="external identity-provider"):
        read_sqlite(db)
    other = tmp_path / "other.sqlite3"
    sqlite3.connect(other).close()
    with pytest.raises(CredentialsNotFound, match="could not be read"):
        read_sqlite(other)
    with pytest.raises(CredentialsNotFound, match="does not exist"):
        read_sqlite(tmp_path / "missing.sqlite3")


def test_priority_sqlite_over_json_over_env(tmp_path: Path) -> None:
    db = make_db(tmp_path / "cli.sqlite3", {"kirocli:social:token": {"refresh_token": "aor-db"}})
    creds_file = write_json(tmp_path / "creds.json", {"refreshToken": "aor-file"})
    common = {"refresh_token": "aor-env", "kiro_state_file": str(tmp_path / "state.json")}
    assert isinstance(build_token_store(settings(kiro_cli_db_file=str(db), kiro_creds_file=str(creds_file),
                                                 **common)), SqliteTokenStore)
    assert isinstance(build_token_store(settings(kiro_creds_file=str(creds_file), **common)), JsonFileTokenStore)
    assert isinstance(build_token_store(settings(**common), home=tmp_path / "nobody"), EnvTokenStore)


def test_explicit_source_that_is_missing_fails_at_once(tmp_path: Path) -> None:
    with pytest.raises(CredentialsNotFound, match="does not exist"):
        build_token_store(settings(kiro_creds_file=str(tmp_path / "nope.json")))


def test_default_locations_under_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HOME", str(tmp_path))
    with pytest.raises(CredentialsNotFound) as missing:
        build_token_store(settings())
    message = str(missing.value)
    for name in ("KIRO_CLI_DB_FILE", "KIRO_CREDS_FILE", "REFRESH_TOKEN", "kiro-auth-token.json", "data.sqlite3"):
        assert name in message
    json_file = write_json(tmp_path / ".aws/sso/cache/kiro-auth-token.json", {"refreshToken": "aor-ide"})
    store = build_token_store(settings())
    assert isinstance(store, JsonFileTokenStore) and store.path == json_file
    make_db(tmp_path / ".local/share/amazon-q/data.sqlite3", {})  # no login inside: the IDE file still wins
    assert isinstance(build_token_store(settings()), JsonFileTokenStore)
    db = make_db(tmp_path / "Library/Application Support/kiro-cli/data.sqlite3",
                 {"kirocli:odic:token": {"refresh_token": "aor-cli"}})
    store = build_token_store(settings(sqlite_readonly=True))
    assert isinstance(store, SqliteTokenStore) and store.path == db and store.readonly


def test_tilde_paths_expand(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HOME", str(tmp_path))
    write_json(tmp_path / "k.json", {"refreshToken": "aor"})
    store = build_token_store(settings(kiro_creds_file="~/k.json"))
    assert isinstance(store, JsonFileTokenStore) and store.path == tmp_path / "k.json"


def test_refresh_urls_defaults_and_overrides() -> None:
    assert refresh_urls(settings(kiro_region="eu-central-1")) == (
        "https://prod.eu-central-1.auth.desktop.kiro.dev/refreshToken", "https://oidc.eu-central-1.amazonaws.com/token")
    assert refresh_urls(settings(), "us-west-2")[1] == "https://oidc.us-west-2.amazonaws.com/token"
    overridden = settings(kiro_desktop_auth_url="http://127.0.0.1:9/", kiro_oidc_url="http://h/x/token")
    assert refresh_urls(overridden, "eu-west-1") == ("http://127.0.0.1:9/refreshToken", "http://h/x/token")


def test_mask_and_redact() -> None:
    token = "aorAAAAsecretvalue1234567890"
    assert mask(token) == f"aorA…({len(token)} chars)" and token not in mask(token)
    assert mask("") == "<empty>" and "short" not in mask("short")
    text = f"refresh {token} failed; secret=cs-abcdef; x={token}"
    cleaned = redact_text(text, [token, "cs-abcdef", None, ""])
    assert token not in cleaned and "cs-abcdef" not in cleaned and cleaned.count("[redacted") == 3
