"""Reading and changing the key ring where it is kept, for `kiro-gateway keys`: the local file or the secret.

The secret also holds the Kiro credentials, which the deployed gateway rewrites whenever it rotates the refresh
token. Every writer of the secret re-reads and merges under one lease, the item `lease#secret-write` of the state
table: this edit holds it around its read-modify-write (when the table is known: the stack's output, or
`KIRO_STATE_TABLE`, or the secret's own `stateTable`, which the gateway writes), and the gateway holds it around its
refresh and writes only the credential fields into the latest secret. So a revocation is never undone by a token
refresh, and a refresh never by an edit.

Without the table (a secret the gateway has not written yet, a bare `--secret-id`, no `KIRO_STATE_TABLE`) the edit
is still checked afterwards: once our version is written, the version it displaced (now `AWSPREVIOUS`) must be the
one we read; if it is not, someone wrote in between and the change is applied again on top of that version. (The
gateway's merge keeps the edit.)
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

from gateway.client_keys.records import KeyRing
from gateway.client_keys.sources import SECRET_FIELD

Change = Callable[[KeyRing], KeyRing]
_ATTEMPTS = 5
STATE_TABLE_FIELD = "stateTable"
CLI_LEASE_WAIT = 60.0  # seconds the CLI waits for the lease (a crashed holder's lease runs out within 30 s)


def dynamodb_client(secret_id: str) -> Any:
    """A DynamoDB client in the secret's region (for the lease; the CLI's only DynamoDB use here)."""
    import boto3

    from gateway.stores.aws_clients import region_of

    return boto3.session.Session().client("dynamodb", region_name=region_of(secret_id))


def read_file(path: Path) -> KeyRing | None:
    if not path.is_file():
        return None
    text = path.read_text(encoding="utf-8")
    return KeyRing.from_document(json.loads(text)) if text.strip() else None


def edit_file(path: Path, change: Change) -> KeyRing:
    """Apply `change` to the file's ring (a new one, with a fresh salt, when there is none) and save it (0600)."""
    # lazy: the local-file writer loads only when a local key file is edited
    from gateway.stores.local import atomic_write_json

    ring = change(read_file(path) or KeyRing.new())
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    atomic_write_json(path, ring.to_document())
    return ring


def _document(answer: dict[str, Any]) -> dict[str, Any]:
    document = json.loads(answer.get("SecretString") or "{}")
    if not isinstance(document, dict):
        raise ValueError("the secret does not hold a JSON object")
    return document


def read_secret(client: Any, secret_id: str) -> tuple[KeyRing | None, dict[str, Any]]:
    """(the ring, the whole document) of the secret."""
    document = _document(client.get_secret_value(SecretId=secret_id))
    return KeyRing.from_document(document.get(SECRET_FIELD)), document


def edit_secret(client: Any, secret_id: str, change: Change, *, dynamodb: Any = None, table: str = "") -> KeyRing:
    """Apply `change` to the secret's ring and write it back, under the secret's write lease when `table` is given,
    re-applying it if another write came in between."""
    from gateway.accounts.stores import hold_write_lease, release_write_lease

    if not table:  # the gateway keeps its table's name in the secret (`stateTable`) for exactly this
        table = _document(client.get_secret_value(SecretId=secret_id)).get(STATE_TABLE_FIELD) or ""
        if table and dynamodb is None:
            dynamodb = dynamodb_client(secret_id)
    owner = uuid.uuid4().hex
    held = hold_write_lease(dynamodb, table, owner, wait_seconds=CLI_LEASE_WAIT, required=True)
    try:
        return _edit_secret(client, secret_id, change)
    finally:
        if held:
            release_write_lease(dynamodb, table, owner)


def _edit_secret(client: Any, secret_id: str, change: Change) -> KeyRing:
    answer = client.get_secret_value(SecretId=secret_id)
    base_version, document = answer["VersionId"], _document(answer)
    for _ in range(_ATTEMPTS):
        ring = change(KeyRing.from_document(document.get(SECRET_FIELD)) or KeyRing.new())
        document[SECRET_FIELD] = ring.to_document()
        written = client.put_secret_value(SecretId=secret_id, SecretString=json.dumps(document, separators=(",", ":")))
        displaced = client.get_secret_value(SecretId=secret_id, VersionStage="AWSPREVIOUS")
        if displaced["VersionId"] in (base_version, written["VersionId"]):
            return ring  # nobody in between (or someone wrote after us, on top of our version)
        # Someone wrote between our read and our write: start again from their version, replacing ours.
        base_version, document = written["VersionId"], _document(displaced)
    raise RuntimeError(f"the secret {secret_id} kept changing while the client keys were written; run the command "
                       "again")
