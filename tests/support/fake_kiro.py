"""A fake Kiro upstream: a real HTTP/1.1 server on 127.0.0.1 for integration tests, race tests and benchmarks.

It speaks the endpoints the gateway calls: `POST /generateAssistantResponse` (binary event-stream frames in a
chunked body, cut into odd-sized network pieces), the catalogue both as the management host's awsJson1.0 operation
(`POST /?origin=AI_EDITOR` with `x-amz-target: AmazonCodeWhispererService.ListAvailableModels`, paginated by
`models_page_size`) and as the legacy `GET /ListAvailableModels`, `GET /getUsageLimits`, `POST /refreshToken`
(Kiro desktop) and `POST /token` (AWS SSO OIDC CreateToken) and `POST /mcp` (web search: JSON-RPC `tools/call`, scripted
with `enqueue_search`), plus the login endpoints of `tests.support.fake_oidc` (device flows,
profiles). Kiro API keys (`issue_api_key`) are accepted with the `tokentype: API_KEY` header only. Both
catalogue forms are recorded as the `models` endpoint. Auth behaves
like the real services where it matters to us: refresh tokens are single use and rotate, unknown or expired access
tokens get 403 "The bearer token included in the request is invalid.". Everything is guarded by one lock, so
concurrent refreshes (threads or other processes) are serialised.

    with FakeKiro() as fake:
        token = fake.issue_refresh_token()
        fake.enqueue_chat([*text_stream("hi"), Drop()])
        ...  # point KIRO_API_BASE_URL / KIRO_DESKTOP_AUTH_URL / KIRO_OIDC_URL at fake.url
        assert fake.refresh_count == 1

Run standalone: `python -m tests.support.fake_kiro --port 8900` prints the URL and a valid refresh token.
"""

from __future__ import annotations

import argparse
import json
import re
import secrets
import threading
import time
from collections import deque
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from tests.support.fake_kiro_http import ENDPOINTS, INVALID_BEARER, FakeKiroServer, Received
from tests.support.fake_kiro_scripts import (
    Corrupt,
    Drop,
    Pause,
    Script,
    SearchReply,
    Status,
    Step,
    Together,
    default_answer,
    exception_stream,
    probe_stream,
    search_results,
    silent_stream,
    text_stream,
    throttled,
    tool_call_frames,
    tool_call_stream,
    truncated_tool_stream,
)
from tests.support.fake_oidc import DeviceFlows

__all__ = [
    "INVALID_BEARER", "Corrupt", "Drop", "FakeKiro", "Pause", "Received", "Script", "SearchReply", "Status", "Step",
    "Together",
    "exception_stream", "probe_stream", "search_results", "silent_stream", "text_stream", "throttled",
    "tool_call_frames",
    "tool_call_stream", "truncated_tool_stream",
]

_SIGNATURE = re.compile(rb'"signature":\s*"([^"]+)"')
DEFAULT_PROFILE_ARN = "arn:aws:codewhisperer:us-east-1:699475941385:profile/FAKEPROFILE01"
_ALIASES = {"chat": "generateAssistantResponse", "models": "ListAvailableModels", "refresh": "refreshToken",
            "desktop": "refreshToken", "oidc": "token", "search": "mcp", "register": "client/register",
            "device": "device_authorization", "social": "oauth/device/authorization",
            "social_poll": "oauth/device/poll", "profiles": "", "usage": "getUsageLimits"}


def _model(model_id: str, name: str, max_input: int, max_output: int, *, rate: float | None = None,
           caching: dict[str, Any] | None = None, schema: dict[str, Any] | None = None,
           inputs: tuple[str, ...] = ("TEXT", "IMAGE")) -> dict[str, Any]:
    """A catalogue entry as ListAvailableModels returns it (protocol.md §Models); optional fields only if given."""
    entry: dict[str, Any] = {"modelId": model_id, "modelName": name, "description": f"{name} (fake)",
                             "supportedInputTypes": list(inputs),
                             "tokenLimits": {"maxInputTokens": max_input, "maxOutputTokens": max_output}}
    if rate is not None:
        entry.update(rateMultiplier=rate, rateUnit="Credit")
    if caching is not None:
        entry["promptCaching"] = caching
    if schema is not None:
        entry["additionalModelRequestFieldsSchema"] = schema
    return entry


