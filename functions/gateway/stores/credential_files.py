"""The Kiro IDE's and kiro-cli's credential files: reading them, and writing rotated tokens back.

Plain synchronous functions over one source each (the stores in `gateway.stores.local` call them in a thread, again
before every refresh, because Kiro IDE or kiro-cli may have rotated the token under us), plus the timestamp helpers
every credential store shares. Here rather than in `gateway.stores.sources` so that the stores and the source
discovery both import them, and neither imports the other back.
"""

from __future__ import annotations

import json
import re
import sqlite3
from contextlib import closing
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from gateway.stores.base import Credentials, CredentialsNotFound

JSON_DEFAULT = Path(".aws/sso/cache/kiro-auth-token.json")  # relative to the home directory
SQLITE_DEFAULTS = (
    Path(".local/share/kiro-cli/data.sqlite3"),
    Path(".local/share/amazon-q/data.sqlite3"),
    Path("Library/Application Support/kiro-cli/data.sqlite3"),  # macOS
)
# kiro-cli token rows, in the order they are searched ("odic" is how kiro-cli spells it).
SOCIAL_KEY = "kirocli:social:token"
TOKEN_KEYS = (SOCIAL_KEY, "kirocli:odic:token", "codewhisperer:odic:token")
EXTERNAL_IDP_KEY = "kirocli:external-idp:token"
REGISTRATION_KEYS = ("kirocli:odic:device-registration", "codewhisperer:odic:device-registration")
PROFILE_STATE_KEY = "api.codewhisperer.profile"
SQLITE_TIMEOUT = 5.0  # seconds to wait on a database kiro-cli is writing (the original gateway's value)

_FRACTION = re.compile(r"(\.\d{6})\d+")


def utc_now() -> datetime:
    return datetime.now(UTC)


def parse_timestamp(value: Any) -> datetime | None:
    """An RFC 3339 / ISO 8601 time as aware UTC, or None. Accepts `Z` and kiro-cli's 9 fractional digits."""
    if not isinstance(value, str) or not value.strip():
        return None
    text = _FRACTION.sub(r"\1", value.strip())
    if text.endswith(("Z", "z")):
        text = text[:-1] + "+00:00"
    try:
        parsed = datetime.fromisoformat(text)
    except ValueError:
        return None
    return parsed.replace(tzinfo=UTC) if parsed.tzinfo is None else parsed.astimezone(UTC)


def format_timestamp(value: datetime | None) -> str | None:
    """`isoformat()` in UTC (`2026-01-12T23:00:00+00:00`), the form the original gateway writes back."""
    return value.astimezone(UTC).isoformat() if value is not None else None


def _scopes(value: Any) -> str:
    if isinstance(value, list):
        return " ".join(str(v) for v in value)
    return value if isinstance(value, str) else ""


def _read_json_object(path: Path, what: str) -> dict[str, Any]:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise CredentialsNotFound(f"{what} {path} does not exist") from None
    except (OSError, ValueError) as exc:
        raise CredentialsNotFound(f"{what} {path} could not be read: {type(exc).__name__}") from None
    if not isinstance(data, dict):
        raise CredentialsNotFound(f"{what} {path} does not hold a JSON object")
    return data


# -- Kiro IDE JSON file ------------------------------------------------------------------------------------------------


def read_json_file(path: Path, *, default_region: str = "us-east-1") -> Credentials:
    """Credentials from a Kiro IDE `kiro-auth-token.json` (camelCase); `clientIdHash` adds the device registration."""
    data = _read_json_object(path, "The Kiro credentials file")
    refresh_token = data.get("refreshToken")
    if not isinstance(refresh_token, str) or not refresh_token:
        raise CredentialsNotFound(f"The Kiro credentials file {path} has no refreshToken; log in to Kiro IDE again")
    client_id, client_secret = data.get("clientId") or "", data.get("clientSecret") or ""
    client_hash = data.get("clientIdHash")
    if isinstance(client_hash, str) and client_hash and not (client_id and client_secret):
        device = _device_registration(path.parent, client_hash)
        client_id, client_secret = device.get("clientId") or "", device.get("clientSecret") or ""
    return Credentials(
        refresh_token=refresh_token,
        access_token=data.get("accessToken") or "",
        expires_at=parse_timestamp(data.get("expiresAt")),
        profile_arn=data.get("profileArn") or "",
        region=data.get("region") or default_region,
        client_id=str(client_id),
        client_secret=str(client_secret),
        scopes=_scopes(data.get("scopes")),
        extra={"source": "json", "auth_method": data.get("authMethod"), "provider": data.get("provider")},
    )


