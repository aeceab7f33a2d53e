"""Usage counters in the DynamoDB state table: one item per UTC day (pk `usage#YYYY-MM-DD`), one numeric attribute
per counter. `ADD` is atomic, so every Lambda instance counts into the same item without a read; the table's TTL
attribute (`expires_at`) lets DynamoDB delete old days. A day item holds a few dozen attributes (models x keys), far
below the 400 KB item limit."""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from gateway.stores.aws_clients import LazyClient, client_config
from gateway.usage.counters import Counters

log = logging.getLogger(__name__)

PREFIX = "usage#"
_ATTRIBUTE = "c:"  # counter attributes are "c:<name>", apart from pk and expires_at
BATCH = 100  # BatchGetItem's limit


class DynamoUsageStore:
    def __init__(self, table_name: str, *, dynamodb: Any = None) -> None:
        self.table_name = table_name
        self._dynamodb = LazyClient("dynamodb", None, client_config(2, 5, 3), dynamodb)

    def describe(self) -> str:
        return f"DynamoDB table {self.table_name}"

    def _add(self, day: str, adds: Counters, maxes: Counters, expires_at: int) -> None:
        names: dict[str, str] = {"#exp": "expires_at"}
        values: dict[str, Any] = {":exp": {"N": str(expires_at)}}
        add_parts, set_parts = [], ["#exp = :exp"]
        for index, (name, value) in enumerate(adds.items()):
            names[f"#a{index}"] = _ATTRIBUTE + name
            values[f":a{index}"] = {"N": repr(float(value))}
            add_parts.append(f"#a{index} :a{index}")
        for index, (name, value) in enumerate(maxes.items()):  # last writer wins: close enough for "last seen"
            names[f"#m{index}"] = _ATTRIBUTE + name
            values[f":m{index}"] = {"N": repr(float(value))}
            set_parts.append(f"#m{index} = :m{index}")
        expression = "SET " + ", ".join(set_parts) + (" ADD " + ", ".join(add_parts) if add_parts else "")
        self._dynamodb.get().update_item(
            TableName=self.table_name, Key={"pk": {"S": PREFIX + day}}, UpdateExpression=expression,
            ExpressionAttributeNames=names, ExpressionAttributeValues=values)

    async def add(self, day: str, adds: Counters, maxes: Counters, expires_at: int) -> None:
        await asyncio.to_thread(self._add, day, adds, maxes, expires_at)

    def _read(self, days: list[str]) -> dict[str, Counters]:
        out: dict[str, Counters] = {}
        client = self._dynamodb.get()
        for start in range(0, len(days), BATCH):
            keys = [{"pk": {"S": PREFIX + day}} for day in days[start:start + BATCH]]
            request: dict[str, Any] = {self.table_name: {"Keys": keys, "ConsistentRead": True}}
            for _attempt in range(5):  # unprocessed keys come back under throttling; bounded
                answer = client.batch_get_item(RequestItems=request)
                for item in answer.get("Responses", {}).get(self.table_name, []):
                    day = item["pk"]["S"][len(PREFIX):]
                    out[day] = {name[len(_ATTRIBUTE):]: float(value["N"]) for name, value in item.items()
                                if name.startswith(_ATTRIBUTE) and "N" in value}
                request = answer.get("UnprocessedKeys") or {}
                if not request:
                    break
        return out

    async def read(self, days: list[str]) -> dict[str, Counters]:
        return await asyncio.to_thread(self._read, days)