def claude_fields_schema(efforts: tuple[str, ...], thinking: tuple[str, ...], max_tokens: int) -> dict[str, Any]:
    """Claude 4.6+/5.x request-field schema: `output_config.effort`, `thinking.{type,display}`, `max_tokens`."""
    return {"type": "object", "additionalProperties": False, "properties": {
        "output_config": {"type": "object", "additionalProperties": False,
                          "properties": {"effort": {"type": "string", "enum": list(efforts)}}},
        "thinking": {"type": "object", "additionalProperties": False, "properties": {
            "type": {"type": "string", "enum": list(thinking)},
            "display": {"type": "string", "enum": ["summarized", "omitted"]}}},
        "max_tokens": {"type": "integer", "minimum": 1024, "maximum": max_tokens}}}


def gpt_fields_schema() -> dict[str, Any]:
    """GPT-5.6 request-field schema: `reasoning.effort` only."""
    return {"type": "object", "additionalProperties": False, "properties": {
        "reasoning": {"type": "object", "additionalProperties": False, "properties": {
            "effort": {"type": "string", "enum": ["none", "low", "medium", "high", "xhigh", "max"]}}}}}


_CACHING = {"supportsPromptCaching": True, "maximumCacheCheckpointsPerRequest": 4,
            "minimumTokensPerCacheCheckpoint": 1024}
_NO_CACHING = {"supportsPromptCaching": False}
_FIVE = ("low", "medium", "high", "xhigh", "max")
_ADAPTIVE = ("adaptive", "disabled")

# The first five entries are what the fake always served (tests rely on them); the rest is today's catalogue
# (docs/protocol.md §Models): schemas on Claude 4.6+/5.x and GPT-5.6, none on the 4.5 family and the open-weight models.
DEFAULT_MODELS = [
    _model("auto", "Auto", 200_000, 64_000),
    _model("claude-sonnet-4.5", "Claude Sonnet 4.5", 200_000, 64_000, rate=1.3, caching=_CACHING),
    _model("claude-haiku-4.5", "Claude Haiku 4.5", 200_000, 64_000, rate=0.4, caching=_CACHING),
    _model("claude-opus-4.5", "Claude Opus 4.5", 200_000, 32_000, rate=2.2, caching=_CACHING),
    _model("claude-sonnet-4", "Claude Sonnet 4", 200_000, 64_000, rate=1.3, caching=_CACHING),
    _model("claude-sonnet-4.6", "Claude Sonnet 4.6", 1_000_000, 64_000, rate=1.3, caching=_CACHING,
           schema=claude_fields_schema(("low", "medium", "high", "max"), _ADAPTIVE, 64_000)),
    _model("claude-opus-4.6", "Claude Opus 4.6", 1_000_000, 128_000, rate=2.2, caching=_CACHING,
           schema=claude_fields_schema(("low", "medium", "high", "max"), _ADAPTIVE, 64_000)),
    _model("claude-opus-4.8", "Claude Opus 4.8", 1_000_000, 64_000, rate=2.2, caching=_CACHING,
           schema=claude_fields_schema(_FIVE, _ADAPTIVE, 128_000)),
    _model("claude-sonnet-5", "Claude Sonnet 5", 1_000_000, 128_000, rate=1.3, caching=_CACHING,
           schema=claude_fields_schema(_FIVE, _ADAPTIVE, 128_000)),
    _model("claude-opus-5", "Claude Opus 5", 1_000_000, 128_000, rate=2.2, caching=_CACHING,
           schema=claude_fields_schema(_FIVE, _ADAPTIVE, 128_000)),
    _model("claude-sonnet-5.5", "Claude Sonnet 5.5", 1_000_000, 128_000, rate=1.3, caching=_CACHING,
           schema=claude_fields_schema(_FIVE, ("adaptive", "between_tools"), 128_000)),
    _model("claude-opus-5.5", "Claude Opus 5.5", 1_000_000, 128_000, rate=2.0,
           caching={"supportsPromptCaching": True}, schema=claude_fields_schema(_FIVE, ("adaptive",), 128_000)),
    _model("gpt-5.6-sol", "GPT-5.6 Sol", 272_000, 128_000, rate=4.4, caching=_CACHING, schema=gpt_fields_schema()),
    _model("gpt-5.6-terra", "GPT-5.6 Terra", 272_000, 128_000, rate=2.2, caching=_CACHING,
           schema=gpt_fields_schema()),
    _model("gpt-5.6-luna", "GPT-5.6 Luna", 272_000, 128_000, rate=1.1, caching=_CACHING, schema=gpt_fields_schema()),
    _model("deepseek-3.2", "DeepSeek 3.2", 164_000, 32_000, rate=0.25, caching=_NO_CACHING, inputs=("TEXT",)),
    _model("glm-5", "GLM-5", 200_000, 32_000, rate=0.5, caching=_NO_CACHING, inputs=("TEXT",)),
    _model("minimax-m2.5", "MiniMax M2.5", 196_000, 32_000, rate=0.25, caching=_NO_CACHING, inputs=("TEXT",)),
    _model("qwen3-coder-next", "Qwen3 Coder Next", 256_000, 32_000, rate=0.05, caching=_NO_CACHING,
           inputs=("TEXT",)),
]


