"""`kiro-gateway secret push|show`: put local Kiro credentials into the deployed gateway's secret, and inspect it.

The secret is found by `--secret-id`, or from the CloudFormation stack (output `SecretArn`) whose name and region
come from `--stack-name`/`--region` or from samconfig.toml (what `sam deploy` used). AWS credentials come from the
usual chain (AWS_PROFILE, `aws configure`, SSO, environment).

Nothing here prints a token: `show` masks every value except a few harmless fields, `push` prints the client API
key only when it creates one, and on the first push after `sam deploy` (the key CloudFormation generated); otherwise
`show --reveal-api-key` prints it on request.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import secrets
import sys
import tomllib
from collections.abc import Callable
from pathlib import Path
from typing import Any

KIRO_KEY_PROMPT = "\0kiro-api-key"  # `--api-key` without a value: a Kiro API key from the environment or a prompt

# Fields `show` prints as they are; every other value is masked.
_PLAIN_FIELDS = {"expiresAt", "region", "profileArn", "authMethod", "provider", "scopes", "pushedAt"}
_CREDENTIAL_FIELDS = ("refreshToken", "accessToken", "expiresAt", "profileArn", "region", "clientId", "clientSecret",
                      "scopes")


class CliError(Exception):
    """A problem to report in one line (exit status 1)."""


def register(subparsers: Any) -> None:
    """Add `secret push` and `secret show` to the `kiro-gateway` parser's subcommands."""
    secret = subparsers.add_parser(
        "secret", help="manage the deployed gateway's secret (Kiro credentials and client API key)",
        description="Manage the Secrets Manager secret of a gateway deployed with `sam deploy`.",
    )
    actions = secret.add_subparsers(dest="secret_command", required=True)

    push = actions.add_parser(
        "push", help="copy this machine's Kiro credentials into the secret",
        description="Read the Kiro credentials the way `serve` does (Kiro IDE file, kiro-cli database, .env) and "
                    "write them into the deployed gateway's secret, keeping or creating the client API key.",
    )
    _locate_arguments(push)
    keys = push.add_mutually_exclusive_group()
    keys.add_argument("--api-key", nargs="?", const=KIRO_KEY_PROMPT, metavar="CLIENT_KEY",
                      help="without a value: push a Kiro API key (ksk_…, read from KIRO_API_KEY or asked for, never "
                           "from the command line) as the gateway's Kiro account instead of this machine's login; "
                           "with a value: set the client API key (default: keep the stored one, or generate one)")
    keys.add_argument("--rotate-api-key", action="store_true", help="generate a new client API key and print it")
    push.add_argument("--name", default="default", help="with --api-key: the account's name (default: %(default)s)")
    push.set_defaults(handler=push_command)

    show = actions.add_parser("show", help="print what the secret holds, with tokens masked")
    _locate_arguments(show)
    show.add_argument("--reveal-api-key", action="store_true",
                      help="print the client API key in full (the Kiro tokens stay masked)")
    show.set_defaults(handler=show_command)


