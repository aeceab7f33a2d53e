"""The one error every `kiro-gateway` command reports in one line (exit status 1)."""

from __future__ import annotations


class CliError(Exception):
    """A problem to report in one line (exit status 1); the message says what to do, never a secret."""
