"""Where the usage counters live: a SQLite file locally, the DynamoDB state table on AWS (shared by every instance).

Both keep, per UTC day, the flat counters of `gateway.usage.counters`; `add` is atomic per counter in both, so any
number of gateway processes or Lambda instances can count at once.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Protocol

from gateway.usage.counters import Counters

if TYPE_CHECKING:
    from gateway.settings import Settings


class UsageStore(Protocol):
    def describe(self) -> str:
        """Where the counters are kept, for the CLI (never a secret)."""
        ...

    async def add(self, day: str, adds: Counters, maxes: Counters, expires_at: int) -> None:
        """Add `adds` to the day's counters and raise `maxes` to at least their values; keep them until
        `expires_at` (epoch seconds)."""
        ...

    async def read(self, days: list[str]) -> dict[str, Counters]:
        """The counters of each of `days` that has any."""
        ...


def build_usage_store(settings: Settings) -> UsageStore:
    """KIRO_STATE_TABLE set: one DynamoDB item per day in the state table; otherwise the local SQLite file."""
    if settings.aws.kiro_state_table:
        # lazy: only the counters backend in use loads (DynamoDB on AWS, SQLite locally)
        from gateway.usage.dynamo_store import DynamoUsageStore

        return DynamoUsageStore(settings.aws.kiro_state_table)
    # lazy: only the counters backend in use loads (DynamoDB on AWS, SQLite locally)
    from gateway.usage.sqlite_store import SqliteUsageStore

    return SqliteUsageStore(settings.usage.usage_db_file)
