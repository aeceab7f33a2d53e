"""The gateway's long-lived parts, built once per process on first use.

Built lazily (not in a lifespan hook) because the buffered Lambda entry point runs Mangum with `lifespan="off"`.
Missing credentials do not stop the process: requests that need Kiro get an error that says what to configure.
"""

from __future__ import annotations

import logging
import time
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import httpx

from gateway.auth.manager import AuthManager
from gateway.auth.refresh import RefreshError, TokenRefresher
from gateway.kiro_client import KiroClient, kiro_user_agent
from gateway.logging_setup import SCRUBBER
from gateway.model_service import ModelService
from gateway.pipeline import AnswerStats, AnswerStream
from gateway.settings import Settings
from gateway.stores.base import Credentials, CredentialsNotFound, TokenStore
from gateway.stores.factory import build_model_cache, build_token_store
from gateway.usage.limits import UsageLimitsCache
from gateway.usage.service import UsageService
from gateway.usage.store import build_usage_store
from kiro_core.cache_points import CachePolicy
from kiro_core.convert.kiro import KiroRequest, build_kiro_request
from kiro_core.convert.options import ConversionOptions
from kiro_core.errors import ErrorKind, GatewayError
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
        timeout=httpx.Timeout(connect=30.0, read=settings.streaming_read_timeout, write=30.0, pool=30.0),
        limits=httpx.Limits(max_connections=100, max_keepalive_connections=20, keepalive_expiry=30.0),
        proxy=_proxy_url(settings.vpn_proxy_url),
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
                 auth: AuthManager | None, credentials_problem: str, models: ModelService):
        self.settings = settings
        self.http = http
        self.store = store
        self.auth = auth
        self._proxy_api_key = settings.proxy_api_key
        self._stored_key_expires = 0.0
        self.credentials_problem = credentials_problem
        self.models = models
        self.usage: UsageService = build_usage_service(settings, None)
        self.kiro: KiroClient | None = None
        if auth is not None:
            bridge = _AuthBridge(auth)
            self.kiro = KiroClient(settings, http, bridge.access_token, bridge.force_refresh, bridge.credentials)
        self.conversion = ConversionOptions(
            tool_description_max_length=settings.tool_description_max_length,
            max_payload_bytes=settings.kiro_max_payload_bytes,
            fake_reasoning=settings.fake_reasoning,
            fake_reasoning_max_tokens=settings.fake_reasoning_max_tokens,
            fake_reasoning_budget_cap=settings.fake_reasoning_budget_cap,
            agent_task_type=settings.kiro_agent_task_type,
            agent_continuation=settings.kiro_agent_continuation,
            root_conversation_id=settings.kiro_root_conversation_id,
            cache_points=settings.kiro_cache_points,
        )

    @classmethod
    async def create(cls, settings: Settings) -> GatewayRuntime:
        http = build_http_client(settings)
        cache = build_model_cache(settings)
        store: TokenStore | None = None
        auth: AuthManager | None = None
        problem = ""
        try:
            store = build_token_store(settings)
            creds = await store.load()
        except CredentialsNotFound as error:
            problem = str(error)
            log.warning("no Kiro credentials: %s", problem)
        else:
            SCRUBBER.add(creds.refresh_token, creds.access_token, creds.client_secret)
            auth = AuthManager(store, TokenRefresher.from_settings(http, settings, user_agent=kiro_user_agent()))
        runtime = cls(settings, http, store, auth, problem, ModelService(None, cache, 0))
        fetch = runtime.kiro.list_models if runtime.kiro else None
        runtime.models = ModelService(fetch, cache, settings.model_cache_ttl)
        runtime.usage = build_usage_service(settings, runtime.kiro.get_usage_limits if runtime.kiro else None)
        return runtime

    async def aclose(self) -> None:
        await self.http.aclose()

    async def proxy_api_key(self) -> str:
        """The client API key: PROXY_API_KEY, else the one kept beside the credentials (the Lambda secret),
        re-read every `STORED_KEY_SECONDS` so that a rotated key takes effect without recycling instances."""
        if self.settings.proxy_api_key:
            return self.settings.proxy_api_key
        reader = getattr(self.store, "proxy_api_key", None)
        if reader is not None and time.monotonic() >= self._stored_key_expires:
            self._proxy_api_key = await reader() or ""
            self._stored_key_expires = time.monotonic() + STORED_KEY_SECONDS
            SCRUBBER.add(self._proxy_api_key)
        return self._proxy_api_key

    def require_kiro(self) -> KiroClient:
        if self.kiro is None:
            raise GatewayError(
                ErrorKind.INTERNAL,
                f"The gateway has no Kiro credentials. {self.credentials_problem}",
                status=503,
            )
        return self.kiro

    async def open_answer(self, conversation: Conversation, stats: AnswerStats) -> PreparedAnswer:
        """Resolve the model, build the Kiro payload and open the upstream answer past its commit boundary."""
        kiro = self.require_kiro()
        catalog = await self.models.catalog()
        model = catalog.resolve(conversation.model)
        options = self.conversion
        arn = await kiro.profile_arn()
        if arn:
            options = _with_profile_arn(options, arn)
        settings = self.settings
        hints = conversation.session if settings.stable_conversation_ids else None
        ids = conversation_ids(conversation, hints, str(uuid.uuid4()))
        policy = CachePolicy.from_catalog(catalog.upstream_entry(model.kiro_id)) if options.cache_points else None
        kiro_request = build_kiro_request(conversation, model.kiro_id, options, ids.conversation_id,
                                          continuation_id=ids.continuation_id,
                                          root_conversation_id=ids.root_conversation_id, cache_policy=policy)
        input_tokens = estimate_input_tokens(conversation)
        detect = conversation.thinking.enabled

        def new_assembler() -> ResponseAssembler:
            return ResponseAssembler(
                input_tokens=input_tokens,
                max_input_tokens=model.max_input_tokens,
                tool_name_aliases=kiro_request.tool_name_aliases,
                thinking_handling=settings.fake_reasoning_handling,
                detect_thinking=detect,
            )

        stream = await AnswerStream.open(
            kiro,
            kiro_request.body,
            new_assembler,
            first_token_timeout=settings.first_token_timeout,
            attempts=settings.first_token_max_retries,
            keepalive=settings.keepalive_interval,
            stats=stats,
        )
        return PreparedAnswer(stream, model, input_tokens, kiro_request, ids)


