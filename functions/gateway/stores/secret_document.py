"""The gateway's secret document <-> Credentials.

The secret is one JSON object in the Kiro IDE's camelCase: `refreshToken`, `accessToken`, `expiresAt` (ISO 8601),
`profileArn`, `region`, `clientId`, `clientSecret` (AWS SSO OIDC only), plus the gateway's client API key
`proxyApiKey`. Keys this module does not know are kept on every write.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any

from gateway.stores.base import Credentials, CredentialsNotFound
from gateway.stores.credential_files import parse_timestamp

# Fixed namespace for the PutSecretValue idempotency tokens (uuid5 of the rotated tokens).
_VERSION_NAMESPACE = uuid.UUID("5b0f5d3e-4a59-4c36-9a53-8d6c1f0b7a21")

# Secret fields that map onto Credentials; everything else is carried through untouched.
_KNOWN_FIELDS = ("refreshToken", "accessToken", "expiresAt", "profileArn", "region", "clientId", "clientSecret")


def parse_expiry(value: Any) -> datetime | None:
    """`expiresAt` as written by Kiro (ISO 8601, `Z` suffix) or as epoch seconds/milliseconds; None if unusable.

    Strings go through `gateway.stores.sources.parse_timestamp` (shared with the local stores); only the epoch numbers
    someone may have pushed by hand are handled here."""
    if isinstance(value, int | float):
        try:
            seconds = float(value) / 1000 if float(value) > 1e11 else float(value)
            return datetime.fromtimestamp(seconds, UTC)
        except (ValueError, OverflowError, OSError):
            return None
    return parse_timestamp(value)


def format_expiry(moment: datetime) -> str:
    """`2025-01-31T12:00:00.000Z`, the Kiro IDE's own style (not `format_timestamp`'s `+00:00` isoformat, which the
    local stores write for the original gateway: the secret stays in the form Kiro IDE itself would write)."""
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"


def credentials_from_document(document: dict[str, Any]) -> Credentials:
    """Credentials from the secret's JSON; raises CredentialsNotFound when it holds no refresh token yet."""
    refresh_token = document.get("refreshToken")
    if not isinstance(refresh_token, str) or not refresh_token:
        raise CredentialsNotFound(
            "The gateway's secret holds no Kiro credentials yet: run `kiro-gateway secret push` on a machine where "
            "you are logged in to Kiro (IDE or kiro-cli)."
        )

    def text(key: str) -> str:
        value = document.get(key)
        return value if isinstance(value, str) else ""

    scopes = document.get("scopes")
    extra = {k: v for k, v in document.items() if k not in _KNOWN_FIELDS and k not in ("proxyApiKey", "scopes")}
    return Credentials(
        refresh_token=refresh_token,
        access_token=text("accessToken"),
        expires_at=parse_expiry(document.get("expiresAt")),
        profile_arn=text("profileArn"),
        region=text("region"),
        client_id=text("clientId"),
        client_secret=text("clientSecret"),
        scopes=scopes if isinstance(scopes, str) else "",
        extra=extra,
    )


def document_with_credentials(document: dict[str, Any], creds: Credentials) -> dict[str, Any]:
    """`document` updated with `creds` (every other key, `proxyApiKey` included, kept as it is)."""
    updated = dict(document)
    updated["refreshToken"] = creds.refresh_token
    updated["accessToken"] = creds.access_token
    if creds.expires_at is not None:
        updated["expiresAt"] = format_expiry(creds.expires_at)
    else:
        updated.pop("expiresAt", None)
    for key, value in (("profileArn", creds.profile_arn), ("region", creds.region),
                       ("clientId", creds.client_id), ("clientSecret", creds.client_secret)):
        if value:
            updated[key] = value
    return updated


def version_token(document: dict[str, Any]) -> str:
    """Deterministic ClientRequestToken for a rotated document (same tokens, same version; retries create nothing)."""
    seed = "\n".join(str(document.get(key, "")) for key in ("refreshToken", "accessToken", "expiresAt"))
    return str(uuid.uuid5(_VERSION_NAMESPACE, seed))
