"""Account states in the DynamoDB state table, shared by every Lambda instance (one item `account#<name>` each).

Writes are conditional so a shorter state never replaces a longer one that another instance stored; timed states
carry `expires_at` (the table's TTL attribute) so DynamoDB removes them after they end (expiry is also checked here,
since TTL deletion is lazy). Forever states (suspended, revoked) replace anything and have no TTL: `kiro-gateway
accounts enable` removes them, and a revoked state no longer applies once the account's credential changed. Any
failure of the table degrades to "no shared state" with a warning: the gateway keeps serving.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from typing import Any

from gateway.accounts.health import Health
from gateway.stores.aws_clients import Clock, LazyClient, aws_errors, client_config, is_client_error, short_error
from gateway.stores.state_prefetch import PRIME_SECONDS

log = logging.getLogger(__name__)

PREFIX = "account#"
TTL_SLACK = 86400  # seconds a finished state stays before TTL removes it (it is ignored in code once over)


def item_key(name: str) -> dict[str, Any]:
    return {"pk": {"S": PREFIX + name}}


class DynamoHealthStore:
    """HealthStore on the state table. `dynamodb` may be a ready client (tests); else one is made on first use."""

    def __init__(self, table_name: str, *, dynamodb: Any = None, clock: Clock = time.time) -> None:
        self.table_name = table_name
        self._clock = clock
        self._dynamodb = LazyClient("dynamodb", None, client_config(2, 5, 2), dynamodb)
        self._primed: dict[str, tuple[float, dict[str, Any] | None]] = {}

    def describe(self) -> str:
        return f"DynamoDB table {self.table_name}"

    def prime(self, name: str, item: dict[str, Any] | None) -> None:
        """The item as `gateway.stores.state_prefetch` just read it: the next `read` of `name` uses it."""
        self._primed[name] = (self._clock(), item)

    async def read(self, names: list[str]) -> dict[str, Health]:
        results = await asyncio.gather(*(asyncio.to_thread(self._get, name) for name in names))
        return {name: health for name, health in zip(names, results, strict=True) if health is not None}

    def _get(self, name: str) -> Health | None:
        primed = self._primed.pop(name, None)
        if primed is not None and self._clock() - primed[0] < PRIME_SECONDS:
            item = primed[1]
        else:
            try:
                answer = self._dynamodb.get().get_item(TableName=self.table_name, Key=item_key(name),
                                                       ConsistentRead=True)
            except aws_errors() as error:
                log.warning("account states unavailable (%s: %s); treating %s as healthy", type(error).__name__,
                            short_error(error), name)
                return None
            item = answer.get("Item")
        if not item or "state" not in item:
            return None
        try:
            return Health.from_json(json.loads(item["state"]["S"]))
        except (KeyError, ValueError, TypeError):
            return None

    async def mark(self, name: str, health: Health) -> None:
        await asyncio.to_thread(self._put, name, health)

    def _put(self, name: str, health: Health) -> None:
        item: dict[str, Any] = {**item_key(name), "state": {"S": json.dumps(health.to_json(), separators=(",", ":"))},
                                "until": {"N": str(health.until if health.until is not None else -1)}}
        extra: dict[str, Any] = {}
        if health.until is not None:
            # A timed state never replaces a forever one (-1) nor a longer rest that has not ended yet.
            item["expires_at"] = {"N": str(int(health.until + TTL_SLACK))}
            extra = {
                "ConditionExpression": "attribute_not_exists(pk) OR (#until <> :forever AND "
                                       "(#until <= :now OR #until <= :until))",
                "ExpressionAttributeNames": {"#until": "until"},
                "ExpressionAttributeValues": {":forever": {"N": "-1"}, ":now": {"N": str(self._clock())},
                                              ":until": {"N": str(health.until)}},
            }
        try:
            self._dynamodb.get().put_item(TableName=self.table_name, Item=item, **extra)
        except aws_errors() as error:
            if is_client_error(error, "ConditionalCheckFailedException"):
                return  # a longer state is stored already
            log.warning("could not share the state of account %s (%s: %s); only this instance knows it", name,
                        type(error).__name__, short_error(error))

    async def clear(self, name: str) -> None:
        await asyncio.to_thread(self._delete, name)

    def _delete(self, name: str) -> None:
        try:
            self._dynamodb.get().delete_item(TableName=self.table_name, Key=item_key(name))
        except aws_errors() as error:
            log.warning("could not clear the state of account %s (%s)", name, type(error).__name__)
