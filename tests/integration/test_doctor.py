"""`kiro-gateway doctor` as a user runs it, against the fake Kiro playing each answer: reasoning or not, metering
or not, an error; the confirmation rules; the JSON shape; exit codes; and never a token in the output."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.integration.conftest import gateway_env
from tests.support.fake_kiro import FakeKiro, Status, probe_stream


def doctor(fake: FakeKiro, home: Path, *args: str, env: dict[str, str] | None = None,
           stdin: int | None = subprocess.DEVNULL) -> tuple[subprocess.CompletedProcess[str], dict[str, str]]:
    base = {k: v for k, v in os.environ.items() if not k.startswith(("KIRO_", "AWS_"))}
    for name in ("PROXY_API_KEY", "REFRESH_TOKEN", "PROFILE_ARN"):
        base.pop(name, None)
    settings = env if env is not None else gateway_env(fake, home)
    result = subprocess.run([sys.executable, "-m", "gateway.cli", "doctor", *args], env={**base, **settings},
                            cwd=home, capture_output=True, text=True, stdin=stdin, timeout=120)
    return result, settings


def no_secrets(result: subprocess.CompletedProcess[str], settings: dict[str, str]) -> None:
    output = result.stdout + result.stderr
    assert settings.get("REFRESH_TOKEN", "unset") not in output
    assert "aoaFAKE" not in output and "aorFAKE" not in output  # the fake's access / refresh token prefixes


@pytest.fixture
def home(tmp_path: Path) -> Path:
    return tmp_path


def test_default_run_probes_one_model_per_family_and_passes(fake: FakeKiro, home: Path) -> None:
    result, settings = doctor(fake, home, "--yes", "--json")
    assert result.returncode == 0, result.stdout + result.stderr
    report = json.loads(result.stdout)
    assert set(report) == {"ok", "catalog", "checks", "credits"} and report["ok"] is True
    assert {"claude-opus-5.5", "claude-sonnet-5", "gpt-5.6-sol", "glm-5"} <= set(report["catalog"])
    assert all(set(c) == {"name", "ok", "detail"} and c["ok"] for c in report["checks"])
    chats = fake.requests("chat")
    assert "8 streamed request(s)" in result.stderr and len(chats) == 8  # announced, then exactly that many
    assert report["credits"] == pytest.approx(8 * 0.0169)
    sent = {r.json["conversationState"]["currentMessage"]["userInputMessage"]["modelId"]:
            r.json.get("additionalModelRequestFields") for r in chats}
    assert sent["claude-opus-5.5"] == {"output_config": {"effort": "low"},
                                       "thinking": {"type": "adaptive", "display": "summarized"}}
    assert sent["gpt-5.6-luna"] == {"reasoning": {"effort": "low"}}
    assert sent["claude-haiku-4.5"] is None and sent["glm-5"] is None
    assert "rateMultiplier 2" in result.stderr  # the catalogue's multiplier, shown before starting
    no_secrets(result, settings)


def test_failing_checks_exit_1_and_name_the_setting(fake: FakeKiro, home: Path) -> None:
    fake.enqueue_chat(
        probe_stream("ok", reasoning=None),  # claude-opus-5.5: schema effort sent, no reasoning frames
        probe_stream("ok", reasoning="thinking", metering=False, context=False, metadata=False),  # no usage trailer
        [Status(400, {"message": "Invalid model. Please select a different model to continue.",
                      "reason": "INVALID_MODEL_ID"})],
        probe_stream("ok", metering=True),
    )
    result, settings = doctor(fake, home, "--models", "claude-opus-5-5,claude-sonnet-5,kimi-k3,glm-5", "--yes",
                              "--json")
    assert result.returncode == 1, result.stdout + result.stderr
    report = json.loads(result.stdout)
    checks = {c["name"]: c for c in report["checks"]}
    assert report["ok"] is False
    assert not checks["reasoning claude-opus-5.5"]["ok"] and "FAKE_REASONING" in checks["reasoning claude-opus-5.5"][
        "detail"]
    assert checks["usage claude-opus-5.5"]["ok"]
    assert checks["reasoning claude-sonnet-5"]["ok"] and not checks["usage claude-sonnet-5"]["ok"]
    assert "missing: meteringEvent, contextUsageEvent, metadataEvent" in checks["usage claude-sonnet-5"]["detail"]
    assert not checks["request kimi-k3"]["ok"] and "--models" in checks["request kimi-k3"]["detail"]
    assert "usage kimi-k3" not in checks
    assert checks["request glm-5"]["ok"] and checks["reasoning glm-5"]["ok"]
    assert report["credits"] == pytest.approx(2 * 0.0169)
    assert len(fake.requests("chat")) == 4  # no retries beyond what was announced
    no_secrets(result, settings)


def test_table_output_lists_fixes(fake: FakeKiro, home: Path) -> None:
    refused = [Status(403, {"message": "User is not authorized to make this call.", "reason": None})]
    fake.enqueue_chat(refused, refused)  # the client refreshes the token once and retries
    result, settings = doctor(fake, home, "--models", "claude-sonnet-4.5", "--yes")
    assert result.returncode == 1
    assert "request claude-sonnet-4.5" in result.stdout and "FAIL" in result.stdout
    assert "fix:" in result.stdout and "PROFILE_ARN" in result.stdout
    assert "1 streamed request(s)" in result.stdout
    no_secrets(result, settings)


def test_without_a_terminal_and_without_yes_it_refuses_before_spending(fake: FakeKiro, home: Path) -> None:
    result, settings = doctor(fake, home, "--json")
    assert result.returncode == 1
    assert "stdin is not a terminal" in result.stderr and "--yes" in result.stderr
    assert fake.requests("chat") == []
    report = json.loads(result.stdout)
    assert report["ok"] is False and report["credits"] == 0
    assert [c["name"] for c in report["checks"]][-1] == "confirmation"
    closed, _ = doctor(fake, home, stdin=None)  # inherits pytest's stdin, which is not a terminal either
    assert closed.returncode == 1 and fake.requests("chat") == []
    no_secrets(result, settings)


def test_catalogue_failure_names_the_management_settings(fake: FakeKiro, home: Path) -> None:
    fake.fail_next("models", 500, times=10)
    result, _ = doctor(fake, home, "--json", "--yes")
    assert result.returncode == 1
    checks = {c["name"]: c for c in json.loads(result.stdout)["checks"]}
    assert not checks["catalogue"]["ok"] and "KIRO_MANAGEMENT_BASE_URL" in checks["catalogue"]["detail"]
    assert fake.requests("chat") == []


def test_no_credentials(fake: FakeKiro, home: Path) -> None:
    env = {"HOME": str(home), "KIRO_API_BASE_URL": fake.url, "KIRO_STATE_FILE": str(home / "state.json")}
    result, _ = doctor(fake, home, "--json", env=env)
    assert result.returncode == 1
    report = json.loads(result.stdout)
    assert report["checks"][0]["name"] == "credentials" and "REFRESH_TOKEN" in report["checks"][0]["detail"]
