"""Configuration from the environment and a `.env` file, under the original Kiro Gateway's variable names.

An existing `.env` of the original gateway keeps working. Values are read raw (no escape processing) so Windows
paths survive; `~` is expanded in paths. A bad value fails at start-up with one line naming the variable to fix.
"""

from __future__ import annotations

import importlib.util
import ipaddress
import os
from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from pathlib import Path

TRUE_WORDS = {"1", "true", "yes", "on", "enabled"}
FALSE_WORDS = {"0", "false", "no", "off", "disabled", ""}
DEFAULT_CLIENT_KEYS_FILE = "~/.kiro-gateway/client-keys.json"


class ConfigError(ValueError):
    """A configuration value is missing or malformed; the message says what to set."""


def read_dotenv(path: Path) -> dict[str, str]:
    """`KEY=VALUE` lines of a .env file; quotes stripped, no escape processing, comments and blanks skipped."""
    values: dict[str, str] = {}
    if not path.is_file():
        return values
    for raw_line in path.read_text(encoding="utf-8").splitlines():
        line = raw_line.strip()
        if not line or line.startswith("#") or "=" not in line:
            continue
        key, _, value = line.partition("=")
        key = key.strip().removeprefix("export ").strip()
        value = value.strip()
        if len(value) >= 2 and value[0] == value[-1] and value[0] in "\"'":
            value = value[1:-1]
        values[key] = value
    return values


