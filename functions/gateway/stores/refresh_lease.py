"""The refresh lease: a conditional DynamoDB write on the item `lease#refresh` so one instance refreshes at a time.

Refresh tokens rotate and every one is accepted exactly once, so two instances refreshing the same token at once
would leave one of them (and the secret, if it loses the write race) holding a dead token. The winner of the
conditional write refreshes; the others poll (with backoff) for its result, and take over only when the lease
expires. Any failure of the table itself degrades to refreshing without the lease, with a warning.
"""

from __future__ import annotations

import asyncio
import logging
import random
from collections.abc import Awaitable, Callable
from dataclasses import KW_ONLY, dataclass, field
from typing import TypeVar

from gateway.stores.aws_clients import Clock, LazyClient, Sleep, aws_errors, is_client_error
from gateway.stores.base import RefreshError

log = logging.getLogger(__name__)

# The single-credential secret's refresh lease is the secret's write lease: the one item every writer of the secret
# (instances rotating tokens, `kiro-gateway keys`, `secret push`) holds around its read-merge-write, so a rotated token
# and a key revocation never overwrite each other. (Before: `lease#refresh`, with no lease for the CLI.)
LEASE_KEY = "lease#secret-write"

T = TypeVar("T")


class RefreshBusyError(RefreshError):
    """Another instance held the refresh lease for longer than we were willing to wait."""

    def __init__(self, message: str) -> None:
        super().__init__(None, message)


@dataclass
class RefreshLease:
    """The lease item in `table_name` (empty: no lease, fine for a single instance; a warning is logged once).

    A lease older than `lease_seconds` may be taken over (its holder crashed); waiting for one ends with
    RefreshBusyError after `wait_seconds`. `clock` returns epoch seconds; `sleep` is awaited between polls.
    """

    table_name: str
    dynamodb: LazyClient
    _: KW_ONLY
    lease_seconds: float
    wait_seconds: float
    clock: Clock
    sleep: Sleep
    key: str = LEASE_KEY  # one lease per refresh-token account in a pool (`lease#refresh#<name>`)
    _warned_no_table: bool = field(default=False, init=False)
    # After `acquire` with `read_at`: True when no refresh finished since that moment (the holder's copy is current).
    unchanged_since_read: bool = field(default=False, init=False)

    @property
    def marker_key(self) -> str:
        """The item each refresh's release stamps (`done_at`): lets the next holder know whether its copy is stale
        without reading the secret again."""
        return f"{self.key}#done"

    async def acquire(self, owner: str, settled: Callable[[], Awaitable[T | None]],
                      read_at: float | None = None) -> bool | T:
        """True once `owner` holds the lease; False when there is no lease table (refresh anyway); or, while someone
        else holds it, the first non-None result of `settled()` (awaited between polls: the other instance's result).

        With `read_at` (when the caller's copy of the secret was read), the first attempt is one transaction that
        also checks no refresh finished since then (`unchanged_since_read`), so that copy need not be read again.
        """
        self.unchanged_since_read = False
        if not self.table_name:
            if not self._warned_no_table:
                log.warning("KIRO_STATE_TABLE is not set: refreshing without a lease (safe for one instance only)")
                self._warned_no_table = True
            return False
        deadline = self.clock() + self.wait_seconds
        delay = 0.05
        if read_at is not None:
            checked = await self._try_acquire_unchanged(owner, read_at)
            if checked is not None:
                return checked
        while True:
            outcome = await self._try_acquire(owner)
            if outcome is not None:
                return outcome
            await self.sleep(delay * (0.5 + random.random()))
            delay = min(delay * 2, 1.0)
            result = await settled()
            if result is not None:
                return result
            if self.clock() > deadline:
                raise RefreshBusyError(
                    f"Another instance has been refreshing the Kiro credentials for over {self.wait_seconds:.0f} s."
                )

    async def _try_acquire(self, owner: str) -> bool | None:
        """True: acquired. None: someone else holds it. False: the table is unusable (proceed without a lease)."""
        now = self.clock()
        try:
            await asyncio.to_thread(
                self.dynamodb.get().put_item,
                TableName=self.table_name,
                Item={"pk": {"S": self.key}, "owner": {"S": owner},
                      "expires_at": {"N": str(int(now + self.lease_seconds))}},
                ConditionExpression="attribute_not_exists(pk) OR expires_at < :now",
                ExpressionAttributeValues={":now": {"N": str(int(now))}},
            )
        except aws_errors() as error:
            if is_client_error(error, "ConditionalCheckFailedException"):
                return None
            log.warning("refresh lease unavailable (%s); refreshing without it", type(error).__name__)
            return False
        return True

    async def _try_acquire_unchanged(self, owner: str, read_at: float) -> bool | None:
        """One transaction: take the free lease AND check the last refresh finished before `read_at` (1 s of clock
        slack between instances). True: held, copy current. False: no table. None: not taken (held by someone, or a
        refresh finished since: the ordinary path follows, with a re-read)."""
        now = self.clock()
        try:
            await asyncio.to_thread(
                self.dynamodb.get().transact_write_items,
                TransactItems=[
                    {"ConditionCheck": {
                        "TableName": self.table_name, "Key": {"pk": {"S": self.marker_key}},
                        "ConditionExpression": "attribute_not_exists(done_at) OR done_at < :read",
                        "ExpressionAttributeValues": {":read": {"N": f"{read_at - 1.0:.3f}"}}}},
                    {"Put": {
                        "TableName": self.table_name,
                        "Item": {"pk": {"S": self.key}, "owner": {"S": owner},
                                 "expires_at": {"N": str(int(now + self.lease_seconds))}},
                        "ConditionExpression": "attribute_not_exists(pk) OR expires_at < :now",
                        "ExpressionAttributeValues": {":now": {"N": str(int(now))}}}},
                ],
            )
        except aws_errors() as error:
            if is_client_error(error, "TransactionCanceledException"):
                return None
            log.warning("refresh lease unavailable (%s); refreshing without it", type(error).__name__)
            return False
        self.unchanged_since_read = True
        return True

    async def release(self, owner: str, *, refreshed: bool = False) -> None:
        """Delete the lease if `owner` still holds it (and, after a refresh, stamp the marker in the same
        transaction); failures are logged only (the lease expires by itself)."""
        if refreshed:
            try:
                await asyncio.to_thread(
                    self.dynamodb.get().transact_write_items,
                    TransactItems=[
                        {"Delete": {"TableName": self.table_name, "Key": {"pk": {"S": self.key}},
                                    "ConditionExpression": "#owner = :owner",
                                    "ExpressionAttributeNames": {"#owner": "owner"},
                                    "ExpressionAttributeValues": {":owner": {"S": owner}}}},
                        {"Put": {"TableName": self.table_name,
                                 "Item": {"pk": {"S": self.marker_key}, "done_at": {"N": f"{self.clock():.3f}"}}}},
                    ],
                )
                return
            except aws_errors() as error:
                if not is_client_error(error, "TransactionCanceledException"):
                    log.warning("could not release the refresh lease (%s); it expires by itself",
                                type(error).__name__)
                return
        try:
            await asyncio.to_thread(
                self.dynamodb.get().delete_item,
                TableName=self.table_name,
                Key={"pk": {"S": self.key}},
                ConditionExpression="#owner = :owner",
                ExpressionAttributeNames={"#owner": "owner"},
                ExpressionAttributeValues={":owner": {"S": owner}},
            )
        except aws_errors() as error:
            if not is_client_error(error, "ConditionalCheckFailedException"):
                log.warning("could not release the refresh lease (%s); it expires by itself", type(error).__name__)
