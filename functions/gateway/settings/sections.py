"""The settings' sections: one frozen dataclass per group, each field with its description, choices and checks.

A field's environment variable is its name in capitals (the original Kiro Gateway's names: never rename one).
Descriptions feed docs/configuration.md (`python scripts/gen_config_doc.py`); `Literal` choices and `check=` ranges
are enforced by the loader for every field, so `Settings.validate` keeps only what spans fields.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar, Literal

from gateway.settings.loader import FINITE_NOT_NEGATIVE, HTTP_URL, NOT_NEGATIVE, POSITIVE, between, setting

CACHE_SECONDS = (lambda value: 0 < value <= 60, "must be more than 0 and at most 60")


@dataclass(frozen=True)
class Server:
    """The HTTP side: the owner's key, where `serve` listens, request size and shape limits."""

    SECTION: ClassVar[str] = 'Server'

    proxy_api_key: str = setting('',
        "The owner's client key, accepted as the unlimited key `default` (`Authorization: Bearer …` or "
        "`x-api-key`). Empty: `serve` generates one for the run and prints it; on AWS the secret's "
        '`proxyApiKey`.',
        secret=True)
    server_host: str = setting('127.0.0.1', 'Address `kiro-gateway serve` binds (`--host` wins).')
    server_port: int = setting(8000, 'Port `kiro-gateway serve` listens on (`--port` wins).', check=between(1, 65535))
    max_request_body_bytes: int = setting(16_777_216,
        "Largest request body, in bytes (413 above). On Lambda the Function URL's own 6 MB limit comes first.",
        check=POSITIVE)
    max_json_depth: int = setting(128,
        'Deepest nesting of objects and arrays in a request body (400 above).',
        check=POSITIVE)
    max_json_array_items: int = setting(100_000,
        'Most items in one JSON array of a request body (413 above).',
        check=POSITIVE)
    max_json_object_keys: int = setting(10_000,
        'Most keys in one JSON object of a request body (413 above).',
        check=POSITIVE)
    max_json_string_chars: int = setting(10_000_000,
        'Longest string in a request body, in characters (413 above).',
        check=POSITIVE)
    api_docs: Literal["", "on", "off"] = setting('',
        '`on` or `off`: `/docs` (Swagger UI served by the gateway itself, no third-party assets). Empty: on '
        'locally, off on Lambda. It needs the `fastapi-offline` package, which the Lambda layer does not ship: '
        'without it `/docs` answers 404 saying so.')
    serve_header_timeout: float = setting(10.0,
        "Seconds a request's line and headers may take to arrive under `kiro-gateway serve`; a slower client "
        'is cut (408).',
        check=POSITIVE)
    serve_body_timeout: float = setting(60.0,
        "Seconds a request's whole body may take to arrive once its headers did (`serve`); a slower client is"
        ' cut.',
        check=POSITIVE)
    serve_max_header_bytes: int = setting(65_536,
        'Largest request line plus headers, in bytes (`serve`; 431 above).',
        check=POSITIVE)
    serve_max_headers: int = setting(100, 'Most header fields in one request (`serve`; 431 above).', check=POSITIVE)
    serve_limit_concurrency: int = setting(200,
        'Open connections plus running requests before `serve` answers 503.',
        check=POSITIVE)
    serve_keep_alive_timeout: int = setting(5,
        'Seconds an idle keep-alive connection of `serve` stays open.',
        check=POSITIVE)


@dataclass(frozen=True)
class ClientKeys:
    """Named client keys, their cache, and who may try to authenticate."""

    SECTION: ClassVar[str] = 'Client keys and limits'

    kiro_client_keys_file: str = setting('',
        'The named client keys file (`kiro-gateway keys`). Empty: `~/.kiro-gateway/client-keys.json`, except '
        "on AWS where the keys live in the secret's `clientKeys`.")
    client_keys_cache_seconds: float = setting(30.0,
        "How often the secret's client keys are re-read, so a revoked key is refused within this (more than "
        '0, at most 60).',
        check=CACHE_SECONDS)
    client_key_slot_lease_seconds: float = setting(900.0,
        "Longest life of a key's concurrency slot: a crashed holder's slot comes back after it (on AWS: the "
        "function's Timeout).",
        check=POSITIVE)
    auth_failures_per_minute: int = setting(20,
        'Failed authentications one address may make in a minute before it is blocked (1 to 20).',
        check=between(1, 20))
    auth_block_seconds: float = setting(300.0, 'How long a blocked address gets 429.', check=POSITIVE)
    trusted_proxy_ips: str = setting('',
        'Comma-separated proxy addresses (or `*`) whose `X-Forwarded-For` names the caller. Empty: the '
        "connection's peer is the caller.")
    aws_lwa_port: str = setting('',
        "Set by the Lambda Web Adapter; when present the adapter's request context names the caller's "
        'address.')


