"""`kiro-gateway keys create|list|revoke|set-limits`: named client keys with their own limits.

Without `--secret-id`/`--stack-name` the commands act on the local key file (`KIRO_CLIENT_KEYS_FILE`, default
`~/.kiro-gateway/client-keys.json`, which `serve` reads); with either, on the `clientKeys` of the deployed gateway's
secret (found as `kiro-gateway secret push` finds it). A new key is printed once, alone on the last line of
`create`'s output; only its hash is stored. `list` shows names, fingerprints, states and limits, never a key or a
hash.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import sys
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from gateway.cli.errors import CliError
from gateway.cli.state import DeployedStack, StackRef, aws_message, locate, stack_arguments, stack_outputs
from gateway.client_keys import DEFAULT_KEY_NAME, editing
from gateway.client_keys.records import (
    ClientKey,
    KeyLimits,
    KeyRecordError,
    KeyRing,
    fingerprint,
    format_time,
    new_key,
    parse_time,
)
from gateway.settings import ConfigError, Settings
from gateway.usage import counters
from gateway.usage.store import build_usage_store

_LIMIT_FLAGS = (("rpm", int, "requests per minute"), ("concurrency", int, "requests at the same time"),
                ("daily_credits", float, "Kiro credits per UTC day (refused with 429 once spent)"),
                ("monthly_credits", float, "Kiro credits per UTC month (refused with 429 once spent)"))

log = logging.getLogger(__name__)


def register(subparsers: Any) -> None:
    keys = subparsers.add_parser(
        "keys", help="named client keys with their own limits (local file or the deployed secret)",
        description="Manage the gateway's client keys: in KIRO_CLIENT_KEYS_FILE, or with --stack-name/--secret-id "
                    "in the deployed gateway's secret. PROXY_API_KEY stays valid as the unlimited key 'default'.",
    )
    actions = keys.add_subparsers(dest="keys_command", required=True)

    create = actions.add_parser("create", help="create a key and print it (once, on the last line)")
    create.add_argument("--name", required=True, help="the key's name (shown in logs, metrics and `keys list`)")
    _limit_arguments(create, "no limit when not given")
    create.add_argument("--expires", help="ISO 8601 date or time after which the key is refused (UTC if no zone)")
    _where(create)
    create.set_defaults(handler=_run(create_keys))

    listing = actions.add_parser("list", help="list the keys: name, fingerprint, state and limits")
    listing.add_argument("--json", action="store_true", help="one JSON object instead of the table")
    _where(listing)
    listing.set_defaults(handler=_run(list_keys))

    revoke = actions.add_parser("revoke", help="refuse a key from now on (within the gateway's cache interval)")
    revoke.add_argument("name")
    _where(revoke)
    revoke.set_defaults(handler=_run(revoke_key))

    limits = actions.add_parser("set-limits", help="change a key's limits or expiry (0 removes a limit)")
    limits.add_argument("name")
    _limit_arguments(limits, "0 removes the limit")
    limits.add_argument("--expires", help="ISO 8601 date or time, or 'never'")
    _where(limits)
    limits.set_defaults(handler=_run(set_limits))


def _limit_arguments(parser: argparse.ArgumentParser, note: str) -> None:
    for attr, kind, meaning in _LIMIT_FLAGS:
        parser.add_argument(f"--{attr.replace('_', '-')}", dest=attr, type=kind, metavar="N" if kind is int else "X",
                            help=f"{meaning} ({note})")


def _where(parser: argparse.ArgumentParser) -> None:
    stack_arguments(parser)


def _run(command: Callable[[argparse.Namespace], int]) -> Callable[[argparse.Namespace], int]:
    def handler(args: argparse.Namespace) -> int:
        try:
            return command(args)
        except (CliError, KeyRecordError) as error:
            print(f"kiro-gateway keys {args.keys_command}: {error}", file=sys.stderr)
            return 1

    return handler


# -- where the ring is -------------------------------------------------------------------------------------------


class _Place:
    """The local file or the deployed secret, with what `list` needs to know about the default key."""

    def __init__(self, args: argparse.Namespace) -> None:
        self.secret: tuple[Any, str] | None = None
        self.table, self.dynamodb = "", None
        self.path: Path | None = None
        self.default_key = ""  # PROXY_API_KEY / proxyApiKey: listed as the unlimited key "default"
        where = locate(StackRef.from_args(args))
        if isinstance(where, DeployedStack):
            self.secret = (where.secrets, where.secret_id)
            self.describe = f"the secret {where.secret_id}"
            self.table = where.lease_table()  # the write lease shared with the gateway's refresh
            self.dynamodb = where.session.client("dynamodb") if self.table else None
        else:
            path = where.settings.client_keys_path
            if path is None:
                raise CliError("KIRO_SECRET_ID is set, so the gateway reads its keys from the secret: pass "
                               "--secret-id or --stack-name, or set KIRO_CLIENT_KEYS_FILE")
            self.path = path
            self.default_key = where.settings.server.proxy_api_key
            self.describe = str(path)

    def read(self) -> KeyRing | None:
        try:
            if self.secret is not None:
                ring, document = editing.read_secret(*self.secret)
                key = document.get("proxyApiKey")
                self.default_key = key if isinstance(key, str) else ""
                return ring
            assert self.path is not None
            return editing.read_file(self.path)
        except (OSError, ValueError) as error:
            raise CliError(f"could not read {self.describe}: {error}") from None
        except Exception as error:
            raise CliError(f"could not read {self.describe}: {aws_message(error)}") from None

    def edit(self, change: Callable[[KeyRing], KeyRing]) -> KeyRing:
        try:
            if self.secret is not None:
                return editing.edit_secret(*self.secret, change, dynamodb=self.dynamodb, table=self.table)
            assert self.path is not None
            return editing.edit_file(self.path, change)
        except KeyRecordError:
            raise
        except (OSError, ValueError, RuntimeError) as error:
            raise CliError(f"could not change {self.describe}: {error}") from None
        except Exception as error:
            raise CliError(f"could not change {self.describe}: {aws_message(error)}") from None


# -- commands ----------------------------------------------------------------------------------------------------


def _limits_from(args: argparse.Namespace, base: KeyLimits | None = None) -> KeyLimits:
    values = {attr: getattr(base, attr) if base else None for attr, _, _ in _LIMIT_FLAGS}
    for attr, _, _ in _LIMIT_FLAGS:
        given = getattr(args, attr)
        if given is not None:
            values[attr] = None if given == 0 and base is not None else given
    return KeyLimits(**values)


def describe_limits(key: ClientKey) -> str:
    limits = key.limits
    parts = [f"{label} {value:g}" for label, value in (
        ("rpm", limits.rpm), ("concurrency", limits.concurrency), ("daily credits", limits.daily_credits),
        ("monthly credits", limits.monthly_credits)) if value is not None]
    text = ", ".join(parts) or "no limits"
    return text + (f"; expires {format_time(key.expires_at)}" if key.expires_at else "")


def create_keys(args: argparse.Namespace) -> int:
    place = _Place(args)
    limits = _limits_from(args)
    expires = parse_time(args.expires) if args.expires else None
    key = new_key()
    now = datetime.now(UTC)
    ring = place.edit(lambda current: current.create(args.name, limits, expires, now, key)[0])
    record = ring.named(args.name)
    assert record is not None
    print(f"Created client key '{record.name}' (fingerprint {record.fingerprint}) in {place.describe}: "
          f"{describe_limits(record)}.")
    print("The gateway stores only its hash: this is the only time the key is shown. Use it as the API key "
          "(ANTHROPIC_API_KEY, OpenAI api_key):")
    print(key)
    return 0


def _rows(ring: KeyRing | None, default_key: str, now: datetime) -> list[dict[str, Any]]:
    rows = []
    if default_key:
        rows.append({"name": DEFAULT_KEY_NAME, "fingerprint": fingerprint(default_key), "state": "active",
                     "limits": {}, "expiresAt": None, "createdAt": None, "revokedAt": None})
    for key in ring.keys if ring else ():
        rows.append({"name": key.name, "fingerprint": key.fingerprint, "state": key.state(now),
                     "limits": key.limits.to_json(),
                     "expiresAt": format_time(key.expires_at) if key.expires_at else None,
                     "createdAt": key.created_at or None, "revokedAt": key.revoked_at})
    return rows


def _usage_by_key(args: argparse.Namespace) -> tuple[dict[str, Any], dict[str, Any]] | None:
    """(today's, this month's) usage per key name from the gateway's usage counters (the local SQLite file, or the
    state table: KIRO_STATE_TABLE, `--table` or the stack's TableName output); None when they cannot be read."""
    try:
        settings = Settings.from_env()
        if args.secret_id or args.stack_name:
            table = getattr(args, "table", None) or settings.aws.kiro_state_table
            if not table:
                table = stack_outputs(StackRef.from_args(args))[2].get("TableName")
            if not table:
                return None
            settings = settings.replace(kiro_state_table=table)
        today = datetime.now(UTC).date()
        month = counters.month_days(today)
        days = asyncio.run(build_usage_store(settings).read(month))
    except (ConfigError, CliError, OSError, ValueError) as error:
        log.info("no usage figures for `keys list`: %s", error)
        return None
    except Exception as error:  # an AWS error: the keys are still worth listing
        log.info("no usage figures for `keys list`: %s", aws_message(error))
        return None
    return (counters.summary([days.get(today.isoformat(), {})])["byKey"],
            counters.summary(days.get(day, {}) for day in month)["byKey"])