def build_usage_service(settings: Settings,
                        fetch_limits: Callable[[], Awaitable[dict[str, Any]]] | None) -> UsageService:
    """Counters in the configured store, Kiro's limits through `fetch_limits` (None: no credentials)."""
    limits = UsageLimitsCache(fetch_limits, settings.usage_limits_cache_seconds)
    return UsageService(build_usage_store(settings), limits, settings.usage_retention_days)


def _with_profile_arn(options: ConversionOptions, arn: str) -> ConversionOptions:
    from dataclasses import replace

    return replace(options, profile_arn=arn)


class _AuthBridge:
    """The auth manager as the Kiro client needs it: refresh failures become classified gateway errors, and every
    token handed out (rotations included) is registered with the log scrubber first."""

    def __init__(self, auth: AuthManager):
        self._auth = auth

    async def access_token(self) -> str:
        try:
            token = await self._auth.access_token()
        except RefreshError as error:
            raise error.as_gateway_error() from None
        SCRUBBER.add(token)
        return token

    async def force_refresh(self, rejected_token: str | None = None) -> str:
        try:
            token = await self._auth.force_refresh(rejected_token)
        except RefreshError as error:
            raise error.as_gateway_error() from None
        SCRUBBER.add(token)
        return token

    async def credentials(self) -> Credentials:
        creds = await self._auth.credentials()
        SCRUBBER.add(creds.refresh_token, creds.access_token, creds.client_secret)
        return creds
