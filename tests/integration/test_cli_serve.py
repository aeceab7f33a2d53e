"""`kiro-gateway serve` as a user runs it: the start-up banner, bad configuration, missing credentials."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import httpx

from tests.support.gateway_process import GatewayProcess


def clean_env(home: Path, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("KIRO_", "AWS_"))}
    for name in ("PROXY_API_KEY", "REFRESH_TOKEN", "PROFILE_ARN"):
        env.pop(name, None)
    env.update({"HOME": str(home), **extra})
    return env


def test_bad_configuration_fails_at_start_with_one_clear_line(tmp_path: Path) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "gateway.cli", "serve", "--port", "1"],
        env=clean_env(tmp_path, FIRST_TOKEN_TIMEOUT="soon"), cwd=tmp_path, capture_output=True, text=True,
        timeout=60,
    )
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and "FIRST_TOKEN_TIMEOUT" in lines[0] and "Traceback" not in result.stderr


def test_dotenv_file_is_read_from_the_working_directory(tmp_path: Path) -> None:
    (tmp_path / ".env").write_text('KIRO_API_HOST="nowhere"\n')
    result = subprocess.run([sys.executable, "-m", "gateway.cli", "serve"], env=clean_env(tmp_path), cwd=tmp_path,
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 2 and "KIRO_API_HOST" in result.stderr


def test_starts_without_credentials_and_explains_what_to_set(tmp_path: Path) -> None:
    with GatewayProcess(clean_env(tmp_path, PROXY_API_KEY="k" * 12), tmp_path) as gateway:
        banner = gateway.logs()
        assert f"listening on {gateway.url}" in banner
        assert "REFRESH_TOKEN" in banner and "KIRO_CREDS_FILE" in banner
        response = httpx.post(f"{gateway.url}/v1/messages", headers={"x-api-key": "k" * 12},
                              json={"model": "claude-sonnet-4.5", "max_tokens": 5,
                                    "messages": [{"role": "user", "content": "hi"}]})
        assert response.status_code == 503
        assert "REFRESH_TOKEN" in response.json()["error"]["message"]
        assert httpx.get(f"{gateway.url}/v1/models", headers={"x-api-key": "k" * 12}).status_code == 200


def test_generated_key_is_printed_when_none_is_configured(tmp_path: Path) -> None:
    with GatewayProcess(clean_env(tmp_path), tmp_path) as gateway:
        line = next(line for line in gateway.logs().splitlines() if "generated key" in line)
        key = line.rsplit(" ", 1)[-1]
        assert len(key) >= 24
        ok = httpx.get(f"{gateway.url}/v1/models", headers={"authorization": f"Bearer {key}"})
        refused = httpx.get(f"{gateway.url}/v1/models", headers={"authorization": "Bearer guess"})
        assert ok.status_code == 200 and refused.status_code == 401
