"""Named client keys against the fake upstream (issue 10): keys made with `kiro-gateway keys`, limits that trip exactly
at their values in both client shapes, revocation, the failed-authentication throttle, and nothing secret in logs.

Runs with the local stores (key file, counts in memory, one process) and with the AWS stores on moto (keys in the
secret, counts in the DynamoDB table, two gateway processes sharing them: requests alternate between the two).
"""

from __future__ import annotations

import json
import subprocess
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import anthropic
import httpx
import openai
import pytest

from tests.aws.awsutil import aws_environment, read_secret
from tests.integration.conftest import API_KEY, aws_backed, gateway_env
from tests.support import frames
from tests.support.fake_kiro import FakeKiro
from tests.support.fake_kiro_scripts import Pause, text_stream
from tests.support.gateway_process import GatewayProcess
from tests.support.keys_cli import make_cli
from tests.support.polling import eventually

OPENAI = "/v1/chat/completions"
ANTHROPIC = "/v1/messages"
BODIES = {
    OPENAI: {"model": "claude-sonnet-4.5", "messages": [{"role": "user", "content": "hi"}]},
    ANTHROPIC: {"model": "claude-sonnet-4.5", "max_tokens": 64, "messages": [{"role": "user", "content": "hi"}]},
}
CACHE_SECONDS = 2  # CLIENT_KEYS_CACHE_SECONDS of the AWS gateways (the local file is re-read every second)


@dataclass
class Deployment:
    gateways: list[GatewayProcess]
    keys: dict[str, str]
    cli: Callable[..., subprocess.CompletedProcess[str]]
    cache_seconds: float
    secret: str | None = None
    created_output: list[str] = field(default_factory=list)
    aws_env: dict[str, str] = field(default_factory=dict)

    def stored(self) -> dict[str, Any]:
        """The key document as stored: the key file, or the secret's `clientKeys`."""
        if self.secret is None:
            return json.loads(Path(self.gateways[0].env["KIRO_CLIENT_KEYS_FILE"]).read_text())
        with pytest.MonkeyPatch.context() as patch:
            for name, value in self.aws_env.items():
                patch.setenv(name, value)
            return read_secret(self.secret)["clientKeys"]

    def gateway(self, i: int) -> GatewayProcess:
        """Requests alternate between the processes (one locally)."""
        return self.gateways[i % len(self.gateways)]


@pytest.fixture(scope="module", params=["local-stores", "aws-stores"])
def deployment(request: pytest.FixtureRequest, fake: FakeKiro,
               tmp_path_factory: pytest.TempPathFactory) -> Iterator[Deployment]:
    home = tmp_path_factory.mktemp("home")
    env = gateway_env(fake, home)
    if request.param == "aws-stores":
        env = aws_backed(env, request.getfixturevalue("moto_endpoint"))
        env["CLIENT_KEYS_CACHE_SECONDS"] = str(CACHE_SECONDS)
        cli = make_cli({**aws_environment(request.getfixturevalue("moto_endpoint")),
                        "KIRO_STATE_TABLE": env["KIRO_STATE_TABLE"]}, home, ["--secret-id", env["KIRO_SECRET_ID"]])
        processes, cache, secret = 2, float(CACHE_SECONDS), env["KIRO_SECRET_ID"]
        aws_env = aws_environment(request.getfixturevalue("moto_endpoint"))
    else:
        env["KIRO_CLIENT_KEYS_FILE"] = str(home / "client-keys.json")
        cli = make_cli({"KIRO_CLIENT_KEYS_FILE": env["KIRO_CLIENT_KEYS_FILE"]}, home, [])
        processes, cache, secret, aws_env = 1, 1.0, None, {}
    keys: dict[str, str] = {}
    outputs = []
    for name, limits in (("fast", ["--rpm", "3"]), ("narrow", ["--concurrency", "2"]),
                         ("hangup", ["--concurrency", "2"]), ("spare", []),
                         ("budgeted", ["--daily-credits", "2.5", "--monthly-credits", "40"]),
                         ("thrifty", ["--daily-credits", "1"]), ("monthly", ["--monthly-credits", "0.5"])):
        result = cli("create", "--name", name, *limits)
        assert result.returncode == 0, result.stderr
        keys[name] = result.stdout.strip().splitlines()[-1]
        outputs.append(result.stdout + result.stderr)
    gateways = [GatewayProcess(dict(env), home).start() for _ in range(processes)]
    try:
        yield Deployment(gateways, keys, cli, cache, secret, outputs, aws_env)
    finally:
        for process in gateways:
            process.stop()


