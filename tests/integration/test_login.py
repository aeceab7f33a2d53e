"""`kiro-gateway login --device` as a user runs it (a subprocess with standard input closed) against the fake's AWS
SSO OIDC and Kiro social device flows on 127.0.0.1, and the gateway then serving with the stored login."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import openai
import pytest

from tests.integration.conftest import API_KEY, gateway_env
from tests.support.fake_kiro import FakeKiro, text_stream
from tests.support.gateway_process import GatewayProcess

START_URL = "https://example-org.awsapps.com/start"


def run_login(fake: FakeKiro, home: Path, *args: str, **extra: str) -> subprocess.CompletedProcess[str]:
    env = {"PATH": os.environ.get("PATH", ""), "HOME": str(home), "PYTHONPATH": os.pathsep.join(sys.path),
           "NO_PROXY": "127.0.0.1,localhost", "KIRO_OIDC_URL": fake.url, "KIRO_DESKTOP_AUTH_URL": fake.url,
           "KIRO_API_BASE_URL": fake.url, **extra}
    command = [sys.executable, "-m", "gateway.cli", "login", "--device", *args]
    # `exec 0<&-`: standard input closed, as under a service manager or in CI
    return subprocess.run(["sh", "-c", 'exec 0<&-; exec "$@"', "sh", *command], capture_output=True, text=True,
                          env=env, cwd=home, timeout=120)


def stored(home: Path) -> list[dict]:
    return json.loads((home / ".kiro-gateway" / "accounts.json").read_text())


@pytest.fixture
def home(tmp_path: Path) -> Path:
    return tmp_path


def test_identity_center_login_is_used_for_a_streamed_chat(fake: FakeKiro, home: Path) -> None:
    fake.oidc.next_login(pending=1, slow_down=True)
    result = run_login(fake, home, "--start-url", START_URL, "--region", "us-east-1", "--name", "work")
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert any(line.startswith("Verification URL: https://") for line in lines)
    assert any(line.startswith("User code: ") and len(line.split(": ", 1)[1]) == 9 for line in lines)
    polls = fake.oidc.polls()[-1]
    assert len(polls) == 3  # pending, slow_down, approved: no poll more
    assert polls[2] - polls[1] >= 4.9  # slow_down added 5 s to the interval

    [entry] = stored(home)
    assert entry["name"] == "work" and entry["kind"] == "refresh_token" and entry["authMethod"] == "idc"
    assert entry["clientId"] and entry["clientSecret"] and entry["startUrl"] == START_URL
    assert entry["profileArn"] == fake.profile_arn and entry["apiRegion"] == "us-east-1"
    assert entry["refreshToken"] not in result.stdout + result.stderr
    assert (home / ".kiro-gateway" / "accounts.json").stat().st_mode & 0o077 == 0

    env = gateway_env(fake, home)
    env.pop("REFRESH_TOKEN")
    env.pop("PROFILE_ARN")
    fake.clear_requests()
    with GatewayProcess(env, home) as gateway:
        assert "account work" in gateway.logs()  # found on its own, as the banner says
        api = openai.OpenAI(base_url=f"{gateway.url}/v1", api_key=API_KEY, max_retries=0, timeout=30)
        fake.enqueue_chat(text_stream("logged in"), text_stream("refreshed"))
        chunks = api.chat.completions.create(model="claude-sonnet-4.5", stream=True,
                                             messages=[{"role": "user", "content": "hi"}])
        assert "".join(c.choices[0].delta.content or "" for c in chunks if c.choices) == "logged in"
        chat = fake.requests("chat")[-1]
        assert chat.headers["authorization"] == f"Bearer {entry['accessToken']}"
        assert chat.json["profileArn"] == fake.profile_arn
        fake.expire_access_tokens()  # the gateway refreshes through OIDC with the login's own registration
        answer = api.chat.completions.create(model="claude-sonnet-4.5", messages=[{"role": "user", "content": "hi"}])
        assert answer.choices[0].message.content == "refreshed"
    [refresh] = [r.json for r in fake.requests("oidc") if r.json.get("grantType") == "refresh_token"]
    assert refresh["clientId"] == entry["clientId"] and refresh["refreshToken"] == entry["refreshToken"]
    assert stored(home)[0]["refreshToken"] != entry["refreshToken"]  # the rotated token went back to the file


def test_builder_id_is_the_default_and_needs_no_profile(fake: FakeKiro, home: Path) -> None:
    fake.oidc.next_login(pending=0, slow_down=False)
    result = run_login(fake, home)
    assert result.returncode == 0, result.stderr
    [entry] = stored(home)
    assert entry["name"] == "default" and entry["authMethod"] == "builder-id"
    assert entry["startUrl"] == "https://view.awsapps.com/start" and entry["apiHost"] == "q"
    assert "profileArn" not in entry


@pytest.mark.parametrize(("outcome", "words"), [("deny", "denied"), ("expire", "expired")])
def test_denied_or_expired_code_ends_with_a_clear_error(fake: FakeKiro, home: Path, outcome: str,
                                                        words: str) -> None:
    fake.oidc.next_login(pending=1, slow_down=False, outcome=outcome)
    result = run_login(fake, home, "--start-url", START_URL)
    assert result.returncode == 1
    assert words in result.stderr and "Traceback" not in result.stderr
    assert len(fake.oidc.polls()[-1]) == 2  # one pending, then the end: no loop
    assert not (home / ".kiro-gateway" / "accounts.json").exists()


def test_an_expired_registration_is_replaced_by_itself(fake: FakeKiro, home: Path) -> None:
    fake.oidc.next_login(pending=0, slow_down=False)
    assert run_login(fake, home, "--start-url", START_URL).returncode == 0
    registrations = fake.oidc.registrations
    first = stored(home)[0]["clientId"]

    fake.oidc.expire_registrations()  # AWS refuses the cached registration now (invalid_client)
    fake.oidc.next_login(pending=0, slow_down=False)
    result = run_login(fake, home, "--start-url", START_URL)
    assert result.returncode == 0, result.stderr
    assert "registering a new one" in result.stdout
    assert fake.oidc.registrations == registrations + 1
    assert stored(home)[0]["clientId"] != first

    cache = home / ".kiro-gateway" / "oidc-registrations.json"
    saved = json.loads(cache.read_text())
    for value in saved.values():
        value["clientSecretExpiresAt"] = 1_000_000  # long past: renewed before use, not after a refusal
    cache.write_text(json.dumps(saved))
    fake.oidc.next_login(pending=0, slow_down=False)
    result = run_login(fake, home, "--start-url", START_URL)
    assert result.returncode == 0 and "saved client registration has expired" in result.stdout
    assert fake.oidc.registrations == registrations + 2


def test_github_device_login_through_kiro(fake: FakeKiro, home: Path) -> None:
    fake.oidc.next_login(pending=1, slow_down=False)
    result = run_login(fake, home, "--provider", "github", "--name", "gh")
    assert result.returncode == 0, result.stderr
    assert any(line.startswith("Verification URL: https://app.kiro.dev/") for line in result.stdout.splitlines())
    [entry] = stored(home)
    assert entry["provider"] == "Github" and entry["profileArn"] == fake.profile_arn
    assert "clientId" not in entry  # refreshed through Kiro desktop, like the IDE's social logins
    polls = fake.requests("social_poll")
    assert [r.json["clientId"] for r in polls] == ["kiro-cli", "kiro-cli"]
