"""The per-request gate in front of every protected route: who is calling, and may they, now?

In order, before anything is read or sent upstream:

1. the presented key is matched, in constant time, against `PROXY_API_KEY` (the unlimited key "default") and the key
   ring. A valid key passes even from an address blocked for failed authentications: guessing blocks guessing only
   (locally any web page can make the browser send bad keys to 127.0.0.1, which must not lock out the owner);
2. a missing or unknown key is refused with 429 while its address (`source_address`) is blocked, else it is a failed
   authentication, counted for the address (the one that reaches `AUTH_FAILURES_PER_MINUTE` blocks it for
   `AUTH_BLOCK_SECONDS`), and a 401. A revoked or expired key is a 401 too, but not counted: it is a known key that
   stopped working, not a guess, and must not lock out an office;
3. for generation requests (chat completions, messages, responses; not `/v1/models`) of a named
   key: its rpm (a sliding 60 s), a concurrency slot and, on the state table, its credit budget, in ONE atomic step
   of the limiter (`admit_key`: one conditional write); the slot is held until the response has ended
   (`SlotReleaseMiddleware`, which also adds the answer's credits to the key's spending), the client's hang-up
   included. Without the table, budgets are checked against the local usage counters (`budget.check_budget`).
   `count_tokens` costs CPU, not credits: it counts against the key's rpm only.

Refusals are `GatewayError(RATE_LIMIT)`: 429 in the client's shape, `Retry-After`, a message naming the limit. The
caller's key name goes on the request record (`client_key`, for the request log, metrics and usage counters) and on
`request.state.client_key`; the key itself is never recorded. The admission of a limited key is on
`request.state.admission` (`Admission`, with `rate_limit: RateLimitState` for rate-limit headers).

When the state table cannot be reached (docs/client-keys.md "When the state table is down"): rpm, concurrency and
the failed-auth throttle fail open (error log + `StateTableUnavailable` metric): they guard fairness and guessing, and
refusing every request would turn a table outage into a gateway outage. Budgets fail closed with 503 and
`Retry-After`: they guard money, and an unverifiable spend is not spent.
"""

from __future__ import annotations

import hmac
import logging
import math
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from typing import TYPE_CHECKING

import anyio
from starlette.requests import Request
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from gateway import observability
from gateway.client_keys import DEFAULT_KEY_NAME
from gateway.client_keys.budget import budget_error, check_budget
from gateway.client_keys.limiter import Budget, Limiter, MemoryLimiter, RateLimitState, Spent
from gateway.client_keys.records import ClientKey
from gateway.client_keys.source_address import parse_trusted, source_address
from gateway.client_keys.sources import FileKeySource, KeyRegistry, SecretKeySource
from gateway.edge.deps import presented_key, runtime_of
from gateway.edge.request_log import record_of, record_of_scope
from kiro_core.errors import ErrorKind, GatewayError

if TYPE_CHECKING:
    from gateway.settings import Settings

log = logging.getLogger(__name__)

GENERATION_PATHS = frozenset({"/v1/chat/completions", "/v1/messages", "/v1/responses"})
RPM_ONLY_PATHS = frozenset({"/v1/messages/count_tokens"})  # CPU work, no upstream call: rate-limited, not budgeted
RATE_WINDOW = 60.0  # seconds: rpm and failed authentications are counted per minute
CONCURRENCY_RETRY_AFTER = 1.0
BUDGET_RETRY_AFTER = 5.0  # seconds: a 503 for an unverifiable budget (the state table unreachable)
LOCAL_FILE_MAX_AGE = 1.0
_SLOT = "client_key_slot"


@dataclass(frozen=True)
class Admission:
    """The gate's decision for a limited key's generation request."""

    key_name: str
    rate_limit: RateLimitState | None = None  # None when the key has no rpm limit (or its count was unavailable)


@dataclass(frozen=True)
class Caller:
    """Who a request authenticated as: a key name, with its record (None for the default key), and its rpm window
    once counted (the rate-limit headers; None for keys without an rpm limit and routes that are not counted)."""

    name: str
    key: ClientKey | None = None
    rate_limit: RateLimitState | None = None


