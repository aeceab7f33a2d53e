"""What the commands show and ask: credentials masked on output, and read from the environment or a hidden prompt
(never from the command line, where they would stay in shell history)."""

from __future__ import annotations

import getpass
import os
import sys
from typing import Any

from gateway.cli.errors import CliError
from gateway.redact import mask


def mask_value(value: Any) -> str:
    """First 4 characters and the length of a string (`abcd…(812 chars)`); the kind and size of anything else."""
    if isinstance(value, str):
        return mask(value)
    if value is None:
        return "<empty>"
    return f"<masked {type(value).__name__}>"


def read_credential(variable: str, what: str) -> str:
    """`variable` from the environment, else a hidden prompt on a terminal.

    The input of one command (the credential being added), not a setting: deliberately not read from `.env`, so a
    server's own `KIRO_API_KEY` in it is never silently stored as a new account."""
    value = os.environ.get(variable, "").strip()
    if value:
        return value
    if not sys.stdin.isatty():
        raise CliError(f"set {variable} (the {what} is never taken from the command line) or run this in a terminal "
                       "to be asked for it")
    value = getpass.getpass(f"{what}: ").strip()
    if not value:
        raise CliError(f"no {what} given")
    return value


def read_api_key() -> str:
    """A Kiro API key from KIRO_API_KEY or a hidden prompt (never from argv)."""
    return read_credential("KIRO_API_KEY", "Kiro API key (ksk_…)")
