"""What the upstream taught us about each account: resting after a throttle, quota used up, suspended, credential
refused. Kept in a `HealthStore`: in memory (with lasting states in a small JSON file) locally, in the DynamoDB state
table on AWS (`gateway.accounts.dynamo_health`), so every instance skips an account another one saw fail.

Writes never shorten a state: a new state replaces the stored one only when it lasts longer (a forever state, `until`
None, outlasts any timed one), so two instances reporting the same throttle converge on the longer rest.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Protocol

log = logging.getLogger(__name__)

COOLING = "cooling"  # throttled, or its token service failed: back after `until`
EXHAUSTED = "exhausted"  # usage limit reached: back after the reset (`until`)
SUSPENDED = "suspended"  # Kiro locked the account: back when enabled again (or after ACCOUNT_SUSPENDED_RETRY)
REVOKED = "revoked"  # Kiro refused the credential: back after a new login / key (or when enabled again)
STATES = (COOLING, EXHAUSTED, SUSPENDED, REVOKED)


@dataclass(frozen=True)
class Health:
    """One account's state. `until` is epoch seconds (None: until someone acts); `fingerprint` ties a revoked state to
    the credential it was seen on, so a new login or key brings the account back by itself."""

    state: str
    until: float | None
    reason: str
    message: str
    since: float
    strikes: int = 1
    fingerprint: str = ""

    def active(self, now: float, fingerprint: str = "") -> bool:
        if self.until is not None and self.until <= now:
            return False
        return not (self.state == REVOKED and self.fingerprint and fingerprint and fingerprint != self.fingerprint)

    def outlasts(self, other: Health) -> bool:
        """True when this state ends no earlier than `other` (forever beats any time)."""
        if self.until is None:
            return True
        return other.until is not None and self.until >= other.until

    def to_json(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_json(cls, data: Any) -> Health | None:
        if not isinstance(data, dict) or data.get("state") not in STATES:
            return None
        try:
            until = data.get("until")
            return cls(state=str(data["state"]), until=float(until) if until is not None else None,
                       reason=str(data.get("reason") or ""), message=str(data.get("message") or ""),
                       since=float(data.get("since") or 0), strikes=int(data.get("strikes") or 1),
                       fingerprint=str(data.get("fingerprint") or ""))
        except (TypeError, ValueError):
            return None


def longer(current: Health | None, new: Health, now: float) -> bool:
    """Whether `new` should replace `current` (absent, over, or not lasting as long)."""
    return current is None or not current.active(now) or new.outlasts(current)


class HealthStore(Protocol):
    def describe(self) -> str: ...

    async def read(self, names: list[str]) -> dict[str, Health]:
        """The stored states of these accounts (absent: healthy as far as anyone knows)."""
        ...

    async def mark(self, name: str, health: Health) -> None:
        """Record a state unless a longer one is stored already."""
        ...

    async def clear(self, name: str) -> None:
        """Forget the account's state (`accounts enable`)."""
        ...


class MemoryHealthStore:
    """States in this process; lasting ones (anything but a short rest) are also kept in `path` (JSON, mode 0600) so
    that they survive a restart and `kiro-gateway accounts` can show them."""

    LASTING_SECONDS = 300.0  # states shorter than this are not worth a file write

    def __init__(self, path: Path | None = None, clock: Callable[[], float] = time.time) -> None:
        self.path = path
        self._clock = clock
        self._states: dict[str, Health] = {}
        self._mtime: int | None = -1
        self._sync()

    def describe(self) -> str:
        return f"memory (lasting states in {self.path})" if self.path else "memory"

    def _lasting(self, health: Health, now: float) -> bool:
        return health.until is None or health.until - now >= self.LASTING_SECONDS

    def _sync(self) -> None:
        """Take the lasting states from the file when it changed (`kiro-gateway accounts enable` edits it)."""
        if self.path is None:
            return
        try:
            mtime: int | None = self.path.stat().st_mtime_ns
        except OSError:
            mtime = None
        if mtime == self._mtime:
            return
        self._mtime = mtime
        now = self._clock()
        short = {n: h for n, h in self._states.items() if h.active(now) and not self._lasting(h, now)}
        self._states = short | read_state_file(self.path)

    async def read(self, names: list[str]) -> dict[str, Health]:
        self._sync()
        return {name: self._states[name] for name in names if name in self._states}

    async def mark(self, name: str, health: Health) -> None:
        now = self._clock()
        if not longer(self._states.get(name), health, now):
            return
        self._states[name] = health
        if self._lasting(health, now):
            self._save()

    async def clear(self, name: str) -> None:
        if self._states.pop(name, None) is not None:
            self._save()

    def _save(self) -> None:
        if self.path is None:
            return
        # lazy: the local-file writer loads only on a local run (a Lambda keeps states in DynamoDB)
        from gateway.stores.local import atomic_write_json

        now = self._clock()
        lasting = {name: h.to_json() for name, h in self._states.items() if h.active(now) and self._lasting(h, now)}
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
            atomic_write_json(self.path, {"version": 1, "accounts": lasting})
            self._mtime = self.path.stat().st_mtime_ns
        except OSError as error:
            log.warning("could not save the account states to %s (%s)", self.path, type(error).__name__)


def read_state_file(path: Path) -> dict[str, Health]:
    """The states kept in a local state file ({} when it is absent or unreadable)."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    accounts = data.get("accounts") if isinstance(data, dict) else None
    if not isinstance(accounts, dict):
        return {}
    states = {name: Health.from_json(value) for name, value in accounts.items()}
    return {name: h for name, h in states.items() if h is not None}


def clear_state_file(path: Path, name: str) -> bool:
    """Drop one account's state from a local state file (the CLI's `accounts enable`); True when it had one."""
    # lazy: the local-file writer loads only on a local run (a Lambda keeps states in DynamoDB)
    from gateway.stores.local import atomic_write_json

    states = read_state_file(path)
    if states.pop(name, None) is None:
        return False
    atomic_write_json(path, {"version": 1, "accounts": {n: h.to_json() for n, h in states.items()}})
    return True
