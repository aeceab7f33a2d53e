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


def package_version() -> str:
    """The installed distribution's version (the package metadata), or the source tree's when not installed."""
    from importlib.metadata import PackageNotFoundError, version  # lazy: only --version reads the metadata

    try:
        return version("kiro-serverless-gateway")
    except PackageNotFoundError:
        from gateway.app import VERSION  # lazy: a source checkout that was never installed

        return VERSION


class VersionAction(argparse.Action):
    """`-V`/`--version`: print `kiro-gateway <version>` and exit 0 (the metadata is read only when asked)."""

    def __init__(self, option_strings: list[str], dest: str, **kwargs: object) -> None:
        super().__init__(option_strings, dest, nargs=0, help="print the version and exit")

    def __call__(self, parser: argparse.ArgumentParser, *_args: object) -> None:
        print(f"{parser.prog} {package_version()}")
        parser.exit(0)


def build_parser(only: str | None = None) -> argparse.ArgumentParser:
    """The `kiro-gateway` parser with every command, or with just `only` (what a command line that names it needs)."""
    parser = argparse.ArgumentParser(prog="kiro-gateway", description="OpenAI/Anthropic API gateway for Kiro.")
    parser.add_argument("-V", "--version", action=VersionAction)
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
