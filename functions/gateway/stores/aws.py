"""AWS-backed stores: Kiro credentials in Secrets Manager, a refresh lease and the model cache in DynamoDB.

The secret is one JSON object in the Kiro IDE's camelCase: `refreshToken`, `accessToken`, `expiresAt` (ISO 8601),
`profileArn`, `region`, `clientId`, `clientSecret` (AWS SSO OIDC only), plus the gateway's client API key
`proxyApiKey`. Keys this module does not know are kept on every write.

Refresh tokens rotate and every one is accepted exactly once, while several Lambda instances may find the access
token expired at the same moment. `SecretsManagerTokenStore.refresh` therefore:

1. re-reads the secret; if another instance already rotated the credentials, returns them (no refresh);
2. otherwise takes a lease, a conditional DynamoDB write on the item `lease#refresh`; the others poll the secret
   with backoff until the winner's result appears (or the lease expires and one of them takes over);
3. the winner re-reads once more (someone may have finished just before), refreshes, writes the rotated credentials
   with `PutSecretValue` (retried; the version's ClientRequestToken derives from the new tokens, so a retry of a
   write that did land creates nothing new) and only then returns and releases the lease.

If the refresh is refused because the refresh token was already used, the secret is re-read: a newer token there
(rotated by another instance, or pushed by `kiro-gateway secret push`) is used instead.

If the write still fails after its retries, the rotated credentials are the only valid ones and exist only in this
process: they are kept in memory, `SecretWriteError` is raised, and every later `load()`/`refresh()` first retries
the write (returning those credentials once it lands; `load()` returns them even while it does not). The lease is
kept until that write lands (or expires), so other instances do not burn the now-invalid stored token meanwhile.

boto3 is synchronous: every call runs in a worker thread. Clients are created on first use and honour
`AWS_ENDPOINT_URL` (moto in tests).
"""

from __future__ import annotations

import asyncio
import json
import logging
import random
import threading
import time
import uuid
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from typing import Any

from gateway.auth.refresh import RefreshError
from gateway.stores.base import Credentials, CredentialsNotFound, RefreshFn

log = logging.getLogger(__name__)

Clock = Callable[[], float]
Sleep = Callable[[float], Awaitable[None]]

LEASE_KEY = "lease#refresh"
MODELS_KEY = "models"
# Fixed namespace for the PutSecretValue idempotency tokens (uuid5 of the rotated tokens).
_VERSION_NAMESPACE = uuid.UUID("5b0f5d3e-4a59-4c36-9a53-8d6c1f0b7a21")
# Credentials another instance just rotated are taken as they are when valid at least this long.
_ADOPT_MARGIN = timedelta(seconds=60)

# Secret fields that map onto Credentials; everything else is carried through untouched.
_KNOWN_FIELDS = ("refreshToken", "accessToken", "expiresAt", "profileArn", "region", "clientId", "clientSecret")


class SecretWriteError(RefreshError):
    """Rotated credentials could not be written to the secret; they are kept in memory and the write is retried.

    A RefreshError (status None: not a rejection), so the AuthManager and the routes report it like any failed
    refresh, with this message."""

    def __init__(self, message: str) -> None:
        super().__init__(None, message)


class RefreshBusyError(RefreshError):
    """Another instance held the refresh lease for longer than we were willing to wait."""

    def __init__(self, message: str) -> None:
        super().__init__(None, message)


def _metric(outcome: str) -> None:
    """TokenRefreshes{outcome} on Lambda; nothing elsewhere (see gateway.observability)."""
    from gateway.observability import record_token_refresh

    record_token_refresh(outcome)


def _client_config(connect: float, read: float, attempts: int) -> Any:
    from botocore.config import Config

    return Config(connect_timeout=connect, read_timeout=read, retries={"max_attempts": attempts, "mode": "standard"})


def _region_of(resource_id: str) -> str | None:
    """The region inside an ARN (`arn:aws:secretsmanager:REGION:...`), else None (the default chain decides)."""
    parts = resource_id.split(":")
    if len(parts) > 4 and parts[0] == "arn" and parts[3]:
        return parts[3]
    return None


class _LazyClient:
    """A boto3 client made on first use, from its own session (boto3's default session is not thread-safe)."""

    def __init__(self, service: str, region: str | None, config: Any, given: Any = None):
        self._service = service
        self._region = region
        self._config = config
        self._client = given
        self._lock = threading.Lock()

    def get(self) -> Any:
        if self._client is None:
            with self._lock:
                if self._client is None:
                    import boto3

                    session = boto3.session.Session()
                    self._client = session.client(self._service, region_name=self._region, config=self._config)
        return self._client


def _is_client_error(error: BaseException, *codes: str) -> bool:
    from botocore.exceptions import ClientError

    if not isinstance(error, ClientError):
        return False
    return not codes or error.response.get("Error", {}).get("Code") in codes