def post(gateway: GatewayProcess, route: str, key: str, *, client: httpx.Client | None = None,
         **extra: Any) -> httpx.Response:
    body = {**BODIES[route], "stream": False, **extra}
    return (client or httpx).post(gateway.url + route, json=body, headers={"authorization": f"Bearer {key}"},
                                  timeout=60)


def assert_rate_limited(response: httpx.Response, route: str, words: str) -> None:
    assert response.status_code == 429, response.text
    retry_after = response.headers["retry-after"]
    assert retry_after.isdigit() and int(retry_after) >= 1
    body = response.json()
    if route == ANTHROPIC:
        assert body["type"] == "error"
    assert body["error"]["type"] == "rate_limit_error"
    assert words in body["error"]["message"]



def test_created_keys_are_shown_once_and_stored_only_as_hashes(deployment: Deployment, tmp_path: Path) -> None:
    for name, key in deployment.keys.items():
        assert key.startswith("kgw-") and len(key) > 40
        assert sum(output.count(key) for output in deployment.created_output) == 1, name
    ring = deployment.stored()
    assert not any(key in json.dumps(ring) for key in deployment.keys.values())
    listing = deployment.cli("list")
    assert listing.returncode == 0, listing.stderr
    for name, key in deployment.keys.items():
        assert name in listing.stdout and key not in listing.stdout and key[4:12] not in listing.stdout
    for record in ring["keys"]:
        assert record["hash"] not in listing.stdout
    assert ring["salt"] not in listing.stdout
    budgeted = next(record for record in ring["keys"] if record["name"] == "budgeted")
    assert budgeted["limits"] == {"dailyCredits": 2.5, "monthlyCredits": 40}


def test_rpm_trips_exactly_at_its_value_in_both_shapes(deployment: Deployment, fake: FakeKiro) -> None:
    key = deployment.keys["fast"]
    for i, route in enumerate((OPENAI, ANTHROPIC, OPENAI)):
        response = post(deployment.gateway(i), route, key)
        assert response.status_code == 200, response.text
    assert_rate_limited(post(deployment.gateway(3), OPENAI, key), OPENAI, "rpm 3")
    assert_rate_limited(post(deployment.gateway(4), ANTHROPIC, key), ANTHROPIC, "rpm 3")
    assert len(fake.requests("chat")) == 3  # nothing refused went upstream
    # The official SDKs read it as their own rate-limit error.
    gateway = deployment.gateway(5)
    with pytest.raises(openai.RateLimitError) as caught_openai:
        openai.OpenAI(base_url=gateway.url + "/v1", api_key=key, max_retries=0).chat.completions.create(
            model="claude-sonnet-4.5", messages=[{"role": "user", "content": "hi"}])
    assert "rpm 3" in str(caught_openai.value) and caught_openai.value.response.headers["retry-after"].isdigit()
    with pytest.raises(anthropic.RateLimitError) as caught_anthropic:
        anthropic.Anthropic(base_url=gateway.url, api_key=key, max_retries=0).messages.create(
            model="claude-sonnet-4.5", max_tokens=64, messages=[{"role": "user", "content": "hi"}])
    assert "rpm 3" in str(caught_anthropic.value)
    # Other keys are unaffected.
    assert post(deployment.gateway(6), OPENAI, deployment.keys["spare"]).status_code == 200
    assert post(deployment.gateway(7), ANTHROPIC, API_KEY).status_code == 200
    assert len(fake.requests("chat")) == 5


