"""Token stores for one refresh-token account of a list: an entry of the local accounts file, or an entry of the
secret's `accounts` on AWS. Both reuse the single-credential stores' refresh protocol (re-read before refreshing,
persist the rotated tokens before using them), keyed to the entry's `name`; each account keeps its own lease.

Several accounts share one file or one secret, so a write replaces only its own entry in the latest document: the
file under its inter-process lock, the secret under a short DynamoDB lease (`lease#secret-write`) that every
instance takes around its read-merge-write, so two accounts rotating at once never drop each other's tokens.
"""

from __future__ import annotations

import json
import logging
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

from gateway.accounts.config import AccountsError, read_accounts_file
from gateway.stores.aws_clients import aws_errors, is_client_error
from gateway.stores.base import Credentials, CredentialsNotFound
from gateway.stores.credential_files import utc_now
from gateway.stores.local import Clock, _LocalTokenStore, atomic_write_json
from gateway.stores.refresh_lease import LEASE_KEY
from gateway.stores.secret_document import credentials_from_document, document_with_credentials
from gateway.stores.secrets_manager import SecretsManagerTokenStore

log = logging.getLogger(__name__)

WRITE_LEASE_KEY = LEASE_KEY  # one write lease for every writer of the secret, whatever its layout
WRITE_LEASE_SECONDS = 15
_TOKEN_FIELDS = ("refreshToken", "accessToken", "expiresAt", "profileArn", "region", "clientId", "clientSecret")
_VERSION_NAMESPACE = uuid.UUID("0d7c8a0e-3f57-4f8e-9a43-2a3f1c9b6e15")


def find_entry(entries: Any, name: str) -> dict[str, Any] | None:
    if not isinstance(entries, list):
        return None
    return next((e for e in entries if isinstance(e, dict) and e.get("name") == name), None)


def merge_tokens(latest: dict[str, Any], mine: dict[str, Any]) -> dict[str, Any]:
    """`latest` (what is stored now: maybe disabled, renamed fields) with the credential fields of `mine`."""
    merged = dict(latest)
    for key in _TOKEN_FIELDS:
        if key in mine:
            merged[key] = mine[key]
        else:
            merged.pop(key, None)
    return merged


class AccountsFileTokenStore(_LocalTokenStore):
    """One refresh-token entry of a local accounts file; rotated tokens are written back into that entry."""

    def __init__(self, path: Path, name: str, *, state_file: Path | None = None, clock: Clock = utc_now) -> None:
        super().__init__(state_file=state_file, lock_target=path, clock=clock)
        self.path = path
        self.name = name

    def describe(self) -> str:
        return f"account {self.name} in {self.path}"

    def _origin(self) -> str:
        return f"accounts:{self.path.absolute()}:{self.name}"

    def _entry(self) -> dict[str, Any]:
        entry = find_entry(read_accounts_file(self.path), self.name)
        if entry is None:
            raise CredentialsNotFound(f"The account {self.name} is no longer in {self.path}")
        return entry

    def _read_source(self) -> Credentials:
        return credentials_from_document(self._entry())

    def _write_source(self, new: Credentials) -> bool:
        entries = read_accounts_file(self.path)
        entry = find_entry(entries, self.name)
        if entry is None:
            log.warning("The account %s left %s while it refreshed; keeping its rotated tokens in the state file",
                        self.name, self.path)
            return False
        entry.update(document_with_credentials(entry, new))
        atomic_write_json(self.path, entries)
        return True


class SecretAccountTokenStore(SecretsManagerTokenStore):
    """One refresh-token entry of the secret's `accounts`, with its own refresh lease (`lease#refresh#<name>`)."""

    def __init__(self, secret_id: str, table_name: str, name: str, **kwargs: Any) -> None:
        super().__init__(secret_id, table_name, lease_key=f"lease#refresh#{name}", **kwargs)
        self.name = name

    def describe(self) -> str:
        return f"account {self.name} in AWS Secrets Manager secret {self.secret_id}"

    def _entry(self, document: dict[str, Any]) -> dict[str, Any]:
        entry = find_entry(document.get("accounts"), self.name)
        if entry is None:
            raise AccountsError(f"The account {self.name} is no longer in the secret {self.secret_id}")
        return entry

    def _credentials_of(self, document: dict[str, Any]) -> Credentials:
        return credentials_from_document(self._entry(document))

    def _with_credentials(self, document: dict[str, Any], creds: Credentials) -> dict[str, Any]:
        updated = dict(document)
        entries = [dict(e) if isinstance(e, dict) else e for e in document.get("accounts") or []]
        entry = find_entry(entries, self.name)
        if entry is None:
            raise AccountsError(f"The account {self.name} is no longer in the secret {self.secret_id}")
        entry.update(document_with_credentials(entry, creds))
        updated["accounts"] = entries
        return updated

    def _version_token(self, document: dict[str, Any]) -> str:
        entry = self._entry(document)
        seed = "\n".join([self.name, *(str(entry.get(k, "")) for k in ("refreshToken", "accessToken", "expiresAt"))])
        return str(uuid.uuid5(_VERSION_NAMESPACE, seed))

    async def proxy_api_key(self) -> str:
        key = (await self.document()).get("proxyApiKey")
        return key if isinstance(key, str) else ""

    def _put_secret(self, payload: str, token: str) -> None:
        """Write this account's entry into the latest secret (read-merge-write under the secret-write lease)."""
        mine = self._entry(json.loads(payload))
        before = find_entry((self._document or {}).get("accounts"), self.name) or {}
        owner = uuid.uuid4().hex
        dynamodb = self._lease.dynamodb.get() if self.table_name else None
        held = hold_write_lease(dynamodb, self.table_name, owner)
        try:
            raw = self._secrets.get().get_secret_value(SecretId=self.secret_id).get("SecretString") or "{}"
            latest = json.loads(raw)
            if not isinstance(latest, dict):
                raise AccountsError(f"The secret {self.secret_id} no longer holds a JSON object")
            entries = [dict(e) if isinstance(e, dict) else e for e in latest.get("accounts") or []]
            stored = find_entry(entries, self.name)
            if stored is None:
                log.warning("account %s was removed from the secret while it refreshed; not writing it back", self.name)
                return
            if stored.get("refreshToken") not in (before.get("refreshToken"), mine.get("refreshToken")):
                log.info("account %s was logged in again while it refreshed; keeping the new login", self.name)
                return
            merged = merge_tokens(stored, mine)
            stored.clear()
            stored.update(merged)
            latest["accounts"] = entries
            self._secrets.get().put_secret_value(SecretId=self.secret_id, ClientRequestToken=token,
                                                 SecretString=json.dumps(latest, separators=(",", ":")))
        finally:
            if held:
                release_write_lease(dynamodb, self.table_name, owner)