def _claude_fields_schema(efforts: list[str], types: list[str], max_tokens: int) -> dict[str, Any]:
    """A Claude-style `additionalModelRequestFieldsSchema` (docs/protocol.md §Native reasoning)."""
    return {"type": "object", "additionalProperties": False, "properties": {
        "output_config": {"type": "object", "additionalProperties": False,
                          "properties": {"effort": {"type": "string", "enum": efforts}}},
        "thinking": {"type": "object", "additionalProperties": False, "required": ["type"], "properties": {
            "type": {"type": "string", "enum": types},
            "display": {"type": "string", "enum": ["summarized", "omitted"]}}},
        "max_tokens": {"type": "integer", "minimum": 1024, "maximum": max_tokens}}}


def _with_schema(model: dict[str, Any], schema: dict[str, Any]) -> dict[str, Any]:
    return {**model, "additionalModelRequestFieldsSchema": schema}


# Models with native reasoning; not in DEFAULT_MODELS (tests that want them call `set_models`).
REASONING_MODELS = [
    _with_schema(_model("claude-sonnet-4.6", "Claude Sonnet 4.6", 1_000_000, 64_000),
                 _claude_fields_schema(["low", "medium", "high", "max"], ["adaptive", "disabled"], 64000)),
    _with_schema(_model("claude-opus-5.5", "Claude Opus 5.5", 1_000_000, 128_000),
                 _claude_fields_schema(["low", "medium", "high", "xhigh", "max"], ["adaptive"], 128000)),
    _with_schema(_model("gpt-5.6-sol", "GPT-5.6 Sol", 272_000, 128_000), {
        "type": "object", "additionalProperties": False, "properties": {
            "reasoning": {"type": "object", "additionalProperties": False, "properties": {"effort": {
                "type": "string", "enum": ["none", "low", "medium", "high", "xhigh", "max"]}}}}}),
]


