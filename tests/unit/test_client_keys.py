"""Client key records, the in-memory limiter and the source address rules (gateway.client_keys)."""

from __future__ import annotations

import asyncio
import hashlib
import json
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from gateway.client_keys.limiter import MemoryLimiter
from gateway.client_keys.records import KeyLimits, KeyRecordError, KeyRing, parse_time
from gateway.client_keys.source_address import parse_trusted, source_address
from gateway.settings import ConfigError, Settings

NOW = datetime(2026, 6, 1, 12, 0, tzinfo=UTC)


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


# -- records -----------------------------------------------------------------------------------------------------


def test_a_key_finds_its_record_and_nothing_else_does() -> None:
    ring, first = KeyRing.new().create("laptop", KeyLimits(rpm=5), None, NOW)
    ring, second = ring.create("ci", KeyLimits(concurrency=1, daily_credits=2.5), NOW + timedelta(days=1), NOW)
    assert ring.find(first).name == "laptop" and ring.find(second).name == "ci"
    assert ring.find(first[:-1]) is None and ring.find("") is None and ring.find(first + "x") is None
    record = ring.named("laptop")
    assert record.hash != hashlib.sha256(first.encode()).hexdigest()  # keyed: not the plain digest
    assert record.fingerprint == hashlib.sha256(first.encode()).hexdigest()[:8]
    # Another salt (another deployment) gives another hash for the same key.
    assert KeyRing.new().digest(first) != record.hash


def test_the_document_round_trips_and_holds_no_key() -> None:
    ring, key = KeyRing.new().create("laptop", KeyLimits(rpm=5, concurrency=2, daily_credits=1.5,
                                                         monthly_credits=30), parse_time("2030-01-01"), NOW)
    document = ring.to_document()
    assert key not in json.dumps(document)
    assert document["keys"][0]["limits"] == {"rpm": 5, "concurrency": 2, "dailyCredits": 1.5, "monthlyCredits": 30}
    assert document["keys"][0]["expiresAt"] == "2030-01-01T00:00:00Z"
    again = KeyRing.from_document(json.loads(json.dumps(document)))
    assert again == ring and again.find(key).limits.monthly_credits == 30


def test_states_revoked_and_expired() -> None:
    ring, _ = KeyRing.new().create("a", KeyLimits(), NOW + timedelta(hours=1), NOW)
    assert ring.named("a").state(NOW) == "active"
    assert ring.named("a").state(NOW + timedelta(hours=2)) == "expired"
    assert ring.changed("a", enabled=False).named("a").state(NOW) == "revoked"


@pytest.mark.parametrize("name", ["", "default", "-x", "a b", "x" * 65, "ключ"])
def test_bad_names_are_refused(name: str) -> None:
    with pytest.raises(KeyRecordError):
        KeyRing.new().create(name, KeyLimits(), None, NOW)


def test_duplicate_names_past_expiry_and_bad_limits_are_refused() -> None:
    ring, _ = KeyRing.new().create("a", KeyLimits(), None, NOW)
    with pytest.raises(KeyRecordError, match="already exists"):
        ring.create("a", KeyLimits(), None, NOW)
    with pytest.raises(KeyRecordError, match="past"):
        ring.create("b", KeyLimits(), NOW - timedelta(seconds=1), NOW)
    for bad in ({"rpm": 0}, {"concurrency": -1}, {"rpm": 1.5}, {"daily_credits": 0}, {"rpm": True}):
        with pytest.raises(KeyRecordError):
            KeyLimits(**bad)


@pytest.mark.parametrize("document", [
    [], {"salt": "zz", "keys": []}, {"salt": "ab" * 32, "keys": {}},
    {"salt": "ab" * 32, "keys": [{"name": "a", "hash": "nothex"}]},
    {"salt": "ab" * 32, "keys": [{"name": "a", "hash": "0" * 64}, {"name": "a", "hash": "1" * 64}]},
    {"salt": "ab" * 32, "keys": [{"name": "a", "hash": "0" * 64, "limits": {"rpm": "ten"}}]},
])
def test_malformed_documents_are_refused(document: Any) -> None:
    with pytest.raises(KeyRecordError):
        KeyRing.from_document(document)


def test_times_are_iso_8601_in_utc() -> None:
    assert parse_time("2026-12-31") == datetime(2026, 12, 31, tzinfo=UTC)
    assert parse_time("2026-12-31T18:00:00+02:00") == datetime(2026, 12, 31, 16, tzinfo=UTC)
    assert parse_time("2026-12-31T18:00:00Z") == datetime(2026, 12, 31, 18, tzinfo=UTC)
    with pytest.raises(KeyRecordError):
        parse_time("next week")


# -- memory limiter ----------------------------------------------------------------------------------------------


def test_a_window_allows_exactly_its_limit_from_its_first_event() -> None:
    asyncio.run(_a_window_allows_exactly_its_limit_from_its_first_event())


async def _a_window_allows_exactly_its_limit_from_its_first_event() -> None:
    clock = Clock()
    limiter = MemoryLimiter(clock)
    for expected in (1, 2, 3):
        verdict = await limiter.hit("k", 3, 60)
        assert verdict.allowed and verdict.count == expected
        clock.now += 10
    refused = await limiter.hit("k", 3, 60)
    assert not refused.allowed and refused.retry_after == pytest.approx(30)
    assert await limiter.wait_for("k", 3) == pytest.approx(30)
    assert (await limiter.hit("other", 3, 60)).allowed
    clock.now += 30
    assert (await limiter.hit("k", 3, 60)).count == 1  # a new window opened by this event