@dataclass(frozen=True)
class Settings:
    """Every knob of the gateway. Field names are the environment variable names, lower-cased."""

    # client-facing
    proxy_api_key: str = field(default="", repr=False)  # secrets never appear in repr() / str()
    server_host: str = "127.0.0.1"
    server_port: int = 8000
    max_request_body_bytes: int = 16 * 1024 * 1024  # Lambda's own limit is 6 MB; images make bodies large locally
    max_json_depth: int = 128  # request body shape limits (gateway.edge.json_limits); docs/errors.md "Request limits"
    max_json_array_items: int = 100_000
    max_json_object_keys: int = 10_000
    max_json_string_chars: int = 10_000_000
    # client keys and limits (gateway.client_keys; docs/client-keys.md)
    kiro_client_keys_file: str = ""  # default ~/.kiro-gateway/client-keys.json, unless the keys live in the secret
    client_keys_cache_seconds: float = 30.0  # the secret's clientKeys are re-read this often (a revocation's delay)
    client_key_slot_lease_seconds: float = 900.0  # a concurrency slot's longest life (a crashed holder's leak)
    auth_failures_per_minute: int = 20  # failed authentications from one address before it is blocked
    auth_block_seconds: float = 300.0  # how long a blocked address gets 429
    trusted_proxy_ips: str = ""  # peers whose X-Forwarded-For is believed (comma-separated, or *)
    aws_lwa_port: str = ""  # set under the Lambda Web Adapter: its request context names the caller's address
    # credentials (one source; see gateway.stores.sources)
    refresh_token: str = field(default="", repr=False)
    profile_arn: str = ""
    kiro_region: str = "us-east-1"  # SSO / auth region: refresh URLs
    kiro_api_region: str = ""  # chat region; defaults to the credentials' region, then kiro_region
    kiro_creds_file: str = ""
    kiro_cli_db_file: str = ""
    kiro_state_file: str = "~/.kiro-gateway/state.json"  # rotated tokens of env-only credentials
    sqlite_readonly: bool = False
    # accounts (gateway.accounts): a Kiro API key, or several accounts with failover
    kiro_api_key: str = field(default="", repr=False)  # one `ksk_…` API key account (no refresh)
    kiro_accounts_file: str = ""  # JSON array of accounts; default: ~/.kiro-gateway/accounts.json when it exists
    kiro_accounts_state_file: str = "~/.kiro-gateway/accounts-state.json"  # lasting account states (local runs)
    kiro_api_key_host: str = "q"  # API-key accounts' host: "q" (kiro-cli's) or "runtime" (docs/protocol.md §API keys)
    account_selection: str = "sticky"  # sticky (first healthy account in list order) | round_robin
    account_max_concurrency: int = 0  # requests in flight per account and process; 0 = no cap
    account_queue_timeout: float = 30.0  # seconds to wait for a free slot when every account is at its cap
    account_throttle_cooldown: float = 8.0  # seconds an account rests after USER_REQUEST_RATE_EXCEEDED
    account_throttle_repeat_cooldown: float = 60.0  # ... when it was throttled again soon after its last rest
    account_error_cooldown: float = 30.0  # ... after its token service failed (network, 5xx)
    account_suspended_retry: float = 0.0  # seconds before a suspended account is tried again; 0 = until enabled
    account_state_cache_seconds: float = 5.0  # how long an instance reuses the shared account states it read
    # upstream
    kiro_api_host: str = "runtime"  # "runtime" (runtime.{region}.kiro.dev) or "q" (q.{region}.amazonaws.com)
    kiro_api_base_url: str = ""  # overrides the chat base URL, and the management one unless the next is set
    kiro_management_base_url: str = ""  # overrides the management (catalogue, usage) base URL
    kiro_desktop_auth_url: str = ""  # overrides the Kiro desktop refresh URL
    kiro_oidc_url: str = ""  # overrides the AWS SSO OIDC base URL (token refresh and `login --device`)
    kiro_profiles_url: str = ""  # ListAvailableProfiles base URL (default management.{region}.kiro.dev)
    vpn_proxy_url: str = field(default="", repr=False)  # may carry user:password
    first_token_timeout: float = 15.0
    first_token_max_retries: int = 3
    streaming_read_timeout: float = 300.0
    max_retries: int = 3
    base_retry_delay: float = 1.0
    max_retry_delay: float = 30.0
    keepalive_interval: float = 5.0  # seconds of upstream silence before a ping / SSE comment goes out
    # conversion
    tool_description_max_length: int = 10000
    kiro_max_payload_bytes: int = 0  # off: forward once, classify Kiro's own size refusal (docs/protocol.md §Limits)
    fake_reasoning: bool = True
    fake_reasoning_max_tokens: int = 4000
    fake_reasoning_budget_cap: int = 10000
    fake_reasoning_handling: str = "as_reasoning_content"  # as_reasoning_content | remove | pass | strip_tags
    # no catalogue schema: use the built-in table of docs/protocol.md §Native reasoning (else tags)
    native_reasoning_static_table: bool = False
    native_reasoning_max_tokens: bool = False  # also send max_tokens inside additionalModelRequestFields
    max_documents_per_message: int = 5  # Kiro's limit; more → 400 (0 = no limit)
    # prompt cache and credits (docs/protocol.md §Prompt cache; docs/usage.md)
    stable_conversation_ids: bool = True  # conversationId from the client's session (random when it names none)
    kiro_agent_task_type: str = "vibe"  # conversationState.agentTaskType; empty omits it
    kiro_agent_continuation: bool = True  # agentContinuationId, one per user turn
    kiro_root_conversation_id: bool = False  # rootConversationId on sub-agent requests (single-source)
    kiro_cache_points: bool = False  # cachePoint markers in history (single-source; catalogue limits respected)
    usage_db_file: str = "~/.kiro-gateway/usage.sqlite3"  # local usage counters (KIRO_STATE_TABLE wins on AWS)
    usage_retention_days: int = 400  # counters older than this expire (DynamoDB TTL; pruned locally)
    usage_limits_cache_seconds: int = 300  # how long GetUsageLimits answers are reused
    # GetUsageLimits host; default KIRO_MANAGEMENT_BASE_URL, else KIRO_API_BASE_URL, else q.{region}.amazonaws.com
    kiro_usage_base_url: str = ""
    # models
    model_cache_ttl: int = 3600
    kiro_models_rest_fallback: bool = False  # management catalogue failed: try the legacy GET /ListAvailableModels
    # web search through Kiro's MCP endpoint (docs/protocol.md §Web search; gateway.web_search)
    web_search_enabled: bool = True  # a client that sends a hosted web search tool asks for a search
    web_search_max_uses: int = 5  # searches per client request when the client gives no max_uses (Codex never does)
    web_search_max_query_chars: int = 200  # Kiro refuses longer queries (JSON-RPC -32602)
    web_search_timeout: float = 60.0  # seconds for one MCP search call
    # AWS-backed state (set by the SAM template; unset means local defaults)
    kiro_secret_id: str = ""
    kiro_state_table: str = ""
    # logging
    log_level: str = "INFO"
    debug_mode: str = "off"  # off | errors | all
    debug_dir: str = "debug_logs"
    # issue 19: today's clients (reasoning replay, compaction, Codex's WebSocket attempt)
    # Wrap the thinking signatures Anthropic clients get with the model and tools Kiro bound them to, so that
    # reasoning Kiro would refuse is dropped before the request (default on; off hands out Kiro's signature verbatim).
    bind_reasoning_signatures: bool = True
    # issue 20: the person at the terminal (logs, /docs, local serve bounds; docs/serve.md)
    log_format: str = ""  # json | text; default text when stderr is a terminal and not on Lambda, else json
    api_docs: str = ""  # on | off: /docs (self-hosted Swagger UI); default on locally, off on Lambda
    serve_header_timeout: float = 10.0  # seconds for a request's line and headers to arrive (`serve`), else cut
    serve_body_timeout: float = 60.0  # seconds for a request's whole body to arrive once its headers did (`serve`)
    serve_max_header_bytes: int = 64 * 1024  # request line plus headers, in bytes (`serve`): 431 above
    serve_max_headers: int = 100  # header fields per request (`serve`): 431 above
    serve_limit_concurrency: int = 200  # open connections plus running requests before `serve` answers 503
    serve_keep_alive_timeout: int = 5  # seconds an idle keep-alive connection of `serve` stays open
    # issue 17 (one ledger): what budgets count for a web search, since Kiro meters none (docs/web-search.md)
    web_search_nominal_credits: float = 0.1  # credits each answered search counts against key budgets; 0 = none
    # issue 16: large requests off the event loop (docs/performance.md, "Large requests")
    cpu_offload_bytes: int = 65_536  # bodies this large are parsed, converted and encoded in a worker thread
    cpu_worker_threads: int = 2  # worker threads for that and for their token estimates (more starve the event loop)
    gil_switch_interval_ms: float = 1.0  # how long a worker thread may hold the interpreter before the event loop
    extra: dict[str, str] = field(default_factory=dict, compare=False, repr=False)

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None, dotenv: Path | None = Path(".env")) -> Settings:
        """Settings from `env` (default: os.environ) over a `.env` file; raises ConfigError naming the variable."""
        merged: dict[str, str] = read_dotenv(dotenv) if dotenv is not None else {}
        merged.update(os.environ if env is None else env)
        values: dict[str, object] = {}
        for spec in fields(cls):
            if spec.name == "extra":
                continue
            raw = merged.get(spec.name.upper())
            if raw is None:
                continue
            values[spec.name] = _parse(spec.name.upper(), raw.strip(), spec.type)
        settings = cls(**values)  # type: ignore[arg-type]
        settings.validate()
        return settings

    def validate(self) -> None:
        if self.kiro_api_host not in {"runtime", "q"}:
            raise ConfigError(f"KIRO_API_HOST must be 'runtime' or 'q', not {self.kiro_api_host!r}")
        if self.log_format not in {"", "json", "text"}:
            raise ConfigError(f"LOG_FORMAT must be json or text, not {self.log_format!r}")
        if self.api_docs not in {"", "on", "off"}:
            raise ConfigError(f"API_DOCS must be on or off, not {self.api_docs!r}")
        if min(self.serve_header_timeout, self.serve_body_timeout, self.serve_max_header_bytes,
               self.serve_max_headers, self.serve_limit_concurrency, self.serve_keep_alive_timeout) <= 0:
            raise ConfigError("SERVE_HEADER_TIMEOUT, SERVE_BODY_TIMEOUT, SERVE_MAX_HEADER_BYTES, SERVE_MAX_HEADERS, "
                              "SERVE_LIMIT_CONCURRENCY and SERVE_KEEP_ALIVE_TIMEOUT must be positive")
        if self.debug_mode not in {"off", "errors", "all"}:
            raise ConfigError(f"DEBUG_MODE must be off, errors or all, not {self.debug_mode!r}")
        handling = {"as_reasoning_content", "remove", "pass", "strip_tags"}
        if self.fake_reasoning_handling not in handling:
            raise ConfigError(f"FAKE_REASONING_HANDLING must be one of {sorted(handling)}")
        if self.max_documents_per_message < 0:
            raise ConfigError("MAX_DOCUMENTS_PER_MESSAGE must be 0 (no limit) or a positive number")
        for name in ("max_request_body_bytes", "max_json_depth", "max_json_array_items", "max_json_object_keys",
                     "max_json_string_chars", "cpu_worker_threads"):
            if getattr(self, name) < 1:
                raise ConfigError(f"{name.upper()} must be a positive number")
        if not 0 < self.client_keys_cache_seconds <= 60:
            raise ConfigError("CLIENT_KEYS_CACHE_SECONDS must be more than 0 and at most 60")
        if not 1 <= self.auth_failures_per_minute <= 20:
            raise ConfigError("AUTH_FAILURES_PER_MINUTE must be between 1 and 20")
        if self.auth_block_seconds <= 0 or self.client_key_slot_lease_seconds <= 0:
            raise ConfigError("AUTH_BLOCK_SECONDS and CLIENT_KEY_SLOT_LEASE_SECONDS must be positive (seconds)")
        for entry in filter(None, (part.strip() for part in self.trusted_proxy_ips.split(","))):
            try:
                if entry != "*":
                    ipaddress.ip_address(entry.strip("[]"))
            except ValueError:
                raise ConfigError(f"TRUSTED_PROXY_IPS: {entry!r} is not an IP address (or *)") from None
        if not 0 < self.server_port < 65536:
            raise ConfigError(f"SERVER_PORT must be a TCP port, not {self.server_port}")
        if not 0 <= self.web_search_nominal_credits < float("inf"):
            raise ConfigError("WEB_SEARCH_NOMINAL_CREDITS must be 0 or a positive number of credits")
        if self.web_search_max_uses < 1 or self.web_search_max_query_chars < 1 or self.web_search_timeout <= 0:
            raise ConfigError("WEB_SEARCH_MAX_USES, WEB_SEARCH_MAX_QUERY_CHARS and WEB_SEARCH_TIMEOUT must be positive")
        if self.first_token_timeout <= 0 or self.streaming_read_timeout <= 0:
            raise ConfigError("FIRST_TOKEN_TIMEOUT and STREAMING_READ_TIMEOUT must be positive numbers of seconds")
        if self.vpn_proxy_url.lower().startswith("socks") and importlib.util.find_spec("socksio") is None:
            raise ConfigError("VPN_PROXY_URL is a SOCKS proxy: install SOCKS support with `pip install 'httpx[socks]'`")
        if self.kiro_agent_task_type not in {"", "vibe", "spectask"}:
            raise ConfigError("KIRO_AGENT_TASK_TYPE must be vibe, spectask or empty")
        if self.usage_retention_days < 1 or self.usage_limits_cache_seconds < 0:
            raise ConfigError("USAGE_RETENTION_DAYS must be positive and USAGE_LIMITS_CACHE_SECONDS not negative")
        if self.kiro_api_key_host not in {"runtime", "q"}:
            raise ConfigError(f"KIRO_API_KEY_HOST must be 'runtime' or 'q', not {self.kiro_api_key_host!r}")
        if self.account_selection not in {"sticky", "round_robin"}:
            raise ConfigError(f"ACCOUNT_SELECTION must be sticky or round_robin, not {self.account_selection!r}")
        if self.account_max_concurrency < 0:
            raise ConfigError("ACCOUNT_MAX_CONCURRENCY must be 0 (no cap) or a positive number")
        for name in ("kiro_api_base_url", "kiro_management_base_url", "kiro_desktop_auth_url", "kiro_oidc_url",
                     "kiro_profiles_url", "kiro_usage_base_url"):
            url = getattr(self, name)
            if url and not url.startswith(("http://", "https://")):
                raise ConfigError(f"{name.upper()} must be an http(s) URL, not {url!r}")

    @property
    def client_keys_path(self) -> Path | None:
        """KIRO_CLIENT_KEYS_FILE; by default ~/.kiro-gateway/client-keys.json, except on AWS (keys in the secret)."""
        if self.kiro_client_keys_file:
            return Path(self.kiro_client_keys_file).expanduser()
        return None if self.kiro_secret_id else Path(DEFAULT_CLIENT_KEYS_FILE).expanduser()

    @property
    def api_region(self) -> str:
        return self.kiro_api_region or self.kiro_region


def _parse(name: str, raw: str, kind: object) -> object:
    kind_name = kind if isinstance(kind, str) else getattr(kind, "__name__", str(kind))
    try:
        if kind_name == "bool":
            lowered = raw.lower()
            if lowered in TRUE_WORDS:
                return True
            if lowered in FALSE_WORDS:
                return False
            raise ValueError(raw)
        if kind_name == "int":
            return int(raw)
        if kind_name == "float":
            return float(raw)
    except ValueError:
        raise ConfigError(f"{name} must be a {kind_name}, not {raw!r}") from None
    return raw