def _aws_errors() -> tuple[type[BaseException], ...]:
    from botocore.exceptions import BotoCoreError, ClientError

    return (ClientError, BotoCoreError)


# ---------------------------------------------------------------------------------------------------------------
# The secret document <-> Credentials


def parse_expiry(value: Any) -> datetime | None:
    """`expiresAt` as written by Kiro (ISO 8601, `Z` suffix) or as epoch seconds/milliseconds; None if unusable."""
    if value in (None, ""):
        return None
    try:
        if isinstance(value, int | float):
            seconds = float(value) / 1000 if float(value) > 1e11 else float(value)
            return datetime.fromtimestamp(seconds, UTC)
        parsed = datetime.fromisoformat(str(value).strip().replace("Z", "+00:00"))
    except (ValueError, OverflowError, OSError):
        return None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def format_expiry(moment: datetime) -> str:
    """`2025-01-31T12:00:00.000Z`, the Kiro IDE's own style."""
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


# ---------------------------------------------------------------------------------------------------------------
# Secrets Manager token store


class SecretsManagerTokenStore:
    """TokenStore on one Secrets Manager secret, with a DynamoDB lease so exactly one instance refreshes at a time.

    `table_name` may be empty (no lease: fine for a single instance; a warning is logged on the first refresh).
    `clock` returns epoch seconds; `sleep` is awaited between polls and retries (both replaceable in tests).
    """

    def __init__(
        self,
        secret_id: str,
        table_name: str,
        *,
        client: Any = None,
        dynamodb: Any = None,
        cache_seconds: float = 30,
        lease_seconds: float = 30,
        clock: Clock = time.time,
        wait_seconds: float = 45,
        write_attempts: int = 5,
        sleep: Sleep = asyncio.sleep,
    ):
        if not secret_id:
            raise ValueError("secret_id is required")
        self.secret_id = secret_id
        self.table_name = table_name
        self.cache_seconds = cache_seconds
        self.lease_seconds = lease_seconds
        self.wait_seconds = wait_seconds
        self.write_attempts = max(1, write_attempts)
        self._clock = clock
        self._sleep = sleep
        region = _region_of(secret_id)
        self._secrets = _LazyClient("secretsmanager", region, _client_config(3, 10, 3), client)
        self._dynamodb = _LazyClient("dynamodb", region, _client_config(2, 5, 3), dynamodb)
        self._document: dict[str, Any] | None = None
        self._read_at = float("-inf")
        self._unsaved: dict[str, Any] | None = None
        self._held_lease: str | None = None  # kept while rotated credentials are not saved yet
        self._lock = asyncio.Lock()
        self._warned_no_table = False

    def describe(self) -> str:
        return f"AWS Secrets Manager secret {self.secret_id}"

    # -- reading -----------------------------------------------------------------------------------------------

    def _now(self) -> datetime:
        return datetime.fromtimestamp(self._clock(), UTC)

    async def _read(self, *, force: bool) -> dict[str, Any]:
        if not force and self._document is not None and self._clock() - self._read_at < self.cache_seconds:
            return self._document
        try:
            answer = await asyncio.to_thread(self._get_secret)
        except Exception as error:
            if _is_client_error(error, "ResourceNotFoundException"):
                raise CredentialsNotFound(
                    f"The secret {self.secret_id} does not exist (KIRO_SECRET_ID); deploy the stack or fix the id."
                ) from None
            raise
        raw = answer.get("SecretString")
        try:
            document = json.loads(raw) if raw else {}
        except json.JSONDecodeError:
            document = None
        if not isinstance(document, dict):
            raise CredentialsNotFound(
                f"The secret {self.secret_id} is not a JSON object; run `kiro-gateway secret push` to rewrite it."
            )
        self._document = document
        self._read_at = self._clock()
        return document

    def _get_secret(self) -> dict[str, Any]:
        return self._secrets.get().get_secret_value(SecretId=self.secret_id)

    async def load(self) -> Credentials:
        if self._unsaved is not None:
            pending = self._unsaved
            try:
                await self._persist_pending()
            except SecretWriteError:
                log.warning("rotated Kiro credentials are still not saved to the secret; using them from memory")
            return credentials_from_document(pending)
        return credentials_from_document(await self._read(force=False))

    async def proxy_api_key(self) -> str:
        """The client API key kept in the secret (`proxyApiKey`), or "" when there is none."""
        document = self._unsaved or await self._read(force=False)
        key = document.get("proxyApiKey")
        return key if isinstance(key, str) else ""

    # -- refreshing --------------------------------------------------------------------------------------------

    def _adoptable(self, stored: Credentials, stale: Credentials) -> bool:
        """Stored credentials that another instance (or a `secret push`) rotated since `stale`, and still valid."""
        changed = stored.refresh_token != stale.refresh_token or stored.access_token != stale.access_token
        return changed and stored.is_fresh(self._now(), _ADOPT_MARGIN)

    async def refresh(self, stale: Credentials, do_refresh: RefreshFn) -> Credentials:
        async with self._lock:
            if self._unsaved is not None:
                pending = self._unsaved
                await self._persist_pending()  # raises SecretWriteError again while the secret stays unwritable
                pending_creds = credentials_from_document(pending)
                if self._adoptable(pending_creds, stale):
                    _metric("saved_late")
                    return pending_creds
            stored = credentials_from_document(await self._read(force=True))
            if self._adoptable(stored, stale):
                log.info("Kiro credentials were already rotated elsewhere; using the stored ones")
                _metric("adopted")
                return stored
            owner = uuid.uuid4().hex
            lease = await self._acquire_or_wait(owner, stale)
            if isinstance(lease, Credentials):
                _metric("adopted")
                return lease
            keep_lease = False
            try:
                # Someone may have finished between our read and our lease.
                document = await self._read(force=True)
                stored = credentials_from_document(document)
                if self._adoptable(stored, stale):
                    _metric("adopted")
                    return stored
                try:
                    document, fresh = await self._refresh_with_fallback(document, stored, stale, do_refresh)
                except Exception:
                    _metric("failed")
                    raise
                if fresh is not None:
                    _metric("adopted")
                    return fresh
                updated = document
                self._unsaved = updated
                try:
                    await self._persist(updated)
                except SecretWriteError:
                    if lease:
                        keep_lease = True
                        self._held_lease = owner
                    _metric("write_failed")
                    raise
                _metric("refreshed")
                return credentials_from_document(updated)
            finally:
                if lease and not keep_lease:
                    await self._release(owner)

    async def _refresh_with_fallback(
        self, document: dict[str, Any], stored: Credentials, stale: Credentials, do_refresh: RefreshFn
    ) -> tuple[dict[str, Any], Credentials | None]:
        """Refresh `stored`; on failure adopt or retry with a newer stored token. Returns (new document, None), or
        (_, credentials) when another instance's result was adopted instead."""
        try:
            rotated = await do_refresh(stored)
        except Exception:
            newer_document = await self._read(force=True)
            newer = credentials_from_document(newer_document)
            if newer.refresh_token == stored.refresh_token:
                raise  # nobody rotated it: a real failure
            log.info("refresh token was already used; continuing with the newer one from the secret")
            if self._adoptable(newer, stale):
                return newer_document, newer
            rotated = await do_refresh(newer)
            document = newer_document
        return document_with_credentials(document, rotated), None

    async def _persist(self, document: dict[str, Any]) -> None:
        """PutSecretValue with retries and backoff; clears the in-memory pending copy once it lands."""
        token = version_token(document)
        payload = json.dumps(document, separators=(",", ":"))
        delay = 0.2
        last: BaseException | None = None
        for attempt in range(1, self.write_attempts + 1):
            try:
                await asyncio.to_thread(self._put_secret, payload, token)
            except _aws_errors() as error:
                last = error
                if _is_client_error(error, "ResourceExistsException"):
                    # Our version token already names a version: the same rotated tokens already landed.
                    break
                log.warning("writing rotated Kiro credentials to the secret failed (attempt %d/%d): %s",
                            attempt, self.write_attempts, type(error).__name__)
                if attempt < self.write_attempts:
                    await self._sleep(delay)
                    delay = min(delay * 2, 3.0)
                continue
            last = None
            break
        if last is not None and not _is_client_error(last, "ResourceExistsException"):
            raise SecretWriteError(
                f"Rotated Kiro credentials could not be saved to {self.secret_id} after {self.write_attempts} "
                f"attempts ({type(last).__name__}); they are kept in memory and the write is retried on the next "
                "request. Check the function's permission secretsmanager:PutSecretValue."
            ) from last
        self._unsaved = None
        self._document = document
        self._read_at = self._clock()

    async def _persist_pending(self) -> None:
        """Write the rotated credentials a failed write left in memory; then release the lease kept for them."""
        assert self._unsaved is not None
        await self._persist(self._unsaved)
        owner, self._held_lease = self._held_lease, None
        if owner:
            await self._release(owner)

    def _put_secret(self, payload: str, token: str) -> None:
        self._secrets.get().put_secret_value(SecretId=self.secret_id, SecretString=payload, ClientRequestToken=token)

    # -- the lease ---------------------------------------------------------------------------------------------

    async def _acquire_or_wait(self, owner: str, stale: Credentials) -> bool | Credentials:
        """True once we hold the lease; False when there is no lease table (refresh anyway); or the credentials
        another instance produced while we waited."""
        if not self.table_name:
            if not self._warned_no_table:
                log.warning("KIRO_STATE_TABLE is not set: refreshing without a lease (safe for one instance only)")
                self._warned_no_table = True
            return False
        deadline = self._clock() + self.wait_seconds
        delay = 0.05
        while True:
            outcome = await self._try_acquire(owner)
            if outcome is not None:
                return outcome
            await self._sleep(delay * (0.5 + random.random()))
            delay = min(delay * 2, 1.0)
            stored = credentials_from_document(await self._read(force=True))
            if self._adoptable(stored, stale):
                log.info("another instance refreshed the Kiro credentials; using its result")
                return stored
            if self._clock() > deadline:
                raise RefreshBusyError(
                    f"Another instance has been refreshing the Kiro credentials for over {self.wait_seconds:.0f} s."
                )

    async def _try_acquire(self, owner: str) -> bool | None:
        """True: acquired. None: someone else holds it. False: the table is unusable (proceed without a lease)."""
        now = self._clock()
        try:
            await asyncio.to_thread(
                self._dynamodb.get().put_item,
                TableName=self.table_name,
                Item={"pk": {"S": LEASE_KEY}, "owner": {"S": owner},
                      "expires_at": {"N": str(int(now + self.lease_seconds))}},
                ConditionExpression="attribute_not_exists(pk) OR expires_at < :now",
                ExpressionAttributeValues={":now": {"N": str(int(now))}},
            )
        except _aws_errors() as error:
            if _is_client_error(error, "ConditionalCheckFailedException"):
                return None
            log.warning("refresh lease unavailable (%s); refreshing without it", type(error).__name__)
            return False
        return True

    async def _release(self, owner: str) -> None:
        try:
            await asyncio.to_thread(
                self._dynamodb.get().delete_item,
                TableName=self.table_name,
                Key={"pk": {"S": LEASE_KEY}},
                ConditionExpression="#owner = :owner",
                ExpressionAttributeNames={"#owner": "owner"},
                ExpressionAttributeValues={":owner": {"S": owner}},
            )
        except _aws_errors() as error:
            if not _is_client_error(error, "ConditionalCheckFailedException"):
                log.warning("could not release the refresh lease (%s); it expires by itself", type(error).__name__)


