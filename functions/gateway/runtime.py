"""The gateway's long-lived parts, built once per process on first use.

Built lazily (not in a lifespan hook) because the buffered Lambda entry point runs Mangum with `lifespan="off"`.
Missing credentials do not stop the process: requests that need Kiro get an error that says what to configure.
"""

from __future__ import annotations

import asyncio
import logging
import sys
import time
import uuid
from collections.abc import Awaitable, Callable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, replace
from typing import Any, TypeVar

import httpx

from gateway.accounts.pool import Account, AccountPool, Release
from gateway.accounts.setup import build_accounts
from gateway.conversion_options import conversion_options
from gateway.logging_setup import SCRUBBER
from gateway.model_service import ModelService
from gateway.settings import Settings
from gateway.stores.base import TokenStore
from gateway.stores.factory import build_model_cache
from gateway.upstream.errors import is_signature_rejection
from gateway.upstream.kiro_client import KiroClient
from gateway.upstream.pipeline import AnswerStats, AnswerStream
from gateway.usage.limits import UsageLimitsCache
from gateway.usage.service import UsageService
from gateway.usage.store import build_usage_store
from kiro_core.cache_points import CachePolicy
from kiro_core.convert.kiro import KiroRequest, build_kiro_request
from kiro_core.convert.options import ConversionOptions
from kiro_core.convert.reasoning import static_schema
from kiro_core.errors import ErrorKind, GatewayError, prompt_too_long_message
from kiro_core.models_catalog import ResolvedModel
from kiro_core.session import ConversationIds, conversation_ids
from kiro_core.stream import ResponseAssembler
from kiro_core.tokens import estimate_input_tokens
from kiro_core.unified import Conversation

log = logging.getLogger(__name__)

STORED_KEY_SECONDS = 60.0
T = TypeVar("T")


def build_http_client(settings: Settings) -> httpx.AsyncClient:
    """The one pooled upstream client; short keep-alive expiry so connections stranded by network changes die."""
    return httpx.AsyncClient(
        timeout=httpx.Timeout(connect=30.0, read=settings.timing.streaming_read_timeout, write=30.0, pool=30.0),
        limits=httpx.Limits(max_connections=100, max_keepalive_connections=20, keepalive_expiry=30.0),
        proxy=_proxy_url(settings.endpoints.vpn_proxy_url),
        follow_redirects=False,
    )


def _proxy_url(raw: str) -> str | None:
    if not raw:
        return None
    return raw if "://" in raw else f"http://{raw}"


@dataclass
class PreparedAnswer:
    """An answer whose upstream stream has passed its commit boundary."""

    stream: AnswerStream
    model: ResolvedModel
    input_tokens: int
    kiro_request: KiroRequest
    ids: ConversationIds