def held_stream(gateway: GatewayProcess, route: str, key: str, client: httpx.Client) -> Any:
    body = {**BODIES[route], "stream": True}
    return client.stream("POST", gateway.url + route, json=body, headers={"x-api-key": key}, timeout=60)


def test_concurrency_trips_exactly_at_its_value_and_frees_on_end(deployment: Deployment, fake: FakeKiro) -> None:
    key = deployment.keys["narrow"]
    slow = [frames.text("one moment"), Pause(3.0), *text_stream("done")]
    fake.enqueue_chat(slow, slow)
    with httpx.Client() as client, held_stream(deployment.gateway(0), ANTHROPIC, key, client) as first, \
            held_stream(deployment.gateway(1), OPENAI, key, client) as second:
        assert first.status_code == 200 and second.status_code == 200
        assert_rate_limited(post(deployment.gateway(0), OPENAI, key), OPENAI, "concurrency 2")
        assert_rate_limited(post(deployment.gateway(1), ANTHROPIC, key), ANTHROPIC, "concurrency 2")
        # Another key and the default key go through meanwhile.
        assert post(deployment.gateway(0), OPENAI, deployment.keys["spare"]).status_code == 200
        assert post(deployment.gateway(1), ANTHROPIC, API_KEY).status_code == 200
        assert "message_stop" in first.read().decode() and "[DONE]" in second.read().decode()
    assert len(fake.requests("chat")) == 4
    # The slots are released before the last bytes of an answer go out: the next request finds one free at once.
    assert post(deployment.gateway(1), OPENAI, key).status_code == 200
    assert post(deployment.gateway(0), ANTHROPIC, key).status_code == 200


def finished_requests(deployment: Deployment, key_name: str) -> int:
    """Request log lines of `key_name` (written once a request has ended, after its slot was released)."""
    logs = "".join(gateway.logs() for gateway in deployment.gateways)
    return sum(1 for line in logs.splitlines()
               if line.startswith("{") and json.loads(line).get("client_key") == key_name)


def test_a_client_that_hangs_up_gives_its_slot_back(deployment: Deployment, fake: FakeKiro) -> None:
    key = deployment.keys["hangup"]  # a key of its own: no earlier request of it can still be logging
    stalled = [frames.text("thinking"), Pause(30.0), *text_stream("late")]
    fake.enqueue_chat(stalled, stalled)
    for i in range(2):
        with httpx.Client() as client, held_stream(deployment.gateway(i), ANTHROPIC, key, client) as response:
            assert response.status_code == 200
            next(response.iter_bytes())  # the answer has begun; then the client goes away
    assert eventually(lambda: finished_requests(deployment, "hangup") == 2)
    # Both slots are free again: two answers at once, and a third is refused.
    slow = [frames.text("again"), Pause(2.0), *text_stream("done")]
    fake.enqueue_chat(slow, slow)
    with httpx.Client() as client, held_stream(deployment.gateway(0), OPENAI, key, client) as first, \
            held_stream(deployment.gateway(1), ANTHROPIC, key, client) as second:
        assert first.status_code == 200 and second.status_code == 200
        assert_rate_limited(post(deployment.gateway(0), ANTHROPIC, key), ANTHROPIC, "concurrency 2")
        assert "[DONE]" in first.read().decode() and "message_stop" in second.read().decode()