@dataclass(frozen=True)
class CredentialsSource:
    """The one Kiro credential of a single-account run, and its regions."""

    SECTION: ClassVar[str] = 'Credentials'

    refresh_token: str = setting('',
        'A Kiro refresh token (with `PROFILE_ARN`); rotated tokens are kept in `KIRO_STATE_FILE`. Prefer a '
        'Kiro API key or `kiro-gateway login --device` for a server.',
        secret=True)
    profile_arn: str = setting('', 'The Kiro profile ARN sent with requests, when the credential does not carry one.')
    kiro_region: str = setting('us-east-1', 'SSO / auth region: where tokens are refreshed.')
    kiro_api_region: str = setting('', "Chat region. Empty: the credentials' region, then `KIRO_REGION`.")
    kiro_creds_file: str = setting('',
        "The Kiro IDE's token file (`~/.aws/sso/cache/kiro-auth-token.json`); rotated tokens are written back"
        ' to it.')
    kiro_cli_db_file: str = setting('',
        "kiro-cli's SQLite database (`~/.local/share/kiro-cli/data.sqlite3`); rotated tokens are written back"
        ' to it.')
    kiro_state_file: str = setting('~/.kiro-gateway/state.json',
        'Where the rotated tokens of `REFRESH_TOKEN` credentials are kept.')
    sqlite_readonly: bool = setting(False, "Read kiro-cli's database without ever writing rotated tokens back.")


    @property
    def api_region(self) -> str:
        """The chat region: KIRO_API_REGION, else KIRO_REGION (a credential's own region comes first where known)."""
        return self.kiro_api_region or self.kiro_region


@dataclass(frozen=True)
class Accounts:
    """Several Kiro accounts (or one API key) with failover, cooldowns and concurrency."""

    SECTION: ClassVar[str] = 'Accounts'

    kiro_api_key: str = setting('',
        'One Kiro API key account (`ksk_…`): billed like the IDE, never refreshed.',
        secret=True)
    kiro_accounts_file: str = setting('',
        'A JSON array of accounts (docs/accounts.md). Empty: `~/.kiro-gateway/accounts.json` when it exists.')
    kiro_accounts_state_file: str = setting('~/.kiro-gateway/accounts-state.json',
        'Lasting account states (suspended, refused, out of quota) of a local run.')
    kiro_api_key_host: Literal["q", "runtime"] = setting('q',
        'Host kind for API-key accounts: `q` (`q.{region}.amazonaws.com`, as kiro-cli) or `runtime` '
        '(docs/protocol.md §Hosts).')
    account_selection: Literal["sticky", "round_robin"] = setting('sticky',
        '`sticky`: the first usable account in list order; `round_robin`: start one further each request.')
    account_max_concurrency: int = setting(0,
        'Requests in flight per account and process; 0 = no cap.',
        check=NOT_NEGATIVE)
    account_queue_timeout: float = setting(30.0,
        'Seconds a request waits for a free slot when every account is at its cap.')
    account_throttle_cooldown: float = setting(8.0,
        "Seconds an account rests after a throttle (`USER_REQUEST_RATE_EXCEEDED`), at least Kiro's own hint.")
    account_throttle_repeat_cooldown: float = setting(60.0,
        'Seconds an account rests when it is throttled again soon after its last rest.')
    account_error_cooldown: float = setting(30.0,
        'Seconds an account rests after its token service failed (network, 5xx).')
    account_suspended_retry: float = setting(0.0,
        'Seconds before a suspended account is tried again; 0 = until `kiro-gateway accounts enable`.')
    account_state_cache_seconds: float = setting(5.0, 'How long an instance reuses the shared account states it read.')


@dataclass(frozen=True)
class Endpoints:
    """Where Kiro is: host kind, base-URL overrides, the outbound proxy."""

    SECTION: ClassVar[str] = 'Upstream endpoints'

    kiro_api_host: Literal["runtime", "q"] = setting('runtime',
        'Chat host kind: `runtime` (`runtime.{region}.kiro.dev`) or `q` (`q.{region}.amazonaws.com`).')
    kiro_api_base_url: str = setting('',
        'Overrides the chat base URL, and the management one unless `KIRO_MANAGEMENT_BASE_URL` is set (tests,'
        ' unusual networks).',
        check=HTTP_URL)
    kiro_management_base_url: str = setting('',
        'Overrides the management base URL (model catalogue, usage limits). Default '
        '`https://management.{region}.kiro.dev`.',
        check=HTTP_URL)
    kiro_desktop_auth_url: str = setting('', 'Overrides the Kiro desktop token refresh URL.', check=HTTP_URL)
    kiro_oidc_url: str = setting('',
        'Overrides the AWS SSO OIDC base URL (token refresh and `login --device`).',
        check=HTTP_URL)
    kiro_profiles_url: str = setting('',
        'Base URL of the profile lookup of `login --device`. Default `management.{region}.kiro.dev`, or the '
        'management / API base URL when set.',
        check=HTTP_URL)
    vpn_proxy_url: str = setting('',
        "HTTP(S) or SOCKS proxy for every upstream call (SOCKS needs `pip install 'httpx[socks]'`).",
        secret=True)


