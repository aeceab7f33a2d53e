"""What tools beside the gateway read about a client key (issue 20): the rate-limit headers of both conventions on the
three chat routes, and LiteLLM's `/key/info` and `/user/info` for the calling key.

Runs with the local stores (key file, counts in memory) and with the AWS stores on moto (keys in the secret, counts
in the DynamoDB table, two gateway processes: requests alternate between them, so the figures come from the shared
counter, not from one process's memory).
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.aws.awsutil import aws_environment
from tests.integration.conftest import API_KEY, aws_backed, gateway_env
from tests.support.fake_kiro import FakeKiro
from tests.support.fake_kiro_scripts import text_stream
from tests.support.gateway_process import GatewayProcess
from tests.support.keys_cli import make_cli

ROUTES = {
    "/v1/chat/completions": {"model": "claude-sonnet-4.5", "messages": [{"role": "user", "content": "hi"}]},
    "/v1/messages": {"model": "claude-sonnet-4.5", "max_tokens": 64, "messages": [{"role": "user", "content": "hi"}]},
    "/v1/responses": {"model": "claude-sonnet-4.5", "input": "hi"},
}
RPM = 5  # the test spends all of it: one request per route, then two more


@dataclass
class Deployment:
    gateways: list[GatewayProcess]
    keys: dict[str, str]

    def gateway(self, i: int) -> GatewayProcess:
        return self.gateways[i % len(self.gateways)]


def create_key(env: dict[str, str], home: Path, where: list[str], name: str, *limits: str) -> str:
    result = make_cli(env, home, where)("create", "--name", name, *limits)
    assert result.returncode == 0, result.stderr
    return result.stdout.strip().splitlines()[-1]


@pytest.fixture(scope="module", params=["local-stores", "aws-stores"])
def deployment(request: pytest.FixtureRequest, fake: FakeKiro,
               tmp_path_factory: pytest.TempPathFactory) -> Iterator[Deployment]:
    home = tmp_path_factory.mktemp("home")
    env = gateway_env(fake, home)
    if request.param == "aws-stores":
        env = aws_backed(env, request.getfixturevalue("moto_endpoint"))
        env["CLIENT_KEYS_CACHE_SECONDS"] = "1"
        cli_env = {**aws_environment(request.getfixturevalue("moto_endpoint")),
                   "KIRO_STATE_TABLE": env["KIRO_STATE_TABLE"]}
        where, processes = ["--secret-id", env["KIRO_SECRET_ID"]], 2
    else:
        env["KIRO_CLIENT_KEYS_FILE"] = str(home / "client-keys.json")
        cli_env, where, processes = {"KIRO_CLIENT_KEYS_FILE": env["KIRO_CLIENT_KEYS_FILE"]}, [], 1
    keys = {name: create_key(cli_env, home, where, name, *limits) for name, limits in (
        ("metered", ["--rpm", str(RPM)]), ("budgeted", ["--monthly-credits", "10", "--daily-credits", "3"]),
        ("daily", ["--daily-credits", "2"]))}
    gateways = [GatewayProcess(dict(env), home).start() for _ in range(processes)]
    try:
        yield Deployment(gateways, keys)
    finally:
        for process in gateways:
            process.stop()


def post(gateway: GatewayProcess, route: str, key: str, stream: bool = False) -> httpx.Response:
    body = {**ROUTES[route], "stream": stream}
    if stream:
        with httpx.stream("POST", gateway.url + route, json=body, headers={"authorization": f"Bearer {key}"},
                          timeout=60) as response:
            response.read()
            return response
    return httpx.post(gateway.url + route, json=body, headers={"x-api-key": key}, timeout=60)


def rfc3339(value: str) -> float:
    return datetime.fromisoformat(value.replace("Z", "+00:00")).timestamp()


def seconds(duration: str) -> int:
    """OpenAI's duration form (`42s`, `1m0s`)."""
    minutes, _, rest = duration.rpartition("m")
    assert rest.endswith("s"), duration
    return int(minutes or 0) * 60 + int(rest[:-1])


