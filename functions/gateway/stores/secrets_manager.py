"""Kiro credentials in one Secrets Manager secret (see `gateway.stores.secret_document` for its format).

Refresh tokens rotate and every one is accepted exactly once, while several Lambda instances may find the access
token expired at the same moment. `SecretsManagerTokenStore.refresh` therefore:

1. re-reads the secret (unless this request read it a moment ago: `_REREAD_AFTER`); if another instance already
   rotated the credentials, returns them (no refresh);
2. otherwise takes the refresh lease (`gateway.stores.refresh_lease`; for this single-credential layout it is the
   secret's write lease, which `kiro-gateway keys` and `secret push` take too); the others poll the secret with
   backoff until the winner's result appears (or the lease expires and one of them takes over);
3. the winner refreshes (re-reading first only when its copy is not from a moment ago: a token someone rotated in
   between is caught by the refresh's own "already used" fallback), then writes the rotated credentials into the
   LATEST secret: it re-reads it and replaces only the credential fields, so a key revoked or an API key rotated
   meanwhile stays as it was written (`PutSecretValue`, retried; the version's ClientRequestToken derives from the new
   tokens, so a retry of a write that did land creates nothing new), and only then returns and releases the lease.

On a new instance whose stored access token needs a refresh that is 5 AWS calls: the first read, the lease, the
re-read before the write, the write, the lease's release.

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
import time
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

from gateway.observability import record_token_refresh
from gateway.stores.aws_clients import Clock, LazyClient, Sleep, aws_errors, client_config, is_client_error, region_of
from gateway.stores.base import Credentials, CredentialsNotFound, RefreshError, RefreshFn
from gateway.stores.refresh_lease import LEASE_KEY, RefreshLease
from gateway.stores.secret_document import credentials_from_document, document_with_credentials, version_token

log = logging.getLogger(__name__)

# Credentials another instance just rotated are taken as they are when valid at least this long.
_ADOPT_MARGIN = timedelta(seconds=60)
# A copy of the secret read less than this long ago is not read again before refreshing (the same request read it).
_REREAD_AFTER = 2.0
# The state table's name, kept in the secret so every writer (the CLI with a bare --secret-id too) finds the lease.
STATE_TABLE_FIELD = "stateTable"


class SecretWriteError(RefreshError):
    """Rotated credentials could not be written to the secret; they are kept in memory and the write is retried.

    A RefreshError (status None: not a rejection), so the AuthManager and the routes report it like any failed
    refresh, with this message."""

    def __init__(self, message: str) -> None:
        super().__init__(None, message)


def _metric(outcome: str) -> None:
    """TokenRefreshes{outcome} on Lambda; nothing elsewhere (see gateway.observability)."""
    record_token_refresh(outcome)


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
        lease_key: str = LEASE_KEY,
    ) -> None:
        if not secret_id:
            raise ValueError("secret_id is required")
        self.secret_id = secret_id
        self.table_name = table_name
        self.cache_seconds = cache_seconds
        self.write_attempts = max(1, write_attempts)
        self._clock = clock
        self._sleep = sleep
        region = region_of(secret_id)
        self._secrets = LazyClient("secretsmanager", region, client_config(3, 10, 3), client)
        self._lease = RefreshLease(
            table_name,
            LazyClient("dynamodb", region, client_config(2, 5, 3), dynamodb),
            lease_seconds=lease_seconds,
            wait_seconds=wait_seconds,
            clock=clock,
            sleep=sleep,
            key=lease_key,
        )
        self._document: dict[str, Any] | None = None
        self._read_at = float("-inf")
        self._unsaved: dict[str, Any] | None = None
        self._held_lease: str | None = None  # kept while rotated credentials are not saved yet
        self._holding = False  # this instance holds the secret's lease (nobody else writes the secret meanwhile)
        self._lock = asyncio.Lock()

    def describe(self) -> str:
        return f"AWS Secrets Manager secret {self.secret_id}"

    # -- the view of the document (one account of a secret's `accounts` in `gateway.accounts.secret_store`) ------

    def _credentials_of(self, document: dict[str, Any]) -> Credentials:
        return credentials_from_document(document)

    def _with_credentials(self, document: dict[str, Any], creds: Credentials) -> dict[str, Any]:
        return document_with_credentials(document, creds)

    def _version_token(self, document: dict[str, Any]) -> str:
        return version_token(document)

    async def document(self) -> dict[str, Any]:
        """The secret's JSON document (cached like the credentials)."""
        return self._unsaved or await self._read(force=False)

    async def fresh_document(self, max_age: float) -> dict[str, Any]:
        """The document, read again when this copy is older than `max_age` seconds: the key ring and the client API
        key come from the same read as the credentials (one `GetSecretValue` serves them all)."""
        if self._unsaved is not None:
            return self._unsaved
        fresh = self._document is not None and self._clock() - self._read_at < max_age
        return await self._read(force=not fresh)

    def share_read(self, other: SecretsManagerTokenStore) -> None:
        """Start from `other`'s copy of the same secret (read a moment ago) instead of reading it again."""
        if other.secret_id == self.secret_id and other._document is not None and self._document is None:
            self._document, self._read_at = other._document, other._read_at

    # -- reading -----------------------------------------------------------------------------------------------

    def _now(self) -> datetime:
        return datetime.fromtimestamp(self._clock(), UTC)

    async def _read(self, *, force: bool) -> dict[str, Any]:
        if not force and self._document is not None and self._clock() - self._read_at < self.cache_seconds:
            return self._document
        try:
            answer = await asyncio.to_thread(self._get_secret)
        except Exception as error:
            if is_client_error(error, "ResourceNotFoundException"):
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

    def _just_read(self) -> bool:
        return self._document is not None and self._clock() - self._read_at < _REREAD_AFTER

    def _get_secret(self) -> dict[str, Any]:
        return self._secrets.get().get_secret_value(SecretId=self.secret_id)

    async def load(self) -> Credentials:
        if self._unsaved is not None:
            pending = self._unsaved
            try:
                await self._persist_pending()
            except SecretWriteError:
                log.warning("rotated Kiro credentials are still not saved to the secret; using them from memory")
            return self._credentials_of(pending)
        return self._credentials_of(await self._read(force=False))

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

    async def _rotated_elsewhere(self, stale: Credentials) -> Credentials | None:
        """Polled while another instance holds the lease: its result once it appears in the secret, else None."""
        stored = self._credentials_of(await self._read(force=True))
        if self._adoptable(stored, stale):
            log.info("another instance refreshed the Kiro credentials; using its result")
            return stored
        return None

    async def refresh(self, stale: Credentials, do_refresh: RefreshFn) -> Credentials:
        async with self._lock:
            if self._unsaved is not None:
                pending = self._unsaved
                await self._persist_pending()  # raises SecretWriteError again while the secret stays unwritable
                pending_creds = self._credentials_of(pending)
                if self._adoptable(pending_creds, stale):
                    _metric("saved_late")
                    return pending_creds
            # A copy read a moment ago is current; an older one is checked by the lease's own transaction below
            # (no refresh or edit since it was read), so it is not read again here when there is a lease table.
            stored = self._credentials_of(await self._read(force=not (self._just_read() or self.table_name)))
            if self._adoptable(stored, stale):
                log.info("Kiro credentials were already rotated elsewhere; using the stored ones")
                _metric("adopted")
                return stored
            owner = uuid.uuid4().hex
            lease = await self._lease.acquire(owner, lambda: self._rotated_elsewhere(stale),
                                              read_at=self._read_at if self._document is not None else None)
            if isinstance(lease, Credentials):
                _metric("adopted")
                return lease
            keep_lease = False
            wrote = False
            self._holding = bool(lease)
            try:
                # Someone may have finished between our read and our lease: read again unless the lease's
                # transaction showed that nobody wrote the secret since our copy was read.
                current = lease is True and self._lease.unchanged_since_read
                document = await self._read(force=not (current or (lease is False and self._just_read())))
                stored = self._credentials_of(document)
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
                wrote = True
                _metric("refreshed")
                return self._credentials_of(updated)
            finally:
                if not keep_lease:
                    self._holding = False
                if lease and not keep_lease:
                    await self._lease.release(owner, refreshed=wrote)

    async def _refresh_with_fallback(
        self, document: dict[str, Any], stored: Credentials, stale: Credentials, do_refresh: RefreshFn
    ) -> tuple[dict[str, Any], Credentials | None]:
        """Refresh `stored`; on failure adopt or retry with a newer stored token. Returns (new document, None), or
        (_, credentials) when another instance's result was adopted instead."""
        try:
            rotated = await do_refresh(stored)
        except Exception:
            newer_document = await self._read(force=True)
            newer = self._credentials_of(newer_document)
            if newer.refresh_token == stored.refresh_token:
                raise  # nobody rotated it: a real failure
            log.info("refresh token was already used; continuing with the newer one from the secret")
            if self._adoptable(newer, stale):
                return newer_document, newer
            rotated = await do_refresh(newer)
            document = newer_document
        return self._with_credentials(document, rotated), None

    async def _persist(self, document: dict[str, Any]) -> None:
        """PutSecretValue with retries and backoff; clears the in-memory pending copy once it lands."""
        token = self._version_token(document)
        payload = json.dumps(document, separators=(",", ":"))
        delay = 0.2
        last: BaseException | None = None
        written: dict[str, Any] | None = None
        for attempt in range(1, self.write_attempts + 1):
            try:
                written = await asyncio.to_thread(self._put_secret, payload, token)
            except aws_errors() as error:
                last = error
                if is_client_error(error, "ResourceExistsException"):
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
        if last is not None and not is_client_error(last, "ResourceExistsException"):
            raise SecretWriteError(
                f"Rotated Kiro credentials could not be saved to {self.secret_id} after {self.write_attempts} "
                f"attempts ({type(last).__name__}); they are kept in memory and the write is retried on the next "
                "request. Check the function's permission secretsmanager:PutSecretValue."
            ) from last
        self._unsaved = None
        self._document = written if last is None and isinstance(written, dict) else document
        self._read_at = self._clock()

    async def _persist_pending(self) -> None:
        """Write the rotated credentials a failed write left in memory; then release the lease kept for them."""
        assert self._unsaved is not None
        await self._persist(self._unsaved)
        owner, self._held_lease = self._held_lease, None
        self._holding = False
        if owner:
            await self._lease.release(owner, refreshed=True)

    def _put_secret(self, payload: str, token: str) -> dict[str, Any] | None:
        """Write the rotated credentials of `payload` into the LATEST secret: re-read it and replace only the
        credential fields, so whatever people changed meanwhile (a revoked client key, a rotated `proxyApiKey`)
        stays. Under the lease the CLI takes too, nobody writes between this read and this write. Returns what was
        written (None when a new login pushed meanwhile was kept instead)."""
        mine = json.loads(payload)
        before = self._document or {}
        if self._holding and self.table_name and before.get(STATE_TABLE_FIELD) == self.table_name:
            # Every writer finds the table in the secret and takes this lease, which we hold, and our copy is
            # current (read under the lease, or checked by its transaction): nothing to re-read.
            latest = dict(before)
        else:
            raw = self._secrets.get().get_secret_value(SecretId=self.secret_id).get("SecretString") or "{}"
            latest = json.loads(raw)
            if not isinstance(latest, dict):
                raise CredentialsNotFound(f"The secret {self.secret_id} no longer holds a JSON object")
            if latest.get("refreshToken") not in (before.get("refreshToken"), mine.get("refreshToken")):
                log.info("new Kiro credentials were pushed to the secret while it refreshed; keeping the pushed ones")
                return latest
        merged = document_with_credentials(latest, credentials_from_document(mine))
        if self.table_name:
            merged[STATE_TABLE_FIELD] = self.table_name  # so `kiro-gateway keys` finds the lease from the secret alone
        self._secrets.get().put_secret_value(SecretId=self.secret_id, ClientRequestToken=token,
                                             SecretString=json.dumps(merged, separators=(",", ":")))
        return merged


def read_proxy_api_key(secret_id: str, *, client: Any = None) -> str:
    """The client API key (`proxyApiKey`) stored in the secret, or "" (synchronous; for scripts and the CLI)."""
    secrets = client or LazyClient("secretsmanager", region_of(secret_id), client_config(3, 10, 3)).get()
    raw = secrets.get_secret_value(SecretId=secret_id).get("SecretString") or "{}"
    try:
        document = json.loads(raw)
    except json.JSONDecodeError:
        return ""
    key = document.get("proxyApiKey") if isinstance(document, dict) else None
    return key if isinstance(key, str) else ""
