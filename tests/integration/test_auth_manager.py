"""AuthManager against the fake Kiro: one refresh for many callers, refresh after a 403, recovery when another
program rotated the token, graceful degradation, and no secret in any error."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest

from gateway.auth.manager import AuthManager
from gateway.auth.refresh import RefreshError, TokenRefresher
from gateway.stores.base import REFRESH_AHEAD, Credentials
from gateway.stores.local import EnvTokenStore, JsonFileTokenStore
from tests.support.fake_kiro import FakeKiro

CHAT = {"conversationState": {"currentMessage": {"userInputMessage": {"content": "hi"}}}}


@pytest.fixture
def kiro() -> Iterator[FakeKiro]:
    with FakeKiro() as server:
        yield server


def refresher(http: httpx.AsyncClient, fake: FakeKiro) -> TokenRefresher:
    return TokenRefresher(http, desktop_url=f"{fake.url}/refreshToken", oidc_url=f"{fake.url}/token",
                          user_agent="KiroIDE-test")


def creds_file(path: Path, refresh_token: str, *, access_token: str = "", expires_at: datetime | None = None,
               **extra: Any) -> Path:
    expires = (expires_at or datetime(2020, 1, 1, tzinfo=UTC)).isoformat()
    path.write_text(json.dumps({"refreshToken": refresh_token, "accessToken": access_token, "expiresAt": expires,
                                "region": "us-east-1", **extra}))
    return path


async def chat_status(http: httpx.AsyncClient, fake: FakeKiro, token: str) -> int:
    response = await http.post(f"{fake.url}/generateAssistantResponse", json=CHAT,
                               headers={"Authorization": f"Bearer {token}"})
    return response.status_code


def test_fifty_concurrent_callers_share_one_refresh(kiro: FakeKiro, tmp_path: Path) -> None:
    kiro.refresh_delay = 0.05
    store = EnvTokenStore(Credentials(refresh_token=kiro.issue_refresh_token()), state_file=tmp_path / "s.json")

    async def scenario() -> set[str]:
        async with httpx.AsyncClient(trust_env=False) as http:
            manager = AuthManager(store, refresher(http, kiro))
            tokens = await asyncio.gather(*(manager.access_token() for _ in range(50)))
            assert await chat_status(http, kiro, tokens[0]) == 200
            assert await manager.access_token() == tokens[0]  # fresh: no second refresh
            return set(tokens)

    assert len(asyncio.run(scenario())) == 1 and kiro.refresh_count == 1


def test_refreshes_ahead_of_expiry(kiro: FakeKiro, tmp_path: Path) -> None:
    now = [datetime(2026, 1, 1, tzinfo=UTC)]
    store = EnvTokenStore(Credentials(refresh_token=kiro.issue_refresh_token()), state_file=tmp_path / "s.json")

    async def scenario() -> None:
        async with httpx.AsyncClient(trust_env=False) as http:
            real = TokenRefresher(http, desktop_url=f"{kiro.url}/refreshToken", oidc_url=f"{kiro.url}/token",
                                  user_agent="t", clock=lambda: now[0])
            manager = AuthManager(store, real, clock=lambda: now[0])
            first = await manager.access_token()
            expires_at = (await manager.credentials()).expires_at
            assert expires_at == now[0] + timedelta(seconds=3600 - 60)
            now[0] = expires_at - REFRESH_AHEAD - timedelta(seconds=1)
            assert await manager.access_token() == first and kiro.refresh_count == 1
            now[0] += timedelta(seconds=2)
            assert await manager.access_token() != first and kiro.refresh_count == 2

    asyncio.run(scenario())


def test_force_refresh_after_403_and_rotated_token_survives_restart(kiro: FakeKiro, tmp_path: Path) -> None:
    path = creds_file(tmp_path / "creds.json", kiro.issue_refresh_token())

    async def scenario() -> None:
        async with httpx.AsyncClient(trust_env=False) as http:
            manager = AuthManager(JsonFileTokenStore(path), refresher(http, kiro))
            old = await manager.access_token()
            kiro.expire_access_tokens()
            assert await chat_status(http, kiro, old) == 403
            new = await asyncio.gather(*(manager.force_refresh(old) for _ in range(10)))
            assert len(set(new)) == 1 and await chat_status(http, kiro, new[0]) == 200
            assert kiro.refresh_count == 2
            assert await manager.force_refresh(old) == new[0] and kiro.refresh_count == 2  # already replaced
            assert await manager.force_refresh() != new[0] and kiro.refresh_count == 3  # no hint: refresh
            restarted = AuthManager(JsonFileTokenStore(path), refresher(http, kiro))
            current = await restarted.access_token()  # the file's fresh token: no refresh at start-up
            assert kiro.refresh_count == 3 and await chat_status(http, kiro, current) == 200
            await restarted.force_refresh()  # uses the rotated refresh token the file now holds
            assert kiro.refresh_count == 4

    asyncio.run(scenario())


class IdeRotatesFirst:
    """Stands in for Kiro IDE refreshing the same login at the worst moment: just before our request goes out."""

    def __init__(self, real: TokenRefresher, fake: FakeKiro, path: Path) -> None:
        self.real, self.fake, self.path = real, fake, path
        self.ide_answer: dict[str, Any] | None = None

    async def __call__(self, creds: Credentials) -> Credentials:
        if self.ide_answer is None:
            async with httpx.AsyncClient(trust_env=False) as http:
                response = await http.post(f"{self.fake.url}/refreshToken", json={"refreshToken": creds.refresh_token})
            answer = self.ide_answer = response.json()
            creds_file(self.path, answer["refreshToken"], access_token=answer["accessToken"],
                       expires_at=datetime.now(UTC) + timedelta(hours=1))
        return await self.real(creds)


def test_rejected_refresh_rereads_the_source_and_recovers(kiro: FakeKiro, tmp_path: Path) -> None:
    path = creds_file(tmp_path / "creds.json", kiro.issue_refresh_token())

    async def scenario() -> None:
        async with httpx.AsyncClient(trust_env=False) as http:
            racing = IdeRotatesFirst(refresher(http, kiro), kiro, path)
            manager = AuthManager(JsonFileTokenStore(path), racing)
            token = await manager.access_token()
            assert racing.ide_answer is not None and token == racing.ide_answer["accessToken"]
            assert await chat_status(http, kiro, token) == 200

    asyncio.run(scenario())
    sent = [r.json["refreshToken"] for r in kiro.requests("refresh")]
    assert len(sent) == 2 and sent[0] == sent[1]  # the IDE's refresh, then our rejected one; no third


def test_still_valid_token_is_kept_when_refresh_fails(kiro: FakeKiro, tmp_path: Path) -> None:
    access = kiro.issue_access_token()
    path = creds_file(tmp_path / "creds.json", "aor-revoked-token-123456", access_token=access,
                      expires_at=datetime.now(UTC) + timedelta(minutes=5))

    async def scenario() -> None:
        async with httpx.AsyncClient(trust_env=False) as http:
            manager = AuthManager(JsonFileTokenStore(path), refresher(http, kiro))
            assert await manager.access_token() == access
            assert await manager.access_token() == access  # no second attempt right away
            assert len(kiro.requests("refresh")) == 1
            with pytest.raises(RefreshError):  # after a 403 the old token is known bad: no pretending
                await manager.force_refresh(access)

    asyncio.run(scenario())


def test_refresh_errors_carry_no_secret(kiro: FakeKiro, tmp_path: Path) -> None:
    client_id, secret = kiro.register_client()
    refresh_token = kiro.issue_refresh_token()
    (tmp_path / "device1.json").write_text(json.dumps({"clientId": client_id, "clientSecret": secret}))
    path = creds_file(tmp_path / "kiro-auth-token.json", refresh_token, clientIdHash="device1")
    echo = {"error": "invalid_grant", "error_description": f"token {refresh_token} with secret {secret} refused"}
    kiro.fail_next("oidc", 400, echo, times=2)

    async def scenario() -> RefreshError:
        async with httpx.AsyncClient(trust_env=False) as http:
            manager = AuthManager(JsonFileTokenStore(path), refresher(http, kiro))
            with pytest.raises(RefreshError) as caught:
                await manager.access_token()
            assert refresh_token not in manager.describe() and "AWS SSO OIDC auth" in manager.describe()
            return caught.value

    error = asyncio.run(scenario())
    assert error.status == 400 and error.rejected and "invalid_grant" in error.message
    for text in (str(error), repr(error), error.as_gateway_error().message):
        assert refresh_token not in text and secret not in text
    sent = kiro.requests("oidc")[0].json
    assert sent == {"grantType": "refresh_token", "clientId": client_id, "clientSecret": secret,
                    "refreshToken": refresh_token}
    assert len(kiro.requests("oidc")) == 1  # the source was re-read, it still held the rejected token: no retry


def test_oidc_login_refreshes_and_keeps_the_device_link(kiro: FakeKiro, tmp_path: Path) -> None:
    client_id, secret = kiro.register_client()
    (tmp_path / "hash1.json").write_text(json.dumps({"clientId": client_id, "clientSecret": secret}))
    path = creds_file(tmp_path / "kiro-auth-token.json", kiro.issue_refresh_token(), clientIdHash="hash1")

    async def scenario() -> Credentials:
        async with httpx.AsyncClient(trust_env=False) as http:
            manager = AuthManager(JsonFileTokenStore(path), refresher(http, kiro))
            return await manager.credentials()

    creds = asyncio.run(scenario())
    stored = json.loads(path.read_text())
    assert creds.auth_type == "aws_sso_oidc" and stored["clientIdHash"] == "hash1"
    assert stored["refreshToken"] == creds.refresh_token and "clientSecret" not in stored


def test_profile_arn_comes_from_the_refresh_response(kiro: FakeKiro, tmp_path: Path) -> None:
    store = EnvTokenStore(Credentials(refresh_token=kiro.issue_refresh_token()), state_file=tmp_path / "s.json")

    async def scenario() -> Credentials:
        async with httpx.AsyncClient(trust_env=False) as http:
            manager = AuthManager(store, refresher(http, kiro))
            assert "not loaded" in manager.describe()
            return await manager.credentials()

    assert asyncio.run(scenario()).profile_arn == kiro.profile_arn
