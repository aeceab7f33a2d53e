"""The limiter on the DynamoDB state table, shared by every Lambda instance (and any process given the table).

Items (pk; `expires_at` is the table's TTL attribute, so finished windows and idle slot sets are deleted eventually;
every read checks the time itself, since TTL deletion is lazy):

* a window, `<key>` = {count `n`, window end `expires_at`}: counted with one conditional `UpdateItem`
  (`SET n = n + 1` if the window is open and `n < limit`, returning the old item when the condition fails); a missing
  or finished window is opened with a conditional `PutItem` (`attribute_not_exists(pk) OR expires_at <= now`), and a
  lost race for that simply retries the count. One write per allowed request.
* a slot set, `<key>` = {`holders`: {token: lease end}, `version`, `expires_at`}: taken by a consistent read, then a
  `PutItem` conditioned on the version read (expired holders are dropped in the same write, which is how a crashed
  instance's slot comes back); given back by `UpdateItem REMOVE holders.<token>` that also bumps the version, so a
  concurrent taker that read the old set retries.

Any AWS failure is logged and the request is allowed: a limit must not take the gateway down with the table.
"""

from __future__ import annotations

import asyncio
import logging
import math
import random
import time
import uuid
from typing import Any

from gateway.client_keys.limiter import Clock, Verdict
from gateway.stores.aws_clients import LazyClient, aws_errors, client_config, is_client_error, short_error

log = logging.getLogger(__name__)

_ATTEMPTS = 6
_TTL_SLACK = 60  # seconds an item outlives its window / leases before DynamoDB may delete it


