"""`kiro-gateway accounts list|add|remove|enable|disable`: the gateway's Kiro accounts, locally or in the stack.

Locally the list is KIRO_ACCOUNTS_FILE (else ~/.kiro-gateway/accounts.json) and lasting states (suspended, revoked,
exhausted) come from KIRO_ACCOUNTS_STATE_FILE; with `--stack`, `--stack-name` or `--secret-id` it is the deployed
secret's `accounts`, with states from the stack's DynamoDB table (output `TableName`, or `--table`). Credentials are
never taken from the command line: `add --api-key` reads KIRO_API_KEY, `add --refresh-token` reads REFRESH_TOKEN,
else they are asked for on the terminal. Every credential is shown masked.
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import sys
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from gateway.accounts.config import AccountsError, api_key_entry, parse_accounts, read_accounts_file, upsert_entry
from gateway.accounts.dynamo_health import DynamoHealthStore
from gateway.accounts.edit import SINGLE_FORMAT_FIELDS, save_local, secret_accounts
from gateway.accounts.health import clear_state_file, read_state_file
from gateway.accounts.setup import accounts_file_path
from gateway.accounts.stores import update_secret
from gateway.cli.console import mask_value, read_api_key, read_credential
from gateway.cli.errors import CliError
from gateway.cli.state import DeployedStack, LocalFiles, StackRef, aws_message
from gateway.stores.local import InterProcessLock


def register(subparsers: Any) -> None:
    accounts = subparsers.add_parser(
        "accounts", help="list and manage the gateway's Kiro accounts (local file or the stack's secret)",
        description="The Kiro accounts the gateway uses, in list order (sticky selection starts with the first).")
    actions = accounts.add_subparsers(dest="accounts_command")
    listing = actions.add_parser("list", help="every account, masked, with kind, state and cooldown")
    _target_arguments(listing)
    add = actions.add_parser("add", help="add (or replace) an account; the credential is read from the "
                             "environment or asked for, never from the command line")
    _target_arguments(add)
    add.add_argument("--name", required=True, help="the account's name")
    kind = add.add_mutually_exclusive_group(required=True)
    kind.add_argument("--api-key", action="store_true", help="a Kiro API key (ksk_…) from KIRO_API_KEY or a prompt")
    kind.add_argument("--refresh-token", action="store_true",
                      help="a Kiro refresh token from REFRESH_TOKEN or a prompt (prefer `kiro-gateway login --device`)")
    add.add_argument("--profile-arn", help="the Kiro profile ARN, when the account needs one")
    add.add_argument("--region", help="the account's region (API region for a key, auth region for a token)")
    add.add_argument("--disabled", action="store_true", help="add it disabled")
    for name, text in (("remove", "remove an account"), ("enable", "enable an account and clear its state"),
                       ("disable", "keep an account out of rotation")):
        action = actions.add_parser(name, help=text)
        _target_arguments(action)
        action.add_argument("name", help="the account's name")
    accounts.set_defaults(handler=accounts_command, file=None, stack=False, stack_name=None, secret_id=None,
                          table=None, aws_region=None, config_file="samconfig.toml", config_env="default")


def _target_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--file", help="the local accounts file (default KIRO_ACCOUNTS_FILE or "
                        "~/.kiro-gateway/accounts.json)")
    parser.add_argument("--stack", action="store_true", help="the deployed stack's secret (as `secret push`)")
    parser.add_argument("--stack-name", help="CloudFormation stack (implies --stack)")
    parser.add_argument("--secret-id", help="secret name or ARN (implies --stack)")
    parser.add_argument("--table", help="the stack's DynamoDB table (default: the stack's TableName output)")
    parser.add_argument("--aws-region", help="the stack's AWS region (default: samconfig.toml)")
    parser.add_argument("--config-file", default="samconfig.toml", help="SAM config file (default: %(default)s)")
    parser.add_argument("--config-env", default="default", help="SAM config environment (default: %(default)s)")


def accounts_command(args: argparse.Namespace) -> int:
    command = args.accounts_command or "list"
    try:
        target = StackAccounts(args) if (args.stack or args.stack_name or args.secret_id) else LocalAccounts(args)
        if command == "list":
            _print_list(target)
        elif command == "add":
            _add(target, args)
        elif command == "remove":
            _change(target, args.name, remove=True)
        else:
            _change(target, args.name, enabled=command == "enable")
    except (CliError, AccountsError) as error:
        print(f"kiro-gateway accounts {command}: {error}", file=sys.stderr)
        return 1
    return 0


# -- where the list lives ------------------------------------------------------------------------------------------


class LocalAccounts:
    """The local accounts file and its state file (what `serve` reads)."""

    def __init__(self, args: argparse.Namespace) -> None:
        settings = LocalFiles().settings
        self.path = Path(args.file).expanduser() if args.file else accounts_file_path(settings)
        state = settings.accounts.kiro_accounts_state_file
        self.state_path = Path(state).expanduser() if state else None
        self.where = str(self.path)

    def entries(self) -> list[dict[str, Any]]:
        return read_accounts_file(self.path)

    def apply(self, change: Callable[[list[dict[str, Any]]], list[dict[str, Any]]]) -> None:
        """Re-read, change and write the file under the lock the gateway's refreshes take (no rotated token lost)."""

        async def locked() -> None:
            async with InterProcessLock(self.path).hold():
                save_local(self.path, change(self.entries()))

        asyncio.run(locked())

    def states(self, names: list[str]) -> dict[str, Any]:
        return read_state_file(self.state_path) if self.state_path else {}

    def clear_state(self, name: str) -> None:
        if self.state_path is not None and self.state_path.is_file():
            clear_state_file(self.state_path, name)


