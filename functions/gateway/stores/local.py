"""Local implementations of the two seams: token stores over a file, kiro-cli's SQLite or the environment, and an
in-process model cache.

Refresh tokens are single use and rotate, and Kiro IDE or kiro-cli may refresh the same login at any moment, so every
`refresh` (1) takes an inter-process lock (several gateway processes may share one source), (2) re-reads the source and
returns what it finds if someone else already refreshed, and (3) persists the rotated tokens before returning them.
When the source cannot hold them (env credentials, `SQLITE_READONLY`, an unwritable file) they go to the state file,
which then overlays the source at load for as long as the source still holds the token they were derived from.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import json
import logging
import os
import sqlite3
import stat
import tempfile
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import replace
from datetime import datetime
from pathlib import Path
from typing import Any

from gateway.stores.base import Credentials, RefreshFn
from gateway.stores.credential_files import (
    format_timestamp,
    parse_timestamp,
    read_json_file,
    read_sqlite,
    utc_now,
    write_sqlite,
)

try:  # POSIX only; elsewhere the in-process single flight of AuthManager is the only coordination
    import fcntl
except ImportError:  # pragma: no cover - Windows
    fcntl = None  # type: ignore[assignment]

log = logging.getLogger(__name__)

Clock = Callable[[], datetime]
LOCK_WAIT = 60.0  # seconds; longer than a refresh can take (30 s timeout), after which we proceed unlocked


def atomic_write_json(path: Path, data: Any, *, new_file_mode: int = 0o600) -> None:
    """Write pretty JSON (indent 2) via a temp file + os.replace, keeping an existing file's permission bits."""
    try:
        mode = stat.S_IMODE(path.stat().st_mode)
    except FileNotFoundError:
        mode = new_file_mode
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            json.dump(data, handle, indent=2, ensure_ascii=False)
            handle.flush()
            os.fsync(handle.fileno())
        os.chmod(tmp, mode)
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise


class InterProcessLock:
    """An advisory `flock` on a per-source lock file in the temp directory (not beside the user's own files)."""

    def __init__(self, source: Path) -> None:
        digest = hashlib.sha256(str(source.expanduser().absolute()).encode()).hexdigest()[:20]
        owner = os.getuid() if hasattr(os, "getuid") else 0
        self.path = Path(tempfile.gettempdir()) / f"kiro-gateway-{owner}-{digest}.lock"

    @contextlib.asynccontextmanager
    async def hold(self) -> AsyncIterator[None]:
        if fcntl is None:
            yield
            return
        try:
            fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o600)
        except OSError:
            yield
            return
        try:
            deadline = time.monotonic() + LOCK_WAIT
            while True:
                try:
                    fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                    break
                except BlockingIOError:
                    if time.monotonic() > deadline:
                        log.warning("Refresh lock %s still held after %.0f s; refreshing without it", self.path,
                                    LOCK_WAIT)
                        break
                    await asyncio.sleep(0.02)
            yield
        finally:
            os.close(fd)  # releases the lock