@dataclass(frozen=True)
class Timing:
    """How long to wait for Kiro and how often to try again."""

    SECTION: ClassVar[str] = 'Upstream timing and retries'

    first_token_timeout: float = setting(15.0,
        'Seconds to wait for the first upstream byte before retrying (nothing has reached the client yet).',
        check=POSITIVE)
    first_token_max_retries: int = setting(3, 'Retries after a silent first-token timeout.')
    streaming_read_timeout: float = setting(300.0,
        'Seconds of upstream silence, once streaming, before the stream is ended with an error.',
        check=POSITIVE)
    max_retries: int = setting(3, 'Retries of a 429 / 5xx / empty stream before the first byte reached the client.')
    base_retry_delay: float = setting(1.0,
        'First backoff delay in seconds (doubled each retry, `Retry-After` honoured).')
    max_retry_delay: float = setting(30.0, 'Longest backoff delay in seconds.')
    keepalive_interval: float = setting(5.0,
        'Seconds of upstream silence before a keep-alive (`: keep-alive` comment or `ping` event) goes to the'
        ' client.')


@dataclass(frozen=True)
class Processing:
    """Large requests off the event loop (worker threads)."""

    SECTION: ClassVar[str] = 'Request processing'

    cpu_offload_bytes: int = setting(65_536,
        'Bodies this large (bytes) are parsed, converted and encoded in a worker thread, off the event loop.')
    cpu_worker_threads: int = setting(2,
        'Worker threads for large bodies and for their token estimates (more starve the event loop on small '
        'machines).',
        check=POSITIVE)
    gil_switch_interval_ms: float = setting(1.0,
        'How long (milliseconds) a worker thread may hold the interpreter before the event loop gets it back.',
        check=POSITIVE)


@dataclass(frozen=True)
class Conversion:
    """How a client request becomes a Kiro payload (mirrors kiro_core's ConversionOptions)."""

    SECTION: ClassVar[str] = 'Conversion'

    tool_description_max_length: int = setting(10_000,
        'Longer tool descriptions move into the system prompt (Kiro refuses very long ones in the tool list);'
        ' 0 = never move them.')
    kiro_max_payload_bytes: int = setting(0,
        "A local limit on the Kiro payload size; 0 = off: forward once and classify Kiro's own size refusal "
        '(docs/protocol.md §Limits).')
    fake_reasoning: bool = setting(True,
        'Ask for `<thinking>` tag reasoning when the client does not say and the model has no reasoning '
        'schema.')
    fake_reasoning_max_tokens: int = setting(4000, 'Thinking budget asked for by tag reasoning.')
    fake_reasoning_budget_cap: int = setting(10_000,
        "Upper bound for any thinking budget of tag reasoning (a client's 31999 would make every answer "
        'slow); 0 = no cap.')
    fake_reasoning_handling: Literal["as_reasoning_content", "remove", "pass", "strip_tags"] = setting(
        'as_reasoning_content',
        'What happens to tag reasoning in answers: `as_reasoning_content`, `remove`, `pass` (left in the '
        'text) or `strip_tags`.')
    native_reasoning_static_table: bool = setting(False,
        "Without a live catalogue, take known models' reasoning schemas from a built-in table (otherwise "
        'those models get tags).')
    native_reasoning_max_tokens: bool = setting(False,
        "Also send the client's `max_tokens` inside `additionalModelRequestFields` (clamped to the schema).")
    max_documents_per_message: int = setting(5,
        "Documents one message may carry (Kiro's limit); more is a 400; 0 = no limit.",
        check=NOT_NEGATIVE)
    bind_reasoning_signatures: bool = setting(True,
        'Wrap the thinking signatures handed to clients with the model and tools Kiro bound them to, so '
        "reasoning Kiro would refuse is dropped before the request. Off: Kiro's signatures verbatim (and no "
        'drop).')


