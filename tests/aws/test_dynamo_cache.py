"""DynamoModelCache against moto in server mode: round trip, expiry checked in code, graceful degradation."""

from __future__ import annotations

import asyncio
import logging
import socket

import pytest

from gateway.stores.dynamo_models import MODELS_KEY, DynamoModelCache
from tests.aws.awsutil import client, create_table

MODELS = [
    {"modelId": "claude-sonnet-4.5", "modelName": "Claude Sonnet 4.5", "tokenLimits": {"maxInputTokens": 200000}},
    {"modelId": "auto", "modelName": "Auto"},
]


def test_put_then_get_round_trips(aws):
    cache = DynamoModelCache(create_table())

    async def scenario() -> list | None:
        assert await cache.get() is None  # nothing cached yet
        await cache.put(MODELS, 3600)
        return await cache.get()

    assert asyncio.run(scenario()) == MODELS


def test_a_second_instance_sees_the_cached_list(aws):
    table = create_table()
    asyncio.run(DynamoModelCache(table).put(MODELS, 3600))
    assert asyncio.run(DynamoModelCache(table).get()) == MODELS


def test_expiry_is_checked_in_code(aws):
    table = create_table()
    now = [1_000_000.0]
    cache = DynamoModelCache(table, clock=lambda: now[0])
    asyncio.run(cache.put(MODELS, 60))

    now[0] += 59
    assert asyncio.run(cache.get()) == MODELS
    now[0] += 2
    assert asyncio.run(cache.get()) is None
    # The item is still there (moto, like DynamoDB's lazy TTL, does not delete it): only the code check expired it.
    item = client("dynamodb").get_item(TableName=table, Key={"pk": {"S": MODELS_KEY}}).get("Item")
    assert item is not None and int(item["expires_at"]["N"]) == 1_000_060


def test_missing_table_degrades_to_no_cache(aws, caplog):
    cache = DynamoModelCache("no-such-table")
    with caplog.at_level(logging.WARNING, logger="gateway.stores.dynamo_models"):
        assert asyncio.run(cache.get()) is None
        asyncio.run(cache.put(MODELS, 3600))  # must not raise
    messages = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert any("model cache unavailable" in m and "ResourceNotFoundException" in m for m in messages)
    assert any("could not cache the model list" in m for m in messages)


def _closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def test_unreachable_endpoint_degrades_to_no_cache(aws, monkeypatch, caplog):
    monkeypatch.setenv("AWS_ENDPOINT_URL", f"http://127.0.0.1:{_closed_port()}")
    cache = DynamoModelCache("kiro-state")
    with caplog.at_level(logging.WARNING, logger="gateway.stores.dynamo_models"):
        assert asyncio.run(cache.get()) is None
        asyncio.run(cache.put(MODELS, 3600))
    messages = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert any("EndpointConnectionError" in m for m in messages), messages


@pytest.mark.parametrize("raw", ['{"not": "a list"}', "not json"])
def test_malformed_item_is_ignored(aws, raw):
    table = create_table()
    client("dynamodb").put_item(
        TableName=table,
        Item={"pk": {"S": MODELS_KEY}, "models": {"S": raw}, "expires_at": {"N": "99999999999"}},
    )
    assert asyncio.run(DynamoModelCache(table).get()) is None