# GetUsageLimits as Kiro answers it (docs/protocol.md §Credits and usage); epoch seconds for the reset date.
DEFAULT_USAGE_LIMITS = {
    "subscriptionInfo": {"subscriptionTitle": "KIRO PRO", "type": "Q_DEVELOPER_STANDALONE_PRO"},
    "usageBreakdownList": [{
        "resourceType": "AGENTIC_REQUEST", "displayName": "Credit", "displayNamePlural": "Credits",
        "currentUsage": 123, "currentUsageWithPrecision": 123.45, "usageLimit": 1000, "usageLimitWithPrecision": 1000.0,
        "currency": "USD", "overageCharges": 0.0, "overageRate": 0.04, "overageCap": 100, "nextDateReset": 1798761600,
    }],
    "daysUntilReset": 12,
    "nextDateReset": 1798761600,
    "overageConfiguration": {"overageStatus": "DISABLED"},
    "userInfo": {"userId": "fake-user-id-0001"},
}


def _endpoint(name: str) -> str:
    endpoint = _ALIASES[name] if name in _ALIASES else name.strip("/")
    if endpoint not in ENDPOINTS:
        raise ValueError(f"unknown endpoint {name!r}; use one of {ENDPOINTS} or {sorted(_ALIASES)}")
    return endpoint


