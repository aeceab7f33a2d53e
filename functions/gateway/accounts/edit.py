"""Writing account entries where `serve` and the deployed gateway find them: the local accounts file, or the
secret's `accounts` list (shared by `kiro-gateway login`, `kiro-gateway accounts` and `secret push --api-key`)."""

from __future__ import annotations

import secrets
import time
from pathlib import Path
from typing import Any

from gateway.accounts.config import AccountsError, parse_accounts, read_accounts_file, upsert_entry

# The single-credential secret format's fields: replaced by `accounts` when the first account entry is written.
SINGLE_FORMAT_FIELDS = ("refreshToken", "accessToken", "expiresAt", "profileArn", "region", "clientId",
                        "clientSecret", "scopes", "authMethod", "provider")


def save_local(path: Path, entries: list[dict[str, Any]]) -> None:
    """Validate and write an accounts file (directory 0700, file 0600)."""
    # lazy: local-file and secret-write code load only for the edit that needs it (a Lambda never writes files)
    from gateway.stores.local import atomic_write_json

    parse_accounts(entries, f"The accounts file {path}")
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    atomic_write_json(path, entries, new_file_mode=0o600)


def upsert_local(path: Path, entry: dict[str, Any]) -> bool:
    """Put `entry` into the accounts file (replacing the one of the same name); True when it replaced one."""
    entries, replaced = upsert_entry(read_accounts_file(path), entry)
    save_local(path, entries)
    return replaced


def secret_accounts(document: dict[str, Any]) -> list[dict[str, Any]]:
    entries = document.get("accounts")
    if entries is None:
        return []
    if not isinstance(entries, list):
        raise AccountsError("The secret's `accounts` is not a JSON array")
    return entries


def upsert_secret(document: dict[str, Any], entry: dict[str, Any]) -> tuple[dict[str, Any], list[str]]:
    """`document` with `entry` in its `accounts` (created from the single-credential format when needed, whose
    credential then goes: it is usually an IDE's token, which a gateway should not share). Returns notes to print."""
    notes: list[str] = []
    updated = dict(document)
    if "accounts" not in updated:
        if updated.get("refreshToken"):
            notes.append("The secret held a single credential (pushed from an IDE or kiro-cli login); it is "
                         "replaced by the account list.")
        for key in SINGLE_FORMAT_FIELDS:
            updated.pop(key, None)
    entries, replaced = upsert_entry(secret_accounts(updated), entry)
    parse_accounts(entries, "The secret's `accounts`")
    updated["accounts"] = entries
    notes.append(f"{'Replaced' if replaced else 'Added'} account {entry['name']!r} in the secret.")
    return updated, notes


def ensure_proxy_key(document: dict[str, Any], existing: dict[str, Any]) -> str | None:
    """Keep the client API key, or create one; returns it when it must be shown (new, or never shown before)."""
    stored = existing.get("proxyApiKey") if isinstance(existing.get("proxyApiKey"), str) else ""
    if not stored:
        document["proxyApiKey"] = secrets.token_urlsafe(32)
        return str(document["proxyApiKey"])
    document["proxyApiKey"] = stored
    return stored if "pushedAt" not in existing else None


def push_entry(session: Any, secret_id: str, table: str, entry: dict[str, Any]) -> tuple[list[str], str | None]:
    """Put `entry` into the deployed secret (under the write lease when the stack's table is known), keeping or
    creating the client API key. Returns (notes to print, the client API key when it must be shown)."""
    # lazy: local-file and secret-write code load only for the edit that needs it (a Lambda never writes files)
    from gateway.accounts.stores import update_secret

    said: dict[str, Any] = {"notes": [], "announce": None}

    def change(existing: dict[str, Any]) -> dict[str, Any]:
        document, said["notes"] = upsert_secret(existing, entry)
        said["announce"] = ensure_proxy_key(document, existing)
        document["pushedAt"] = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
        return document

    update_secret(session.client("secretsmanager"), session.client("dynamodb") if table else None, table, secret_id,
                  change)
    return said["notes"], said["announce"]