def _device_registration(directory: Path, client_hash: str) -> dict[str, Any]:
    """The Enterprise IDE's `{clientIdHash}.json` beside the token file (or in ~/.aws/sso/cache)."""
    for folder in (directory, Path.home() / ".aws/sso/cache"):
        candidate = folder / f"{client_hash}.json"
        if candidate.is_file():
            return _read_json_object(candidate, "The Kiro device registration file")
    raise CredentialsNotFound(
        f"The Kiro credentials file names a device registration ({client_hash}.json) that is not in {directory}; "
        "log in to Kiro IDE again"
    )


# -- kiro-cli SQLite ---------------------------------------------------------------------------------------------------


def connect_sqlite(path: Path, *, readonly: bool) -> sqlite3.Connection:
    """A connection with kiro-cli's patience; read-only opens never create or lock the file for writing."""
    if readonly:
        return sqlite3.connect(f"{path.resolve().as_uri()}?mode=ro", uri=True, timeout=SQLITE_TIMEOUT)
    return sqlite3.connect(path, timeout=SQLITE_TIMEOUT, isolation_level=None)


def _row_json(value: Any) -> dict[str, Any] | None:
    try:
        data = json.loads(value.decode() if isinstance(value, bytes) else value)
    except (TypeError, ValueError, UnicodeDecodeError):
        return None
    return data if isinstance(data, dict) else None


def read_sqlite(path: Path, *, default_region: str = "us-east-1") -> tuple[Credentials, str]:
    """Credentials from kiro-cli's `auth_kv` table and the key of the token row that matched."""
    if not path.is_file():
        raise CredentialsNotFound(f"The kiro-cli database {path} does not exist")
    wanted = (*TOKEN_KEYS, EXTERNAL_IDP_KEY, *REGISTRATION_KEYS)
    try:
        with closing(connect_sqlite(path, readonly=True)) as conn:
            marks = ",".join("?" * len(wanted))
            rows = conn.execute(f"SELECT key, value FROM auth_kv WHERE key IN ({marks})", wanted).fetchall()
            profile_arn = _state_profile_arn(conn)
    except sqlite3.Error as exc:
        raise CredentialsNotFound(f"The kiro-cli database {path} could not be read ({exc})") from None
    values = {key: data for key, value in rows if (data := _row_json(value)) is not None}
    key = next((k for k in TOKEN_KEYS if values.get(k, {}).get("refresh_token")), None)
    if key is None:
        hint = " (external identity-provider logins are not supported yet)" if EXTERNAL_IDP_KEY in values else ""
        raise CredentialsNotFound(f"The kiro-cli database {path} holds no login{hint}; run `kiro-cli login`")
    token = values[key]
    registration: dict[str, Any] = {}
    if key != SOCIAL_KEY:  # social logins refresh through Kiro desktop; a stray registration must not turn them OIDC
        order = REGISTRATION_KEYS if key.startswith("kirocli:") else REGISTRATION_KEYS[::-1]
        registration = next((values[k] for k in order if k in values), {})
    creds = Credentials(
        refresh_token=token["refresh_token"],
        access_token=token.get("access_token") or "",
        expires_at=parse_timestamp(token.get("expires_at")),
        profile_arn=token.get("profile_arn") or profile_arn,
        region=token.get("region") or registration.get("region") or default_region,
        client_id=str(registration.get("client_id") or ""),
        client_secret=str(registration.get("client_secret") or ""),
        scopes=_scopes(token.get("scopes")),
        extra={"source": "sqlite", "key": key},
    )
    return creds, key


def _state_profile_arn(conn: sqlite3.Connection) -> str:
    """kiro-cli's selected profile (`state` table), used when the token row carries no ARN."""
    try:
        row = conn.execute("SELECT value FROM state WHERE key = ?", (PROFILE_STATE_KEY,)).fetchone()
    except sqlite3.Error:
        return ""
    data = _row_json(row[0]) if row else None
    return str(data.get("arn") or "") if data else ""


def write_sqlite(path: Path, key: str, updates: dict[str, Any]) -> bool:
    """Read-merge-write of one `auth_kv` row in one transaction (unknown fields kept); False if the row is gone."""
    with closing(connect_sqlite(path, readonly=False)) as conn:
        conn.execute("BEGIN IMMEDIATE")
        try:
            row = conn.execute("SELECT value FROM auth_kv WHERE key = ?", (key,)).fetchone()
            data = _row_json(row[0]) if row else None
            if data is None:
                conn.execute("ROLLBACK")
                return False
            data.update({k: v for k, v in updates.items() if v})
            conn.execute("UPDATE auth_kv SET value = ? WHERE key = ?", (json.dumps(data), key))
            conn.execute("COMMIT")
        except BaseException:
            if conn.in_transaction:
                conn.execute("ROLLBACK")
            raise
    return True
