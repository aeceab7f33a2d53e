"""Rotated refresh tokens are used on the next refresh and survive a gateway restart; no secret reaches a log."""

from __future__ import annotations

import json
from pathlib import Path

import openai
import pytest

from tests.integration.conftest import API_KEY, gateway_env
from tests.support.fake_kiro import FakeKiro, text_stream
from tests.support.gateway_process import GatewayProcess

USER = [{"role": "user", "content": "hello"}]


def ask(gateway: GatewayProcess) -> str:
    api = openai.OpenAI(base_url=f"{gateway.url}/v1", api_key=API_KEY, max_retries=0, timeout=30)
    return api.chat.completions.create(model="claude-sonnet-4.5", messages=USER).choices[0].message.content or ""


def refresh_tokens_sent(fake: FakeKiro) -> list[str]:
    return [r.json["refreshToken"] for r in fake.requests("refresh")]


@pytest.mark.parametrize("source", ["env", "creds_file"])
def test_rotated_token_is_used_next_and_survives_restart(tmp_path: Path, source: str) -> None:
    with FakeKiro() as fake:
        original = fake.issue_refresh_token()
        env = gateway_env(fake, tmp_path)
        creds_file = tmp_path / "kiro-auth-token.json"
        if source == "creds_file":
            env.pop("REFRESH_TOKEN")
            creds_file.write_text(json.dumps({"refreshToken": original, "accessToken": "", "region": "us-east-1",
                                              "expiresAt": "2020-01-01T00:00:00Z", "customKey": "kept"}))
            env["KIRO_CREDS_FILE"] = str(creds_file)
        else:
            env["REFRESH_TOKEN"] = original
        gateway = GatewayProcess(env, tmp_path)
        with gateway:
            fake.enqueue_chat(text_stream("first"))
            assert ask(gateway) == "first"
            assert refresh_tokens_sent(fake) == [original]
            fake.expire_access_tokens()
            assert ask(gateway) != ""
            sent = refresh_tokens_sent(fake)
            assert len(sent) == 2 and sent[1] != original  # the rotated token, not the spent one
        if source == "creds_file":
            stored = json.loads(creds_file.read_text())
            assert stored["customKey"] == "kept" and stored["refreshToken"] not in sent
        fake.expire_access_tokens()
        with gateway:  # restart: same environment, the env/file original is spent by now
            assert ask(gateway) != ""
            sent = refresh_tokens_sent(fake)
            assert len(sent) == 3 and sent[2] not in sent[:2]
            assert "Invalid refresh token" not in gateway.logs()


def test_no_secret_appears_in_logs_or_debug_dumps(tmp_path: Path) -> None:
    with FakeKiro() as fake:
        env = gateway_env(fake, tmp_path, DEBUG_MODE="all", DEBUG_DIR=str(tmp_path / "dumps"))
        with GatewayProcess(env, tmp_path) as gateway:
            ask(gateway)
            fake.expire_access_tokens()
            ask(gateway)  # 403 → refresh → retry
            with pytest.raises(openai.AuthenticationError):
                openai.OpenAI(base_url=f"{gateway.url}/v1", api_key=API_KEY + "x", max_retries=0
                              ).chat.completions.create(model="m", messages=USER)
            fake.fail_next("chat", 500, {"message": "boom", "reason": None}, times=3)
            with pytest.raises(openai.InternalServerError):
                ask(gateway)
            logs = gateway.logs()
        secrets = {API_KEY, env["REFRESH_TOKEN"]}
        for received in fake.requests():
            authorization = received.headers.get("authorization", "")
            if authorization.startswith("Bearer "):
                secrets.add(authorization.removeprefix("Bearer "))
            if received.endpoint == "refreshToken":
                secrets.add(received.json["refreshToken"])
        dumps = "".join(p.read_text() for p in (tmp_path / "dumps").glob("*.json"))
    assert len(secrets) >= 5  # key, original + rotated refresh tokens, two access tokens
    lines = [json.loads(line) for line in logs.splitlines() if line.startswith("{")]
    served = [e for e in lines if e.get("path") == "/v1/chat/completions" and e.get("status") == 200]
    assert served and all("ttft_ms" in e and "output_tokens" in e for e in served)  # the per-request line
    assert dumps, "DEBUG_MODE=all wrote no dumps"
    for secret in secrets:
        assert secret not in logs, "a secret leaked into the logs"
        assert secret not in dumps, "a secret leaked into a debug dump"