def test_both_rate_limit_conventions_count_down_with_requests_and_reset_in_the_future(
        deployment: Deployment) -> None:
    key = deployment.keys["metered"]
    seen: list[int] = []
    routes = [*ROUTES, "/v1/chat/completions", "/v1/messages"]
    for i, route in enumerate(routes):
        response = post(deployment.gateway(i), route, key, stream=i == 3)
        assert response.status_code == 200, response.text
        headers = response.headers
        now = time.time()
        assert headers["x-ratelimit-limit-requests"] == str(RPM)
        assert headers["anthropic-ratelimit-requests-limit"] == str(RPM)
        remaining = int(headers["x-ratelimit-remaining-requests"])
        assert headers["anthropic-ratelimit-requests-remaining"] == str(remaining)
        assert 0 < seconds(headers["x-ratelimit-reset-requests"]) <= 61
        reset = rfc3339(headers["anthropic-ratelimit-requests-reset"])
        assert now < reset <= now + 62, headers["anthropic-ratelimit-requests-reset"]
        assert "-tokens" not in " ".join(headers.keys())  # no token limit, so no invented token figures
        seen.append(remaining)
    assert seen == [RPM - n for n in range(1, len(routes) + 1)]
    refused = post(deployment.gateway(len(routes)), "/v1/messages", key)
    assert refused.status_code == 429
    assert refused.headers["anthropic-ratelimit-requests-remaining"] == "0"
    assert refused.headers["x-ratelimit-remaining-requests"] == "0"
    assert rfc3339(refused.headers["anthropic-ratelimit-requests-reset"]) > time.time()


def test_keys_without_an_rpm_limit_and_other_routes_get_no_rate_limit_headers(deployment: Deployment) -> None:
    for key in (API_KEY, deployment.keys["budgeted"]):
        response = post(deployment.gateway(0), "/v1/messages", key)
        assert response.status_code == 200
        assert not [name for name in response.headers if "ratelimit" in name]
    models = httpx.get(deployment.gateway(0).url + "/v1/models", headers={"x-api-key": deployment.keys["metered"]})
    assert models.status_code == 200 and "x-ratelimit-limit-requests" not in models.headers


def info(gateway: GatewayProcess, key: str, path: str = "/key/info") -> httpx.Response:
    return httpx.get(gateway.url + path, headers={"authorization": f"Bearer {key}"}, timeout=30)


def eventually_spent(gateway: GatewayProcess, key: str, expected: float) -> dict[str, Any]:
    deadline = time.monotonic() + 15
    while True:
        body = info(gateway, key).json()
        if body["info"]["spend"] == pytest.approx(expected) or time.monotonic() > deadline:
            return body
        time.sleep(0.2)


def test_key_info_of_a_named_key_shows_its_own_spend_budget_and_reset(deployment: Deployment,
                                                                       fake: FakeKiro) -> None:
    key = deployment.keys["budgeted"]
    before = info(deployment.gateway(0), key).json()["info"]["spend"]
    fake.enqueue_chat(text_stream("paid", credits=0.75))
    assert post(deployment.gateway(1), "/v1/chat/completions", key).status_code == 200
    body = eventually_spent(deployment.gateway(0), key, before + 0.75)
    assert body["key"] and body["key"] not in key  # a fingerprint, never the key
    figures = body["info"]
    assert figures["spend"] == pytest.approx(before + 0.75)
    assert figures["key_alias"] == figures["user_id"] == "budgeted"
    assert figures["max_budget"] == 10 and figures["budget_duration"] == "1mo"
    reset = rfc3339(figures["budget_reset_at"])
    assert time.time() < reset <= time.time() + 32 * 86400 and datetime.fromtimestamp(reset, UTC).day == 1
    assert figures["metadata"]["spend_unit"] == "Kiro credits" and figures["metadata"]["daily_budget"] == 3
    assert figures["rpm_limit"] is None and figures["team_id"] is None
    # /user/info, as CodexBar reads it next: the same figures, for this key's own user_id only.
    user = info(deployment.gateway(1), key, "/user/info?user_id=budgeted").json()
    assert user["user_id"] == "budgeted" and user["user_info"]["spend"] == pytest.approx(figures["spend"])
    assert user["user_info"]["max_budget"] == 10 and user["user_info"]["budget_reset_at"] == figures["budget_reset_at"]
    assert info(deployment.gateway(0), key, "/user/info?user_id=metered").status_code == 403
    assert info(deployment.gateway(0), key, f"/key/info?key={deployment.keys['metered']}").status_code == 403


def test_key_info_of_a_daily_budget_resets_tomorrow_and_of_the_owner_key_has_no_budget(
        deployment: Deployment, fake: FakeKiro) -> None:
    daily = info(deployment.gateway(0), deployment.keys["daily"]).json()["info"]
    assert daily["max_budget"] == 2 and daily["budget_duration"] == "1d"
    assert 0 < rfc3339(daily["budget_reset_at"]) - time.time() <= 86400
    before = info(deployment.gateway(0), API_KEY).json()["info"]["spend"]
    fake.enqueue_chat(text_stream("owner", credits=0.5))
    assert post(deployment.gateway(1), "/v1/messages", API_KEY).status_code == 200
    owner = eventually_spent(deployment.gateway(0), API_KEY, before + 0.5)["info"]
    assert owner["key_alias"] == "default" and owner["metadata"]["owner_key"] is True
    assert owner["spend"] == pytest.approx(before + 0.5)
    assert owner["max_budget"] is None and owner["budget_reset_at"] is None
    assert info(deployment.gateway(0), "wrong-key").status_code == 401
