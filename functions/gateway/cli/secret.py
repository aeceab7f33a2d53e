"""`kiro-gateway secret push|show`: put local Kiro credentials into the deployed gateway's secret, and inspect it.

The secret is found as every command finds the deployed stack (`gateway.cli.state`): `--secret-id`, or the
CloudFormation stack's output `SecretArn`, the stack and region from `--stack-name`/`--region` or samconfig.toml.

Nothing here prints a token: `show` masks every value except a few harmless fields, `push` prints the client API
key only when it creates one, and on the first push after `sam deploy` (the key CloudFormation generated); otherwise
`show --reveal-api-key` prints it on request.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import secrets
import sys
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from gateway.accounts.config import AccountsError, api_key_entry
from gateway.accounts.edit import push_entry
from gateway.accounts.stores import hold_write_lease, release_write_lease
from gateway.cli.console import mask_value, read_api_key
from gateway.cli.errors import CliError
from gateway.cli.state import DeployedStack, StackRef, aws_message, load_settings, stack_arguments
from gateway.client_keys.editing import CLI_LEASE_WAIT
from gateway.stores.base import CredentialsNotFound
from gateway.stores.secret_document import document_with_credentials
from gateway.stores.sources import build_token_store

KIRO_KEY_PROMPT = "\0kiro-api-key"  # `--api-key` without a value: a Kiro API key from the environment or a prompt

# Fields `show` prints as they are; every other value is masked.
_PLAIN_FIELDS = {"expiresAt", "region", "profileArn", "authMethod", "provider", "scopes", "pushedAt"}
_CREDENTIAL_FIELDS = ("refreshToken", "accessToken", "expiresAt", "profileArn", "region", "clientId", "clientSecret",
                      "scopes")


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
    stack_arguments(push)
    keys = push.add_mutually_exclusive_group()
    keys.add_argument("--api-key", nargs="?", const=KIRO_KEY_PROMPT, metavar="CLIENT_KEY",
                      help="without a value: push a Kiro API key (ksk_…, read from KIRO_API_KEY or asked for, never "
                           "from the command line) as the gateway's Kiro account instead of this machine's login; "
                           "with a value: set the client API key (default: keep the stored one, or generate one)")
    keys.add_argument("--rotate-api-key", action="store_true", help="generate a new client API key and print it")
    push.add_argument("--name", default="default", help="with --api-key: the account's name (default: %(default)s)")
    push.set_defaults(handler=push_command)

    show = actions.add_parser("show", help="print what the secret holds, with tokens masked")
    stack_arguments(show)
    show.add_argument("--reveal-api-key", action="store_true",
                      help="print the client API key in full (the Kiro tokens stay masked)")
    show.set_defaults(handler=show_command)


# -- masking -----------------------------------------------------------------------------------------------------


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
    settings = load_settings()
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
    stack = DeployedStack(StackRef.from_args(args))
    secret_id = stack.secret_id
    # The secret's write lease (shared with the gateway's refresh and `keys`): nobody writes between our read and
    # our write, so neither a rotated client key nor a revocation is lost.
    table = stack.lease_table(stack.read_secret())
    dynamodb = stack.session.client("dynamodb") if table else None
    owner = secrets.token_hex(16)
    try:
        held = hold_write_lease(dynamodb, table, owner, wait_seconds=CLI_LEASE_WAIT, required=True)
    except Exception as error:
        raise CliError(f"Could not take the secret's write lease: {aws_message(error)}") from None
    try:
        announce = _write_push(args, stack, creds, settings, table)
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


def _write_push(args: argparse.Namespace, stack: DeployedStack, creds: Any, settings: Any, table: str) -> str | None:
    """Read the secret, put the pushed credentials (and the client API key) into it, write it; returns the client
    API key to show once, if any. Runs under the secret's write lease."""
    existing = stack.read_secret()
    # Start from what is stored minus the old credential fields (a desktop login must not keep a stale clientSecret).
    document = {k: v for k, v in existing.items() if k not in _CREDENTIAL_FIELDS}
    document = document_with_credentials(document, creds)
    document["region"] = creds.region or settings.credentials.kiro_region
    if creds.profile_arn or settings.credentials.profile_arn:
        document["profileArn"] = creds.profile_arn or settings.credentials.profile_arn
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
        stack.secrets.put_secret_value(SecretId=stack.secret_id,
                                       SecretString=json.dumps(document, separators=(",", ":")))
    except Exception as error:
        raise CliError(f"Could not write the secret {stack.secret_id}: {aws_message(error)}") from None
    return announce


def push_account(where: StackRef, entry: dict[str, Any], done: str, say: Callable[[str], None] = print) -> None:
    """Store an account entry in the deployed secret (found as `secret push` finds it) and report: `done`, then the
    notes of the merge and, when the secret had none yet, the client API key it now holds (shown once). Account
    errors (a bad entry) propagate as they are; AWS failures become a CliError naming the secret."""
    stack = DeployedStack(where)
    secret_id = stack.secret_id
    try:
        notes, announce = push_entry(stack.session, secret_id, stack.table(), entry)
    except (CliError, AccountsError):
        raise
    except Exception as error:
        raise CliError(f"Could not update the secret {secret_id}: {aws_message(error)}") from None
    say(done.replace("{secret}", secret_id))
    for note in notes:
        say(note)
    if announce:
        say(f"Client API key (shown once; use it as ANTHROPIC_API_KEY / OpenAI api_key): {announce}")


def _push_kiro_api_key(args: argparse.Namespace) -> int:
    """`secret push --api-key`: the Kiro API key becomes the secret's account `--name` (no refresh, no rotation)."""
    key = read_api_key()
    try:
        push_account(StackRef.from_args(args), api_key_entry(args.name, key),
                     f"Pushed the Kiro API key {mask_value(key)} to {{secret}} as account {args.name!r}.")
    except AccountsError as error:
        raise CliError(str(error)) from None
    return 0


def show_command(args: argparse.Namespace) -> int:
    try:
        stack = DeployedStack(StackRef.from_args(args))
        secret_id, document = stack.secret_id, stack.read_secret()
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
