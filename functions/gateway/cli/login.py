"""`kiro-gateway login --device`: sign in to Kiro without the IDE and store the result as a gateway-owned account.

Builder ID (default), IAM Identity Center (`--start-url` + `--region`), or Google / GitHub (`--provider`) through the
device-code flows in `gateway.login.device`. It prints the verification URL and the user code, one line each, and
waits; it never reads standard input and needs no browser on this machine. The account goes into the local accounts
file (KIRO_ACCOUNTS_FILE, else ~/.kiro-gateway/accounts.json, where `serve` finds it) or, with `--push`, into the
deployed stack's secret (found as `secret push` finds it).
"""

from __future__ import annotations

import argparse
import json
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx

from gateway.accounts.config import AccountsError
from gateway.accounts.edit import upsert_local
from gateway.accounts.health import clear_state_file
from gateway.accounts.setup import accounts_file_path
from gateway.cli.console import mask_value
from gateway.cli.errors import CliError
from gateway.cli.secret import push_account
from gateway.cli.state import StackRef, load_settings
from gateway.login.device import (
    BUILDER_ID_START_URL,
    OIDC_URL,
    SOCIAL_URL,
    LoginError,
    OidcDeviceLogin,
    Registration,
    SocialDeviceLogin,
)
from gateway.login.profiles import choose_profile, list_profiles
from gateway.stores.local import atomic_write_json
from gateway.stores.secret_document import format_expiry

PROVIDERS = ("builder-id", "idc", "google", "github")
REGISTRATIONS_FILE = Path("~/.kiro-gateway/oidc-registrations.json")


def register(subparsers: Any) -> None:
    login = subparsers.add_parser(
        "login", help="sign in to Kiro with a device code and store a gateway-owned account",
        description="Sign in with a device code (no browser needed here) and store the login as an account of the "
                    "gateway: locally, or with --push in the deployed stack's secret.")
    login.add_argument("--device", action="store_true", help="use the device-code flow (the only one offered)")
    login.add_argument("--provider", choices=PROVIDERS,
                       help="builder-id (default), idc (default with --start-url), google or github")
    login.add_argument("--start-url", help="IAM Identity Center start URL (https://….awsapps.com/start)")
    login.add_argument("--region", help="IAM Identity Center (OIDC) region (default KIRO_REGION or us-east-1)")
    login.add_argument("--profile-arn", help="the Kiro profile to use when the login may use several")
    login.add_argument("--name", default="default", help="the account's name (default: %(default)s); an account "
                       "of this name is replaced")
    login.add_argument("--push", action="store_true", help="store it in the deployed stack's secret instead")
    login.add_argument("--secret-id", help="with --push: secret name or ARN (default: the stack's SecretArn output)")
    login.add_argument("--stack-name", help="with --push: CloudFormation stack (default: samconfig.toml)")
    login.add_argument("--aws-region", help="with --push: the stack's AWS region (default: samconfig.toml)")
    login.add_argument("--config-file", default="samconfig.toml", help="SAM config file (default: %(default)s)")
    login.add_argument("--config-env", default="default", help="SAM config environment (default: %(default)s)")
    login.set_defaults(handler=login_command)


def _say(line: str) -> None:
    print(line, flush=True)


def login_command(args: argparse.Namespace) -> int:
    try:
        return _login(args)
    except (LoginError, CliError, AccountsError) as error:
        print(f"kiro-gateway login: {error}", file=sys.stderr)
        return 1


def _login(args: argparse.Namespace) -> int:
    if not args.device:
        raise CliError("only the device-code flow is available: run `kiro-gateway login --device`")
    settings = load_settings()
    provider = args.provider or ("idc" if args.start_url else "builder-id")
    if provider == "idc" and not args.start_url:
        raise CliError("IAM Identity Center needs --start-url (and --region when it is not us-east-1)")
    proxy = settings.endpoints.vpn_proxy_url or None
    with httpx.Client(proxy=proxy if proxy is None or "://" in proxy else f"http://{proxy}") as http:
        entry = (_social(http, settings, args, provider) if provider in ("google", "github")
                 else _oidc(http, settings, args, provider))
    _store(args, settings, entry)
    return 0


def _expiry(seconds: float) -> str:
    return format_expiry(datetime.now(UTC) + timedelta(seconds=max(seconds - 60, 0)))


