"""What each setting means, and the section it belongs to: the source of docs/configuration.md.

Kept beside `gateway.settings` (keyed by field name) so that adding a setting is one line here and one there; the
generator (`python scripts/gen_config_doc.py`) and tests/unit/test_configuration_doc.py fail when a field has no entry
here or the checked-in page is out of date. The sections are the cut the settings will be grouped by.
"""

from __future__ import annotations

SECTIONS: tuple[str, ...] = (
    "Server", "Client keys and limits", "Credentials", "Accounts", "Upstream endpoints", "Upstream timing and retries",
    "Conversion", "Conversations and prompt cache", "Usage and credits", "Models", "Web search", "AWS state", "Logging",
)

# Fields that are not read from the environment.
NOT_FROM_ENVIRONMENT = frozenset({"extra"})

# field name -> (section, meaning). One sentence or two; defaults and variable names come from the settings class.
DOCS: dict[str, tuple[str, str]] = {
    "proxy_api_key": ("Server", "The owner's client key, accepted as the unlimited key `default` (`Authorization: "
                      "Bearer …` or `x-api-key`). Empty: `serve` generates one for the run and prints it; on AWS "
                      "the secret's `proxyApiKey`."),
    "server_host": ("Server", "Address `kiro-gateway serve` binds (`--host` wins)."),
    "server_port": ("Server", "Port `kiro-gateway serve` listens on (`--port` wins)."),
    "max_request_body_bytes": ("Server", "Largest request body, in bytes (413 above). On Lambda the Function URL's "
                               "own 6 MB limit comes first."),
    "max_json_depth": ("Server", "Deepest nesting of objects and arrays in a request body (400 above)."),
    "max_json_array_items": ("Server", "Most items in one JSON array of a request body (413 above)."),
    "max_json_object_keys": ("Server", "Most keys in one JSON object of a request body (413 above)."),
    "max_json_string_chars": ("Server", "Longest string in a request body, in characters (413 above)."),
    "kiro_client_keys_file": ("Client keys and limits", "The named client keys file (`kiro-gateway keys`). Empty: "
                              "`~/.kiro-gateway/client-keys.json`, except on AWS where the keys live in the "
                              "secret's `clientKeys`."),
    "client_keys_cache_seconds": ("Client keys and limits", "How often the secret's client keys are re-read, so a "
                                  "revoked key is refused within this (more than 0, at most 60)."),
    "client_key_slot_lease_seconds": ("Client keys and limits", "Longest life of a key's concurrency slot: a "
                                      "crashed holder's slot comes back after it (on AWS: the function's Timeout)."),
    "auth_failures_per_minute": ("Client keys and limits", "Failed authentications one address may make in a "
                                 "minute before it is blocked (1 to 20)."),
    "auth_block_seconds": ("Client keys and limits", "How long a blocked address gets 429."),
    "trusted_proxy_ips": ("Client keys and limits", "Comma-separated proxy addresses (or `*`) whose "
                          "`X-Forwarded-For` names the caller. Empty: the connection's peer is the caller."),
    "aws_lwa_port": ("Client keys and limits", "Set by the Lambda Web Adapter; when present the adapter's request "
                     "context names the caller's address."),
    "refresh_token": ("Credentials", "A Kiro refresh token (with `PROFILE_ARN`); rotated tokens are kept in "
                      "`KIRO_STATE_FILE`. Prefer a Kiro API key or `kiro-gateway login --device` for a server."),
    "profile_arn": ("Credentials", "The Kiro profile ARN sent with requests, when the credential does not carry one."),
    "kiro_region": ("Credentials", "SSO / auth region: where tokens are refreshed."),
    "kiro_api_region": ("Credentials", "Chat region. Empty: the credentials' region, then `KIRO_REGION`."),
    "kiro_creds_file": ("Credentials", "The Kiro IDE's token file (`~/.aws/sso/cache/kiro-auth-token.json`); "
                        "rotated tokens are written back to it."),
    "kiro_cli_db_file": ("Credentials", "kiro-cli's SQLite database (`~/.local/share/kiro-cli/data.sqlite3`); "
                         "rotated tokens are written back to it."),
    "kiro_state_file": ("Credentials", "Where the rotated tokens of `REFRESH_TOKEN` credentials are kept."),
    "sqlite_readonly": ("Credentials", "Read kiro-cli's database without ever writing rotated tokens back."),
    "kiro_api_key": ("Accounts", "One Kiro API key account (`ksk_…`): billed like the IDE, never refreshed."),
    "kiro_accounts_file": ("Accounts", "A JSON array of accounts (docs/accounts.md). Empty: "
                           "`~/.kiro-gateway/accounts.json` when it exists."),
    "kiro_accounts_state_file": ("Accounts", "Lasting account states (suspended, refused, out of quota) of a local "
                                 "run."),
    "kiro_api_key_host": ("Accounts", "Host kind for API-key accounts: `q` (`q.{region}.amazonaws.com`, as "
                          "kiro-cli) or `runtime` (docs/protocol.md §Hosts)."),
    "account_selection": ("Accounts", "`sticky`: the first usable account in list order; `round_robin`: start one "
                          "further each request."),
    "account_max_concurrency": ("Accounts", "Requests in flight per account and process; 0 = no cap."),
    "account_queue_timeout": ("Accounts", "Seconds a request waits for a free slot when every account is at its "
                              "cap."),
    "account_throttle_cooldown": ("Accounts", "Seconds an account rests after a throttle "
                                  "(`USER_REQUEST_RATE_EXCEEDED`), at least Kiro's own hint."),
    "account_throttle_repeat_cooldown": ("Accounts", "Seconds an account rests when it is throttled again soon "
                                         "after its last rest."),
    "account_error_cooldown": ("Accounts", "Seconds an account rests after its token service failed (network, "
                               "5xx)."),
    "account_suspended_retry": ("Accounts", "Seconds before a suspended account is tried again; 0 = until "
                                "`kiro-gateway accounts enable`."),
    "account_state_cache_seconds": ("Accounts", "How long an instance reuses the shared account states it read: a "
                                    "few seconds of staleness can cost one more request to a throttled account, and "
                                    "saves a state-table read before every answer."),
    "kiro_api_host": ("Upstream endpoints", "Chat host kind: `runtime` (`runtime.{region}.kiro.dev`) or `q` "
                      "(`q.{region}.amazonaws.com`)."),
    "kiro_api_base_url": ("Upstream endpoints", "Overrides the chat base URL, and the management one unless "
                          "`KIRO_MANAGEMENT_BASE_URL` is set (tests, unusual networks)."),
    "kiro_management_base_url": ("Upstream endpoints", "Overrides the management base URL (model catalogue, usage "
                                 "limits). Default `https://management.{region}.kiro.dev`."),
    "kiro_desktop_auth_url": ("Upstream endpoints", "Overrides the Kiro desktop token refresh URL."),
    "kiro_oidc_url": ("Upstream endpoints", "Overrides the AWS SSO OIDC base URL (token refresh and "
                      "`login --device`)."),
    "kiro_profiles_url": ("Upstream endpoints", "Base URL of the profile lookup of `login --device`. Default "
                          "`management.{region}.kiro.dev`, or the management / API base URL when set."),
    "vpn_proxy_url": ("Upstream endpoints", "HTTP(S) or SOCKS proxy for every upstream call (SOCKS needs "
                      "`pip install 'httpx[socks]'`)."),
    "first_token_timeout": ("Upstream timing and retries", "Seconds to wait for the first upstream byte before "
                            "retrying (nothing has reached the client yet)."),
    "first_token_max_retries": ("Upstream timing and retries", "Retries after a silent first-token timeout."),
    "streaming_read_timeout": ("Upstream timing and retries", "Seconds of upstream silence, once streaming, before "
                               "the stream is ended with an error."),
    "max_retries": ("Upstream timing and retries", "Retries of a 429 / 5xx / empty stream before the first byte "
                    "reached the client."),
    "base_retry_delay": ("Upstream timing and retries", "First backoff delay in seconds (doubled each retry, "
                         "`Retry-After` honoured)."),
    "max_retry_delay": ("Upstream timing and retries", "Longest backoff delay in seconds."),
    "keepalive_interval": ("Upstream timing and retries", "Seconds of upstream silence before a keep-alive "
                           "(`: keep-alive` comment or `ping` event) goes to the client."),
    "tool_description_max_length": ("Conversion", "Longer tool descriptions move into the system prompt (Kiro "
                                    "refuses very long ones in the tool list); 0 = never move them."),
    "kiro_max_payload_bytes": ("Conversion", "A local limit on the Kiro payload size; 0 = off: forward once and "
                               "classify Kiro's own size refusal (docs/protocol.md §Limits)."),
    "fake_reasoning": ("Conversion", "Ask for `<thinking>` tag reasoning when the client does not say and the "
                       "model has no reasoning schema."),
    "fake_reasoning_max_tokens": ("Conversion", "Thinking budget asked for by tag reasoning."),
    "fake_reasoning_budget_cap": ("Conversion", "Upper bound for any thinking budget of tag reasoning (a client's "
                                  "31999 would make every answer slow); 0 = no cap."),
    "fake_reasoning_handling": ("Conversion", "What happens to tag reasoning in answers: `as_reasoning_content`, "
                                "`remove`, `pass` (left in the text) or `strip_tags`."),
    "native_reasoning_static_table": ("Conversion", "Without a live catalogue, take known models' reasoning schemas "
                                      "from a built-in table (otherwise those models get tags)."),
    "native_reasoning_max_tokens": ("Conversion", "Also send the client's `max_tokens` inside "
                                    "`additionalModelRequestFields` (clamped to the schema)."),
    "max_documents_per_message": ("Conversion", "Documents one message may carry (Kiro's limit); more is a 400; "
                                  "0 = no limit."),
    "stable_conversation_ids": ("Conversations and prompt cache", "Derive Kiro's `conversationId` from the "
                                "client's session so the prompt cache works (false: random per request)."),
    "kiro_agent_task_type": ("Conversations and prompt cache", "`conversationState.agentTaskType`: `vibe`, "
                             "`spectask`, or empty to omit it."),
    "kiro_agent_continuation": ("Conversations and prompt cache", "Send an `agentContinuationId`, one per user "
                                "turn."),
    "kiro_root_conversation_id": ("Conversations and prompt cache", "Send `rootConversationId` on sub-agent "
                                  "requests (single-source, off by default)."),
    "kiro_cache_points": ("Conversations and prompt cache", "Put `cachePoint` markers in the history, within the "
                          "catalogue's prompt-caching limits (single-source, off by default)."),
    "usage_db_file": ("Usage and credits", "Local usage counters (SQLite). On AWS they live in `KIRO_STATE_TABLE`."),
    "usage_retention_days": ("Usage and credits", "Counters older than this expire (DynamoDB TTL; pruned locally)."),
    "usage_limits_cache_seconds": ("Usage and credits", "How long Kiro's GetUsageLimits answer is reused."),
    "kiro_usage_base_url": ("Usage and credits", "GetUsageLimits host. Default: `KIRO_MANAGEMENT_BASE_URL`, else "
                            "`KIRO_API_BASE_URL`, else `https://q.{region}.amazonaws.com`."),
    "model_cache_ttl": ("Models", "Seconds the model catalogue is cached, per account (memory locally, DynamoDB "
                        "on AWS)."),
    "kiro_models_rest_fallback": ("Models", "When the management catalogue call fails, try the legacy "
                                  "`GET /ListAvailableModels` before the static list."),
    "web_search_enabled": ("Web search", "Serve hosted web search tools through Kiro's MCP endpoint (false: a "
                           "request with Anthropic's tool gets a 400, Codex's tool is dropped)."),
    "web_search_max_uses": ("Web search", "Searches per client request when the client gives no `max_uses`."),
    "web_search_max_query_chars": ("Web search", "Longest query sent (Kiro refuses longer ones)."),
    "web_search_timeout": ("Web search", "Seconds for one MCP search call."),
    "kiro_secret_id": ("AWS state", "The Secrets Manager secret holding credentials, accounts and client keys (set "
                       "by the SAM template)."),
    "kiro_state_table": ("AWS state", "The DynamoDB state table: refresh leases, model cache, limits, account "
                         "states, usage counters (set by the SAM template)."),
    "log_level": ("Logging", "Log level of the JSON logs on stderr."),
    "debug_mode": ("Logging", "Request dumps, secrets redacted: `off`, `errors` (failed requests only) or `all`."),
    "debug_dir": ("Logging", "Where request dumps go."),
    "log_format": ("Logging", "`json` or `text`. Empty: text (one coloured line per request) when stderr is a "
                   "terminal and not on Lambda, JSON otherwise."),
    "api_docs": ("Server", "`on` or `off`: `/docs` (Swagger UI served by the gateway itself, no third-party "
                 "assets). Empty: on locally, off on Lambda."),
    "serve_header_timeout": ("Server", "Seconds a request's line and headers may take to arrive under "
                             "`kiro-gateway serve`; a slower client is cut (408)."),
    "serve_body_timeout": ("Server", "Seconds a request's whole body may take to arrive once its headers did "
                           "(`serve`); a slower client is cut."),
    "serve_max_header_bytes": ("Server", "Largest request line plus headers, in bytes (`serve`; 431 above)."),
    "serve_max_headers": ("Server", "Most header fields in one request (`serve`; 431 above)."),
    "serve_limit_concurrency": ("Server", "Open connections plus running requests before `serve` answers 503."),
    "serve_keep_alive_timeout": ("Server", "Seconds an idle keep-alive connection of `serve` stays open."),
    "bind_reasoning_signatures": ("Conversion", "Wrap the thinking signatures handed to clients with the model and "
                                  "tools Kiro bound them to, so reasoning Kiro would refuse is dropped before the "
                                  "request. Off: Kiro's signatures verbatim (and no drop)."),
    "web_search_nominal_credits": ("Web search", "Credits each search Kiro answered counts against client-key "
                                   "budgets, since Kiro meters none (an estimate; 0: budgets ignore searches)."),
    "cpu_offload_bytes": ("Server", "Request bodies this large (bytes) are decoded, checked, converted and encoded "
                          "in a worker thread, so no other stream waits for them."),
    "cpu_worker_threads": ("Server", "Worker threads for large bodies and token estimates (more starve the event "
                           "loop on a small machine)."),
    "gil_switch_interval_ms": ("Server", "How long a worker thread may hold the interpreter before the event loop "
                               "gets it back, in milliseconds (Python's default is 5)."),
}
