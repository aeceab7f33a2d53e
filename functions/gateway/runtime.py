"""The gateway's long-lived parts, built once per process on first use.

Built lazily (not in a lifespan hook) because the buffered Lambda entry point runs Mangum with `lifespan="off"`.
Missing credentials do not stop the process: requests that need Kiro get an error that says what to configure.
"""

from __future__ import annotations

import logging
import time
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, replace
from typing import Any

import anyio
import httpx

from gateway.accounts.pool import Account, AccountPool, Release
from gateway.accounts.setup import build_accounts
from gateway.auth.manager import AuthManager
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
        first = pool.first() if pool is not None else None
        self.kiro: KiroClient | None = first.kiro if first is not None else None  # the first account's client
        self.auth: AuthManager | None = first.auth if first is not None else None
        self.usage: UsageService = build_usage_service(settings, None)
        self.conversion = conversion_options(settings)

    @classmethod
    async def create(cls, settings: Settings) -> GatewayRuntime:
        http = build_http_client(settings)
        cache = build_model_cache(settings)
        built = await build_accounts(settings, http)
        runtime = cls(settings, http, built.key_store, built.pool, built.problem, ModelService(None, cache, 0))
        fetch = built.pool.list_models if built.pool is not None else None
        # The catalogue is cached under the first account's key (pools fail over within one subscription).
        account = runtime.kiro.catalog_key if runtime.kiro else None
        runtime.models = ModelService(fetch, cache, settings.models.model_cache_ttl, account=account)
        runtime.usage = build_usage_service(settings, runtime.kiro.get_usage_limits if runtime.kiro else None)
        return runtime

    async def aclose(self) -> None:
        await self.http.aclose()

    async def proxy_api_key(self) -> str:
        """The client API key: PROXY_API_KEY, else the one kept beside the credentials (the Lambda secret),
        re-read every `STORED_KEY_SECONDS` so that a rotated key takes effect without recycling instances."""
        if self.settings.server.proxy_api_key:
            return self.settings.server.proxy_api_key
        reader = getattr(self.store, "proxy_api_key", None)
        if reader is not None and time.monotonic() >= self._stored_key_expires:
            self._proxy_api_key = await reader() or ""
            self._stored_key_expires = time.monotonic() + STORED_KEY_SECONDS
            SCRUBBER.add(self._proxy_api_key)
        return self._proxy_api_key

    def require_kiro(self) -> KiroClient:
        self.require_pool()
        assert self.kiro is not None
        return self.kiro

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
        catalog = await self.models.catalog()
        model = catalog.resolve(conversation.model)
        schema = model.request_fields_schema
        if schema is None and not catalog.from_upstream and self.settings.conversion.native_reasoning_static_table:
            schema = static_schema(model.kiro_id)

        upstream_entry = catalog.upstream_entry(model.kiro_id)

        async def attempt(account: Account, release: Release) -> PreparedAnswer:
            answer = await self._open_on(account.kiro, conversation, model, schema, upstream_entry, stats)
            answer.stream.on_close(release)
            return answer

        try:
            return await pool.run(attempt)
        except GatewayError as error:
            if error.kind is ErrorKind.CONTEXT_TOO_LONG:
                # Worded as Anthropic's API does, so Claude Code compacts by itself; the estimate is made only here,
                # when it is needed, off the event loop (a conversation this size takes a while to count;
                # docs/protocol.md §Compaction).
                tokens = await anyio.to_thread.run_sync(estimate_input_tokens, conversation)
                error.anthropic_message = prompt_too_long_message(tokens, model.max_input_tokens)
            raise

    async def _open_on(self, kiro: KiroClient, conversation: Conversation, model: ResolvedModel,
                       schema: dict[str, Any] | None, upstream_entry: dict[str, Any] | None,
                       stats: AnswerStats) -> PreparedAnswer:
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

        kiro_request = build()
        input_tokens = estimate_input_tokens(conversation)
        detect = conversation.thinking.enabled

        def new_assembler() -> ResponseAssembler:
            return ResponseAssembler(
                input_tokens=input_tokens,
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
            kiro_request = build(replay_reasoning=False)
            stream = await open_stream(kiro_request.body)
        return PreparedAnswer(stream, model, input_tokens, kiro_request, ids)


def build_usage_service(settings: Settings,
                        fetch_limits: Callable[[], Awaitable[dict[str, Any]]] | None) -> UsageService:
    """Counters in the configured store, Kiro's limits through `fetch_limits` (None: no credentials)."""
    limits = UsageLimitsCache(fetch_limits, settings.usage.usage_limits_cache_seconds)
    return UsageService(build_usage_store(settings), limits, settings.usage.usage_retention_days)


def _with_profile_arn(options: ConversionOptions, arn: str) -> ConversionOptions:
    return replace(options, profile_arn=arn)