def _spent_is(today: float, month: float) -> Callable[[str], Awaitable[tuple[float, float]]]:
    async def spent(_name: str) -> tuple[float, float]:
        return today, month

    return spent


def authenticated_key_name(request: Request) -> str | None:
    """The name of the key this request authenticated with (None before authentication)."""
    caller = getattr(request.state, "client_key", None)
    return caller.name if isinstance(caller, Caller) else None


class ClientGate:
    def __init__(self, registry: KeyRegistry | None, limiter: Limiter, *, failures_per_minute: int = 20,
                 block_seconds: float = 300.0, slot_lease: float = 900.0, trusted: frozenset[str] = frozenset(),
                 behind_web_adapter: bool = False) -> None:
        self.registry = registry
        self.limiter = limiter
        self.failures_per_minute = failures_per_minute
        self.block_seconds = block_seconds
        self.slot_lease = slot_lease
        self.trusted = trusted
        self.behind_web_adapter = behind_web_adapter
        self._blocked: dict[str, float] = {}  # address -> monotonic end of its block, as this process last saw it

    @classmethod
    def from_settings(cls, settings: Settings) -> ClientGate:
        """Keys from the file or the secret; counts in DynamoDB when KIRO_STATE_TABLE is set, else in memory."""
        registry = None
        path = settings.client_keys_path
        if path is not None:
            registry = KeyRegistry(FileKeySource(path), LOCAL_FILE_MAX_AGE)
        elif settings.aws.kiro_secret_id:
            max_age = settings.client_keys.client_keys_cache_seconds
            registry = KeyRegistry(SecretKeySource(settings.aws.kiro_secret_id, max_age=max_age), max_age)
        limiter: Limiter
        if settings.aws.kiro_state_table:
            # lazy: the DynamoDB limiter (boto3) loads only when a state table is configured
            from gateway.client_keys.dynamo_limiter import DynamoLimiter

            limiter = DynamoLimiter(settings.aws.kiro_state_table)
        else:
            limiter = MemoryLimiter()
        keys = settings.client_keys
        return cls(registry, limiter, failures_per_minute=keys.auth_failures_per_minute,
                   block_seconds=keys.auth_block_seconds, slot_lease=keys.client_key_slot_lease_seconds,
                   trusted=parse_trusted(keys.trusted_proxy_ips), behind_web_adapter=bool(keys.aws_lwa_port))

    def use_store(self, store: object) -> None:
        """Read the key ring from the token store's copy of the secret (no read of its own)."""
        source = self.registry.source if self.registry is not None else None
        if isinstance(source, SecretKeySource) and source.use_store(store):
            # The store's copy decides when AWS is asked (once it is CLIENT_KEYS_CACHE_SECONDS old); the ring is
            # rebuilt from that copy every second, so a revocation takes effect within that interval, not twice it.
            self.registry.max_age = LOCAL_FILE_MAX_AGE

    async def admit(self, request: Request, proxy_api_key: Callable[[], Awaitable[str]]) -> Caller:
        """Authenticate and count the request; raises GatewayError (401 or 429) when it may not go on."""
        source = source_address(request.scope, self.trusted, self.behind_web_adapter)
        try:
            caller = await self._authenticate(presented_key(request), await proxy_api_key(), source)
        except GatewayError as error:
            if error.kind is ErrorKind.RATE_LIMIT:
                record_of(request).update(refused="auth_block")
            raise
        request.state.client_key = caller
        record_of(request).update(client_key=caller.name)
        if caller.key is not None and request.url.path in GENERATION_PATHS:
            await self._enforce(request, caller.key)
        elif caller.key is not None and request.url.path in RPM_ONLY_PATHS:
            await self._enforce(request, caller.key, rpm_only=True)
        return request.state.client_key

    async def _refuse_if_blocked(self, source: str) -> None:
        """429 while `source` is blocked for failed authentications (asked only for a key that did not match)."""
        blocked = await self._blocked_for(source)
        if blocked > 0:
            raise GatewayError(ErrorKind.RATE_LIMIT, (
                f"Too many failed authentications from this address ({self.failures_per_minute} in a minute); "
                f"this address is blocked: retry after {math.ceil(blocked)} s."), retry_after=blocked)

    async def _blocked_for(self, source: str) -> float:
        """Seconds `source` stays blocked; a block seen once is remembered, so a blocked address hammering this
        instance costs no further reads of the shared counter."""
        now = time.monotonic()
        until = self._blocked.get(source)
        if until is not None and until > now:
            return until - now
        blocked = await self.limiter.wait_for(f"authfail#{source}", self.failures_per_minute)
        if blocked > 0:
            if len(self._blocked) > 4096:
                self._blocked = {address: end for address, end in self._blocked.items() if end > now}
            self._blocked[source] = now + blocked
        return blocked

    async def _authenticate(self, presented: str, proxy_key: str, source: str) -> Caller:
        ring = await self.registry.ring() if self.registry is not None else None
        if not proxy_key and not (ring and ring.keys):
            raise GatewayError(ErrorKind.AUTHENTICATION, "The gateway has no PROXY_API_KEY and no client keys "
                               "configured; set one (or run `kiro-gateway keys create`) and restart it.")
        if not presented:
            await self._refuse_if_blocked(source)
            await self._failed(source, "missing key")
            raise GatewayError(ErrorKind.AUTHENTICATION, "Missing API key: send it as 'x-api-key' or "
                               "'Authorization: Bearer <key>'.")
        default = bool(proxy_key) and hmac.compare_digest(proxy_key.encode(), presented.encode("utf-8", "replace"))
        key = ring.find(presented) if ring else None
        if default:
            return Caller(DEFAULT_KEY_NAME)
        if key is None:
            await self._refuse_if_blocked(source)
            await self._failed(source, "invalid key")
            raise GatewayError(ErrorKind.AUTHENTICATION, "Invalid API key.")
        state = key.state(datetime.now(UTC))
        if state != "active":
            log.info("refused the %s client key %r", state, key.name)
            raise GatewayError(ErrorKind.AUTHENTICATION, "This API key has been revoked." if state == "revoked"
                               else "This API key has expired.")
        return Caller(key.name, key)

    async def _failed(self, source: str, reason: str) -> None:
        verdict = await self.limiter.hit(f"authfail#{source}", self.failures_per_minute, RATE_WINDOW,
                                         hold=self.block_seconds)
        blocked = verdict.count >= self.failures_per_minute
        log.warning("failed authentication (%s) from %s: %d in this window%s", reason, source, verdict.count,
                    "; address blocked" if blocked else "")
        observability.record_auth_failure(blocked)

    async def _enforce(self, request: Request, key: ClientKey, *, rpm_only: bool = False) -> None:
        """rpm, a concurrency slot and (on the state table) the credit budget in one atomic step of the limiter:
        one conditional write. Without the table, budgets are checked against the local usage counters. `rpm_only`:
        a request that costs CPU but no credits (count_tokens) counts against the rpm alone."""
        limits = replace(key.limits, concurrency=None, daily_credits=None, monthly_credits=None) \
            if rpm_only else key.limits
        now = datetime.now(UTC)
        budgeted = limits.daily_credits is not None or limits.monthly_credits is not None
        on_item = budgeted and getattr(self.limiter, "counts_spending", False)
        if budgeted and not on_item:
            await self._check_counted_budget(request, key, now)
        if limits.rpm is None and limits.concurrency is None and not on_item:
            request.state.admission = Admission(key.name)
            return
        budget = Budget(limits.daily_credits, limits.monthly_credits, now.strftime("%Y-%m-%d"),
                        now.strftime("%Y-%m")) if on_item else None
        admission = await self.limiter.admit_key(key.name, limits.rpm, limits.concurrency, self.slot_lease,
                                                 **({"budget": budget} if budget else {}))
        request.state.admission = Admission(key.name, admission.rate)
        if admission.rate is not None:  # the rate-limit headers (gateway.edge.rate_limit_headers) read the caller
            request.state.client_key = replace(request.state.client_key, rate_limit=admission.rate)
        if admission.refused == "rpm":
            self._refused(request, key.name, "rpm")
            raise GatewayError(ErrorKind.RATE_LIMIT, (
                f"Rate limit of client key '{key.name}' reached: rpm {limits.rpm} (requests per minute). "
                f"Retry after {math.ceil(admission.retry_after)} s."), retry_after=admission.retry_after)
        if admission.refused == "concurrency":
            self._refused(request, key.name, "concurrency")
            raise GatewayError(ErrorKind.RATE_LIMIT, (
                f"Concurrency limit of client key '{key.name}' reached: concurrency {limits.concurrency} "
                "(requests at the same time). Retry when one of them has finished."),
                retry_after=CONCURRENCY_RETRY_AFTER)
        if admission.refused == "budget" and admission.spent is not None:
            self._refused(request, key.name, "budget")
            raise budget_error(key, now, admission.spent.today, admission.spent.this_month)
        if budget is not None and admission.spent is None and not admission.unavailable:
            await self._seed(request, key, now, admission.token)
        if admission.unavailable and budget is not None:
            await self._check_counted_budget(request, key, now)  # the table is down: the counters decide (or 503)
        if admission.token is not None or budget is not None:
            request.scope.setdefault("state", {})[_SLOT] = (self.limiter, key.name, admission.token,
                                                           budget is not None)

    async def _seed(self, request: Request, key: ClientKey, now: datetime, token: str | None) -> None:
        """The key's item kept no spending for this month yet: start it from the usage counters, then check."""
        try:
            today, month = await (await runtime_of(request)).usage.key_credits(key.name)
        except Exception as error:
            if token:
                await self.limiter.release_key(key.name, token)
            raise self._unverifiable(request, key, error) from None
        await self.limiter.seed_spend(key.name, Spent(now.strftime("%Y-%m-%d"), today, now.strftime("%Y-%m"),
                                                      month))  # type: ignore[attr-defined]
        try:
            await check_budget(key, now, _spent_is(today, month))
        except GatewayError:
            if token:
                await self.limiter.release_key(key.name, token)
            self._refused(request, key.name, "budget")
            raise

    async def _check_counted_budget(self, request: Request, key: ClientKey, now: datetime) -> None:
        """The budget against the usage counters (local runs, or the state table's own counters unavailable)."""
        runtime = await runtime_of(request)
        try:
            await check_budget(key, now, runtime.usage.key_credits)
        except GatewayError:
            self._refused(request, key.name, "budget")
            raise
        except Exception as error:  # the counters cannot be read: budgets fail closed (they guard money)
            raise self._unverifiable(request, key, error) from None

    def _unverifiable(self, request: Request, key: ClientKey, error: BaseException) -> GatewayError:
        log.error("credit budget of client key %r unverifiable (%s: %s); refusing with 503", key.name,
                  type(error).__name__, str(error).splitlines()[0][:200] if str(error) else "")
        observability.record_state_table_unavailable("credit budgets")
        self._refused(request, key.name, "budget_unavailable")
        return GatewayError(ErrorKind.OVERLOADED, f"The credit budget of client key '{key.name}' cannot be checked "
                            "right now (the usage counters are unreachable); retry shortly.", status=503,
                            retry_after=BUDGET_RETRY_AFTER)

    @staticmethod
    def _refused(request: Request, name: str, limit: str) -> None:
        record_of(request).update(refused=limit)
        observability.record_key_refusal(name, limit)


class SlotReleaseMiddleware:
    """Gives a request's concurrency slot back once its response has ended (streamed, failed or abandoned).

    Pure ASGI: the slot is released just before the last body message goes out (so a client that sends its next
    request the moment an answer ends finds the slot free), or, when no last message is sent (the client hung up, or
    the app failed), once the app returns."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def release() -> None:
            slot = scope.get("state", {}).pop(_SLOT, None)
            if slot is not None:
                limiter, name, token, budgeted = slot
                with anyio.CancelScope(shield=True):
                    if budgeted:  # one write: the slot back and the answer's credits onto the key's spending
                        now = datetime.now(UTC)
                        credits = record_of_scope(scope).fields.get("credits")
                        await limiter.settle_key(name, token, float(credits or 0.0), now.strftime("%Y-%m-%d"),
                                                 now.strftime("%Y-%m"))
                    elif token is not None:
                        await limiter.release_key(name, token)

        async def send_after_release(message: Message) -> None:
            if message["type"] == "http.response.body" and not message.get("more_body", False):
                await release()
            await send(message)

        try:
            await self.app(scope, receive, send_after_release)
        finally:
            await release()
