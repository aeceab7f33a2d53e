"""The DynamoDB limiter and the secret's key ring on moto: counts shared by two "instances", exact limits under
concurrency, slots of crashed holders coming back, and `keys` edits that never drop a rotated refresh token."""

from __future__ import annotations

import asyncio
import json
from datetime import UTC, datetime
from typing import Any

from gateway.client_keys.dynamo_limiter import DynamoLimiter
from gateway.client_keys.editing import edit_secret, read_secret
from gateway.client_keys.records import KeyLimits
from gateway.client_keys.sources import KeyRegistry, SecretKeySource
from tests.aws.awsutil import client, create_secret, create_table
from tests.aws.awsutil import read_secret as read_document


class Clock:
    def __init__(self) -> None:
        self.now = 1_800_000_000.0

    def __call__(self) -> float:
        return self.now


def test_windows_are_shared_and_exact(aws: str) -> None:
    table = create_table()
    clock = Clock()
    one, two = DynamoLimiter(table, clock=clock), DynamoLimiter(table, clock=clock)

    async def scenario() -> None:
        counts = [(await (one if i % 2 else two).hit("ckrate#a", 3, 60)) for i in range(3)]
        assert [v.count for v in counts] == [1, 2, 3] and all(v.allowed for v in counts)
        clock.now += 20
        refused = await one.hit("ckrate#a", 3, 60)
        assert not refused.allowed and 39 <= refused.retry_after <= 41
        assert (await two.hit("ckrate#b", 3, 60)).allowed  # another key has its own window
        clock.now += 41
        assert (await two.hit("ckrate#a", 3, 60)).count == 1  # the next window, opened by this event

    asyncio.run(scenario())


def test_simultaneous_hits_never_exceed_the_limit(aws: str) -> None:
    table = create_table()
    instances = [DynamoLimiter(table) for _ in range(2)]

    async def scenario() -> list[bool]:
        verdicts = await asyncio.gather(*(instances[i % 2].hit("ckrate#busy", 5, 60) for i in range(12)))
        return [v.allowed for v in verdicts]

    assert sum(asyncio.run(scenario())) == 5


def test_hold_blocks_the_source_on_every_instance(aws: str) -> None:
    table = create_table()
    clock = Clock()
    one, two = DynamoLimiter(table, clock=clock), DynamoLimiter(table, clock=clock)

    async def scenario() -> None:
        for i in range(4):
            await (one, two)[i % 2].hit("authfail#192.0.2.1", 5, 60, hold=300)
        assert await two.wait_for("authfail#192.0.2.1", 5) == 0
        await one.hit("authfail#192.0.2.1", 5, 60, hold=300)
        assert 299 <= await two.wait_for("authfail#192.0.2.1", 5) <= 301
        assert await two.wait_for("authfail#192.0.2.2", 5) == 0
        clock.now += 302
        assert await one.wait_for("authfail#192.0.2.1", 5) == 0

    asyncio.run(scenario())


def test_slots_are_exact_under_contention_and_leases_expire(aws: str) -> None:
    table = create_table()
    clock = Clock()
    instances = [DynamoLimiter(table, clock=clock) for _ in range(2)]

    async def scenario() -> None:
        tokens = await asyncio.gather(*(instances[i % 2].acquire("ckslots#a", 3, 900) for i in range(8)))
        taken = [token for token in tokens if token]
        assert len(taken) == 3 and None in tokens
        await instances[1].release("ckslots#a", taken[0])
        assert await instances[0].acquire("ckslots#a", 3, 900)
        assert await instances[1].acquire("ckslots#a", 3, 900) is None
        clock.now += 901  # every holder crashed without releasing: the leases give the slots back
        assert all([await instances[0].acquire("ckslots#a", 3, 900) for _ in range(3)])

    asyncio.run(scenario())


def test_an_unavailable_table_lets_requests_through(aws: str) -> None:
    limiter = DynamoLimiter("no-such-table")

    async def scenario() -> None:
        assert (await limiter.hit("ckrate#a", 1, 60)).allowed
        assert await limiter.wait_for("authfail#192.0.2.1", 1) == 0
        assert await limiter.acquire("ckslots#a", 1, 60) == ""
        await limiter.release("ckslots#a", "")

    asyncio.run(scenario())


class RacingClient:
    """The real (moto) Secrets Manager client, with one competing write (the gateway rotating its refresh token)
    landing between the CLI's read and its first write."""

    def __init__(self, real: Any, rotated_token: str) -> None:
        self.real = real
        self.rotated_token = rotated_token
        self.raced = False

    def get_secret_value(self, **kwargs: Any) -> Any:
        return self.real.get_secret_value(**kwargs)

    def put_secret_value(self, **kwargs: Any) -> Any:
        if not self.raced:
            self.raced = True
            document = json.loads(self.real.get_secret_value(SecretId=kwargs["SecretId"])["SecretString"])
            document["refreshToken"] = self.rotated_token
            self.real.put_secret_value(SecretId=kwargs["SecretId"], SecretString=json.dumps(document))
        return self.real.put_secret_value(**kwargs)


def test_a_key_edit_never_drops_a_token_rotated_meanwhile(aws: str) -> None:
    secret = create_secret({"refreshToken": "old-refresh-token", "proxyApiKey": "p" * 40})
    racing = RacingClient(client("secretsmanager"), "rotated-refresh-token")
    now = datetime.now(UTC)

    ring = edit_secret(racing, secret, lambda current: current.create("laptop", KeyLimits(rpm=2), None, now)[0])

    assert racing.raced
    stored = read_document(secret)
    assert stored["refreshToken"] == "rotated-refresh-token"
    assert stored["proxyApiKey"] == "p" * 40
    assert stored["clientKeys"]["keys"][0]["name"] == "laptop" and ring.named("laptop") is not None
    assert read_secret(client("secretsmanager"), secret)[0] == ring


def test_the_gateway_reads_the_ring_from_the_secret(aws: str) -> None:
    secret = create_secret({"refreshToken": "r"})
    key_holder: list[str] = []

    def add(current: Any) -> Any:
        ring, key = current.create("ci", KeyLimits(concurrency=1), None, datetime.now(UTC))
        key_holder.append(key)
        return ring

    edit_secret(client("secretsmanager"), secret, add)
    registry = KeyRegistry(SecretKeySource(secret), max_age=30)
    ring = asyncio.run(registry.ring())
    assert ring is not None and ring.find(key_holder[-1]).name == "ci"
