"""One way to Kiro, one ledger (issue 17): web searches go through the account pool like answers do, every search is
counted for the key that caused it and checked against its budget, the client's `max_uses` cannot exceed the
gateway's, and an answer the client abandons still records what it consumed. Real gateway processes, the fake Kiro,
the Anthropic SDK and plain HTTP clients."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import anthropic
import httpx

from tests.integration.conftest import API_KEY, gateway_env
from tests.integration.test_accounts import SUSPENDED, bearer, key_env, write_accounts
from tests.support import frames
from tests.support.fake_kiro import FakeKiro, text_stream, tool_call_stream
from tests.support.fake_kiro_scripts import Pause
from tests.support.gateway_process import GatewayProcess
from tests.support.polling import eventually

MODEL = "claude-sonnet-4-5"
HOSTED = {"type": "web_search_20250305", "name": "web_search", "max_uses": 8}
BASH = {"name": "Bash", "description": "Run a shell command",
        "input_schema": {"type": "object", "properties": {"command": {"type": "string"}}, "required": ["command"]}}
NOMINAL = 0.25  # WEB_SEARCH_NOMINAL_CREDITS of these gateways


def side_request(query: str = "kiro gateway") -> dict[str, Any]:
    return {"model": MODEL, "max_tokens": 1024, "tools": [HOSTED],
            "messages": [{"role": "user", "content": f"Perform a web search for the query: {query}"}]}


def loop_request(content: str = "Search twice") -> dict[str, Any]:
    return {"model": MODEL, "max_tokens": 512, "tools": [BASH, HOSTED], "messages": [{"role": "user",
                                                                                      "content": content}]}


def post(gateway: GatewayProcess, body: dict[str, Any], key: str = API_KEY) -> httpx.Response:
    return httpx.post(f"{gateway.url}/v1/messages", json=body, headers={"x-api-key": key}, timeout=30)


def today(gateway: GatewayProcess) -> dict[str, Any]:
    response = httpx.get(f"{gateway.url}/v1/usage", headers={"x-api-key": API_KEY}, timeout=30)
    assert response.status_code == 200, response.text
    return response.json()["gateway"]["today"]



def create_key(keys_file: Path, home: Path, name: str, *limits: str) -> str:
    env = {"PATH": os.environ.get("PATH", ""), "HOME": str(home), "PYTHONPATH": os.pathsep.join(sys.path),
           "KIRO_CLIENT_KEYS_FILE": str(keys_file)}
    result = subprocess.run([sys.executable, "-m", "gateway.cli", "keys", "create", "--name", name, *limits],
                            capture_output=True, text=True, env=env, cwd=home, timeout=120)
    assert result.returncode == 0, result.stderr
    return result.stdout.strip().splitlines()[-1]


# -- one way to Kiro ------------------------------------------------------------------------------------------------


def test_a_suspended_first_account_gets_no_search_and_the_second_serves_it(fake: FakeKiro, tmp_path: Path) -> None:
    one, two = fake.issue_api_key(), fake.issue_api_key()
    accounts = write_accounts(tmp_path / "accounts.json", [
        {"name": "one", "kind": "api_key", "apiKey": one}, {"name": "two", "kind": "api_key", "apiKey": two}])
    with GatewayProcess(key_env(fake, tmp_path, KIRO_ACCOUNTS_FILE=str(accounts)), tmp_path) as gateway:
        fake.fail_next_for(one, "search", 403, SUSPENDED, times=2)
        message = anthropic.Anthropic(base_url=gateway.url, api_key=API_KEY, max_retries=0).messages.create(
            **side_request())
        assert message.content[1].content[0].title.startswith("Fake Result 1")  # served, by the second account
        searches = fake.requests("search")
        assert [bearer(r) for r in searches] == [one, one, two]  # one refresh-retry, then the next account
        assert all(r.headers.get("tokentype") == "API_KEY" for r in searches)

        fake.clear_requests()
        for query in ("again", "and again"):
            assert post(gateway, side_request(query)).status_code == 200
        assert [bearer(r) for r in fake.requests("search")] == [two, two]  # the suspended account gets no search
        assert "account one is suspended" in gateway.logs()


def test_a_search_takes_an_account_slot(fake: FakeKiro, tmp_path: Path) -> None:
    """With ACCOUNT_MAX_CONCURRENCY=1, a search waits for the answer holding the account's slot."""
    key = fake.issue_api_key()
    env = key_env(fake, tmp_path, KIRO_API_KEY=key, ACCOUNT_MAX_CONCURRENCY="1", ACCOUNT_QUEUE_TIMEOUT="0.5")
    with GatewayProcess(env, tmp_path) as gateway:
        fake.enqueue_chat([frames.text("holding the slot"), Pause(10.0), *text_stream(" done")])
        with httpx.stream("POST", f"{gateway.url}/v1/messages", headers={"x-api-key": API_KEY}, timeout=30,
                          json={"model": MODEL, "max_tokens": 64, "stream": True,
                                "messages": [{"role": "user", "content": "hi"}]}) as held:
            assert held.status_code == 200
            chunks = held.iter_bytes()  # kept: a dropped iterator would close the response
            next(chunks)  # the answer has begun: the account's only slot is taken
            refused = post(gateway, side_request())
            assert refused.status_code == 429, refused.text
            assert "ACCOUNT_MAX_CONCURRENCY" in refused.json()["error"]["message"]
        assert fake.requests("search") == []


# -- one ledger ------------------------------------------------------------------------------------------------------


