"""The model lists cached in the DynamoDB state table, shared by every Lambda instance (one item per account)."""

from __future__ import annotations

import asyncio
import json
import logging
import time
from typing import Any

from gateway.stores.aws_clients import Clock, LazyClient, aws_errors, client_config, short_error
from gateway.stores.state_prefetch import PRIME_SECONDS

log = logging.getLogger(__name__)

MODELS_KEY = "models"


def item_key(account: str) -> str:
    """`models#<account key>` (just `models` without one): each account's catalogue is its own item."""
    return f"{MODELS_KEY}#{account}" if account else MODELS_KEY


class DynamoModelCache:
    """ModelCache in the state table (items `models#<account>`). Best effort: any AWS failure means "no cache",
    with a warning.

    TTL deletion in DynamoDB is lazy (days), so `expires_at` is checked here on every read.
    """

    def __init__(self, table_name: str, *, dynamodb: Any = None, clock: Clock = time.time) -> None:
        self.table_name = table_name
        self._clock = clock
        self._dynamodb = LazyClient("dynamodb", None, client_config(2, 5, 2), dynamodb)
        self._primed: dict[str, tuple[float, dict[str, Any] | None]] = {}

    def prime(self, account: str, item: dict[str, Any] | None) -> None:
        """The item as `gateway.stores.state_prefetch` just read it: the next `get` of `account` uses it."""
        self._primed[item_key(account)] = (self._clock(), item)

    async def get(self, account: str = "") -> list[dict[str, Any]] | None:
        primed = self._primed.pop(item_key(account), None)
        if primed is not None and self._clock() - primed[0] < PRIME_SECONDS:
            item = primed[1]
        else:
            try:
                answer = await asyncio.to_thread(
                    self._dynamodb.get().get_item, TableName=self.table_name, Key={"pk": {"S": item_key(account)}}
                )
            except aws_errors() as error:
                log.warning("model cache unavailable (%s: %s); asking Kiro", type(error).__name__, short_error(error))
                return None
            item = answer.get("Item")
        if not item:
            return None
        try:
            if float(item["expires_at"]["N"]) <= self._clock():
                return None
            models = json.loads(item["models"]["S"])
        except (KeyError, ValueError, TypeError):
            log.warning("model cache item is malformed; ignoring it")
            return None
        return models if isinstance(models, list) else None

    async def put(self, models: list[dict[str, Any]], ttl_seconds: int, account: str = "") -> None:
        now = self._clock()
        item = {
            "pk": {"S": item_key(account)},
            "models": {"S": json.dumps(models, separators=(",", ":"))},
            "expires_at": {"N": str(int(now + ttl_seconds))},
            "cached_at": {"N": str(int(now))},
        }
        try:
            await asyncio.to_thread(self._dynamodb.get().put_item, TableName=self.table_name, Item=item)
        except aws_errors() as error:
            log.warning("could not cache the model list (%s: %s)", type(error).__name__, short_error(error))
