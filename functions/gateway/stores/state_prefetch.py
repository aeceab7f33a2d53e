"""A new instance's first look at the state table in ONE call: its accounts' states and its catalogue together.

Without this, the first request of a new instance (every Claude Code sub-agent may land on one) reads the catalogue
item and then the account states, one round trip each, before its upstream call. `prefetch` fetches both with one
`BatchGetItem` and hands each item to its store (`prime`), which serves it to the very next read (within
`PRIME_SECONDS`) instead of asking DynamoDB again. Any failure just leaves the stores to read on their own.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from gateway.stores.aws_clients import LazyClient, aws_errors, client_config, short_error

log = logging.getLogger(__name__)

PRIME_SECONDS = 5.0  # how long a prefetched item stands in for a read (it is used by the same request)


async def prefetch(table: str, dynamodb: LazyClient, primed: dict[str, Any]) -> None:
    """One consistent BatchGetItem of the items named by `primed` (pk -> a `prime(item | None)` callable)."""
    keys = [{"pk": {"S": pk}} for pk in primed]
    if not keys or len(keys) > 100:
        return
    try:
        answer = await asyncio.to_thread(dynamodb.get().batch_get_item,
                                         RequestItems={table: {"Keys": keys, "ConsistentRead": True}})
    except aws_errors() as error:
        log.warning("state prefetch failed (%s: %s); reading item by item", type(error).__name__, short_error(error))
        return
    if answer.get("UnprocessedKeys"):
        return  # throttled: let each store read for itself
    found = {item["pk"]["S"]: item for item in answer.get("Responses", {}).get(table, [])}
    for pk, prime in primed.items():
        prime(found.get(pk))


def state_client() -> LazyClient:
    return LazyClient("dynamodb", None, client_config(2, 5, 2))
