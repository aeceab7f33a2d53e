"""Client key records and the key ring: what is stored for each key, and how a presented key finds its record.

Only a keyed hash of each key is stored: HMAC-SHA256 of the key under a random 256-bit salt kept beside the records
(one salt per key document, i.e. per deployment or local file). The keys themselves are 256 random bits, so a fast
hash is as safe as a slow one (nothing to brute-force) and costs microseconds per request instead of Lambda time;
the salt makes hashes differ between deployments, so a hash copied from one secret says nothing about another. A
lookup hashes the presented key once and compares it with every record's hash with `hmac.compare_digest`, without
stopping at a match.

The fingerprint is the first 8 hex digits of the plain SHA-256 of the key: enough to tell keys apart in
`kiro-gateway keys list` (`printf %s "$KEY" | sha256sum | cut -c1-8` shows which key one holds), too little to
learn anything about the key.

Document format (the secret's `clientKeys` and the whole `KIRO_CLIENT_KEYS_FILE`):
`{"version": 1, "salt": "<64 hex>", "keys": [{"name", "hash", "fingerprint", "createdAt", "expiresAt",
"enabled", "revokedAt", "limits": {"rpm", "concurrency", "dailyCredits", "monthlyCredits"}}]}`; absent or null
limits mean "no limit".
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from typing import Any

from gateway.client_keys import DEFAULT_KEY_NAME

KEY_PREFIX = "kgw-"
DOCUMENT_VERSION = 1
NAME_PATTERN = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,63}")
LIMIT_FIELDS = {"rpm": "rpm", "concurrency": "concurrency", "daily_credits": "dailyCredits",
                "monthly_credits": "monthlyCredits"}


class KeyRecordError(ValueError):
    """A key document or a requested change is invalid; the message says what to fix."""


def format_time(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def parse_time(value: str) -> datetime:
    """ISO 8601 (`2026-12-31`, `2026-12-31T18:00:00Z`, with an offset); a date or a naive time is taken as UTC."""
    try:
        moment = datetime.fromisoformat(value.strip())
    except ValueError:
        raise KeyRecordError(f"{value!r} is not an ISO 8601 date or time (e.g. 2026-12-31T18:00:00Z)") from None
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


@dataclass(frozen=True)
class KeyLimits:
    """Per-key limits; None means no limit. Credits are Kiro credits (from its metering events)."""

    rpm: int | None = None
    concurrency: int | None = None
    daily_credits: float | None = None
    monthly_credits: float | None = None

    def __post_init__(self) -> None:
        for name in ("rpm", "concurrency"):
            value = getattr(self, name)
            if value is not None and (isinstance(value, bool) or not isinstance(value, int) or value < 1):
                raise KeyRecordError(f"{name} must be a whole number of at least 1, not {value!r}")
        for name in ("daily_credits", "monthly_credits"):
            value = getattr(self, name)
            if value is not None and (isinstance(value, bool) or not isinstance(value, int | float) or value <= 0):
                raise KeyRecordError(f"{name} must be a positive number of credits, not {value!r}")

    def to_json(self) -> dict[str, Any]:
        return {wire: getattr(self, attr) for attr, wire in LIMIT_FIELDS.items() if getattr(self, attr) is not None}

    @classmethod
    def from_json(cls, raw: Any) -> KeyLimits:
        if raw is None:
            return cls()
        if not isinstance(raw, dict):
            raise KeyRecordError("limits must be an object")
        return cls(**{attr: raw.get(wire) for attr, wire in LIMIT_FIELDS.items()})


@dataclass(frozen=True)
class ClientKey:
    """One named key as stored: never the key itself."""

    name: str
    hash: str
    fingerprint: str
    created_at: str
    limits: KeyLimits = field(default_factory=KeyLimits)
    expires_at: datetime | None = None
    enabled: bool = True
    revoked_at: str | None = None

    def state(self, now: datetime) -> str:
        """"active", "revoked" or "expired"."""
        if not self.enabled:
            return "revoked"
        if self.expires_at is not None and self.expires_at <= now:
            return "expired"
        return "active"

    def to_json(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "hash": self.hash,
            "fingerprint": self.fingerprint,
            "createdAt": self.created_at,
            "expiresAt": format_time(self.expires_at) if self.expires_at else None,
            "enabled": self.enabled,
            "revokedAt": self.revoked_at,
            "limits": self.limits.to_json(),
        }

    @classmethod
    def from_json(cls, raw: Any) -> ClientKey:
        if not isinstance(raw, dict):
            raise KeyRecordError("each entry of keys must be an object")
        name, digest = raw.get("name"), raw.get("hash")
        if not isinstance(name, str) or not NAME_PATTERN.fullmatch(name):
            raise KeyRecordError(f"invalid key name {name!r}")
        if not isinstance(digest, str) or not re.fullmatch(r"[0-9a-f]{64}", digest):
            raise KeyRecordError(f"key {name!r} has no valid hash")
        expires = raw.get("expiresAt")
        return cls(
            name=name,
            hash=digest,
            fingerprint=str(raw.get("fingerprint") or "")[:16],
            created_at=str(raw.get("createdAt") or ""),
            limits=KeyLimits.from_json(raw.get("limits")),
            expires_at=parse_time(expires) if isinstance(expires, str) and expires else None,
            enabled=raw.get("enabled", True) is not False,
            revoked_at=raw.get("revokedAt") if isinstance(raw.get("revokedAt"), str) else None,
        )


def new_key() -> str:
    """A new client key: the prefix and 256 random bits."""
    return KEY_PREFIX + secrets.token_urlsafe(32)


def fingerprint(key: str) -> str:
    return hashlib.sha256(key.encode("utf-8", "replace")).hexdigest()[:8]


def validate_name(name: str) -> str:
    if not NAME_PATTERN.fullmatch(name or ""):
        raise KeyRecordError("a key name is 1-64 letters, digits, '.', '_' or '-', starting with a letter or digit")
    if name == DEFAULT_KEY_NAME:
        raise KeyRecordError(f"{DEFAULT_KEY_NAME!r} is the name of PROXY_API_KEY; choose another name")
    return name


@dataclass(frozen=True)
class KeyRing:
    """Every key record of one document, with the salt their hashes were made with."""

    salt: str
    keys: tuple[ClientKey, ...] = ()

    @classmethod
    def new(cls) -> KeyRing:
        return cls(secrets.token_hex(32))

    def digest(self, key: str) -> str:
        return hmac.new(bytes.fromhex(self.salt), key.encode("utf-8", "replace"), hashlib.sha256).hexdigest()

    def find(self, presented: str) -> ClientKey | None:
        """The record whose hash matches `presented` (whatever its state), compared in constant time."""
        if not presented or not self.keys:
            return None
        digest = self.digest(presented)
        found = None
        for key in self.keys:
            if hmac.compare_digest(key.hash, digest):
                found = key
        return found

    def named(self, name: str) -> ClientKey | None:
        return next((key for key in self.keys if key.name == name), None)

    def create(self, name: str, limits: KeyLimits, expires_at: datetime | None, now: datetime,
               key: str | None = None) -> tuple[KeyRing, str]:
        """The ring with a new key named `name` (`key`, or a new random one), and the key (to be shown once)."""
        validate_name(name)
        if self.named(name) is not None:
            raise KeyRecordError(f"a key named {name!r} already exists (revoked keys keep their name); choose "
                                 "another name")
        if expires_at is not None and expires_at <= now:
            raise KeyRecordError("--expires is in the past")
        key = key or new_key()
        record = ClientKey(name=name, hash=self.digest(key), fingerprint=fingerprint(key),
                           created_at=format_time(now), limits=limits, expires_at=expires_at)
        return replace(self, keys=(*self.keys, record)), key

    def changed(self, name: str, **changes: Any) -> KeyRing:
        """The ring with the record `name` changed (`limits`, `expires_at`, `enabled`, `revoked_at`)."""
        if self.named(name) is None:
            raise KeyRecordError(f"there is no key named {name!r}")
        return replace(self, keys=tuple(replace(key, **changes) if key.name == name else key for key in self.keys))

    def to_document(self) -> dict[str, Any]:
        return {"version": DOCUMENT_VERSION, "salt": self.salt, "keys": [key.to_json() for key in self.keys]}

    @classmethod
    def from_document(cls, raw: Any) -> KeyRing | None:
        """The ring of a key document; None when there is none yet; KeyRecordError when it is malformed."""
        if raw is None:
            return None
        if not isinstance(raw, dict):
            raise KeyRecordError("the client key document must be a JSON object")
        salt = raw.get("salt")
        if not isinstance(salt, str) or not re.fullmatch(r"[0-9a-f]{32,128}", salt):
            raise KeyRecordError("the client key document has no valid salt")
        entries = raw.get("keys")
        entries = [] if entries is None else entries
        if not isinstance(entries, list):
            raise KeyRecordError("keys must be a list")
        keys = tuple(ClientKey.from_json(entry) for entry in entries)
        if len({key.name for key in keys}) != len(keys):
            raise KeyRecordError("two keys share a name")
        return cls(salt, keys)