@dataclass(frozen=True)
class Conversations:
    """Conversation ids and cache markers: what keeps Kiro's prompt cache warm."""

    SECTION: ClassVar[str] = 'Conversations and prompt cache'

    stable_conversation_ids: bool = setting(True,
        "Derive Kiro's `conversationId` from the client's session so the prompt cache works (false: random "
        'per request).')
    kiro_agent_task_type: Literal["vibe", "spectask", ""] = setting('vibe',
        '`conversationState.agentTaskType`: `vibe`, `spectask`, or empty to omit it.')
    kiro_agent_continuation: bool = setting(True, 'Send an `agentContinuationId`, one per user turn.')
    kiro_root_conversation_id: bool = setting(False,
        'Send `rootConversationId` on sub-agent requests (single-source, off by default).')
    kiro_cache_points: bool = setting(False,
        "Put `cachePoint` markers in the history, within the catalogue's prompt-caching limits (single-"
        'source, off by default).')


@dataclass(frozen=True)
class Usage:
    """Local usage counters and Kiro's usage limits."""

    SECTION: ClassVar[str] = 'Usage and credits'

    usage_db_file: str = setting('~/.kiro-gateway/usage.sqlite3',
        'Local usage counters (SQLite). On AWS they live in `KIRO_STATE_TABLE`.')
    usage_retention_days: int = setting(400,
        'Counters older than this expire (DynamoDB TTL; pruned locally).',
        check=POSITIVE)
    usage_limits_cache_seconds: int = setting(300,
        "How long Kiro's GetUsageLimits answer is reused.",
        check=NOT_NEGATIVE)
    kiro_usage_base_url: str = setting('',
        'GetUsageLimits host. Default: `KIRO_MANAGEMENT_BASE_URL`, else `KIRO_API_BASE_URL`, else '
        '`https://q.{region}.amazonaws.com`.',
        check=HTTP_URL)


@dataclass(frozen=True)
class Models:
    """The model catalogue and its cache."""

    SECTION: ClassVar[str] = 'Models'

    model_cache_ttl: int = setting(3600,
        'Seconds the model catalogue is cached, per account (memory locally, DynamoDB on AWS).')
    kiro_models_rest_fallback: bool = setting(False,
        'When the management catalogue call fails, try the legacy `GET /ListAvailableModels` before the '
        'static list.')


@dataclass(frozen=True)
class WebSearch:
    """Hosted web search through Kiro's MCP endpoint."""

    SECTION: ClassVar[str] = 'Web search'

    web_search_enabled: bool = setting(True,
        "Serve hosted web search tools through Kiro's MCP endpoint (false: a request with Anthropic's tool "
        "gets a 400, Codex's tool is dropped).")
    web_search_max_uses: int = setting(5,
        'Searches per client request when the client gives no `max_uses`.',
        check=POSITIVE)
    web_search_max_query_chars: int = setting(200, 'Longest query sent (Kiro refuses longer ones).', check=POSITIVE)
    web_search_timeout: float = setting(60.0, 'Seconds for one MCP search call.', check=POSITIVE)
    web_search_nominal_credits: float = setting(0.1,
        'Credits each answered search counts against key budgets, since Kiro meters none; 0 = none (must be 0'
        ' or more and finite).',
        check=FINITE_NOT_NEGATIVE)


@dataclass(frozen=True)
class AwsState:
    """Secrets Manager and DynamoDB names (set by the SAM template)."""

    SECTION: ClassVar[str] = 'AWS state'

    kiro_secret_id: str = setting('',
        'The Secrets Manager secret holding credentials, accounts and client keys (set by the SAM template).')
    kiro_state_table: str = setting('',
        'The DynamoDB state table: refresh leases, model cache, limits, account states, usage counters (set '
        'by the SAM template).')


@dataclass(frozen=True)
class Logging:
    """Log level and format, debug dumps."""

    SECTION: ClassVar[str] = 'Logging'

    log_level: str = setting('INFO', 'Log level of the JSON logs on stderr.')
    debug_mode: Literal["off", "errors", "all"] = setting('off',
        'Request dumps, secrets redacted: `off`, `errors` (failed requests only) or `all`.')
    debug_dir: str = setting('debug_logs', 'Where request dumps go.')
    log_format: Literal["", "json", "text"] = setting('',
        '`json` or `text`. Empty: text (one coloured line per request) when stderr is a terminal and not on '
        'Lambda, JSON otherwise.')


SECTION_TYPES: dict[str, type] = {
    'server': Server,
    'client_keys': ClientKeys,
    'credentials': CredentialsSource,
    'accounts': Accounts,
    'endpoints': Endpoints,
    'timing': Timing,
    'processing': Processing,
    'conversion': Conversion,
    'conversations': Conversations,
    'usage': Usage,
    'models': Models,
    'web_search': WebSearch,
    'aws': AwsState,
    'logging': Logging,
}