def _oidc(http: Any, settings: Any, args: argparse.Namespace, provider: str) -> dict[str, Any]:
    region = args.region or settings.credentials.kiro_region
    start_url = args.start_url or BUILDER_ID_START_URL
    base = settings.endpoints.kiro_oidc_url.rstrip("/").removesuffix("/token") if settings.endpoints.kiro_oidc_url \
        else OIDC_URL.replace("{region}", region)
    cache = _read_registrations()
    saved = cache.get(base)
    cached = Registration(saved["clientId"], saved["clientSecret"], float(saved["clientSecretExpiresAt"])) \
        if isinstance(saved, dict) and {"clientId", "clientSecret", "clientSecretExpiresAt"} <= saved.keys() else None
    what = "IAM Identity Center" if provider == "idc" else "AWS Builder ID"
    _say(f"Signing in with {what} ({start_url}, region {region}).")
    registration, tokens = OidcDeviceLogin(http, base, say=_say).login(start_url, cached)
    if registration != cached:
        cache[base] = {"clientId": registration.client_id, "clientSecret": registration.client_secret,
                       "clientSecretExpiresAt": registration.expires_at}
        _write_registrations(cache)
    entry: dict[str, Any] = {
        "name": args.name, "kind": "refresh_token", "enabled": True, "refreshToken": tokens.refresh_token,
        "accessToken": tokens.access_token, "expiresAt": _expiry(tokens.expires_in), "region": region,
        "clientId": registration.client_id, "clientSecret": registration.client_secret,
        "clientSecretExpiresAt": datetime.fromtimestamp(registration.expires_at, UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "startUrl": start_url, "authMethod": provider,
    }
    if provider == "builder-id" and not args.profile_arn:
        entry.update(apiHost="q", apiRegion="us-east-1")  # Builder ID has no profile: the q host serves it
        return entry
    try:
        profiles = list_profiles(http, settings, tokens.access_token)
    except LoginError as error:  # keep the sign-in: the profile can be added to the entry (or --profile-arn) later
        _say(f"Warning: {error} The login is saved without a profile (q host).")
        profiles = []
    profile = choose_profile(profiles, args.profile_arn or "")
    if profile is None:
        _say("No Kiro profile was found for this login; it will use the q host without one.")
        entry.update(apiHost="q")
    else:
        entry["profileArn"] = profile.arn
        if profile.region:
            entry["apiRegion"] = profile.region
        _say(f"Kiro profile: {profile.name or '-'} ({profile.arn})")
    return entry


def _social(http: Any, settings: Any, args: argparse.Namespace, provider: str) -> dict[str, Any]:
    label = "Google" if provider == "google" else "Github"
    base = settings.endpoints.kiro_desktop_auth_url or SOCIAL_URL
    _say(f"Signing in with {label} through Kiro.")
    tokens = SocialDeviceLogin(http, base, say=_say).login(label)
    entry: dict[str, Any] = {
        "name": args.name, "kind": "refresh_token", "enabled": True, "refreshToken": tokens.refresh_token,
        "accessToken": tokens.access_token, "expiresAt": _expiry(tokens.expires_in), "region": "us-east-1",
        "authMethod": "social", "provider": label,
    }
    if tokens.profile_arn or args.profile_arn:
        entry["profileArn"] = args.profile_arn or tokens.profile_arn
    return entry


def _store(args: argparse.Namespace, settings: Any, entry: dict[str, Any]) -> None:
    if args.push:
        _push(args, entry)
        return
    path = accounts_file_path(settings)
    replaced = upsert_local(path, entry)
    if settings.accounts.kiro_accounts_state_file:
        clear_state_file(Path(settings.accounts.kiro_accounts_state_file).expanduser(), entry["name"])
    _say(f"Signed in. {'Replaced' if replaced else 'Saved'} account {entry['name']!r} in {path} "
         f"(refresh token {mask_value(entry['refreshToken'])}).")
    source = settings.credentials
    if settings.accounts.kiro_api_key or source.refresh_token or source.kiro_creds_file or source.kiro_cli_db_file:
        _say("Note: KIRO_API_KEY / REFRESH_TOKEN / KIRO_CREDS_FILE / KIRO_CLI_DB_FILE is set and takes precedence; "
             f"unset it (or set KIRO_ACCOUNTS_FILE={path}) for `kiro-gateway serve` to use this account.")
    else:
        _say("`kiro-gateway serve` uses it from now on.")


def _push(args: argparse.Namespace, entry: dict[str, Any]) -> None:
    push_account(StackRef.from_args(args, region="aws_region"), entry,
                 f"Signed in. Stored account {entry['name']!r} in {{secret}}.", say=_say)


def _registrations_path() -> Path:
    return REGISTRATIONS_FILE.expanduser()


def _read_registrations() -> dict[str, Any]:
    try:
        data = json.loads(_registrations_path().read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def _write_registrations(data: dict[str, Any]) -> None:
    path = _registrations_path()
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    atomic_write_json(path, data, new_file_mode=0o600)