def test_hold_stretches_the_window_that_fills_up() -> None:
    asyncio.run(_hold_stretches_the_window_that_fills_up())


async def _hold_stretches_the_window_that_fills_up() -> None:
    clock = Clock()
    limiter = MemoryLimiter(clock)
    for _ in range(2):
        await limiter.hit("a", 3, 60, hold=300)
    assert await limiter.wait_for("a", 3) == 0
    await limiter.hit("a", 3, 60, hold=300)
    assert await limiter.wait_for("a", 3) == pytest.approx(300)
    clock.now += 299
    assert await limiter.wait_for("a", 3) == pytest.approx(1)
    clock.now += 1
    assert await limiter.wait_for("a", 3) == 0


def test_slots_are_leased_and_released() -> None:
    asyncio.run(_slots_are_leased_and_released())


async def _slots_are_leased_and_released() -> None:
    clock = Clock()
    limiter = MemoryLimiter(clock)
    first = await limiter.acquire("s", 2, lease=100)
    second = await limiter.acquire("s", 2, lease=100)
    assert first and second and first != second
    assert await limiter.acquire("s", 2, lease=100) is None
    await limiter.release("s", first)
    third = await limiter.acquire("s", 2, lease=100)
    assert third is not None and await limiter.acquire("s", 2, lease=100) is None
    clock.now += 101  # the holders crashed: their leases run out
    assert await limiter.acquire("s", 2, lease=100) is not None
    await limiter.release("s", "unknown-token")  # ignored


# -- source address ----------------------------------------------------------------------------------------------


def scope(peer: str | None, **headers: str) -> dict[str, Any]:
    return {"type": "http", "client": (peer, 1234) if peer else None,
            "headers": [(name.replace("_", "-").encode(), value.encode()) for name, value in headers.items()]}


def test_the_peer_is_the_source_unless_a_proxy_is_trusted() -> None:
    assert source_address(scope("203.0.113.9", x_forwarded_for="198.51.100.1")) == "203.0.113.9"
    assert source_address(scope(None)) == "unknown"
    trusted = parse_trusted("10.0.0.1, 10.0.0.2")
    forwarded = "1.1.1.1, 198.51.100.7, 10.0.0.2"  # client-written entry, the real client, a second proxy
    assert source_address(scope("10.0.0.1", x_forwarded_for=forwarded), trusted) == "198.51.100.7"
    assert source_address(scope("10.0.0.9", x_forwarded_for=forwarded), trusted) == "10.0.0.9"
    assert source_address(scope("10.0.0.1"), trusted) == "10.0.0.1"
    assert source_address(scope("10.0.0.7", x_forwarded_for="1.1.1.1, 198.51.100.7"), parse_trusted("*")) == \
        "198.51.100.7"


def test_behind_the_web_adapter_the_request_context_names_the_caller() -> None:
    function_url = json.dumps({"http": {"sourceIp": "198.51.100.20"}})
    rest_api = json.dumps({"identity": {"sourceIp": "198.51.100.21"}})
    assert source_address(scope("127.0.0.1", x_amzn_request_context=function_url, x_forwarded_for="9.9.9.9"),
                          behind_web_adapter=True) == "198.51.100.20"
    assert source_address(scope("127.0.0.1", x_amzn_request_context=rest_api), behind_web_adapter=True) == \
        "198.51.100.21"
    assert source_address(scope("127.0.0.1", x_forwarded_for="9.9.9.9, 198.51.100.22"),
                          behind_web_adapter=True) == "198.51.100.22"
    # Only the adapter (loopback) is believed; a direct peer's headers are not.
    assert source_address(scope("203.0.113.5", x_amzn_request_context=function_url), behind_web_adapter=True) == \
        "203.0.113.5"


def test_ipv6_sources_count_by_their_64() -> None:
    assert source_address(scope("2001:db8:1:2::5")) == source_address(scope("2001:db8:1:2:ffff::9")) == \
        "2001:db8:1:2::/64"
    assert source_address(scope("::ffff:192.0.2.1")) == "192.0.2.1"


@pytest.mark.parametrize("env", [{"AUTH_FAILURES_PER_MINUTE": "21"}, {"AUTH_FAILURES_PER_MINUTE": "0"},
                                 {"CLIENT_KEYS_CACHE_SECONDS": "61"}, {"TRUSTED_PROXY_IPS": "10.0.0.1, proxy"},
                                 {"AUTH_BLOCK_SECONDS": "0"}])
def test_limit_settings_are_checked(env: dict[str, str]) -> None:
    with pytest.raises(ConfigError, match=next(iter(env))):
        Settings.from_env(env, dotenv=None)


def test_the_key_file_defaults_to_home_except_on_aws(tmp_path: Any) -> None:
    assert str(Settings.from_env({}, dotenv=None).client_keys_path).endswith(".kiro-gateway/client-keys.json")
    assert Settings.from_env({"KIRO_SECRET_ID": "s"}, dotenv=None).client_keys_path is None
    explicit = Settings.from_env({"KIRO_SECRET_ID": "s", "KIRO_CLIENT_KEYS_FILE": str(tmp_path / "k.json")},
                                 dotenv=None)
    assert explicit.client_keys_path == tmp_path / "k.json"