def _locate_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--secret-id", help="secret name or ARN (default: the stack's SecretArn output)")
    parser.add_argument("--stack-name", help="CloudFormation stack (default: stack_name in samconfig.toml)")
    parser.add_argument("--region", help="AWS region (default: samconfig.toml, the ARN, then AWS_REGION)")
    parser.add_argument("--config-file", default="samconfig.toml", help="SAM config file (default: %(default)s)")
    parser.add_argument("--config-env", default="default", help="SAM config environment (default: %(default)s)")


# -- locating the secret -----------------------------------------------------------------------------------------


def read_samconfig(path: Path, env: str = "default") -> dict[str, str]:
    """`stack_name` and `region` from a samconfig.toml ({} when the file is absent or holds neither)."""
    if not path.is_file():
        return {}
    try:
        document = tomllib.loads(path.read_text(encoding="utf-8"))
    except (tomllib.TOMLDecodeError, OSError) as error:
        raise CliError(f"{path} is not valid TOML: {error}") from None
    found: dict[str, str] = {}
    section = document.get(env, {})
    for command in ("global", "deploy"):
        parameters = section.get(command, {}).get("parameters", {}) if isinstance(section, dict) else {}
        for key in ("stack_name", "region"):
            value = parameters.get(key)
            if isinstance(value, str) and value and key not in found:
                found[key] = value
    return found


def _region_from_arn(value: str) -> str | None:
    parts = value.split(":")
    return parts[3] if len(parts) > 4 and parts[0] == "arn" and parts[3] else None


def _session(region: str | None) -> Any:
    import boto3

    return boto3.session.Session(region_name=region)


def stack_outputs(args: argparse.Namespace) -> tuple[str | None, str | None, dict[str, str]]:
    """(stack name, region, its outputs) from the arguments and samconfig.toml; no stack named → (None, region, {})."""
    config = read_samconfig(Path(args.config_file), args.config_env)
    region = args.region or config.get("region")
    stack = args.stack_name or config.get("stack_name")
    if not stack:
        return None, region, {}
    cloudformation = _session(region).client("cloudformation")
    try:
        stacks = cloudformation.describe_stacks(StackName=stack)["Stacks"]
    except Exception as error:
        raise CliError(f"Could not read the stack {stack!r}{_in(region)}: {_aws_message(error)}") from None
    outputs = {o.get("OutputKey"): o.get("OutputValue") for o in (stacks[0].get("Outputs") or [])} if stacks else {}
    return stack, region, outputs


def locate_secret(args: argparse.Namespace) -> tuple[str, str | None]:
    """(secret id, region) from the arguments, samconfig.toml and the stack outputs."""
    config = read_samconfig(Path(args.config_file), args.config_env)
    if args.secret_id:
        return args.secret_id, args.region or _region_from_arn(args.secret_id) or config.get("region")
    stack, region, outputs = stack_outputs(args)
    if not stack:
        raise CliError(f"No secret given: pass --secret-id or --stack-name, or run from the directory with "
                       f"{args.config_file} (written by `sam deploy --guided`).")
    arn = outputs.get("SecretArn")
    if not arn:
        raise CliError(f"The stack {stack!r}{_in(region)} has no SecretArn output; is it this project's stack?")
    return arn, region or _region_from_arn(arn)


def _in(region: str | None) -> str:
    return f" in {region}" if region else ""


def _aws_message(error: BaseException) -> str:
    from botocore.exceptions import ClientError, NoCredentialsError, NoRegionError

    if isinstance(error, NoCredentialsError):
        return "no AWS credentials found (run `aws configure` or `aws sso login`, or set AWS_PROFILE)"
    if isinstance(error, NoRegionError):
        return "no AWS region (pass --region or set AWS_REGION)"
    if isinstance(error, ClientError):
        details = error.response.get("Error", {})
        return f"{details.get('Code', 'Error')}: {details.get('Message', '')}".strip()
    return f"{type(error).__name__}: {error}"


def _read_secret(client: Any, secret_id: str) -> dict[str, Any]:
    try:
        raw = client.get_secret_value(SecretId=secret_id).get("SecretString") or "{}"
    except Exception as error:
        raise CliError(f"Could not read the secret {secret_id}: {_aws_message(error)}") from None
    try:
        document = json.loads(raw)
    except json.JSONDecodeError:
        document = None
    if not isinstance(document, dict):
        raise CliError(f"The secret {secret_id} does not hold a JSON object.")
    return document


# -- masking -----------------------------------------------------------------------------------------------------


def mask_value(value: Any) -> str:
    """First 4 characters and the length of a string (`abcd…(812 chars)`); the kind and size of anything else."""
    from gateway.redact import mask

    if isinstance(value, str):
        return mask(value)
    if value is None:
        return "<empty>"
    return f"<masked {type(value).__name__}>"


def describe_document(document: dict[str, Any], *, reveal_api_key: bool = False) -> list[str]:
    """One `key: value` line per field, every secret masked."""
    lines = []
    for key in sorted(document):
        value = document[key]
        if key == "proxyApiKey" and reveal_api_key and isinstance(value, str):
            shown = value
        elif key in _PLAIN_FIELDS and isinstance(value, str | int | float):
            shown = str(value)
        else:
            shown = mask_value(value)
        lines.append(f"  {key}: {shown}")
    return lines


# -- commands ----------------------------------------------------------------------------------------------------


def _local_credentials() -> tuple[Any, Any, str]:
    """(credentials, settings, where they came from) with the same auto-detection as `serve`."""
    from gateway.auth.sources import build_token_store
    from gateway.settings import ConfigError, Settings
    from gateway.stores.base import CredentialsNotFound

    try:
        settings = Settings.from_env()
    except ConfigError as error:
        raise CliError(f"configuration error: {error}") from None
    store = build_token_store(settings)
    try:
        creds = asyncio.run(store.load())
    except CredentialsNotFound as error:
        raise CliError(f"No local Kiro credentials: {error}") from None
    return creds, settings, store.describe()


def push_command(args: argparse.Namespace) -> int:
    try:
        return _push(args)
    except CliError as error:
        print(f"kiro-gateway secret push: {error}", file=sys.stderr)
        return 1


def _push(args: argparse.Namespace) -> int:


    if args.api_key == KIRO_KEY_PROMPT:
        return _push_kiro_api_key(args)
    if args.api_key and args.api_key.startswith("ksk_"):
        raise CliError("that is a Kiro API key: never put it on the command line (it stays in shell history). Set "
                       "KIRO_API_KEY or answer the prompt: `kiro-gateway secret push --api-key`.")

    creds, settings, source = _local_credentials()
    secret_id, region = locate_secret(args)
    session = _session(region)
    client = session.client("secretsmanager")
    # The secret's write lease (shared with the gateway's refresh and `keys`): nobody writes between our read and
    # our write, so neither a rotated client key nor a revocation is lost.
    from gateway.accounts.stores import hold_write_lease, release_write_lease
    from gateway.cli_accounts import stack_table

    table = stack_table(session, args) or os.environ.get("KIRO_STATE_TABLE", "") \
        or str(_read_secret(client, secret_id).get("stateTable") or "")
    dynamodb = session.client("dynamodb") if table else None
    owner = secrets.token_hex(16)
    from gateway.client_keys.editing import CLI_LEASE_WAIT

    try:
        held = hold_write_lease(dynamodb, table, owner, wait_seconds=CLI_LEASE_WAIT, required=True)
    except Exception as error:
        raise CliError(f"Could not take the secret's write lease: {_aws_message(error)}") from None
    try:
        announce = _write_push(args, client, secret_id, creds, settings, table)
    finally:
        if held:
            release_write_lease(dynamodb, table, owner)

    kind = "AWS SSO OIDC" if creds.auth_type == "aws_sso_oidc" else "Kiro desktop"
    print(f"Pushed Kiro credentials from {source} ({kind} refresh) to {secret_id}")
    print(f"  refreshToken: {mask_value(creds.refresh_token)}")
    if creds.expires_at is not None:
        print(f"  access token expires: {creds.expires_at.isoformat()}")
    if announce:
        print(f"Client API key (shown once; use it as ANTHROPIC_API_KEY / OpenAI api_key): {announce}")
    elif args.api_key:
        print("Client API key set to the value given with --api-key.")
    else:
        print("Kept the stored client API key (print it with `kiro-gateway secret show --reveal-api-key`).")
    print("Note: the gateway and this machine now share one refresh token chain; a refresh on either side rotates "
          "it for both. If the gateway reports invalid credentials, log in again here and re-run this command.")
    return 0


def _write_push(args: argparse.Namespace, client: Any, secret_id: str, creds: Any, settings: Any,
                table: str) -> str | None:
    """Read the secret, put the pushed credentials (and the client API key) into it, write it; returns the client
    API key to show once, if any."""
    from datetime import UTC, datetime

    from gateway.stores.secret_document import document_with_credentials

    existing = _read_secret(client, secret_id)

    # Start from what is stored minus the old credential fields (a desktop login must not keep a stale clientSecret).
    document = {k: v for k, v in existing.items() if k not in _CREDENTIAL_FIELDS}
    document = document_with_credentials(document, creds)
    document["region"] = creds.region or settings.kiro_region
    if creds.profile_arn or settings.profile_arn:
        document["profileArn"] = creds.profile_arn or settings.profile_arn
    if creds.scopes:
        document["scopes"] = creds.scopes
    document["pushedAt"] = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    if table:
        document["stateTable"] = table  # every later writer finds the lease from the secret alone

    stored_key = existing.get("proxyApiKey") if isinstance(existing.get("proxyApiKey"), str) else ""
    announce: str | None = None
    if args.api_key:
        document["proxyApiKey"] = args.api_key
    elif args.rotate_api_key or not stored_key:
        document["proxyApiKey"] = secrets.token_urlsafe(32)
        announce = document["proxyApiKey"]
    else:
        document["proxyApiKey"] = stored_key
        if "pushedAt" not in existing:
            # The first push after `sam deploy`: the key CloudFormation generated has never been shown.
            announce = stored_key

    try:
        client.put_secret_value(SecretId=secret_id, SecretString=json.dumps(document, separators=(",", ":")))
    except Exception as error:
        raise CliError(f"Could not write the secret {secret_id}: {_aws_message(error)}") from None
    return announce



def push_account(where: argparse.Namespace, entry: dict[str, Any], done: str,
                 say: Callable[[str], None] = print) -> None:
    """Store an account entry in the deployed secret (found as `secret push` finds it) and report: `done`, then the
    notes of the merge and, when the secret had none yet, the client API key it now holds (shown once). Account
    errors (a bad entry) propagate as they are; AWS failures become a CliError naming the secret."""
    from gateway.accounts.edit import push_entry
    from gateway.cli_accounts import stack_table

    secret_id, region = locate_secret(where)
    session = _session(region)
    try:
        notes, announce = push_entry(session, secret_id, stack_table(session, where), entry)
    except CliError:
        raise
    except Exception as error:
        from gateway.accounts.config import AccountsError

        if isinstance(error, AccountsError):
            raise
        raise CliError(f"Could not update the secret {secret_id}: {_aws_message(error)}") from None
    say(done.replace("{secret}", secret_id))
    for note in notes:
        say(note)
    if announce:
        say(f"Client API key (shown once; use it as ANTHROPIC_API_KEY / OpenAI api_key): {announce}")


def _push_kiro_api_key(args: argparse.Namespace) -> int:
    """`secret push --api-key`: the Kiro API key becomes the secret's account `--name` (no refresh, no rotation)."""
    from gateway.accounts.config import AccountsError, api_key_entry
    from gateway.cli_accounts import read_api_key

    key = read_api_key()
    try:
        push_account(args, api_key_entry(args.name, key),
                     f"Pushed the Kiro API key {mask_value(key)} to {{secret}} as account {args.name!r}.")
    except AccountsError as error:
        raise CliError(str(error)) from None
    return 0


def show_command(args: argparse.Namespace) -> int:
    try:
        secret_id, region = locate_secret(args)
        client = _session(region).client("secretsmanager")
        document = _read_secret(client, secret_id)
    except CliError as error:
        print(f"kiro-gateway secret show: {error}", file=sys.stderr)
        return 1
    print(f"Secret {secret_id}:")
    for line in describe_document(document, reveal_api_key=args.reveal_api_key):
        print(line)
    if not document.get("refreshToken") and not document.get("accounts"):
        print("No Kiro credentials yet: run `kiro-gateway secret push`.")
    elif document.get("accounts"):
        print("The accounts are listed by `kiro-gateway accounts list --secret-id ...` (masked, with their states).")
    return 0
