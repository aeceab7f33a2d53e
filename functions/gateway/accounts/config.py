"""The account list: parsing, validation and serialisation of account entries, and their masked description.

One format everywhere: a JSON array of objects (`KIRO_ACCOUNTS_FILE`, or `accounts` in the secret), each with `name`,
`kind` (`api_key` | `refresh_token`), `apiKey` or `refreshToken`, and optional `profileArn`, `region`, `clientId`,
`clientSecret`, `enabled` (default true), `apiHost` (`q` | `runtime`), `apiRegion`, `maxConcurrency`. Refresh-token
entries also carry the rotated `accessToken`/`expiresAt` the gateway writes back. Unknown keys are kept on writes.
"""

from __future__ import annotations

import hashlib
import json
import logging
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from gateway.stores.base import CredentialsNotFound

log = logging.getLogger(__name__)

AccountKind = Literal["api_key", "refresh_token"]
KINDS: tuple[str, ...] = ("api_key", "refresh_token")
DEFAULT_ACCOUNTS_FILE = Path("~/.kiro-gateway/accounts.json")  # where `login` and `accounts add` write by default
API_KEY_SHAPE = re.compile(r"^ksk_[A-Za-z0-9_-]{16,}$")  # a peer's check (reference 2026 §4 [S]): a warning only
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.@-]{0,63}$")


class AccountsError(CredentialsNotFound):
    """The account list cannot be used; the message says which entry and what to fix (never a secret)."""


@dataclass(frozen=True)
class AccountConfig:
    """One account as configured. `entry` is the JSON object it came from (kept whole for write-back)."""

    name: str
    kind: AccountKind
    api_key: str = field(default="", repr=False)  # secrets never in a repr (logs, tracebacks)
    refresh_token: str = field(default="", repr=False)
    profile_arn: str = ""
    region: str = ""
    client_id: str = ""
    client_secret: str = field(default="", repr=False)
    enabled: bool = True
    api_host: str = ""  # "" = the setting for its kind (KIRO_API_HOST / KIRO_API_KEY_HOST)
    api_region: str = ""  # chat region when it differs from `region` (an IdC login's OIDC region)
    max_concurrency: int = 0
    entry: dict[str, Any] = field(default_factory=dict, compare=False, repr=False)

    @property
    def secret(self) -> str:
        """The credential this account was configured with (the API key or the refresh token)."""
        return self.api_key if self.kind == "api_key" else self.refresh_token

    @property
    def fingerprint(self) -> str:
        """A short hash of the credential: lasting states (revoked) apply only to the credential they were seen on."""
        return hashlib.sha256(self.secret.encode()).hexdigest()[:16]


def _text(entry: dict[str, Any], key: str, where: str) -> str:
    value = entry.get(key, "")
    if value is None:
        return ""
    if not isinstance(value, str):
        raise AccountsError(f"{where}: `{key}` must be a string")
    return value.strip()


def parse_account(entry: Any, where: str) -> AccountConfig:
    """One entry, validated; `where` names it in errors (`accounts file X, entry 2`)."""
    if not isinstance(entry, dict):
        raise AccountsError(f"{where} is not a JSON object")
    name = _text(entry, "name", where)
    if not _NAME.match(name):
        raise AccountsError(f"{where}: `name` must be 1-64 letters, digits or `_.@-`, starting with a letter or digit")
    where = f"{where} ({name})"
    kind = _text(entry, "kind", where) or ("api_key" if entry.get("apiKey") else "refresh_token")
    if kind not in KINDS:
        raise AccountsError(f"{where}: `kind` must be api_key or refresh_token, not {kind!r}")
    enabled = entry.get("enabled", True)
    if not isinstance(enabled, bool):
        raise AccountsError(f"{where}: `enabled` must be true or false")
    api_host = _text(entry, "apiHost", where)
    if api_host not in ("", "q", "runtime"):
        raise AccountsError(f"{where}: `apiHost` must be q or runtime, not {api_host!r}")
    cap = entry.get("maxConcurrency", 0)
    if not isinstance(cap, int) or isinstance(cap, bool) or cap < 0:
        raise AccountsError(f"{where}: `maxConcurrency` must be a whole number >= 0")
    common = {"name": name, "profile_arn": _text(entry, "profileArn", where), "region": _text(entry, "region", where),
              "enabled": enabled, "api_host": api_host, "api_region": _text(entry, "apiRegion", where),
              "max_concurrency": cap, "entry": dict(entry)}
    if kind == "api_key":
        key = _text(entry, "apiKey", where)
        if not key:
            raise AccountsError(f"{where}: an api_key account needs `apiKey`")
        if not API_KEY_SHAPE.match(key):
            log.warning("%s: the API key does not look like a Kiro API key (ksk_…); using it anyway", where)
        return AccountConfig(kind="api_key", api_key=key, **common)
    token = _text(entry, "refreshToken", where)
    if not token:
        raise AccountsError(f"{where}: a refresh_token account needs `refreshToken` (log in with "
                            "`kiro-gateway login --device`)")
    return AccountConfig(kind="refresh_token", refresh_token=token, client_id=_text(entry, "clientId", where),
                         client_secret=_text(entry, "clientSecret", where), **common)


def parse_accounts(data: Any, where: str) -> list[AccountConfig]:
    """Every entry of an account list; names must be unique."""
    if not isinstance(data, list):
        raise AccountsError(f"{where} must hold a JSON array of accounts")
    accounts = [parse_account(entry, f"{where}, entry {number}") for number, entry in enumerate(data, 1)]
    seen: set[str] = set()
    for account in accounts:
        if account.name in seen:
            raise AccountsError(f"{where}: the name {account.name!r} is used twice")
        seen.add(account.name)
    return accounts


def read_accounts_file(path: Path) -> list[dict[str, Any]]:
    """The raw entries of an accounts file ([] when it does not exist yet)."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return []
    except (OSError, ValueError) as exc:
        raise AccountsError(f"The accounts file {path} could not be read: {type(exc).__name__}") from None
    if not isinstance(data, list):
        raise AccountsError(f"The accounts file {path} must hold a JSON array of accounts (the top level is the array)")
    return data


def upsert_entry(entries: list[dict[str, Any]], entry: dict[str, Any]) -> tuple[list[dict[str, Any]], bool]:
    """`entries` with `entry` replacing the one of the same name (kept in place) or appended; (list, replaced)."""
    out = [dict(e) for e in entries]
    for index, existing in enumerate(out):
        if isinstance(existing, dict) and existing.get("name") == entry.get("name"):
            out[index] = entry
            return out, True
    out.append(entry)
    return out, False


def api_key_entry(name: str, key: str, *, region: str = "", profile_arn: str = "") -> dict[str, Any]:
    """A new API-key account entry."""
    entry: dict[str, Any] = {"name": name, "kind": "api_key", "apiKey": key, "enabled": True}
    if region:
        entry["region"] = region
    if profile_arn:
        entry["profileArn"] = profile_arn
    return entry


def mask(value: str) -> str:
    from gateway.redact import mask as redact_mask

    return redact_mask(value) if value else "-"
