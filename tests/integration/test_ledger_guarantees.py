"""Issue 17's findings 4, 5, 7 and 8 as a hostile or unlucky user meets them, against gateway processes.

* 10,000 client-chosen model names leave counting working (on moto): they are counted under one bucket;
* a named key's `/v1/usage` holds only its own figures; the owner's key sees every key;
* the state table unreachable: rpm, concurrency and the failed-auth throttle fail open, a budgeted key gets 503 with
  `Retry-After` (docs/client-keys.md "When the state table is down"), never an opaque 500;
* the rpm window: no 60-second span holds more than `rpm` admitted requests, across any edge.
"""

from __future__ import annotations

import asyncio
import socket
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from gateway.client_keys.dynamo_limiter import DynamoLimiter
from gateway.client_keys.limiter import MemoryLimiter
from gateway.usage.counters import OTHER_MODELS, RequestUsage, increments
from gateway.usage.dynamo_store import PREFIX, DynamoUsageStore
from gateway.usage.limits import UsageLimitsCache
from gateway.usage.service import UsageService
from tests.aws.awsutil import aws_environment, client, create_table
from tests.integration.conftest import API_KEY, gateway_env
from tests.support.fake_kiro import FakeKiro
from tests.support.gateway_process import GatewayProcess
from tests.support.keys_cli import make_cli

CHAT = "/v1/chat/completions"


@pytest.fixture
def moto(moto_endpoint: str, monkeypatch: pytest.MonkeyPatch) -> str:
    """moto with boto3 routed to it and its state cleared (as tests/aws's `aws` fixture)."""
    for name, value in aws_environment(moto_endpoint).items():
        monkeypatch.setenv(name, value)
    request = urllib.request.Request(f"{moto_endpoint}/moto-api/reset", method="POST", data=b"")
    urllib.request.urlopen(request, timeout=10).close()
    return moto_endpoint


def chat(gateway: GatewayProcess, key: str, model: str = "claude-sonnet-4.5") -> httpx.Response:
    return httpx.post(gateway.url + CHAT, json={"model": model, "messages": [{"role": "user", "content": "hi"}],
                                                "max_tokens": 20}, headers={"authorization": f"Bearer {key}"},
                      timeout=60)


@pytest.fixture
def keyed(fake: FakeKiro, tmp_path: Path) -> Iterator[tuple[GatewayProcess, dict[str, str]]]:
    """A local gateway with two named keys and the owner's key."""
    env = gateway_env(fake, tmp_path, KIRO_CLIENT_KEYS_FILE=str(tmp_path / "client-keys.json"))
    cli = make_cli({"KIRO_CLIENT_KEYS_FILE": env["KIRO_CLIENT_KEYS_FILE"]}, tmp_path, [])
    keys = {}
    for name in ("alice", "bob"):
        created = cli("create", "--name", name)
        assert created.returncode == 0, created.stderr
        keys[name] = created.stdout.strip().splitlines()[-1]
    with GatewayProcess(env, tmp_path) as gateway:
        yield gateway, keys


def test_a_named_key_sees_only_its_own_usage(keyed: tuple[GatewayProcess, dict[str, str]]) -> None:
    gateway, keys = keyed
    for name, count in (("alice", 2), ("bob", 1)):
        for _ in range(count):
            assert chat(gateway, keys[name]).status_code == 200
    assert chat(gateway, API_KEY).status_code == 200

    def usage(key: str) -> dict:
        response = httpx.get(gateway.url + "/v1/usage", headers={"authorization": f"Bearer {key}"}, timeout=30)
        assert response.status_code == 200, response.text
        return response.json()

    own = usage(keys["alice"])
    assert set(own["gateway"]["today"]["byKey"]) == {"alice"}
    assert set(own["gateway"]["month"]["byKey"]) == {"alice"}
    assert own["gateway"]["today"]["requests"] == 2  # its own total, not everyone's
    assert own["gateway"]["today"]["byModel"] == {}
    assert own.get("key") == "alice" and "bob" not in str(own)
    everything = usage(API_KEY)
    assert {"alice", "bob", "default"} <= set(everything["gateway"]["today"]["byKey"])
    assert everything["gateway"]["today"]["requests"] == 4


def test_unknown_model_names_are_counted_under_one_bucket(keyed: tuple[GatewayProcess, dict[str, str]]) -> None:
    gateway, _ = keyed
    for i in range(3):
        assert chat(gateway, API_KEY, model=f"made-up-model-{i}").status_code == 200
    report = httpx.get(gateway.url + "/v1/usage", headers={"authorization": f"Bearer {API_KEY}"}, timeout=30).json()
    models = report["gateway"]["today"]["byModel"]
    assert not any(name.startswith("made-up-model") for name in models)
    assert models[OTHER_MODELS]["requests"] == 3


