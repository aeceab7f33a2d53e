"""Where Kiro credentials come from: the Kiro IDE JSON file, the kiro-cli SQLite database, or the environment.

`build_token_store` picks exactly one source, in the priority of the original gateway (SQLite > JSON > env), looking
in the default locations when nothing is configured, and fails with one message that says what to set. The file
formats themselves are read and written by `gateway.stores.credential_files`.
"""

from __future__ import annotations

from pathlib import Path

from gateway.settings import Settings
from gateway.stores.base import Credentials, CredentialsNotFound, TokenStore
from gateway.stores.credential_files import JSON_DEFAULT, SQLITE_DEFAULTS, read_json_file, read_sqlite
from gateway.stores.local import EnvTokenStore, JsonFileTokenStore, SqliteTokenStore

# -- choosing one source -----------------------------------------------------------------------------------------------


def env_credentials(settings: Settings) -> Credentials:
    """`REFRESH_TOKEN` (+ `PROFILE_ARN`, `KIRO_REGION`): no access token yet, so the first use refreshes."""
    return Credentials(refresh_token=settings.credentials.refresh_token, profile_arn=settings.credentials.profile_arn,
                       region=settings.credentials.kiro_region, extra={"source": "env"})


def _path(value: str) -> Path:
    return Path(value).expanduser()


def build_token_store(settings: Settings, *, home: Path | None = None) -> TokenStore:
    """The one local credential source to use: KIRO_CLI_DB_FILE, else KIRO_CREDS_FILE, else REFRESH_TOKEN, else the
    first default location that holds a login. Raises `CredentialsNotFound` saying what to set."""
    region = settings.credentials.kiro_region
    state = _path(settings.credentials.kiro_state_file) if settings.credentials.kiro_state_file else None

    def sqlite_store(path: Path) -> TokenStore:
        read_sqlite(path, default_region=region)  # fail now, with the reason, rather than on the first request
        readonly = settings.credentials.sqlite_readonly
        return SqliteTokenStore(path, readonly=readonly, state_file=state, default_region=region)

    def json_store(path: Path) -> TokenStore:
        read_json_file(path, default_region=region)
        return JsonFileTokenStore(path, default_region=region, state_file=state)

    if settings.credentials.kiro_cli_db_file:
        return sqlite_store(_path(settings.credentials.kiro_cli_db_file))
    if settings.credentials.kiro_creds_file:
        return json_store(_path(settings.credentials.kiro_creds_file))
    if settings.credentials.refresh_token:
        if state is None:
            raise CredentialsNotFound("REFRESH_TOKEN needs KIRO_STATE_FILE, where rotated refresh tokens are kept")
        return EnvTokenStore(env_credentials(settings), state_file=state)
    home = home if home is not None else Path.home()
    candidates = [(sqlite_store, home / p) for p in SQLITE_DEFAULTS] + [(json_store, home / JSON_DEFAULT)]
    problems: list[str] = []
    for make, path in candidates:
        if not path.is_file():
            continue
        try:
            return make(path)
        except CredentialsNotFound as exc:
            problems.append(str(exc))
    looked = ", ".join(str(path) for _, path in candidates)
    found = f" Found but unusable: {'; '.join(problems)}." if problems else ""
    raise CredentialsNotFound(
        "No Kiro credentials found. For a server: set KIRO_API_KEY (a Kiro API key) or run `kiro-gateway login "
        "--device`. Or set one of KIRO_CLI_DB_FILE (kiro-cli SQLite database), KIRO_CREDS_FILE "
        "(Kiro IDE kiro-auth-token.json) or REFRESH_TOKEN (with PROFILE_ARN), or log in with Kiro IDE or "
        f"`kiro-cli login`. Looked in: {looked}.{found}"
    )