def read_proxy_api_key(secret_id: str, *, client: Any = None) -> str:
    """The client API key (`proxyApiKey`) stored in the secret, or "" (synchronous; for scripts and the CLI)."""
    secrets = client or _LazyClient("secretsmanager", _region_of(secret_id), _client_config(3, 10, 3)).get()
    raw = secrets.get_secret_value(SecretId=secret_id).get("SecretString") or "{}"
    try:
        document = json.loads(raw)
    except json.JSONDecodeError:
        return ""
    key = document.get("proxyApiKey") if isinstance(document, dict) else None
    return key if isinstance(key, str) else ""


# ---------------------------------------------------------------------------------------------------------------
# DynamoDB model cache


class DynamoModelCache:
    """ModelCache in the state table (item `models`). Best effort: any AWS failure means "no cache", with a warning.

    TTL deletion in DynamoDB is lazy (days), so `expires_at` is checked here on every read.
    """

    def __init__(self, table_name: str, *, dynamodb: Any = None, clock: Clock = time.time):
        self.table_name = table_name
        self._clock = clock
        self._dynamodb = _LazyClient("dynamodb", None, _client_config(2, 5, 2), dynamodb)

    async def get(self) -> list[dict[str, Any]] | None:
        try:
            answer = await asyncio.to_thread(
                self._dynamodb.get().get_item, TableName=self.table_name, Key={"pk": {"S": MODELS_KEY}}
            )
        except _aws_errors() as error:
            log.warning("model cache unavailable (%s: %s); asking Kiro", type(error).__name__, _short(error))
            return None
        item = answer.get("Item")
        if not item:
            return None
        try:
            if float(item["expires_at"]["N"]) <= self._clock():
                return None
            models = json.loads(item["models"]["S"])
        except (KeyError, ValueError, TypeError):
            log.warning("model cache item is malformed; ignoring it")
            return None
        return models if isinstance(models, list) else None

    async def put(self, models: list[dict[str, Any]], ttl_seconds: int) -> None:
        now = self._clock()
        item = {
            "pk": {"S": MODELS_KEY},
            "models": {"S": json.dumps(models, separators=(",", ":"))},
            "expires_at": {"N": str(int(now + ttl_seconds))},
            "cached_at": {"N": str(int(now))},
        }
        try:
            await asyncio.to_thread(self._dynamodb.get().put_item, TableName=self.table_name, Item=item)
        except _aws_errors() as error:
            log.warning("could not cache the model list (%s: %s)", type(error).__name__, _short(error))


def _short(error: BaseException) -> str:
    return str(error).splitlines()[0][:200] if str(error) else ""