class DynamoLimiter:
    def __init__(self, table_name: str, *, dynamodb: Any = None, clock: Clock = time.time) -> None:
        self.table_name = table_name
        self._clock = clock
        self._dynamodb = LazyClient("dynamodb", None, client_config(2, 3, 2), dynamodb)

    async def _call(self, operation: str, **kwargs: Any) -> dict[str, Any]:
        client = self._dynamodb.get()
        return await asyncio.to_thread(getattr(client, operation), TableName=self.table_name, **kwargs)

    # -- windows -----------------------------------------------------------------------------------------------

    async def hit(self, key: str, limit: int, window: float, *, hold: float = 0.0) -> Verdict:
        try:
            verdict = await self._hit(key, limit, window)
            if verdict.allowed and hold and verdict.count >= limit:
                await self._stretch(key, self._clock() + hold)
            return verdict
        except aws_errors() as error:
            log.error("limit counter unavailable (%s: %s); allowing the request", type(error).__name__,
                      short_error(error))
            return Verdict(True)

    async def _hit(self, key: str, limit: int, window: float) -> Verdict:
        for _ in range(_ATTEMPTS):
            now = self._clock()
            try:
                answer = await self._call(
                    "update_item", Key={"pk": {"S": key}},
                    UpdateExpression="SET #n = #n + :one",
                    ConditionExpression="#e > :now AND #n < :limit",
                    ExpressionAttributeNames={"#n": "n", "#e": "expires_at"},
                    ExpressionAttributeValues={":one": {"N": "1"}, ":now": _exact(now), ":limit": {"N": str(limit)}},
                    ReturnValues="ALL_NEW", ReturnValuesOnConditionCheckFailure="ALL_OLD",
                )
                counted = answer["Attributes"]
                return Verdict(True, 0.0, int(counted["n"]["N"]), float(counted["expires_at"]["N"]) - now)
            except aws_errors() as error:
                if not is_client_error(error, "ConditionalCheckFailedException"):
                    raise
                old = getattr(error, "response", {}).get("Item") or {}
            end = float(old["expires_at"]["N"]) if "expires_at" in old else 0.0
            if end > now:
                return Verdict(False, end - now, int(old.get("n", {}).get("N", limit)), end - now)
            try:
                await self._call(
                    "put_item",
                    Item={"pk": {"S": key}, "n": {"N": "1"}, "expires_at": _num(now + window)},
                    ConditionExpression="attribute_not_exists(pk) OR #e <= :now",
                    ExpressionAttributeNames={"#e": "expires_at"}, ExpressionAttributeValues={":now": _exact(now)},
                )
                return Verdict(True, 0.0, 1, math.ceil(now + window) - now)
            except aws_errors() as error:
                if not is_client_error(error, "ConditionalCheckFailedException"):
                    raise  # another instance opened the window first: count in it
        log.warning("limit counter %s: too much contention; allowing the request", key)
        return Verdict(True)

    async def _stretch(self, key: str, until: float) -> None:
        try:
            await self._call(
                "update_item", Key={"pk": {"S": key}}, UpdateExpression="SET #e = :until",
                ConditionExpression="attribute_exists(pk) AND #e < :until",
                ExpressionAttributeNames={"#e": "expires_at"}, ExpressionAttributeValues={":until": _num(until)},
            )
        except aws_errors() as error:
            if not is_client_error(error, "ConditionalCheckFailedException"):
                raise

    async def wait_for(self, key: str, limit: int) -> float:
        try:
            answer = await self._call("get_item", Key={"pk": {"S": key}})
        except aws_errors() as error:
            log.error("limit counter unavailable (%s: %s); not blocking", type(error).__name__, short_error(error))
            return 0.0
        item = answer.get("Item") or {}
        try:
            end, count = float(item["expires_at"]["N"]), int(item["n"]["N"])
        except (KeyError, ValueError):
            return 0.0
        now = self._clock()
        return end - now if end > now and count >= limit else 0.0

    # -- slots -------------------------------------------------------------------------------------------------

    async def acquire(self, key: str, limit: int, lease: float) -> str | None:
        token = uuid.uuid4().hex
        try:
            for _ in range(_ATTEMPTS):
                answer = await self._call("get_item", Key={"pk": {"S": key}}, ConsistentRead=True)
                item = answer.get("Item")
                now = self._clock()
                holders = _holders(item, now)
                if len(holders) >= limit:
                    return None
                holders[token] = now + lease
                version = int(item["version"]["N"]) if item and "version" in item else 0
                condition = {"ConditionExpression": "#v = :v", "ExpressionAttributeNames": {"#v": "version"},
                             "ExpressionAttributeValues": {":v": {"N": str(version)}}} if item else {
                    "ConditionExpression": "attribute_not_exists(pk)"}
                try:
                    await self._call("put_item", Item={
                        "pk": {"S": key},
                        "holders": {"M": {name: _exact(end) for name, end in holders.items()}},
                        "version": {"N": str(version + 1)},
                        "expires_at": _num(max(holders.values()) + _TTL_SLACK),
                    }, **condition)
                    return token
                except aws_errors() as error:
                    if not is_client_error(error, "ConditionalCheckFailedException"):
                        raise
                await asyncio.sleep(random.uniform(0.005, 0.05))  # another instance changed the set meanwhile
        except aws_errors() as error:
            log.error("concurrency counter unavailable (%s: %s); allowing the request", type(error).__name__,
                      short_error(error))
            return ""
        log.warning("concurrency counter %s: too much contention; refusing", key)
        return None

    async def release(self, key: str, token: str) -> None:
        if not token:
            return
        try:
            await self._call(
                "update_item", Key={"pk": {"S": key}},
                UpdateExpression="REMOVE holders.#t SET #v = #v + :one",
                ConditionExpression="attribute_exists(pk)",
                ExpressionAttributeNames={"#t": token, "#v": "version"},
                ExpressionAttributeValues={":one": {"N": "1"}},
            )
        except aws_errors() as error:
            if not is_client_error(error, "ConditionalCheckFailedException"):
                log.warning("could not release a concurrency slot (%s: %s); its lease frees it",
                            type(error).__name__, short_error(error))


def _num(value: float) -> dict[str, str]:
    """A DynamoDB number of whole epoch seconds, rounded up (TTL wants seconds; a window may last 1 s longer)."""
    return {"N": str(math.ceil(value))}


def _exact(value: float) -> dict[str, str]:
    """A DynamoDB number with millisecond precision (the present moment, in conditions)."""
    return {"N": f"{value:.3f}"}


def _holders(item: dict[str, Any] | None, now: float) -> dict[str, float]:
    """The unexpired holders of a slot set item."""
    if not item:
        return {}
    holders = {}
    for token, value in (item.get("holders", {}).get("M") or {}).items():
        try:
            end = float(value["N"])
        except (KeyError, ValueError):
            continue
        if end > now:
            holders[token] = end
    return holders
