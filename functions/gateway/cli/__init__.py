"""`kiro-gateway`: run the gateway locally (`serve`), check the setup live (`doctor`), manage the deployed secret
(`secret push|show`), sign in without the IDE (`login --device`), manage several accounts (`accounts`), show
credits (`usage`) and manage the client keys (`keys create|list|revoke|set-limits`).

One module per command, each with `register(subparsers)`. This is the CLI's lazy-loading boundary: a command line
that names a command imports only that command's module (`serve` never loads boto3 or the doctor's probes);
`--help`, a bare `kiro-gateway` or an unknown command import them all to list them.
"""

from __future__ import annotations

import argparse
import importlib
import sys

# In the order `kiro-gateway --help` lists them.
COMMANDS = ("serve", "doctor", "secret", "login", "accounts", "usage", "keys")


def build_parser(only: str | None = None) -> argparse.ArgumentParser:
    """The `kiro-gateway` parser with every command, or with just `only` (what a command line that names it needs)."""
    parser = argparse.ArgumentParser(prog="kiro-gateway", description="OpenAI/Anthropic API gateway for Kiro.")
    commands = parser.add_subparsers(dest="command", required=True)
    for name in (only,) if only else COMMANDS:
        importlib.import_module(f"gateway.cli.{name}").register(commands)
    return parser


def _named_command(argv: list[str]) -> str | None:
    """The command the line names when it is the first argument (options before it: build the whole parser)."""
    return argv[0] if argv and argv[0] in COMMANDS else None


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    args = build_parser(_named_command(argv)).parse_args(argv)
    return int(args.handler(args) or 0)