def test_revoked_and_expired_keys_are_refused_within_the_cache_interval(deployment: Deployment) -> None:
    key = deployment.keys["spare"]
    for gateway in deployment.gateways:
        assert httpx.get(gateway.url + "/v1/models", headers={"x-api-key": key}).status_code == 200
    revoked = deployment.cli("revoke", "spare")
    assert revoked.returncode == 0, revoked.stderr
    revoked_at = time.monotonic()
    for i, gateway in enumerate(deployment.gateways):
        route = (OPENAI, ANTHROPIC)[i % 2]
        assert eventually(lambda g=gateway, r=route: post(g, r, key).status_code == 401,
                          limit=deployment.cache_seconds + 5)
        refused = post(gateway, route, key)
        assert refused.status_code == 401 and "revoked" in refused.json()["error"]["message"]
    assert time.monotonic() - revoked_at <= deployment.cache_seconds + 5
    # An expiry in the past refuses the key as well (set-limits accepts any moment).
    assert deployment.cli("set-limits", "budgeted", "--expires", "2020-01-01T00:00:00Z").returncode == 0
    assert eventually(lambda: post(deployment.gateway(1), OPENAI, deployment.keys["budgeted"]).status_code == 401,
                      limit=deployment.cache_seconds + 5)
    assert "expired" in post(deployment.gateway(1), OPENAI, deployment.keys["budgeted"]).json()["error"]["message"]
    listing = json.loads(deployment.cli("list", "--json").stdout)
    states = {row["name"]: row["state"] for row in listing["keys"]}
    assert states["spare"] == "revoked" and states["budgeted"] == "expired" and states["fast"] == "active"


def test_guessing_keys_blocks_guessing_only(deployment: Deployment, fake: FakeKiro) -> None:
    attacker = httpx.Client(transport=httpx.HTTPTransport(local_address="127.0.0.2"))
    owner = httpx.Client(transport=httpx.HTTPTransport(local_address="127.0.0.3"))
    with attacker, owner:
        for i in range(19):
            wrong = post(deployment.gateway(i), (OPENAI, ANTHROPIC)[i % 2], f"kgw-guess-{i:04d}", client=attacker)
            assert wrong.status_code == 401
        # 19 failures: the address is not blocked yet, a right key from it still works.
        assert post(deployment.gateway(0), OPENAI, API_KEY, client=attacker).status_code == 200
        assert post(deployment.gateway(1), OPENAI, "kgw-guess-last", client=attacker).status_code == 401  # the 20th
        for i, route in enumerate((OPENAI, ANTHROPIC)):
            blocked = post(deployment.gateway(i), route, f"kgw-guess-more-{i}", client=attacker)  # a further guess
            assert_rate_limited(blocked, route, "failed authentications")
            assert int(blocked.headers["retry-after"]) > 60  # a block, not the rest of a minute
        missing = attacker.post(deployment.gateway(0).url + OPENAI, json=BODIES[OPENAI], timeout=30)
        assert missing.status_code == 429  # no key at all is a guess too
        chats_before = len(fake.requests("chat"))
        # A valid key passes even from the blocked address (guessing blocks guessing only), and from elsewhere.
        for i, route in enumerate((OPENAI, ANTHROPIC)):
            assert post(deployment.gateway(i), route, API_KEY, client=attacker).status_code == 200
            assert post(deployment.gateway(i), route, API_KEY, client=owner).status_code == 200
        assert len(fake.requests("chat")) == chats_before + 4


def test_logs_name_keys_but_never_hold_a_key_hash_or_salt(deployment: Deployment) -> None:
    logs = "".join(gateway.logs() for gateway in deployment.gateways)
    stored = deployment.stored()
    secrets = [*deployment.keys.values(), API_KEY, stored["salt"], *(record["hash"] for record in stored["keys"])]
    for secret in secrets:
        assert secret not in logs and secret[:16] not in logs
    lines = [json.loads(line) for line in logs.splitlines() if line.startswith("{")]
    requests = [line for line in lines if line.get("logger") == "gateway.request"]
    assert {"fast", "narrow", "default"} <= {line.get("client_key") for line in requests}
    assert any(line.get("refused") == "rpm" and line.get("status") == 429 for line in requests)
    assert any(line.get("refused") == "concurrency" for line in requests)
    assert any("failed authentication" in line.get("message", "") for line in lines)


