"""`kiro-gateway keys …` as a user runs it: a subprocess with its own HOME, against the local files or (with
`where` naming a secret) the deployed stack."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path


def make_cli(env: dict[str, str], home: Path, where: list[str]) -> Callable[..., subprocess.CompletedProcess[str]]:
    """A function that runs `kiro-gateway keys ARGS… WHERE…` and returns the finished process."""
    def cli(*args: str) -> subprocess.CompletedProcess[str]:
        full_env = {"PATH": os.environ.get("PATH", ""), "HOME": str(home), "PYTHONPATH": os.pathsep.join(sys.path),
                    "NO_PROXY": "127.0.0.1,localhost", **env}
        return subprocess.run([sys.executable, "-m", "gateway.cli", "keys", *args, *where],
                              capture_output=True, text=True, env=full_env, cwd=home, timeout=120)

    return cli