def test_ten_thousand_model_names_leave_counting_working(moto: str) -> None:
    """On moto: the day's item stays small whatever names clients send, and a request counted after them still
    moves the figures (before: ~3,400 names made the item exceed 400 KB and every later count failed)."""
    from gateway.edge.serving import _counted_model
    from kiro_core.models_catalog import ModelCatalog

    table = create_table()
    service = UsageService(DynamoUsageStore(table), UsageLimitsCache(None, 60), 30)

    class Runtime:
        class models:  # stands in for GatewayRuntime.models
            @staticmethod
            async def catalog() -> ModelCatalog:
                return ModelCatalog(None)

    async def scenario() -> None:
        names = [f"client-chosen-{i:05d}-" + "x" * 40 for i in range(10_000)]
        usages = [RequestUsage(model=await _counted_model(Runtime, name), key_name="default", credits=0.001,
                               input_tokens=1, output_tokens=1, ttft_ms=10.0, error_kind=None, at=1_800_000_000.0)
                  for name in names]
        # What 10,000 requests ADD to the day's item, summed here (moto takes ~10 ms a write): the same counter
        # names, so the same item, as 10,000 separate writes would leave.
        total: dict[str, float] = {}
        for usage in usages:
            for name, value in increments(usage)[0].items():
                total[name] = total.get(name, 0.0) + value
        assert len(total) < 30, sorted(total)[:40]
        await service.store.add("2027-01-15", total, {}, 1_900_000_000)
        await service.record(RequestUsage(model=await _counted_model(Runtime, "claude-sonnet-4.5"),
                                          key_name="default", credits=1.0, input_tokens=1, output_tokens=1,
                                          ttft_ms=10.0, error_kind=None, at=1_800_000_000.0))

    asyncio.run(scenario())
    item = client("dynamodb").get_item(TableName=table, Key={"pk": {"S": PREFIX + "2027-01-15"}})["Item"]
    assert len(item) < 60  # a few dozen counters, not one per name
    assert float(item["c:requests"]["N"]) == 10_001
    assert float(item[f"c:model|{OTHER_MODELS}|requests"]["N"]) == 10_000
    assert float(item["c:model|claude-sonnet-4.5|requests"]["N"]) == 1
    assert abs(float(item["c:credits"]["N"]) - 11.0) < 1e-6


def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def test_the_state_table_down_gives_the_documented_behaviour(fake: FakeKiro, tmp_path: Path, moto: str) -> None:
    env = gateway_env(fake, tmp_path, KIRO_CLIENT_KEYS_FILE=str(tmp_path / "client-keys.json"),
                      KIRO_STATE_TABLE="kiro-state-unreachable", AUTH_FAILURES_PER_MINUTE="3")
    env.update(aws_environment(moto), AWS_ENDPOINT_URL_DYNAMODB=f"http://127.0.0.1:{closed_port()}",
               AWS_MAX_ATTEMPTS="1")
    cli = make_cli({"KIRO_CLIENT_KEYS_FILE": env["KIRO_CLIENT_KEYS_FILE"]}, tmp_path, [])
    keys = {}
    for name, limits in (("tight", ["--rpm", "1", "--concurrency", "1"]), ("budgeted", ["--daily-credits", "5"])):
        created = cli("create", "--name", name, *limits)
        assert created.returncode == 0, created.stderr
        keys[name] = created.stdout.strip().splitlines()[-1]
    with GatewayProcess(env, tmp_path) as gateway:
        # rpm and concurrency fail open (logged, metric): three requests of an rpm-1 key pass.
        assert [chat(gateway, keys["tight"]).status_code for _ in range(3)] == [200, 200, 200]
        # The failed-auth throttle fails open: guesses stay 401s, never a block, never a 500.
        assert {chat(gateway, "guess-key-000").status_code for _ in range(5)} == {401}
        # Budgets fail closed: 503 with Retry-After in the client's shape, nothing sent upstream.
        before = len(fake.requests("generateAssistantResponse"))
        refused = chat(gateway, keys["budgeted"])
        assert refused.status_code == 503, refused.text
        assert int(refused.headers["retry-after"]) >= 1
        assert "budget" in refused.json()["error"]["message"]
        assert len(fake.requests("generateAssistantResponse")) == before
        # The owner's key is unaffected (its usage write fails quietly).
        assert chat(gateway, API_KEY).status_code == 200
        logs = gateway.logs()
    assert "unavailable" in logs and "Traceback" not in logs


@pytest.mark.parametrize("kind", ["memory", "dynamo"])
def test_the_rpm_window_never_admits_more_than_rpm_in_any_minute(kind: str, request: pytest.FixtureRequest) -> None:
    """Five requests at the end of a minute, then a burst just after: the sliding log admits none of the burst
    until the first five are 60 s old (the fixed window let 9 of a limit of 5 through within 0.1 s)."""

    class Clock:
        now = 1_800_000_000.0

        def __call__(self) -> float:
            return self.now

    clock = Clock()
    if kind == "dynamo":
        request.getfixturevalue("moto")
        limiter = DynamoLimiter(create_table(), clock=clock)
    else:
        limiter = MemoryLimiter(clock=clock, wall=clock)

    async def scenario() -> list[bool]:
        admitted = []
        for _ in range(5):
            admitted.append((await limiter.admit_key("k", 5, None, 60)).refused is None)
            clock.now += 0.01
        clock.now += 59.9  # just past where a fixed window opened by the first would end
        admitted += [(await limiter.admit_key("k", 5, None, 60)).refused is None for _ in range(4)]
        clock.now += 0.2  # now every one of the first five is over 60 s old
        last = await limiter.admit_key("k", 5, None, 60)
        admitted.append(last.refused is None)
        assert last.rate is not None and last.rate.limit == 5 and last.rate.remaining == 4
        return admitted

    assert asyncio.run(scenario()) == [True] * 5 + [False] * 4 + [True]