def list_keys(args: argparse.Namespace) -> int:
    place = _Place(args)
    ring = place.read()
    rows = _rows(ring, place.default_key, datetime.now(UTC))
    usage = _usage_by_key(args)
    if usage is not None:
        for row in rows:
            name = counters.label(row["name"])
            row["usage"] = {"today": usage[0].get(name, {}), "month": usage[1].get(name, {})}
    if args.json:
        print(json.dumps({"where": place.describe, "keys": rows}, indent=2))
        return 0
    print(f"Client keys in {place.describe} (\"default\" is PROXY_API_KEY / proxyApiKey: no limits):")
    if not rows:
        print("  none yet: `kiro-gateway keys create --name NAME`")
        return 0
    header = ("NAME", "FINGERPRINT", "STATE", "RPM", "CONCURRENCY", "DAILY CREDITS", "MONTHLY CREDITS", "EXPIRES",
              "CREATED", "REQUESTS (MONTH)", "TOKENS IN/OUT", "CREDITS TODAY/MONTH", "ERRORS")
    table = [header]
    for row in rows:
        limits = row["limits"]
        today, month = (row["usage"]["today"], row["usage"]["month"]) if "usage" in row else ({}, {})
        figures = ("-", "-", "-", "-") if "usage" not in row else (
            f"{month.get('requests', 0):g}", f"{month.get('inputTokens', 0):g}/{month.get('outputTokens', 0):g}",
            f"{today.get('credits', 0):g}/{month.get('credits', 0):g}", f"{month.get('errors', 0):g}")
        table.append((row["name"], row["fingerprint"], row["state"],
                      *(_cell(limits.get(field)) for field in ("rpm", "concurrency", "dailyCredits",
                                                               "monthlyCredits")),
                      row["expiresAt"] or "-", row["createdAt"] or "-", *figures))
    widths = [max(len(str(line[i])) for line in table) for i in range(len(header))]
    for line in table:
        print("  " + "  ".join(str(cell).ljust(width) for cell, width in zip(line, widths, strict=True)).rstrip())
    return 0


