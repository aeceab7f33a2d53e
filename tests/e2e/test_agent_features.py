"""What the newest agent clients do beyond a tool round trip (issue 19), with the real binaries:

- Claude Code finds a deferred MCP tool with ToolSearch and runs it: the Kiro payloads before the search carry none
  of the MCP server's tools, the one after carries exactly the referenced one.
- Claude Code compacts by itself when the gateway relays Kiro's size rejection, then the session goes on.
- Codex's WebSocket attempt is refused at once (426) and it falls back to HTTP without retrying.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from tests.e2e.test_agent_clients import agent, client_env, stack, tool_results_sent  # noqa: F401  (module fixture)
from tests.integration.conftest import API_KEY
from tests.support.fake_kiro import FakeKiro, Status, tool_call_stream
from tests.support.gateway_process import GatewayProcess

REPO = Path(__file__).resolve().parents[2]
TOO_LARGE = Status(400, {"message": "Input is too long.", "reason": "CONTENT_LENGTH_EXCEEDS_THRESHOLD"})
MCP_PREFIX = "mcp__many__"


def sent_tools(fake: FakeKiro) -> list[list[str]]:
    """The tool names of every chat payload, in order."""
    out = []
    for received in fake.requests("chat"):
        context = received.json["conversationState"]["currentMessage"]["userInputMessage"].get(
            "userInputMessageContext") or {}
        out.append([t["toolSpecification"]["name"] for t in context.get("tools") or []])
    return out


def claude(home: Path, cwd: Path, url: str, *args: str) -> dict:
    result = subprocess.run(
        [str(agent("claude")), "-p", *args, "--output-format", "json"],
        env=client_env(home, ANTHROPIC_BASE_URL=url, ANTHROPIC_API_KEY=API_KEY),
        cwd=cwd, capture_output=True, text=True, timeout=240, stdin=subprocess.DEVNULL,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    answer = json.loads(result.stdout)
    assert answer["is_error"] is False, answer
    return answer


def test_claude_code_loads_a_deferred_mcp_tool_through_tool_search(
        stack: tuple[FakeKiro, GatewayProcess, Path], tmp_path: Path) -> None:  # noqa: F811
    fake, gateway, home = stack
    fake.clear_requests()
    config = tmp_path / "mcp.json"
    server = {"command": sys.executable, "args": ["-m", "tests.support.many_tools_mcp"], "cwd": str(REPO),
              "env": {"PYTHONPATH": str(REPO)}}
    config.write_text(json.dumps({"mcpServers": {"many": server}}))
    wanted = f"{MCP_PREFIX}tool_17"
    fake.enqueue_chat(tool_call_stream("ToolSearch", {"query": f"select:{wanted}"}, tool_use_id="tooluse_search1"),
                      tool_call_stream(wanted, {"text": "ping"}, tool_use_id="tooluse_mcp1"))
    answer = claude(home, tmp_path, gateway.url, "Use tool 17 of the many server", "--mcp-config", str(config),
                    "--strict-mcp-config", "--allowedTools", wanted)
    assert answer["result"].startswith("The tool returned:") and "tool_17 answered ping" in answer["result"]
    tools = sent_tools(fake)
    assert len(tools) == 3, tools  # search, call, answer
    assert "ToolSearch" in tools[0] and not [n for n in tools[0] if n.startswith(MCP_PREFIX)]
    for after in tools[1:]:
        assert [n for n in after if n.startswith(MCP_PREFIX)] == [wanted]
    results = tool_results_sent(fake)
    assert [r["toolUseId"] for r in results] == ["tooluse_search1", "tooluse_mcp1"]
    assert wanted in results[0]["content"][0]["text"]  # the tool_reference, understood
    assert results[1]["content"][0]["text"] == "tool_17 answered ping"  # Claude Code ran it on the MCP server


def test_claude_code_compacts_when_kiro_says_too_large_and_goes_on(
        stack: tuple[FakeKiro, GatewayProcess, Path], tmp_path: Path) -> None:  # noqa: F811
    fake, gateway, home = stack
    first = claude(home, tmp_path, gateway.url, "Say hello", "--tools", "")
    fake.clear_requests()
    fake.enqueue_chat([TOO_LARGE])
    second = claude(home, tmp_path, gateway.url, "--resume", first["session_id"], "Say hello again", "--tools", "")
    assert second["result"] == "Echo: Say hello again"
    contents = [r.json["conversationState"]["currentMessage"]["userInputMessage"]["content"]
                for r in fake.requests("chat")]
    assert contents[0].endswith("Say hello again")  # the request Kiro refused as too large
    assert any("<summary>" in c for c in contents[1:-1])  # Claude Code asked for a summary: it compacted...
    assert contents[-1].endswith("Say hello again") and "summary" in contents[-1]  # ...and went on from it


def test_codex_falls_back_from_websocket_at_once(stack: tuple[FakeKiro, GatewayProcess, Path],  # noqa: F811
                                                 tmp_path: Path) -> None:
    """`supports_websockets = true` makes Codex try the WebSocket first (README's block says false)."""
    fake, gateway, _home = stack
    fake.clear_requests()
    codex_home = tmp_path / "codex-home"
    (codex_home / ".codex").mkdir(parents=True)
    (codex_home / ".codex" / "config.toml").write_text(
        'model = "claude-sonnet-4.5"\nmodel_provider = "kiro"\n\n'
        "[model_providers.kiro]\n"
        f'name = "Kiro gateway"\nbase_url = "{gateway.url}/v1"\n'
        'env_key = "KIRO_GATEWAY_KEY"\nwire_api = "responses"\nsupports_websockets = true\n\n'
        "[analytics]\nenabled = false\n\n[features]\nplugins = false\napps = false\n"
    )
    logged = len(gateway.logs().splitlines())
    result = subprocess.run(
        [str(agent("codex")), "exec", "--skip-git-repo-check", "Say hello"],
        env=client_env(codex_home, KIRO_GATEWAY_KEY=API_KEY),
        cwd=tmp_path, capture_output=True, text=True, timeout=240, stdin=subprocess.DEVNULL,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "The tool returned:" in result.stdout
    requests = [json.loads(line) for line in gateway.logs().splitlines()[logged:]
                if '"logger": "gateway.request"' in line]
    upgrades = [r for r in requests if r["method"] == "GET" and r["path"] == "/v1/responses"]
    posts = [r for r in requests if r["method"] == "POST" and r["path"] == "/v1/responses"]
    # One WebSocket attempt, refused with 426, then straight to HTTP: no retries (with a 405 Codex 0.171 made 7
    # attempts over about 6 s before falling back).
    assert [r["status"] for r in upgrades] == [426], upgrades
    assert requests.index(upgrades[0]) < requests.index(posts[0]) and all(r["status"] == 200 for r in posts)
    assert len(fake.requests("chat")) == len(posts)