def _fingerprint(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


class StateFile:
    """Rotated tokens kept by the gateway itself (JSON, mode 0600), one entry per credential source.

    An entry records the fingerprint of the source token it was derived from; it applies only while the source still
    holds that token, so a new login (or a changed REFRESH_TOKEN) always wins over older state.
    """

    def __init__(self, path: Path) -> None:
        self.path = path

    def _entries(self) -> dict[str, Any]:
        try:
            data = json.loads(self.path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return {}
        entries = data.get("entries") if isinstance(data, dict) else None
        return entries if isinstance(entries, dict) else {}

    def overlay(self, origin: str, creds: Credentials) -> Credentials:
        """`creds` as read from the source, with the state's newer tokens if they derive from the same source token."""
        entry = self._entries().get(origin)
        if not isinstance(entry, dict) or entry.get("origin_sha256") != _fingerprint(creds.refresh_token):
            return creds
        if not entry.get("refresh_token"):
            return creds
        return replace(creds, refresh_token=entry["refresh_token"], access_token=entry.get("access_token") or "",
                       expires_at=parse_timestamp(entry.get("expires_at")),
                       profile_arn=entry.get("profile_arn") or creds.profile_arn)

    def save(self, origin: str, source_token: str, creds: Credentials) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        entries = self._entries()
        entries[origin] = {
            "origin_sha256": _fingerprint(source_token),
            "refresh_token": creds.refresh_token,
            "access_token": creds.access_token,
            "expires_at": format_timestamp(creds.expires_at),
            "profile_arn": creds.profile_arn,
            "updated_at": format_timestamp(utc_now()),
        }
        atomic_write_json(self.path, {"version": 1, "entries": entries}, new_file_mode=0o600)


def already_refreshed(stale: Credentials, current: Credentials, now: datetime) -> bool:
    """True when the source holds tokens other than `stale`'s and they are fresh: someone else refreshed."""
    changed = current.refresh_token != stale.refresh_token or current.access_token != stale.access_token
    return changed and current.is_fresh(now)


class _LocalTokenStore:
    """The refresh protocol shared by the local stores; subclasses say how to read and write their source."""

    def __init__(self, *, state_file: Path | None, lock_target: Path, clock: Clock) -> None:
        self._state = StateFile(state_file) if state_file is not None else None
        self._lock = InterProcessLock(lock_target)
        self._clock = clock

    def describe(self) -> str:
        raise NotImplementedError

    def _origin(self) -> str:
        raise NotImplementedError

    def _read_source(self) -> Credentials:
        raise NotImplementedError

    def _write_source(self, new: Credentials) -> bool:
        """Persist into the source itself; False when it cannot hold them (then the state file does)."""
        return False

    def _read(self) -> tuple[Credentials, str]:
        """(credentials with any state overlay, the refresh token the source itself holds)."""
        source = self._read_source()
        creds = self._state.overlay(self._origin(), source) if self._state is not None else source
        return creds, source.refresh_token

    async def load(self) -> Credentials:
        creds, _ = await asyncio.to_thread(self._read)
        return creds

    async def refresh(self, stale: Credentials, do_refresh: RefreshFn) -> Credentials:
        async with self._lock.hold():
            current, source_token = await asyncio.to_thread(self._read)
            if already_refreshed(stale, current, self._clock()):
                log.info("Credentials in %s were already refreshed by another process; using them", self.describe())
                return current
            new = await do_refresh(current)
            await asyncio.to_thread(self._persist, new, source_token)
            return new

    def _persist(self, new: Credentials, source_token: str) -> None:
        try:
            if self._write_source(new):
                return
        except (OSError, ValueError, sqlite3.Error) as exc:
            log.warning("Could not write the rotated tokens back to %s (%s: %s)", self.describe(),
                        type(exc).__name__, exc)
        if self._state is None:
            log.error("The rotated refresh token of %s could not be saved anywhere; it lives in memory only and "
                      "a restart will need a new login", self.describe())
            return
        try:
            self._state.save(self._origin(), source_token, new)
        except OSError as exc:
            log.error("Could not save the rotated refresh token to %s (%s); it lives in memory only",
                      self._state.path, type(exc).__name__)


class JsonFileTokenStore(_LocalTokenStore):
    """A Kiro IDE `kiro-auth-token.json`; write-back updates the token fields and keeps every other key."""

    def __init__(self, path: Path, *, default_region: str = "us-east-1", state_file: Path | None = None,
                 clock: Clock = utc_now) -> None:
        super().__init__(state_file=state_file, lock_target=path, clock=clock)
        self.path = path
        self._default_region = default_region

    def describe(self) -> str:
        return f"Kiro IDE credentials file {self.path}"

    def _origin(self) -> str:
        return f"json:{self.path.absolute()}"

    def _read_source(self) -> Credentials:
        return read_json_file(self.path, default_region=self._default_region)

    def _write_source(self, new: Credentials) -> bool:
        data = json.loads(self.path.read_text(encoding="utf-8"))
        if not isinstance(data, dict):
            raise ValueError("the credentials file no longer holds a JSON object")
        data.update(accessToken=new.access_token, refreshToken=new.refresh_token,
                    expiresAt=format_timestamp(new.expires_at))
        if new.profile_arn:
            data["profileArn"] = new.profile_arn
        atomic_write_json(self.path, data)
        return True


class SqliteTokenStore(_LocalTokenStore):
    """kiro-cli's `data.sqlite3`; write-back merges into the token row that was read. `readonly` (SQLITE_READONLY)
    never writes the database: rotated tokens then live in the state file."""

    def __init__(self, path: Path, *, readonly: bool = False, state_file: Path | None = None,
                 default_region: str = "us-east-1", clock: Clock = utc_now) -> None:
        super().__init__(state_file=state_file, lock_target=path, clock=clock)
        self.path = path
        self.readonly = readonly
        self.key: str | None = None  # the auth_kv key the token came from, remembered for write-back
        self._default_region = default_region
        if readonly and state_file is None:
            log.warning("SQLITE_READONLY without KIRO_STATE_FILE: rotated refresh tokens will be lost on restart")

    def describe(self) -> str:
        mode = " (read-only)" if self.readonly else ""
        return f"kiro-cli database {self.path}{mode}"

    def _origin(self) -> str:
        return f"sqlite:{self.path.absolute()}:{self.key}"

    def _read_source(self) -> Credentials:
        creds, self.key = read_sqlite(self.path, default_region=self._default_region)
        return creds

    def _write_source(self, new: Credentials) -> bool:
        if self.readonly or self.key is None:
            return False
        updates = {"access_token": new.access_token, "refresh_token": new.refresh_token,
                   "expires_at": format_timestamp(new.expires_at), "profile_arn": new.profile_arn}
        if write_sqlite(self.path, self.key, updates):
            return True
        log.warning("The kiro-cli login row %s disappeared; keeping the rotated tokens in the state file", self.key)
        return False


class EnvTokenStore(_LocalTokenStore):
    """`REFRESH_TOKEN` from the environment. The environment cannot be written, so rotated tokens go to the state
    file, which takes precedence at load while REFRESH_TOKEN is unchanged (a restart uses the rotated token)."""

    def __init__(self, initial: Credentials, *, state_file: Path, clock: Clock = utc_now) -> None:
        super().__init__(state_file=state_file, lock_target=state_file, clock=clock)
        self._initial = initial

    def describe(self) -> str:
        return f"REFRESH_TOKEN from the environment (rotated tokens kept in {self._state.path if self._state else '-'})"

    def _origin(self) -> str:
        return "env:REFRESH_TOKEN"

    def _read_source(self) -> Credentials:
        return self._initial


class InMemoryModelCache:
    """The model lists in this process, one per account, for `ttl_seconds` on an injected monotonic clock."""

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self._lists: dict[str, tuple[list[dict[str, Any]], float]] = {}

    async def get(self, account: str = "") -> list[dict[str, Any]] | None:
        cached = self._lists.get(account)
        if cached is None or self._clock() >= cached[1]:
            return None
        return list(cached[0])

    async def put(self, models: list[dict[str, Any]], ttl_seconds: int, account: str = "") -> None:
        self._lists[account] = (list(models), self._clock() + ttl_seconds)