def _cell(value: Any) -> str:
    return "-" if value is None else f"{value:g}"


def revoke_key(args: argparse.Namespace) -> int:
    place = _Place(args)
    now = datetime.now(UTC)

    def revoke(ring: KeyRing) -> KeyRing:
        record = ring.named(args.name)
        if record is None:
            raise KeyRecordError(f"there is no key named {args.name!r}")
        if not record.enabled:
            return ring
        return ring.changed(args.name, enabled=False, revoked_at=format_time(now))

    place.edit(revoke)
    print(f"Revoked client key '{args.name}' in {place.describe}; the gateway refuses it within its key cache "
          "interval (1 s for a local file, CLIENT_KEYS_CACHE_SECONDS (30 s by default) for the secret).")
    return 0


def set_limits(args: argparse.Namespace) -> int:
    if all(getattr(args, attr) is None for attr, _, _ in _LIMIT_FLAGS) and args.expires is None:
        raise CliError("nothing to change: give --rpm, --concurrency, --daily-credits, --monthly-credits or --expires")
    place = _Place(args)
    if args.expires is None:
        expires: datetime | bool | None = False  # unchanged
    elif args.expires.strip().lower() == "never":
        expires = None
    else:
        expires = parse_time(args.expires)

    def change(ring: KeyRing) -> KeyRing:
        record = ring.named(args.name)
        if record is None:
            raise KeyRecordError(f"there is no key named {args.name!r}")
        changes: dict[str, Any] = {"limits": _limits_from(args, record.limits)}
        if expires is not False:
            changes["expires_at"] = expires
        return ring.changed(args.name, **changes)

    record = place.edit(change).named(args.name)
    assert record is not None
    print(f"Client key '{record.name}' in {place.describe}: {describe_limits(record)}.")
    return 0