class FakeKiro:
    """The fake upstream. `piece_sizes=(lo, hi)`: stream bytes leave in pieces of lo..hi bytes, each its own HTTP
    chunk, with `piece_delay` seconds between them. `frame_writes=True` instead sends every script frame as one
    HTTP chunk in one network write (how Kiro itself sends), ignoring `piece_sizes`. `rotate_refresh_tokens=False`
    makes refresh responses omit the new refresh token (and the old one stays valid). `refresh_delay` widens race
    windows on refresh endpoints."""

    def __init__(self, *, host: str = "127.0.0.1", port: int = 0, piece_sizes: tuple[int, int] = (1, 7),
                 piece_delay: float = 0.0, seed: int = 0, access_token_ttl: int = 3600,
                 rotate_refresh_tokens: bool = True, refresh_delay: float = 0.0,
                 profile_arn: str = DEFAULT_PROFILE_ARN, frame_writes: bool = False,
                 models_page_size: int = 8) -> None:
        if not 1 <= piece_sizes[0] <= piece_sizes[1]:
            raise ValueError("piece_sizes must be (lo, hi) with 1 <= lo <= hi")
        self.piece_sizes = piece_sizes
        self.piece_delay = piece_delay
        self.frame_writes = frame_writes
        self.access_token_ttl = access_token_ttl
        self.rotate_refresh_tokens = rotate_refresh_tokens
        self.refresh_delay = refresh_delay
        self.profile_arn = profile_arn
        self.models_page_size = models_page_size  # management pages: the gateway must follow `nextToken`
        self._seed = seed
        self._host = host
        self._lock = threading.Lock()
        self._stopping = threading.Event()
        self._access: dict[str, float] = {}  # token -> monotonic expiry
        self._refresh: set[str] = set()
        self._clients: dict[str, str] = {}
        self._api_keys: set[str] = set()
        self._bearer_failures: dict[tuple[str, str], deque[Status]] = {}
        self._scripts: deque[Script] = deque()
        # signature → every (model id, tool names) of a request its answer was minted for: like the real service
        # (docs/protocol.md §Replaying reasoning), a replay under another model or without one of those tools is refused
        self._minted: dict[str, set[tuple[str, frozenset[str]]]] = {}
        self._searches: deque[SearchReply | Status] = deque()
        self._failures: dict[str, deque[Status]] = {name: deque() for name in ENDPOINTS}
        self._received: list[Received] = []
        self._refresh_count = 0
        self._abandoned = 0
        self._models = list(DEFAULT_MODELS)
        self._usage_limits: dict[str, Any] = json.loads(json.dumps(DEFAULT_USAGE_LIMITS))
        self._default_model: dict[str, Any] = {"modelId": "auto"}
        self._account_models: dict[str, list[dict[str, Any]]] = {}  # profile ARN -> its own catalogue
        self.oidc = DeviceFlows(self)
        self._server = FakeKiroServer((host, port), self)
        self._thread: threading.Thread | None = None

    # -- lifecycle -------------------------------------------------------------------------------------------------

    @property
    def url(self) -> str:
        return f"http://{self._host}:{self._server.server_address[1]}"

    def start(self) -> FakeKiro:
        if self._thread is None:
            self._thread = threading.Thread(target=self._server.serve_forever, args=(0.05,), name="fake-kiro",
                                            daemon=True)
            self._thread.start()
        return self

    def stop(self) -> None:
        self._stopping.set()
        if self._thread is not None:
            self._server.shutdown()
            self._thread.join(timeout=5)
            self._thread = None
        self._server.server_close()

    def __enter__(self) -> FakeKiro:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def gateway_env(self, refresh_token: str | None = None) -> dict[str, str]:
        """Environment variables that point a gateway at this fake (with a fresh refresh token unless given)."""
        return {"KIRO_API_BASE_URL": self.url, "KIRO_DESKTOP_AUTH_URL": self.url, "KIRO_OIDC_URL": self.url,
                "REFRESH_TOKEN": refresh_token or self.issue_refresh_token(), "PROFILE_ARN": self.profile_arn}

    # -- auth state ------------------------------------------------------------------------------------------------

    def issue_refresh_token(self) -> str:
        """Mint a refresh token the refresh endpoints accept (once)."""
        token = "aorFAKE" + secrets.token_urlsafe(48)
        with self._lock:
            self._refresh.add(token)
        return token

    def issue_access_token(self, ttl: float | None = None, prefix: str = "aoaFAKE") -> str:
        """Mint an access token valid for `ttl` seconds (default `access_token_ttl`); `prefix="ksk_"` makes one
        shaped like a Kiro API key."""
        token = prefix + secrets.token_urlsafe(48)
        with self._lock:
            self._access[token] = time.monotonic() + (self.access_token_ttl if ttl is None else ttl)
        return token

    def issue_api_key(self) -> str:
        """Mint a Kiro API key (`ksk_…`) that chat and model calls accept with `tokentype: API_KEY`."""
        key = "ksk_" + secrets.token_urlsafe(32)
        with self._lock:
            self._api_keys.add(key)
        return key

    def revoke_api_key(self, key: str) -> None:
        with self._lock:
            self._api_keys.discard(key)

    def register_client(self, client_id: str | None = None, client_secret: str | None = None) -> tuple[str, str]:
        """An OIDC client registration (`clientId`, `clientSecret`) that `/token` accepts."""
        client_id = client_id or "fakeclient-" + secrets.token_hex(8)
        client_secret = client_secret or "fakesecret-" + secrets.token_urlsafe(32)
        with self._lock:
            self._clients[client_id] = client_secret
        return client_id, client_secret

    def expire_access_tokens(self) -> None:
        """Every access token issued so far becomes invalid (chat and model calls get 403)."""
        with self._lock:
            self._access.clear()

    # -- scripting -------------------------------------------------------------------------------------------------

    def enqueue_chat(self, *scripts: Script) -> None:
        """Scripts for the next chat requests, one per request, in order; afterwards `default_answer` resumes."""
        for script in scripts:
            first_frame = next((i for i, s in enumerate(script) if not isinstance(s, Pause)), None)
            for i, step in enumerate(script):
                if isinstance(step, Status) and i != first_frame:
                    raise ValueError("a Status step may only be preceded by Pause steps")
        with self._lock:
            self._scripts.extend(list(s) for s in scripts)

    def enqueue_search(self, *replies: SearchReply | Status) -> None:
        """Replies for the next web searches (`POST /mcp`), in order; afterwards results made up from the query."""
        with self._lock:
            self._searches.extend(replies)

    def fail_next(self, endpoint: str, status: int, body: Any = None, headers: Mapping[str, str] | None = None,
                  times: int = 1) -> None:
        """The next `times` requests to `endpoint` (a path name or chat/models/refresh/oidc) get this error."""
        name = _endpoint(endpoint)
        with self._lock:
            self._failures[name].extend([Status(status, body, dict(headers or {}))] * times)

    def fail_next_for(self, bearer: str, endpoint: str, status: int, body: Any = None,
                      headers: Mapping[str, str] | None = None, times: int = 1) -> None:
        """Like `fail_next`, for requests carrying `Authorization: Bearer <bearer>` only (one account of several)."""
        name = _endpoint(endpoint)
        with self._lock:
            queue = self._bearer_failures.setdefault((name, bearer), deque())
            queue.extend([Status(status, body, dict(headers or {}))] * times)

    def set_models(self, models: list[dict[str, Any]], default_model: str = "auto",
                   profile_arn: str | None = None) -> None:
        """The catalogue served from now on; with `profile_arn`, only to requests naming that profile (the real
        catalogue is per account)."""
        with self._lock:
            if profile_arn is not None:
                self._account_models[profile_arn] = list(models)
                return
            self._models = list(models)
            self._default_model = {"modelId": default_model}

    def set_usage_limits(self, answer: dict[str, Any]) -> None:
        """What `getUsageLimits` answers from now on."""
        with self._lock:
            self._usage_limits = json.loads(json.dumps(answer))

    # -- observation -----------------------------------------------------------------------------------------------

    @property
    def refresh_count(self) -> int:
        """Successful refreshes on either refresh endpoint."""
        with self._lock:
            return self._refresh_count

    @property
    def abandoned_streams(self) -> int:
        """Chat streams the client (the gateway) closed before the fake finished playing them."""
        with self._lock:
            return self._abandoned

    def _note_abandoned(self) -> None:
        with self._lock:
            self._abandoned += 1

    def requests(self, endpoint: str | None = None) -> list[Received]:
        """Requests received so far (all, or those to one endpoint), oldest first."""
        name = _endpoint(endpoint) if endpoint else None
        with self._lock:
            return [r for r in self._received if name is None or r.endpoint == name]

    def clear_requests(self) -> None:
        with self._lock:
            self._received.clear()

    # -- used by the handler (under the lock) ----------------------------------------------------------------------

    def _record(self, received: Received) -> tuple[Status | None, int]:
        """Keep the request; return the injected failure for it (if any) and its index (seeds the chunking)."""
        bearer = received.headers.get("authorization", "").removeprefix("Bearer ").strip()
        with self._lock:
            self._received.append(received)
            own = self._bearer_failures.get((received.endpoint, bearer))
            queue = own if own else self._failures.get(received.endpoint)
            return (queue.popleft() if queue else None), len(self._received)

    def _authorised(self, headers: Mapping[str, str]) -> bool:
        token = headers.get("authorization", "").removeprefix("Bearer ").strip()
        with self._lock:
            if token in self._api_keys:
                return headers.get("tokentype") == "API_KEY"
            expiry = self._access.get(token)
            return expiry is not None and expiry > time.monotonic()

    def _rotate(self, refresh_token: str) -> tuple[str, str | None] | None:
        """Consume `refresh_token`; return (new access token, new refresh token or None), or None if invalid."""
        access = "aoaFAKE" + secrets.token_urlsafe(48)
        with self._lock:
            if refresh_token not in self._refresh:
                return None
            new_refresh = None
            if self.rotate_refresh_tokens:
                self._refresh.discard(refresh_token)
                new_refresh = "aorFAKE" + secrets.token_urlsafe(48)
                self._refresh.add(new_refresh)
            self._access[access] = time.monotonic() + self.access_token_ttl
            self._refresh_count += 1
            return access, new_refresh

    def _client_ok(self, client_id: Any, client_secret: Any) -> bool:
        with self._lock:
            return bool(client_id) and self._clients.get(client_id) == client_secret

    def _next_script(self, request: Any) -> Script:
        with self._lock:
            script = self._scripts.popleft() if self._scripts else None
        script = script if script is not None else default_answer(request)
        self._remember_signatures(request, script)
        return script

    def _remember_signatures(self, request: Any, script: Script) -> None:
        """Note what every signature in `script` is bound to: this request's model and tools."""
        current = ((request.get("conversationState") or {}).get("currentMessage") or {}).get("userInputMessage") \
            if isinstance(request, dict) else None
        if not isinstance(current, dict):
            return
        tools = (current.get("userInputMessageContext") or {}).get("tools") or []
        names = frozenset(str((t.get("toolSpecification") or {}).get("name")) for t in tools)
        model = str(current.get("modelId", "")).lower()
        with self._lock:
            for step in script:
                if isinstance(step, bytes):
                    for found in _SIGNATURE.findall(step):
                        self._minted.setdefault(found.decode(), set()).add((model, names))

    def _minted_binding(self, signature: str) -> set[tuple[str, frozenset[str]]] | None:
        with self._lock:
            return set(self._minted[signature]) if signature in self._minted else None

    def _models_by_id(self) -> dict[str, dict[str, Any]]:
        with self._lock:
            return {str(m.get("modelId", "")).lower(): m for m in self._models}

    def _next_search(self, query: str) -> SearchReply | Status:
        with self._lock:
            if self._searches:
                return self._searches.popleft()
        return SearchReply()

    def _usage_limits_answer(self) -> dict[str, Any]:
        with self._lock:
            return json.loads(json.dumps(self._usage_limits))

    def _models_page(self, query: Mapping[str, str]) -> dict[str, Any]:
        with self._lock:
            models, default = list(self._models), dict(self._default_model)
        start = int(query.get("nextToken") or 0)
        size = int(query.get("maxResults") or len(models) or 1)
        end = start + size
        return {"defaultModel": default, "models": models[start:end],
                "nextToken": str(end) if end < len(models) else None}

    def _management_page(self, body: Mapping[str, Any]) -> dict[str, Any]:
        """One page of the awsJson1.0 operation: `nextToken` in the body, absent from the last page."""
        arn = body.get("profileArn")
        with self._lock:
            models = list(self._account_models.get(arn, self._models) if isinstance(arn, str) else self._models)
            default, size = dict(self._default_model), max(1, self.models_page_size)
        start = int(body.get("nextToken") or 0)
        answer: dict[str, Any] = {"defaultModel": default, "models": models[start:start + size]}
        if start + size < len(models):
            answer["nextToken"] = str(start + size)
        return answer