class StackAccounts:
    """The deployed secret's `accounts`, with lasting states in the stack's table."""

    def __init__(self, args: argparse.Namespace) -> None:
        self.stack = DeployedStack(StackRef.from_args(args, region="aws_region"))
        self.secret_id = self.stack.secret_id
        self.document = self.stack.read_secret()
        self.where = self.secret_id
        self.table = args.table or self.stack.table()

    def entries(self) -> list[dict[str, Any]]:
        return secret_accounts(self.document)

    def apply(self, change: Callable[[list[dict[str, Any]]], list[dict[str, Any]]]) -> None:
        """Change the latest `accounts` under the secret-write lease (see `gateway.accounts.stores.update_secret`)."""

        def edit(document: dict[str, Any]) -> dict[str, Any]:
            entries = change(secret_accounts(document))
            parse_accounts(entries, "The secret's `accounts`")
            if "accounts" not in document:
                for key in SINGLE_FORMAT_FIELDS:
                    document.pop(key, None)
            document["accounts"] = entries
            return document

        dynamodb = self.stack.session.client("dynamodb") if self.table else None
        try:
            self.document = update_secret(self.stack.secrets, dynamodb, self.table, self.secret_id, edit)
        except (CliError, AccountsError):
            raise
        except Exception as error:
            raise CliError(f"Could not write the secret {self.secret_id}: {aws_message(error)}") from None

    def _health(self) -> DynamoHealthStore:
        return DynamoHealthStore(self.table, dynamodb=self.stack.session.client("dynamodb"))

    def states(self, names: list[str]) -> dict[str, Any]:
        if not self.table or not names:
            return {}
        return asyncio.run(self._health().read(names))

    def clear_state(self, name: str) -> None:
        if self.table:
            asyncio.run(self._health().clear(name))
        else:
            print("Note: the stack's table is unknown (pass --table or --stack-name); a stored state of this account "
                  "stays until it ends.", file=sys.stderr)


# -- commands ------------------------------------------------------------------------------------------------------


