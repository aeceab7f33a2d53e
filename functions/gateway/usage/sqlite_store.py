"""Usage counters in a local SQLite file (one row per day and counter), safe for several gateway processes at once:
each write is one upsert statement in its own transaction (SQLite serialises writers; WAL lets readers go on)."""

from __future__ import annotations

import asyncio
import sqlite3
import time
from pathlib import Path

from gateway.usage.counters import Counters

_SCHEMA = ("CREATE TABLE IF NOT EXISTS usage_counters (day TEXT NOT NULL, name TEXT NOT NULL, value REAL NOT NULL, "
           "expires_at INTEGER NOT NULL DEFAULT 0, PRIMARY KEY (day, name))")
_ADD = ("INSERT INTO usage_counters (day, name, value, expires_at) VALUES (?, ?, ?, ?) ON CONFLICT(day, name) "
        "DO UPDATE SET value = value + excluded.value, expires_at = excluded.expires_at")
_MAX = ("INSERT INTO usage_counters (day, name, value, expires_at) VALUES (?, ?, ?, ?) ON CONFLICT(day, name) "
        "DO UPDATE SET value = max(value, excluded.value), expires_at = excluded.expires_at")
BUSY_TIMEOUT = 10.0  # seconds a writer waits for another process's write


class SqliteUsageStore:
    def __init__(self, path: str) -> None:
        self.path = Path(path).expanduser()
        self._ready = False

    def describe(self) -> str:
        return f"SQLite file {self.path}"

    def _connect(self) -> sqlite3.Connection:
        if not self._ready:
            self.path.parent.mkdir(parents=True, exist_ok=True)
        connection = sqlite3.connect(self.path, timeout=BUSY_TIMEOUT, isolation_level=None)
        if not self._ready:
            connection.execute("PRAGMA journal_mode=WAL")
            connection.execute(_SCHEMA)
            self._ready = True
        return connection

    def _add(self, day: str, adds: Counters, maxes: Counters, expires_at: int, now: int) -> None:
        connection = self._connect()
        try:
            connection.execute("BEGIN IMMEDIATE")
            connection.executemany(_ADD, [(day, name, value, expires_at) for name, value in adds.items()])
            connection.executemany(_MAX, [(day, name, value, expires_at) for name, value in maxes.items()])
            connection.execute("DELETE FROM usage_counters WHERE expires_at > 0 AND expires_at < ?", (now,))
            connection.execute("COMMIT")
        finally:
            connection.close()

    async def add(self, day: str, adds: Counters, maxes: Counters, expires_at: int) -> None:
        await asyncio.to_thread(self._add, day, adds, maxes, expires_at, int(time.time()))

    def _read(self, days: list[str]) -> dict[str, Counters]:
        if not days or not self.path.exists():
            return {}
        connection = self._connect()
        try:
            marks = ",".join("?" * len(days))
            rows = connection.execute(f"SELECT day, name, value FROM usage_counters WHERE day IN ({marks})", days)
            out: dict[str, Counters] = {}
            for day, name, value in rows:
                out.setdefault(day, {})[name] = float(value)
            return out
        finally:
            connection.close()

    async def read(self, days: list[str]) -> dict[str, Counters]:
        return await asyncio.to_thread(self._read, days)