def test_behind_the_web_adapter_the_request_context_is_the_source(fake: FakeKiro,
                                                                   tmp_path_factory: pytest.TempPathFactory) -> None:
    """AWS_LWA_PORT set (as on Lambda): the adapter's request context names the caller, whatever else is sent."""
    home = tmp_path_factory.mktemp("home")
    env = gateway_env(fake, home, AWS_LWA_PORT="8000", AUTH_FAILURES_PER_MINUTE="3", AUTH_BLOCK_SECONDS="120")

    def headers(source: str, key: str) -> dict[str, str]:
        return {"x-api-key": key, "x-amzn-request-context": json.dumps({"http": {"sourceIp": source}}),
                "x-forwarded-for": "203.0.113.250"}

    with GatewayProcess(env, home) as gateway:
        for _ in range(3):
            response = httpx.get(gateway.url + "/v1/models", headers=headers("198.51.100.7", "wrong-key-guess"))
            assert response.status_code == 401
        blocked = httpx.post(gateway.url + ANTHROPIC, json=BODIES[ANTHROPIC],
                             headers=headers("198.51.100.7", "another-guess"))
        assert_rate_limited(blocked, ANTHROPIC, "failed authentications")
        assert 60 < int(blocked.headers["retry-after"]) <= 120
        assert httpx.post(gateway.url + ANTHROPIC, json=BODIES[ANTHROPIC],  # a valid key passes even from there
                          headers=headers("198.51.100.7", API_KEY)).status_code == 200
        # Same forwarded-for header, same peer (the adapter), another caller: unaffected.
        assert httpx.post(gateway.url + ANTHROPIC, json=BODIES[ANTHROPIC],
                          headers=headers("198.51.100.8", API_KEY)).status_code == 200


@pytest.mark.parametrize(("name", "budget"), [("thrifty", "dailyCredits"), ("monthly", "monthlyCredits")])
def test_a_credit_budget_trips_after_the_credits_the_fake_reports(deployment: Deployment, fake: FakeKiro,
                                                                  name: str, budget: str) -> None:
    key = deployment.keys[name]
    spend = 0.4 if name == "thrifty" else 0.2  # three answers: 1.2 of 1 credit, 0.6 of 0.5
    for i, route in enumerate((OPENAI, ANTHROPIC, OPENAI)):
        fake.enqueue_chat(text_stream("paid for", credits=spend))
        assert post(deployment.gateway(i), route, key).status_code == 200, f"answer {i + 1} is within the budget"
    before = len(fake.requests("chat"))
    assert_rate_limited(post(deployment.gateway(3), OPENAI, key), OPENAI, budget)
    assert_rate_limited(post(deployment.gateway(4), ANTHROPIC, key), ANTHROPIC, budget)
    assert len(fake.requests("chat")) == before  # refused before anything went upstream
    assert post(deployment.gateway(5), OPENAI, API_KEY).status_code == 200  # other keys are unaffected


def test_keys_list_shows_each_keys_requests_tokens_and_credits(deployment: Deployment, fake: FakeKiro) -> None:
    created = deployment.cli("create", "--name", "counted")
    assert created.returncode == 0, created.stderr
    key = created.stdout.strip().splitlines()[-1]
    time.sleep(deployment.cache_seconds + 0.5)  # the gateways learn new keys within their key cache interval
    for i, route in enumerate((OPENAI, ANTHROPIC)):
        fake.enqueue_chat(text_stream("counted", credits=0.3))
        assert post(deployment.gateway(i), route, key).status_code == 200
    listed = deployment.cli("list", "--json")
    assert listed.returncode == 0, listed.stderr
    row = next(row for row in json.loads(listed.stdout)["keys"] if row["name"] == "counted")
    assert row["usage"]["month"]["requests"] == 2 and row["usage"]["today"]["credits"] == pytest.approx(0.6)
    assert row["usage"]["month"]["inputTokens"] > 0 and row["usage"]["month"]["outputTokens"] > 0
    table = deployment.cli("list").stdout
    assert "CREDITS TODAY/MONTH" in table and key not in table
