"""Build the account pool from the settings, in this order of precedence:

1. `KIRO_ACCOUNTS_FILE`: the accounts in that file;
2. `KIRO_API_KEY`: one API-key account;
3. on AWS (`KIRO_SECRET_ID`): the secret's `accounts`, else its single credential (the older format);
4. `KIRO_CLI_DB_FILE` / `KIRO_CREDS_FILE` / `REFRESH_TOKEN`: that credential;
5. the gateway's own accounts file (`~/.kiro-gateway/accounts.json`, written by `kiro-gateway login` and
   `kiro-gateway accounts add`) when it holds an account;
6. a Kiro IDE or kiro-cli login found on this machine.

Cases 3 (single format), 4 and 6 are "a pool of one" over the credential store the gateway always used: the same
client, the same refresh, the same errors.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

import httpx

from gateway.accounts.config import DEFAULT_ACCOUNTS_FILE, AccountConfig, parse_accounts, read_accounts_file
from gateway.accounts.health import HealthStore, MemoryHealthStore
from gateway.accounts.pool import Account, AccountPool
from gateway.accounts.verdicts import Policy
from gateway.auth.bridge import AuthBridge
from gateway.auth.manager import AuthManager
from gateway.auth.refresh import TokenRefresher
from gateway.logging_setup import SCRUBBER
from gateway.settings import Settings
from gateway.stores.base import Credentials, CredentialsNotFound, TokenStore
from gateway.upstream.client_config import UpstreamSettings
from gateway.upstream.endpoint import AccountContext, kiro_user_agent
from gateway.upstream.kiro_client import KiroClient

log = logging.getLogger(__name__)


@dataclass
class BuiltAccounts:
    """The pool (None when no credentials were found: `problem` says what to set) and the store that holds the
    client API key on AWS (`proxyApiKey` in the secret)."""

    pool: AccountPool | None
    key_store: TokenStore | None
    problem: str = ""


class ApiKeyAuth:
    """A `ksk_` key as the Kiro client's token source: nothing to refresh, so a refused key gets exactly one more
    attempt (the client's refresh-and-retry) and then fails."""

    def __init__(self, config: AccountConfig) -> None:
        self._config = config
        SCRUBBER.add(config.api_key)

    async def access_token(self) -> str:
        return self._config.api_key

    async def force_refresh(self, rejected_token: str | None = None) -> str:
        return self._config.api_key

    async def credentials(self) -> Credentials:
        return Credentials(refresh_token="", access_token=self._config.api_key, profile_arn=self._config.profile_arn,
                           region=self._config.region, extra={"source": "api_key"})


def _path(value: str) -> Path:
    return Path(value).expanduser()


def accounts_file_path(settings: Settings) -> Path:
    """KIRO_ACCOUNTS_FILE, else the gateway's own `~/.kiro-gateway/accounts.json`."""
    configured = settings.accounts.kiro_accounts_file
    return _path(configured) if configured else DEFAULT_ACCOUNTS_FILE.expanduser()


def account_context(settings: Settings, config: AccountConfig) -> AccountContext:
    """Where this configured account talks to Kiro: its own host and region when it names them, else the
    settings' (KIRO_API_KEY_HOST for API keys); an API key uses a profile ARN only when its entry names one."""
    api_key = config.kind == "api_key"
    default_host = settings.accounts.kiro_api_key_host if api_key else settings.endpoints.kiro_api_host
    return AccountContext(host=config.api_host or default_host,
                          api_region=config.api_region or settings.credentials.kiro_api_region,
                          profile_arn=config.profile_arn, api_key=api_key)


def api_key_account(settings: Settings, http: httpx.AsyncClient, config: AccountConfig, source: str) -> Account:
    auth = ApiKeyAuth(config)
    kiro = KiroClient(UpstreamSettings.from_settings(settings), http, auth.access_token, auth.force_refresh,
                      auth.credentials,
                      context=account_context(settings, config))
    return Account(config, kiro, source=source)


def refresh_account(settings: Settings, http: httpx.AsyncClient, config: AccountConfig, store: TokenStore, *,
                    context: AccountContext | None = None) -> Account:
    auth = AuthManager(store, TokenRefresher.from_settings(http, settings, user_agent=kiro_user_agent()))
    bridge = AuthBridge(auth)
    kiro = KiroClient(UpstreamSettings.from_settings(settings), http, bridge.access_token, bridge.force_refresh,
                      bridge.credentials,
                      context=context or account_context(settings, config))
    return Account(config, kiro, source=store.describe(), auth=auth, store=store)


def _policy(settings: Settings) -> Policy:
    accounts = settings.accounts
    return Policy(throttle_cooldown=accounts.account_throttle_cooldown,
                  throttle_repeat_cooldown=accounts.account_throttle_repeat_cooldown,
                  error_cooldown=accounts.account_error_cooldown, suspended_retry=accounts.account_suspended_retry)


def _pool(settings: Settings, accounts: list[Account], health: HealthStore) -> AccountPool:
    return AccountPool(accounts, health, selection=settings.accounts.account_selection,
                       max_concurrency=settings.accounts.account_max_concurrency,
                       queue_timeout=settings.accounts.account_queue_timeout, policy=_policy(settings),
                       state_cache_seconds=settings.accounts.account_state_cache_seconds)


def local_health(settings: Settings) -> HealthStore:
    path = _path(settings.accounts.kiro_accounts_state_file) if settings.accounts.kiro_accounts_state_file else None
    return MemoryHealthStore(path)


def shared_health(settings: Settings) -> HealthStore:
    """DynamoDB when there is a state table (every instance sees every state), else this process's memory."""
    if settings.aws.kiro_state_table:
        from gateway.accounts.dynamo_health import DynamoHealthStore

        return DynamoHealthStore(settings.aws.kiro_state_table)
    return local_health(settings)


def _configured_accounts(settings: Settings, http: httpx.AsyncClient, configs: list[AccountConfig],
                         make_store: object) -> list[Account]:
    accounts: list[Account] = []
    for config in configs:
        SCRUBBER.add(config.secret, config.client_secret)
        if config.kind == "api_key":
            accounts.append(api_key_account(settings, http, config, "API key"))
        else:
            store = make_store(config)  # type: ignore[operator]
            accounts.append(refresh_account(settings, http, config, store))
    return accounts


def from_file(settings: Settings, http: httpx.AsyncClient, path: Path) -> AccountPool:
    from gateway.accounts.stores import AccountsFileTokenStore

    configs = parse_accounts(read_accounts_file(path), f"The accounts file {path}")
    if not configs:
        raise CredentialsNotFound(f"The accounts file {path} holds no account: add one with `kiro-gateway accounts "
                                  "add` or `kiro-gateway login --device`.")
    state = _path(settings.credentials.kiro_state_file) if settings.credentials.kiro_state_file else None
    accounts = _configured_accounts(
        settings, http, configs, lambda config: AccountsFileTokenStore(path, config.name, state_file=state))
    return _pool(settings, accounts, local_health(settings))


def single(settings: Settings, http: httpx.AsyncClient, store: TokenStore, creds: Credentials,
           health: HealthStore) -> AccountPool:
    """The credential the gateway always used, as a pool of one (its client built exactly as before)."""
    SCRUBBER.add(creds.refresh_token, creds.access_token, creds.client_secret)
    config = AccountConfig(name="default", kind="refresh_token", refresh_token=creds.refresh_token,
                           profile_arn=creds.profile_arn, region=creds.region)
    account = refresh_account(settings, http, config, store, context=AccountContext.from_settings(settings))
    return _pool(settings, [account], health)


_told = {"no_credentials": False}  # the no-credentials warning is said once per process (the banner counts)


def told_no_credentials() -> None:
    """The caller has told the person there are no credentials: later builds stay quiet about it."""
    _told["no_credentials"] = True


async def build_accounts(settings: Settings, http: httpx.AsyncClient, *, warn: bool = True) -> BuiltAccounts:
    """The pool for these settings (see the module docstring for the order), or the problem when there is none."""
    key_store: TokenStore | None = None
    try:
        if settings.aws.kiro_secret_id:
            from gateway.stores.secrets_manager import SecretsManagerTokenStore

            key_store = SecretsManagerTokenStore(settings.aws.kiro_secret_id, settings.aws.kiro_state_table)
        if settings.accounts.kiro_accounts_file:
            if settings.accounts.kiro_api_key:
                log.warning("KIRO_API_KEY is ignored: KIRO_ACCOUNTS_FILE is set (add the key to that file)")
            return BuiltAccounts(from_file(settings, http, _path(settings.accounts.kiro_accounts_file)), key_store)
        if settings.accounts.kiro_api_key:
            config = AccountConfig(name="KIRO_API_KEY", kind="api_key", api_key=settings.accounts.kiro_api_key)
            pool = _pool(settings, [api_key_account(settings, http, config, "KIRO_API_KEY")], local_health(settings))
            return BuiltAccounts(pool, key_store)
        if key_store is not None:
            return BuiltAccounts(await _from_secret(settings, http, key_store), key_store)
        from gateway.stores.sources import build_token_store

        source = settings.credentials
        explicit = source.kiro_cli_db_file or source.kiro_creds_file or source.refresh_token
        own = accounts_file_path(settings)
        if not explicit and own.is_file() and read_accounts_file(own):
            return BuiltAccounts(from_file(settings, http, own), None)
        store = build_token_store(settings)
        creds = await store.load()
        return BuiltAccounts(single(settings, http, store, creds, local_health(settings)), store)
    except CredentialsNotFound as error:
        if warn and not _told["no_credentials"]:
            told_no_credentials()
            log.warning("no Kiro credentials: run `kiro-gateway login --device` or set KIRO_API_KEY "
                        "(`kiro-gateway doctor` explains; requests answer 503 until then)")
        return BuiltAccounts(None, key_store, str(error))


async def _from_secret(settings: Settings, http: httpx.AsyncClient, key_store: TokenStore) -> AccountPool:
    from gateway.accounts.stores import SecretAccountTokenStore
    from gateway.stores.secrets_manager import SecretsManagerTokenStore

    assert isinstance(key_store, SecretsManagerTokenStore)
    document = await key_store.document()
    if "accounts" not in document:
        creds = await key_store.load()
        return single(settings, http, key_store, creds, shared_health(settings))
    configs = parse_accounts(document.get("accounts"), f"The secret {settings.aws.kiro_secret_id}'s `accounts`")
    if not configs:
        raise CredentialsNotFound(f"The secret {settings.aws.kiro_secret_id} holds an empty account list: add one with "
                                  "`kiro-gateway accounts add` or `kiro-gateway login --device --push`.")
    def account_store(config: AccountConfig) -> SecretAccountTokenStore:
        store = SecretAccountTokenStore(settings.aws.kiro_secret_id, settings.aws.kiro_state_table, config.name)
        store.share_read(key_store)  # the secret was just read: a new instance reads it once, not once per account
        return store

    accounts = _configured_accounts(settings, http, configs, account_store)
    return _pool(settings, accounts, shared_health(settings))