def _when(moment: float) -> str:
    return datetime.fromtimestamp(moment, UTC).strftime("%Y-%m-%d %H:%M:%S UTC")


def account_lines(entries: list[dict[str, Any]], states: dict[str, Any], now: float) -> list[str]:
    """One masked line per account: name, kind, enabled, state, until when, credential, profile."""
    lines = []
    for entry in entries:
        name = str(entry.get("name", "?"))
        kind = str(entry.get("kind") or ("api_key" if entry.get("apiKey") else "refresh_token"))
        enabled = "enabled" if entry.get("enabled", True) is not False else "disabled"
        health = states.get(name)
        if health is not None and health.active(now, _fingerprint(entry)):
            state = health.state
            cooldown = "until enabled again" if health.until is None else f"until {_when(health.until)}"
            detail = f" ({health.reason})"
        else:
            state, cooldown, detail = "ok", "-", ""
        secret = entry.get("apiKey") if kind == "api_key" else entry.get("refreshToken")
        profile = f"  profile {entry['profileArn']}" if entry.get("profileArn") else ""
        lines.append(f"{name}  {kind}  {enabled}  state: {state}{detail}  cooldown: {cooldown}  "
                     f"credential: {mask_value(secret)}{profile}")
    return lines


def _fingerprint(entry: dict[str, Any]) -> str:
    secret = entry.get("apiKey") if entry.get("kind") == "api_key" else entry.get("refreshToken")
    return hashlib.sha256(str(secret or "").encode()).hexdigest()[:16]


def _print_list(target: Any) -> None:
    entries = target.entries()
    print(f"Kiro accounts in {target.where} (in selection order):")
    if not entries:
        print("  none: add one with `kiro-gateway login --device` or `kiro-gateway accounts add`")
        return
    names = [str(e.get("name")) for e in entries if isinstance(e, dict)]
    for line in account_lines([e for e in entries if isinstance(e, dict)], target.states(names), time.time()):
        print(f"  {line}")


def _add(target: Any, args: argparse.Namespace) -> None:
    if args.api_key:
        entry = api_key_entry(args.name, read_api_key(), region=args.region or "", profile_arn=args.profile_arn or "")
    else:
        token = read_credential("REFRESH_TOKEN", "Kiro refresh token")
        entry = {"name": args.name, "kind": "refresh_token", "refreshToken": token, "enabled": True}
        if args.region:
            entry["region"] = args.region
        if args.profile_arn:
            entry["profileArn"] = args.profile_arn
    if args.disabled:
        entry["enabled"] = False
    replaced = any(isinstance(e, dict) and e.get("name") == args.name for e in target.entries())
    target.apply(lambda entries: upsert_entry(entries, entry)[0])
    target.clear_state(args.name)
    secret = entry.get("apiKey") or entry.get("refreshToken")
    print(f"{'Replaced' if replaced else 'Added'} account {args.name!r} ({entry['kind']}, {mask_value(secret)}) in "
          f"{target.where}.")


def _change(target: Any, name: str, *, enabled: bool | None = None, remove: bool = False) -> None:
    def change(entries: list[dict[str, Any]]) -> list[dict[str, Any]]:
        entries = [dict(e) if isinstance(e, dict) else e for e in entries]
        index = next((i for i, e in enumerate(entries) if isinstance(e, dict) and e.get("name") == name), None)
        if index is None:
            known = ", ".join(str(e.get("name")) for e in entries if isinstance(e, dict)) or "none"
            raise CliError(f"no account named {name!r} in {target.where} (accounts: {known})")
        if remove:
            del entries[index]
        else:
            entries[index]["enabled"] = bool(enabled)
        return entries

    target.apply(change)
    if remove or enabled:
        target.clear_state(name)
    verb = "Removed" if remove else "Enabled" if enabled else "Disabled"
    print(f"{verb} account {name!r} {'from' if remove else 'in'} {target.where}.")
