"""Real Claude Code and Codex sessions keep one Kiro `conversationId` across turns (so Kiro's prompt cache can work),
a new session gets another, and the same session through another client key gets another still.

Claude Code: `claude -p` then `claude -p --resume <session>`; Codex: `codex exec` then `codex exec resume --last`.
Every run makes a tool round trip against the fake's default answer, so one turn is several upstream requests.
"""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest

from tests.e2e.test_agent_clients import agent, client_env, stack  # noqa: F401  (the module's stack fixture)
from tests.integration.conftest import API_KEY, gateway_env
from tests.support.fake_kiro import FakeKiro
from tests.support.gateway_process import GatewayProcess

OTHER_KEY = API_KEY + "-second-client"


def chat_ids(fake: FakeKiro) -> list[str]:
    return [r.json["conversationState"]["conversationId"] for r in fake.requests("chat")]


def main_loop_bodies(fake: FakeKiro, prompt: str) -> list[bytes]:
    """Bodies of the agent's own turn (the request carrying the user's prompt), leaving out side requests."""
    out = []
    for received in fake.requests("chat"):
        current = received.json["conversationState"]["currentMessage"]["userInputMessage"]
        if current["content"].rstrip().endswith(prompt):
            out.append(received.body)
    return out


def history_prefix(body: bytes) -> bytes:
    end = body.find(b'],"currentMessage":')
    return body[:end] if end >= 0 else body[:body.find(b',"currentMessage":')] + b',"history":['


def claude(home: Path, cwd: Path, url: str, key: str, *args: str) -> dict:
    # No tools: the fake's default answer would call the first tool offered, and on a resumed session Claude Code's
    # side queries about that call keep calling it (tool round trips are covered by test_agent_clients.py).
    result = subprocess.run(
        [str(agent("claude")), "-p", *args, "--tools", "", "--output-format", "json"],
        env=client_env(home, ANTHROPIC_BASE_URL=url, ANTHROPIC_API_KEY=key),
        cwd=cwd, capture_output=True, text=True, timeout=240, stdin=subprocess.DEVNULL,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    answer = json.loads(result.stdout)
    assert answer["is_error"] is False, answer
    return answer


@pytest.mark.timeout(900)  # four real Claude Code runs
def test_claude_code_turns_of_one_session_share_a_conversation_id(
        stack: tuple[FakeKiro, GatewayProcess, Path], tmp_path: Path) -> None:  # noqa: F811
    fake, gateway, home = stack
    fake.clear_requests()
    first = claude(home, tmp_path, gateway.url, API_KEY, "Say hello")
    turn_one = set(chat_ids(fake))
    bodies_one = main_loop_bodies(fake, "Say hello")
    fake.clear_requests()
    second = claude(home, tmp_path, gateway.url, API_KEY, "--resume", first["session_id"], "Say hello again")
    assert second["session_id"] == first["session_id"]
    turn_two = set(chat_ids(fake))
    bodies_two = main_loop_bodies(fake, "Say hello again")
    fake.clear_requests()
    claude(home, tmp_path, gateway.url, API_KEY, "Say hello in a new session")
    new_session = set(chat_ids(fake))

    assert len(turn_one) == 1, turn_one  # every request of the turn, tool round trip included
    assert turn_two == turn_one
    assert len(new_session) == 1 and new_session != turn_one
    # Byte-stable projection with a real client: each request of the session starts with the previous one's history.
    assert len(bodies_one) == len(bodies_two) == 1
    assert bodies_two[0].startswith(history_prefix(bodies_one[0]))
    # ...and turn one's prompt is turn two's first history entry. (Not the whole text: Claude Code itself rewrites
    # the model-name line of its system prompt on `--resume`.) Claude Code's default model reasons natively, so no
    # per-request thinking tags are in the way; turn one's signed reasoning is replayed in turn two.
    payload_one = json.loads(bodies_one[0])
    first_current = payload_one["conversationState"]["currentMessage"]["userInputMessage"]["content"]
    second = json.loads(bodies_two[0])
    second_history = second["conversationState"]["history"]
    replayed = second_history[0]["userInputMessage"]["content"]
    assert payload_one["additionalModelRequestFields"] and "<thinking_mode>" not in first_current
    assert replayed.endswith("Say hello") and first_current.endswith(replayed[-300:])
    assert second_history[1]["assistantResponseMessage"]["reasoningContent"]["reasoningText"]["signature"]

    with GatewayProcess(gateway_env(fake, home, PROXY_API_KEY=OTHER_KEY), home) as other:
        fake.clear_requests()
        claude(home, tmp_path, other.url, OTHER_KEY, "--resume", first["session_id"], "Same session, other key")
        other_key = set(chat_ids(fake))
    assert len(other_key) == 1 and other_key.isdisjoint(turn_one | new_session)


def codex_home(tmp_path: Path, url: str) -> Path:
    home = tmp_path / "codex-home"
    (home / ".codex").mkdir(parents=True)
    (home / ".codex" / "config.toml").write_text(
        'model = "claude-sonnet-4.5"\nmodel_provider = "kiro"\n\n'
        "[model_providers.kiro]\n"
        f'name = "Kiro gateway"\nbase_url = "{url}/v1"\n'
        'env_key = "KIRO_GATEWAY_KEY"\nwire_api = "responses"\n\n'
        "[analytics]\nenabled = false\n\n[features]\nplugins = false\napps = false\n"
    )
    return home


def codex(home: Path, cwd: Path, *args: str) -> str:
    result = subprocess.run(
        [str(agent("codex")), "exec", *args],
        env=client_env(home, KIRO_GATEWAY_KEY=API_KEY),
        cwd=cwd, capture_output=True, text=True, timeout=240, stdin=subprocess.DEVNULL,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    return result.stdout


@pytest.mark.timeout(900)
def test_codex_exec_then_resume_share_a_conversation_id(
        stack: tuple[FakeKiro, GatewayProcess, Path], tmp_path: Path) -> None:  # noqa: F811
    fake, gateway, _home = stack
    home = codex_home(tmp_path, gateway.url)
    fake.clear_requests()
    assert "The tool returned:" in codex(home, tmp_path, "--skip-git-repo-check", "Say hello")
    turn_one = set(chat_ids(fake))
    fake.clear_requests()
    codex(home, tmp_path, "resume", "--skip-git-repo-check", "--last", "Say hello again")
    turn_two = set(chat_ids(fake))
    fake.clear_requests()
    codex(home, tmp_path, "--skip-git-repo-check", "A new task")
    new_session = set(chat_ids(fake))
    assert len(turn_one) == 1, turn_one
    assert turn_two == turn_one
    assert len(new_session) == 1 and new_session != turn_one
