"""Real agent clients — Claude Code and Codex CLI — doing a tool round trip through the gateway.

The fake Kiro upstream's default answer calls the first tool the client offers, then answers the tool result with
text; so a passing run proves the client accepted our stream, ran the tool call we decoded from Kiro's frames, and
sent the result back in its own API (Anthropic Messages for Claude Code, OpenAI Responses for Codex).
Clients come from `make agents` (`scripts/install-agents.sh`, pinned versions in `.agents/`).
"""

from __future__ import annotations

import json
import os
import subprocess
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.integration.conftest import API_KEY, gateway_env
from tests.integration.test_accounts import SUSPENDED
from tests.support.fake_kiro import FakeKiro, tool_call_stream
from tests.support.gateway_process import GatewayProcess

AGENTS = Path(os.environ.get("AGENTS_DIR") or Path(__file__).resolve().parents[2] / ".agents")


def agent(name: str) -> Path:
    path = AGENTS / "node_modules" / ".bin" / name
    if not path.exists():
        pytest.fail(f"{name} is not installed: run `make agents` (scripts/install-agents.sh)")
    return path


@pytest.fixture(scope="module", params=["one-account", "two-accounts"])
def stack(request: pytest.FixtureRequest,
          tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[FakeKiro, GatewayProcess, Path]]:
    """The gateway with its usual refresh-token account, or with two accounts whose first (an API key) is suspended:
    everything, web searches included, must then reach Kiro through the second one only."""
    home = tmp_path_factory.mktemp("agent-home")
    with FakeKiro(piece_sizes=(16, 512)) as fake:
        env = gateway_env(fake, home)
        if request.param == "two-accounts":
            suspended = fake.issue_api_key()
            for endpoint in ("chat", "search"):
                fake.fail_next_for(suspended, endpoint, 403, SUSPENDED, times=2)
            accounts = [{"name": "suspended", "kind": "api_key", "apiKey": suspended},
                        {"name": "second", "kind": "refresh_token", "refreshToken": env.pop("REFRESH_TOKEN"),
                         "profileArn": env.pop("PROFILE_ARN")}]
            (home / "accounts.json").write_text(json.dumps(accounts), encoding="utf-8")
            env["KIRO_ACCOUNTS_FILE"] = str(home / "accounts.json")
        with GatewayProcess(env, home) as gateway:
            if request.param == "two-accounts":  # the first answer finds the suspension and moves on; then no more
                answer = httpx.post(f"{gateway.url}/v1/messages", headers={"x-api-key": API_KEY}, timeout=60,
                                    json={"model": "claude-sonnet-4.5", "max_tokens": 16,
                                          "messages": [{"role": "user", "content": "hi"}]})
                assert answer.status_code == 200, answer.text
                assert "account suspended is suspended" in gateway.logs()
                fake.clear_requests()
            yield fake, gateway, home


def client_env(home: Path, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("ANTHROPIC_", "OPENAI_", "KIRO_", "AWS_"))}
    env.update({"HOME": str(home), "DISABLE_TELEMETRY": "1", "DISABLE_AUTOUPDATER": "1",
                "CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC": "1", **extra})
    return env


def tool_results_sent(fake: FakeKiro) -> list[dict]:
    results = []
    for received in fake.requests("chat"):
        message = received.json["conversationState"]["currentMessage"]["userInputMessage"]
        results += (message.get("userInputMessageContext") or {}).get("toolResults") or []
    return results


def models_sent(fake: FakeKiro) -> set[str]:
    return {r.json["conversationState"]["currentMessage"]["userInputMessage"]["modelId"] for r in fake.requests("chat")}


# (client's model name, the Kiro id it must reach Kiro as); None: the client's own default model
CLAUDE_MODELS = [(None, None), ("claude-opus-5-5", "claude-opus-5.5"), ("claude-sonnet-5", "claude-sonnet-5")]
CODEX_MODELS = [("claude-sonnet-4.5", "claude-sonnet-4.5"), ("claude-sonnet-5", "claude-sonnet-5"),
                ("claude-opus-5-5", "claude-opus-5.5")]


