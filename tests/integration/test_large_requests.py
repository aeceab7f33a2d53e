"""Large Claude Code-shaped requests through the gateway process (issue 16): the streamed answer reports the same
input-token estimate as `count_tokens` and as the conversation counted alone, the worker-thread path keeps every
4xx naming its field, and a `count_tokens` flood meets its key's rpm limit."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from kiro_core.convert.anthropic import anthropic_to_conversation
from kiro_core.convert.options import ConversionOptions
from kiro_core.models.anthropic import MessagesRequest
from kiro_core.tokens import TokenMemo, estimate_input_tokens
from tests.integration.conftest import API_KEY, gateway_env
from tests.support.fake_kiro import FakeKiro
from tests.support.fake_kiro_scripts import text_stream
from tests.support.gateway_process import GatewayProcess

ROOT = Path(__file__).resolve().parents[2]
COUNT = "/v1/messages/count_tokens"


def large_body() -> dict[str, Any]:
    """~150 KB: above CPU_OFFLOAD_BYTES (64 KB), so it is parsed, converted and encoded in a worker thread."""
    messages: list[dict[str, Any]] = [{"role": "user", "content": "Review these files."}]
    for number, path in enumerate(sorted((ROOT / "kiro_core").glob("*.py"))[:12]):
        call_id = f"toolu_{number:03d}"
        messages += [
            {"role": "assistant", "content": [{"type": "text", "text": f"Reading {path.name}."},
                                              {"type": "tool_use", "id": call_id, "name": "Read",
                                               "input": {"file_path": str(path)}}]},
            {"role": "user", "content": [{"type": "tool_result", "tool_use_id": call_id,
                                          "content": path.read_text(encoding="utf-8")}]},
        ]
    messages.append({"role": "assistant", "content": "Read them."})
    messages.append({"role": "user", "content": "Summarise."})
    tools = [{"name": "Read", "description": "Reads a file from the workspace.",
              "input_schema": {"type": "object", "properties": {"file_path": {"type": "string"}}}}]
    return {"model": "claude-sonnet-4.5", "max_tokens": 1024, "system": [{"type": "text", "text": "Be brief."}],
            "tools": tools, "messages": messages}


@pytest.fixture(scope="module")
def keyed(fake: FakeKiro, tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[GatewayProcess, str]]:
    """A gateway with a client key limited to 3 requests per minute."""
    home = tmp_path_factory.mktemp("home")
    keys_file = home / "client-keys.json"
    env = gateway_env(fake, home, KIRO_CLIENT_KEYS_FILE=str(keys_file))
    created = subprocess.run(
        [sys.executable, "-m", "gateway.cli", "keys", "create", "--name", "counter", "--rpm", "3"],
        capture_output=True, text=True, cwd=home, timeout=120,
        env={"PATH": os.environ.get("PATH", ""), "HOME": str(home), "PYTHONPATH": os.pathsep.join(sys.path),
             "KIRO_CLIENT_KEYS_FILE": str(keys_file)})
    assert created.returncode == 0, created.stderr
    with GatewayProcess(env, home) as process:
        yield process, created.stdout.strip().splitlines()[-1]


def sse_events(raw: str) -> list[dict[str, Any]]:
    return [json.loads(line[len("data: "):]) for line in raw.splitlines() if line.startswith("data: ")]


def test_a_streamed_answer_reports_what_the_conversation_counts_alone(keyed: tuple[GatewayProcess, str],
                                                                      fake: FakeKiro) -> None:
    gateway, _key = keyed
    body = large_body()
    alone = estimate_input_tokens(anthropic_to_conversation(MessagesRequest.model_validate(body),
                                                            ConversionOptions()), TokenMemo())
    fake.enqueue_chat(text_stream("Done.", context=0.0))
    headers = {"x-api-key": API_KEY}
    response = httpx.post(gateway.url + "/v1/messages", json={**body, "stream": True}, headers=headers, timeout=60)
    assert response.status_code == 200, response.text
    events = sse_events(response.text)
    start = next(event for event in events if event["type"] == "message_start")
    delta = next(event for event in events if event["type"] == "message_delta")
    assert start["message"]["usage"]["input_tokens"] == alone
    assert delta["usage"]["input_tokens"] == alone
    counted = httpx.post(gateway.url + COUNT, json=body, headers=headers, timeout=60)
    assert counted.status_code == 200, counted.text
    assert counted.json() == {"input_tokens": alone}
    sent = json.loads(fake.requests("chat")[-1].body)
    assert "Summarise." in json.dumps(sent)  # the payload built in the worker thread went upstream


def test_large_bodies_refused_in_the_worker_thread_still_name_their_field(keyed: tuple[GatewayProcess, str],
                                                                          fake: FakeKiro) -> None:
    gateway, _key = keyed
    body = large_body()
    body["messages"][3]["content"][0]["content"] = 1e400  # overflows: refused with the field's path
    raw = json.dumps(body, allow_nan=True).replace("Infinity", "1e400").encode()
    response = httpx.post(gateway.url + "/v1/messages", content=raw, timeout=60,
                          headers={"x-api-key": API_KEY, "content-type": "application/json"})
    assert response.status_code == 400, response.text
    assert "messages.3.content.0.content" in response.json()["error"]["message"]
    body = large_body()
    body["messages"][2]["role"] = "narrator"
    response = httpx.post(gateway.url + "/v1/messages", json=body, headers={"x-api-key": API_KEY}, timeout=60)
    assert response.status_code == 400, response.text
    assert "messages.2" in response.json()["error"]["message"]
    assert not fake.requests("chat")


def test_a_count_tokens_flood_meets_the_keys_rpm_limit(keyed: tuple[GatewayProcess, str], fake: FakeKiro) -> None:
    gateway, key = keyed
    body = {"model": "claude-sonnet-4.5", "messages": [{"role": "user", "content": "x" * 2000}]}
    statuses = [httpx.post(gateway.url + COUNT, json=body, headers={"x-api-key": key}, timeout=60)
                for _ in range(6)]
    assert [response.status_code for response in statuses] == [200, 200, 200, 429, 429, 429]
    refused = statuses[-1].json()
    assert refused["type"] == "error" and refused["error"]["type"] == "rate_limit_error"
    assert "rpm 3" in refused["error"]["message"]
    assert statuses[-1].headers["retry-after"].isdigit()
    assert not fake.requests("chat")  # counting never calls the upstream