def test_a_tiny_budget_key_gets_at_most_one_search_before_its_429(fake: FakeKiro, tmp_path: Path) -> None:
    keys_file = tmp_path / "client-keys.json"
    side_key = create_key(keys_file, tmp_path, "tiny", "--daily-credits", "0.001")
    loop_key = create_key(keys_file, tmp_path, "tiny-loop", "--daily-credits", "0.001")
    env = gateway_env(fake, tmp_path, KIRO_CLIENT_KEYS_FILE=str(keys_file), WEB_SEARCH_NOMINAL_CREDITS=str(NOMINAL))
    with GatewayProcess(env, tmp_path) as gateway:
        answers = [post(gateway, side_request(f"query {i}"), side_key) for i in range(6)]
        assert [a.status_code for a in answers] == [200, 429, 429, 429, 429, 429]
        error = answers[1].json()["error"]
        assert error["type"] == "rate_limit_error" and "dailyCredits" in error["message"]
        assert int(answers[1].headers["retry-after"]) >= 1
        assert len(fake.requests("search")) == 1

        fake.clear_requests()  # the loop: a model turn that metered nothing, then a search, then the budget
        fake.enqueue_chat(tool_call_stream("web_search", {"query": "one"}, tool_use_id="tooluse_b1", credits=0.0))
        looped = post(gateway, loop_request(), loop_key)
        assert looped.status_code == 429 and "dailyCredits" in looped.json()["error"]["message"]
        assert [r.json["params"]["arguments"]["query"] for r in fake.requests("search")] == ["one"]
        assert len(fake.requests("chat")) == 1  # the budget stopped the next model turn too
        fake.clear_requests()
        assert post(gateway, loop_request(), loop_key).status_code == 429  # and the key's next request
        assert fake.requests() == []
        assert post(gateway, side_request("unlimited")).status_code == 200  # the owner's key has no budget


def test_web_searches_appear_in_usage_as_requests_and_searches(fake: FakeKiro, tmp_path: Path) -> None:
    env = gateway_env(fake, tmp_path, WEB_SEARCH_NOMINAL_CREDITS=str(NOMINAL))
    with GatewayProcess(env, tmp_path) as gateway:
        assert post(gateway, side_request()).status_code == 200
        fake.enqueue_chat(tool_call_stream("web_search", {"query": "python"}, tool_use_id="tooluse_u1", credits=0.5),
                          text_stream("Answer.", credits=0.25))
        assert post(gateway, loop_request("Search once")).status_code == 200
        counted = today(gateway)
        row = counted["byKey"]["default"]
        assert row["webSearches"] == 2 and counted["webSearches"] == 2
        assert row["requests"] == 3  # the side request's search, the loop's search, the loop's answer
        assert row["nominalCredits"] == 2 * NOMINAL
        assert row["credits"] == 0.75  # Kiro's metering of the two model turns; searches are not metered
        assert counted["byModel"]["web_search"]["webSearches"] == 2


def test_max_uses_is_capped_by_the_gateway_setting(fake: FakeKiro, tmp_path: Path) -> None:
    with GatewayProcess(gateway_env(fake, tmp_path, WEB_SEARCH_MAX_USES="1"), tmp_path) as gateway:
        fake.enqueue_chat(tool_call_stream("web_search", {"query": "one"}, tool_use_id="tooluse_c1"),
                          tool_call_stream("web_search", {"query": "two"}, tool_use_id="tooluse_c2"),
                          text_stream("Answer from one search."))
        body = {**loop_request(), "tools": [BASH, {**HOSTED, "max_uses": 8}]}
        message = post(gateway, body).json()
        assert [r.json["params"]["arguments"]["query"] for r in fake.requests("search")] == ["one"]
        assert message["content"][3]["content"]["error_code"] == "max_uses_exceeded"
        assert message["usage"]["server_tool_use"]["web_search_requests"] == 1


def hang_up_after(gateway: GatewayProcess, seen_text: bytes) -> None:
    with httpx.stream("POST", f"{gateway.url}/v1/chat/completions", headers={"Authorization": f"Bearer {API_KEY}"},
                      json={"model": "claude-sonnet-4.5", "stream": True,
                            "messages": [{"role": "user", "content": "hi"}]}, timeout=30) as response:
        assert response.status_code == 200
        seen = b""
        for chunk in response.iter_bytes():
            seen += chunk
            if seen_text in seen:
                return
    raise AssertionError(f"{seen_text!r} never arrived")


def test_an_abandoned_stream_records_what_it_consumed(fake: FakeKiro, tmp_path: Path) -> None:
    with GatewayProcess(gateway_env(fake, tmp_path), tmp_path) as gateway:
        # Metering arrived before the client hung up: those credits are recorded.
        fake.enqueue_chat([frames.text("first "), frames.metering(0.5), frames.text("second "), Pause(6.0),
                           *text_stream("late")])
        hang_up_after(gateway, b"second")
        assert eventually(lambda: today(gateway)["requests"] == 1)
        counted = today(gateway)
        assert counted["credits"] == 0.5 and counted["creditsUnknown"] == 0

        # No metering yet: the request is counted with its credits marked unknown, not as a free answer.
        fake.enqueue_chat([frames.text("alpha "), Pause(6.0), *text_stream("late")])
        hang_up_after(gateway, b"alpha")
        assert eventually(lambda: today(gateway)["requests"] == 2)
        counted = today(gateway)
        assert counted["creditsUnknown"] == 1 and counted["byKey"]["default"]["creditsUnknown"] == 1
        assert counted["credits"] == 0.5
        assert '"abandoned": true' in gateway.logs()