def _write_creds_file(path: Path, refresh_token: str, profile_arn: str) -> None:
    """A Kiro-IDE-shaped credentials file holding only a refresh token (the gateway refreshes on first use)."""
    payload = {"refreshToken": refresh_token, "accessToken": "", "expiresAt": "1970-01-01T00:00:00Z",
               "profileArn": profile_arn, "region": "us-east-1", "authMethod": "social", "provider": "Github"}
    path.write_text(json.dumps(payload, indent=2), encoding="utf-8")
    path.chmod(0o600)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="Run the fake Kiro upstream until Ctrl-C.")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--piece-min", type=int, default=1, help="smallest network piece of a stream, bytes")
    parser.add_argument("--piece-max", type=int, default=7, help="largest network piece of a stream, bytes")
    parser.add_argument("--piece-delay", type=float, default=0.0, help="seconds between pieces")
    parser.add_argument("--ttl", type=int, default=3600, help="access token lifetime, seconds")
    parser.add_argument("--write-creds", type=Path, help="also write a kiro-auth-token.json here")
    args = parser.parse_args(argv)
    fake = FakeKiro(host=args.host, port=args.port, piece_sizes=(args.piece_min, args.piece_max),
                    piece_delay=args.piece_delay, access_token_ttl=args.ttl).start()
    token = fake.issue_refresh_token()
    print(f"fake Kiro listening on {fake.url}")
    print(f"refresh token: {token}")
    for name, value in fake.gateway_env(token).items():
        print(f"{name}={value}")
    if args.write_creds:
        _write_creds_file(args.write_creds, token, fake.profile_arn)
        print(f"KIRO_CREDS_FILE={args.write_creds}")
    try:
        threading.Event().wait()
    except KeyboardInterrupt:
        pass
    finally:
        fake.stop()


if __name__ == "__main__":
    main()