@pytest.mark.parametrize(("model", "wire_id"), CLAUDE_MODELS)
def test_claude_code_runs_a_tool_round_trip(stack: tuple[FakeKiro, GatewayProcess, Path], tmp_path: Path,
                                            model: str | None, wire_id: str | None) -> None:
    fake, gateway, home = stack
    fake.clear_requests()
    result = subprocess.run(
        [str(agent("claude")), "-p", "Say hello", "--output-format", "json", *(["--model", model] if model else [])],
        env=client_env(home, ANTHROPIC_BASE_URL=gateway.url, ANTHROPIC_API_KEY=API_KEY),
        cwd=tmp_path, capture_output=True, text=True, timeout=240, stdin=subprocess.DEVNULL,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    answer = json.loads(result.stdout)
    assert answer["is_error"] is False and answer["subtype"] == "success"
    assert answer["result"].startswith("The tool returned:")
    assert answer["usage"]["output_tokens"] > 0
    assert tool_results_sent(fake), "Claude Code never sent the tool result back"
    assert all(r.headers.get("authorization", "").startswith("Bearer ") for r in fake.requests("chat"))
    if wire_id:
        assert wire_id in models_sent(fake), models_sent(fake)


@pytest.mark.parametrize(("model", "wire_id"), CODEX_MODELS)
def test_codex_runs_a_tool_round_trip(stack: tuple[FakeKiro, GatewayProcess, Path], tmp_path: Path,
                                      model: str, wire_id: str) -> None:
    fake, gateway, _home = stack
    fake.clear_requests()
    codex_home = tmp_path / "codex-home"
    (codex_home / ".codex").mkdir(parents=True)
    (codex_home / ".codex" / "config.toml").write_text(
        f'model = "{model}"\nmodel_provider = "kiro"\n\n'
        "[model_providers.kiro]\n"
        f'name = "Kiro gateway"\nbase_url = "{gateway.url}/v1"\n'
        'env_key = "KIRO_GATEWAY_KEY"\nwire_api = "responses"\n\n'
        "[analytics]\nenabled = false\n\n[features]\nplugins = false\napps = false\n"
    )
    result = subprocess.run(
        [str(agent("codex")), "exec", "--skip-git-repo-check", "Say hello"],
        env=client_env(codex_home, KIRO_GATEWAY_KEY=API_KEY),
        cwd=tmp_path, capture_output=True, text=True, timeout=240, stdin=subprocess.DEVNULL,
    )
    output = result.stdout + result.stderr
    assert result.returncode == 0, output
    assert "The tool returned:" in result.stdout
    results = tool_results_sent(fake)
    assert results and any("exited with code" in c.get("text", "") or "command not found" in c.get("text", "")
                           for r in results for c in r["content"]), results
    assert models_sent(fake) == {wire_id}


def codex_config(codex_home: Path, gateway: GatewayProcess, extra: str = "") -> None:
    (codex_home / ".codex").mkdir(parents=True, exist_ok=True)
    (codex_home / ".codex" / "config.toml").write_text(
        f'model = "claude-sonnet-4.5"\nmodel_provider = "kiro"\n{extra}\n'
        "[model_providers.kiro]\n"
        f'name = "Kiro gateway"\nbase_url = "{gateway.url}/v1"\n'
        'env_key = "KIRO_GATEWAY_KEY"\nwire_api = "responses"\n\n'
        "[analytics]\nenabled = false\n\n[features]\nplugins = false\napps = false\n"
    )


def test_claude_code_web_search_shows_the_results(stack: tuple[FakeKiro, GatewayProcess, Path],
                                                  tmp_path: Path) -> None:
    """Claude Code's WebSearch tool runs as a side request the gateway answers from Kiro's MCP search."""
    fake, gateway, home = stack
    fake.clear_requests()
    fake.enqueue_chat(tool_call_stream("WebSearch", {"query": "kiro gateway releases"}, tool_use_id="tooluse_ws1"))
    result = subprocess.run(
        [str(agent("claude")), "-p", "Search the web for kiro gateway releases", "--output-format", "json",
         "--allowedTools", "WebSearch"],
        env=client_env(home, ANTHROPIC_BASE_URL=gateway.url, ANTHROPIC_API_KEY=API_KEY),
        cwd=tmp_path, capture_output=True, text=True, timeout=240, stdin=subprocess.DEVNULL,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    answer = json.loads(result.stdout)
    assert answer["is_error"] is False
    assert "Fake Result 1 about kiro gateway releases" in answer["result"], answer["result"]
    searches = fake.requests("mcp")
    assert [s.json["params"]["arguments"]["query"] for s in searches] == ["kiro gateway releases"]
    # Claude Code counts the side request's search in its per-model usage
    assert sum(usage["webSearchRequests"] for usage in answer["modelUsage"].values()) == 1
    tool_text = json.dumps(tool_results_sent(fake))
    assert "https://example.com/fake/1" in tool_text and "Snippet 3: what the fake web says" in tool_text


def test_codex_web_search_shows_the_results(stack: tuple[FakeKiro, GatewayProcess, Path], tmp_path: Path) -> None:
    """Codex with `web_search = "live"` sends its hosted tool; the gateway runs the model's search through MCP."""
    fake, gateway, _home = stack
    fake.clear_requests()
    codex_home = tmp_path / "codex-home"
    codex_config(codex_home, gateway, 'web_search = "live"\n')
    fake.enqueue_chat(tool_call_stream("web_search", {"query": "kiro gateway news"}, tool_use_id="tooluse_cws1"))
    result = subprocess.run(
        [str(agent("codex")), "exec", "--skip-git-repo-check", "Search the web for kiro gateway news"],
        env=client_env(codex_home, KIRO_GATEWAY_KEY=API_KEY),
        cwd=tmp_path, capture_output=True, text=True, timeout=240, stdin=subprocess.DEVNULL,
    )
    output = result.stdout + result.stderr
    assert result.returncode == 0, output
    assert "Fake Result 1 about kiro gateway news" in result.stdout, output
    assert "kiro gateway news" in result.stderr  # Codex shows the web_search_call item it received
    assert [s.json["params"]["arguments"]["query"] for s in fake.requests("mcp")] == ["kiro gateway news"]
