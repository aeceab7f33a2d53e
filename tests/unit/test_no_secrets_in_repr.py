"""`repr()` and `str()` of the settings and of every per-account object hold no secret: they end up in tracebacks,
debuggers and log lines (`"%r"`), none of which may carry a credential."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

import httpx

from gateway.accounts.config import parse_accounts
from gateway.accounts.setup import build_accounts
from gateway.login.device import DeviceCode, Registration, Tokens
from gateway.settings import Settings
from gateway.stores.base import Credentials

SECRETS = {
    "PROXY_API_KEY": "proxy-key-5f3a9c1e77",
    "REFRESH_TOKEN": "aorAAAAAG-refresh-9b2d4e",
    "KIRO_API_KEY": "ksk_apikey_1c8e0f42aa",
    "VPN_PROXY_URL": "http://user:pa55word-e41b@proxy.example:3128",
}
ACCOUNT_SECRETS = ("ksk_account_key_77aa21", "aorAAAAAG-account-refresh-3c1d", "client-secret-0a9f6b", "access-4be2")


def assert_clean(obj: Any, secrets: tuple[str, ...]) -> None:
    for text in (repr(obj), str(obj)):
        for secret in secrets:
            assert secret not in text, f"{type(obj).__name__} shows a secret: {text}"
            assert "pa55word" not in text


def test_settings_repr_holds_no_secret() -> None:
    settings = Settings.from_env(SECRETS, dotenv=None)
    assert settings.server.proxy_api_key == SECRETS["PROXY_API_KEY"]  # the values are there, only not shown
    assert_clean(settings, tuple(SECRETS.values()))
    assert "kiro_region='us-east-1'" in repr(settings)  # the rest stays readable


def accounts_file(tmp_path: Path) -> Path:
    api_key, refresh, client_secret, access = ACCOUNT_SECRETS
    path = tmp_path / "accounts.json"
    path.write_text(json.dumps([
        {"name": "key", "kind": "api_key", "apiKey": api_key},
        {"name": "login", "kind": "refresh_token", "refreshToken": refresh, "accessToken": access,
         "expiresAt": "2099-01-01T00:00:00Z", "clientId": "client-id", "clientSecret": client_secret,
         "region": "us-east-1"},
    ]), encoding="utf-8")
    return path


def test_account_configs_hold_no_secret(tmp_path: Path) -> None:
    configs = parse_accounts(json.loads(accounts_file(tmp_path).read_text()), "test")
    assert configs[0].api_key == ACCOUNT_SECRETS[0]
    for config in configs:
        assert_clean(config, ACCOUNT_SECRETS)


def test_every_per_account_object_of_a_pool_holds_no_secret(tmp_path: Path) -> None:
    settings = Settings(kiro_accounts_file=str(accounts_file(tmp_path)),
                        kiro_accounts_state_file=str(tmp_path / "state.json"), **{
                            name.lower(): value for name, value in SECRETS.items() if name == "PROXY_API_KEY"})

    async def objects() -> list[Any]:
        async with httpx.AsyncClient() as http:
            built = await build_accounts(settings, http)
            assert built.pool is not None and len(built.pool.accounts) == 2
            found: list[Any] = [built, built.pool]
            for account in built.pool.accounts:
                found += [account, account.config, account.kiro, account.auth, account.store]
                if account.store is not None:
                    found.append(await account.store.load())
            return found

    for obj in asyncio.run(objects()):
        assert_clean(obj, (*ACCOUNT_SECRETS, SECRETS["PROXY_API_KEY"]))


def test_credentials_and_login_results_hold_no_secret() -> None:
    secrets = ("refresh-abc123", "access-def456", "secret-ghi789", "device-jkl012")
    assert_clean(Credentials(refresh_token=secrets[0], access_token=secrets[1], client_id="id",
                             client_secret=secrets[2], extra={"token": secrets[1]}), secrets)
    assert_clean(Registration("id", secrets[2], 0.0), secrets)
    assert_clean(Tokens(secrets[1], secrets[0], 3600.0), secrets)
    assert_clean(DeviceCode(secrets[3], "ABCD-EFGH", "https://device.example", 5.0, 0.0), secrets)