class GatewayRuntime:
    def __init__(self, settings: Settings, http: httpx.AsyncClient, store: TokenStore | None,
                 pool: AccountPool | None, credentials_problem: str, models: ModelService):
        self.settings = settings
        self.http = http
        self.store = store  # where the client API key is kept beside the credentials (the Lambda secret), if any
        self.pool = pool
        self._proxy_api_key = settings.server.proxy_api_key
        self._stored_key_expires = 0.0
        self.credentials_problem = credentials_problem
        self.models = models
        self.usage: UsageService = build_usage_service(settings, None)
        self._prefetched = not settings.aws.kiro_state_table  # a new instance's first state reads: one call
        # CPU work proportional to a request (token estimates, megabyte bodies) runs here, off the event loop.
        self.cpu = ThreadPoolExecutor(max_workers=settings.processing.cpu_worker_threads,
                                      thread_name_prefix="gateway-cpu")
        # Python's default (5 ms) makes every wake-up of the event loop wait that long behind a busy worker thread.
        sys.setswitchinterval(settings.processing.gil_switch_interval_ms / 1000)
        self.conversion = conversion_options(settings)

    @classmethod
    async def create(cls, settings: Settings) -> GatewayRuntime:
        http = build_http_client(settings)
        cache = build_model_cache(settings)
        built = await build_accounts(settings, http)
        runtime = cls(settings, http, built.key_store, built.pool, built.problem, ModelService(None, cache, 0))
        pool = built.pool
        # Every upstream call goes through the pool: it picks a usable account, holds its slot, learns from the answer.
        runtime.models = ModelService(pool.list_models if pool else None, cache, settings.models.model_cache_ttl,
                                      account=pool.catalog_key if pool else None)
        runtime.usage = build_usage_service(settings, pool.usage_limits if pool else None)
        return runtime

    async def aclose(self) -> None:
        await self.http.aclose()
        self.cpu.shutdown(wait=False, cancel_futures=True)

    async def run_cpu(self, fn: Callable[[], T]) -> T:
        """`fn()` in a worker thread: other requests' streams go on meanwhile (docs/performance.md)."""
        return await asyncio.wrap_future(self.cpu.submit(fn))

    def estimate(self, conversation: Conversation) -> Future[int]:
        """The conversation's input-token estimate: counted at once for a small body (microseconds; a thread hop
        would cost more), else started now in a worker thread. The process's memo makes a session's next turn count
        only its new messages."""
        if conversation.body_bytes >= self.settings.processing.cpu_offload_bytes:
            return self.cpu.submit(estimate_input_tokens, conversation)
        done: Future[int] = Future()
        done.set_result(estimate_input_tokens(conversation))
        return done

    async def proxy_api_key(self) -> str:
        """The client API key: PROXY_API_KEY, else the one kept beside the credentials (the Lambda secret),
        re-read every `STORED_KEY_SECONDS` so that a rotated key takes effect without recycling instances (within
        60 s: the secret's copy is read again once it is that old, and that read serves the credentials and the key
        ring too)."""
        if self.settings.server.proxy_api_key:
            return self.settings.server.proxy_api_key
        fresh_document = getattr(self.store, "fresh_document", None)
        if fresh_document is not None:
            if time.monotonic() >= self._stored_key_expires:
                key = (await fresh_document(STORED_KEY_SECONDS)).get("proxyApiKey")
                self._proxy_api_key = key if isinstance(key, str) else ""
                self._stored_key_expires = time.monotonic() + 1.0  # the store's copy decides the age
                SCRUBBER.add(self._proxy_api_key)
            return self._proxy_api_key
        reader = getattr(self.store, "proxy_api_key", None)
        if reader is not None and time.monotonic() >= self._stored_key_expires:
            self._proxy_api_key = await reader() or ""
            self._stored_key_expires = time.monotonic() + STORED_KEY_SECONDS
            SCRUBBER.add(self._proxy_api_key)
        return self._proxy_api_key

    def require_pool(self) -> AccountPool:
        if self.pool is None:
            raise GatewayError(
                ErrorKind.INTERNAL,
                f"The gateway has no Kiro credentials. {self.credentials_problem}",
                status=503,
            )
        return self.pool

    async def open_answer(self, conversation: Conversation, stats: AnswerStats) -> PreparedAnswer:
        """Resolve the model, then open the answer on an account (failing over to the next one before the commit
        boundary when an account is throttled, exhausted, suspended or refused: `gateway.accounts.pool`)."""
        pool = self.require_pool()
        await self.prefetch_state()
        catalog = await self.models.catalog()
        model = catalog.resolve(conversation.model)
        schema = model.request_fields_schema
        if schema is None and not catalog.from_upstream and self.settings.conversion.native_reasoning_static_table:
            schema = static_schema(model.kiro_id)

        upstream_entry = catalog.upstream_entry(model.kiro_id)
        # Counted while the payload is built and the upstream works: needed for usage figures, not to send.
        estimate = self.estimate(conversation)

        async def attempt(account: Account, release: Release) -> PreparedAnswer:
            answer = await self._open_on(account.kiro, conversation, model, schema, upstream_entry, stats, estimate)
            answer.stream.on_close(release)
            return answer

        try:
            return await pool.run(attempt)
        except GatewayError as error:
            if error.kind is ErrorKind.CONTEXT_TOO_LONG:
                # Worded as Anthropic's API does, so Claude Code compacts by itself (docs/protocol.md §Compaction);
                # the figure is the estimate already being counted off the event loop.
                tokens = await asyncio.wrap_future(estimate)
                error.anthropic_message = prompt_too_long_message(tokens, model.max_input_tokens)
            raise

    async def prefetch_state(self) -> None:
        """On a new instance, before its first answer: the catalogue item and the accounts' states in one
        BatchGetItem (see `gateway.stores.state_prefetch`); each store then serves its primed item instead of reading
        it. Nothing on later calls."""
        if self._prefetched or self.pool is None:
            return
        self._prefetched = True
        # lazy: only deployments with a state table load the prefetch (and boto3)
        from gateway.stores.dynamo_models import item_key
        from gateway.stores.state_prefetch import prefetch, state_client

        pool = self.pool
        primed: dict[str, Callable[[Any], None]] = {}
        cache = self.models.cache
        key = await self.models.cache_key()
        prime_catalog = getattr(cache, "prime", None)
        if prime_catalog is not None and not self.models.holds(key):
            primed[item_key(key)] = lambda item: prime_catalog(key, item)
        prime_state = getattr(pool.health, "prime", None)
        if prime_state is not None:
            for account in pool.accounts:
                primed[f"account#{account.name}"] = lambda item, name=account.name: prime_state(name, item)
        await prefetch(self.settings.aws.kiro_state_table, state_client(), primed)

    async def _open_on(self, kiro: KiroClient, conversation: Conversation, model: ResolvedModel,
                       schema: dict[str, Any] | None, upstream_entry: dict[str, Any] | None,
                       stats: AnswerStats, estimate: Future[int]) -> PreparedAnswer:
        """Build the Kiro payload for this account (its profile ARN) and open the answer past its commit boundary."""
        settings = self.settings
        options = self.conversion
        arn = await kiro.profile_arn()
        if arn:
            options = _with_profile_arn(options, arn)
        hints = conversation.session if settings.conversations.stable_conversation_ids else None
        ids = conversation_ids(conversation, hints, str(uuid.uuid4()))
        policy = CachePolicy.from_catalog(upstream_entry) if options.cache_points else None

        def build(replay_reasoning: bool = True) -> KiroRequest:
            return build_kiro_request(conversation, model.kiro_id, options, ids.conversation_id,
                                      continuation_id=ids.continuation_id,
                                      root_conversation_id=ids.root_conversation_id, cache_policy=policy,
                                      request_fields_schema=schema, replay_reasoning=replay_reasoning)

        large = conversation.body_bytes >= settings.processing.cpu_offload_bytes
        kiro_request = await self.run_cpu(build) if large else build()
        detect = conversation.thinking.enabled

        def new_assembler() -> ResponseAssembler:
            return ResponseAssembler(
                input_tokens=estimate.result,  # read at the answer's end; awaited below before the stream goes on
                max_input_tokens=model.max_input_tokens,
                tool_name_aliases=kiro_request.tool_name_aliases,
                thinking_handling=settings.conversion.fake_reasoning_handling,
                detect_thinking=detect,
            )

        async def open_stream(body: bytes) -> AnswerStream:
            return await AnswerStream.open(
                kiro,
                body,
                new_assembler,
                first_token_timeout=settings.timing.first_token_timeout,
                attempts=settings.timing.first_token_max_retries,
                keepalive=settings.timing.keepalive_interval,
                stats=stats,
            )

        try:
            stream = await open_stream(kiro_request.body)
        except GatewayError as error:
            if not (kiro_request.replays_reasoning and is_signature_rejection(error)):
                raise
            # Kiro's own client does this (docs/protocol.md §Native reasoning): the conversation goes on without old
            # reasoning.
            log.warning("Kiro rejected a replayed reasoning signature; retrying once without reasoningContent")
            kiro_request = await self.run_cpu(lambda: build(False)) if large else build(replay_reasoning=False)
            stream = await open_stream(kiro_request.body)
        try:
            input_tokens = await asyncio.wrap_future(estimate)
        except BaseException:
            await stream.aclose()
            raise
        return PreparedAnswer(stream, model, input_tokens, kiro_request, ids)


def build_usage_service(settings: Settings,
                        fetch_limits: Callable[[], Awaitable[dict[str, Any]]] | None) -> UsageService:
    """Counters in the configured store, Kiro's limits through `fetch_limits` (None: no credentials)."""
    limits = UsageLimitsCache(fetch_limits, settings.usage.usage_limits_cache_seconds)
    return UsageService(build_usage_store(settings), limits, settings.usage.usage_retention_days)


def _with_profile_arn(options: ConversionOptions, arn: str) -> ConversionOptions:
    return replace(options, profile_arn=arn)