def hold_write_lease(dynamodb: Any, table: str, owner: str, *, wait_seconds: float = WRITE_LEASE_SECONDS,
                     required: bool = False) -> bool:
    """Take `lease#secret-write` (waiting a few seconds for another writer), for every read-merge-write of a secret
    with `accounts`: instances writing rotated tokens and the CLI editing the list. False when there is no table or it
    cannot be used (the write then goes ahead unguarded, as a single writer's would)."""
    if dynamodb is None or not table:
        return False
    deadline = time.time() + wait_seconds
    delay = 0.05
    while True:
        now = time.time()
        try:
            dynamodb.put_item(
                TableName=table,
                Item={"pk": {"S": WRITE_LEASE_KEY}, "owner": {"S": owner},
                      "expires_at": {"N": str(int(now + WRITE_LEASE_SECONDS))}},
                ConditionExpression="attribute_not_exists(pk) OR expires_at < :now",
                ExpressionAttributeValues={":now": {"N": str(int(now))}},
            )
            return True
        except aws_errors() as error:
            if not is_client_error(error, "ConditionalCheckFailedException"):
                if required:
                    raise
                log.warning("secret write lease unavailable (%s); writing without it", type(error).__name__)
                return False
        if now > deadline:
            if required:
                raise AccountsError(f"the secret is being written by someone else (its lease in {table} is held for "
                                    f"over {wait_seconds:.0f} s); try again")
            log.warning("secret write lease still held after %s s; writing without it", wait_seconds)
            return False
        time.sleep(delay)
        delay = min(delay * 2, 0.5)


def release_write_lease(dynamodb: Any, table: str, owner: str) -> None:
    """Give the lease back and stamp its marker (`done_at`, in one transaction): a refreshing instance whose copy of
    the secret is older than this write then reads the secret again before writing it."""
    try:
        dynamodb.transact_write_items(TransactItems=[
            {"Delete": {"TableName": table, "Key": {"pk": {"S": WRITE_LEASE_KEY}},
                        "ConditionExpression": "#owner = :owner", "ExpressionAttributeNames": {"#owner": "owner"},
                        "ExpressionAttributeValues": {":owner": {"S": owner}}}},
            {"Put": {"TableName": table, "Item": {"pk": {"S": f"{WRITE_LEASE_KEY}#done"},
                                                  "done_at": {"N": f"{time.time():.3f}"}}}},
        ])
    except aws_errors():
        pass  # it expires by itself


def update_secret(secrets: Any, dynamodb: Any, table: str, secret_id: str,
                  change: Callable[[dict[str, Any]], dict[str, Any]]) -> dict[str, Any]:
    """Read the latest secret, apply `change`, write it, all under the write lease (when the table is known), so an
    edit of the account list never overwrites tokens an instance rotated meanwhile. Returns what was written."""
    owner = uuid.uuid4().hex
    held = hold_write_lease(dynamodb, table, owner)
    try:
        raw = secrets.get_secret_value(SecretId=secret_id).get("SecretString") or "{}"
        latest = json.loads(raw)
        if not isinstance(latest, dict):
            raise AccountsError(f"The secret {secret_id} does not hold a JSON object")
        document = change(latest)
        if table:
            document["stateTable"] = table  # every later writer finds the lease from the secret alone
        secrets.put_secret_value(SecretId=secret_id, SecretString=json.dumps(document, separators=(",", ":")))
        return document
    finally:
        if held:
            release_write_lease(dynamodb, table, owner)
