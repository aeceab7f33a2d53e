"""Runs the real gateway as a separate process (`kiro-gateway serve`), the way a user starts it.

Its stderr (all of its logs) goes to a file the tests can read, e.g. to check that no secret ever appears there.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class GatewayProcess:
    """`python -m gateway.cli serve` on a free port of 127.0.0.1 with the given environment."""

    def __init__(self, env: dict[str, str], workdir: Path, log_path: Path | None = None, python: str | None = None):
        self.python = python or sys.executable  # another interpreter: e.g. a venv with the runtime dependencies only
        self.env = env
        self.workdir = workdir
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log_path = log_path or workdir / f"gateway-{self.port}.log"
        self._process: subprocess.Popen[bytes] | None = None

    def start(self, timeout: float = 30.0) -> GatewayProcess:
        env = {key: value for key, value in os.environ.items() if not key.startswith(("KIRO_", "AWS_"))}
        for name in ("PROXY_API_KEY", "REFRESH_TOKEN", "PROFILE_ARN", "DEBUG_MODE"):
            env.pop(name, None)
        env.update(self.env)
        env["PYTHONUNBUFFERED"] = "1"
        log_file = self.log_path.open("ab")
        self._process = subprocess.Popen(
            [self.python, "-m", "gateway.cli", "serve", "--host", "127.0.0.1", "--port", str(self.port)],
            cwd=self.workdir, env=env, stdout=log_file, stderr=subprocess.STDOUT,
        )
        log_file.close()
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self._process.poll() is not None:
                raise RuntimeError(f"gateway exited with {self._process.returncode}:\n{self.logs()}")
            try:
                if httpx.get(f"{self.url}/health", timeout=1.0).status_code == 200:
                    return self
            except httpx.HTTPError:
                pass
            time.sleep(0.05)
        self.stop()
        raise RuntimeError(f"gateway did not become healthy in {timeout}s:\n{self.logs()}")

    def stop(self) -> None:
        if self._process is not None and self._process.poll() is None:
            self._process.terminate()
            try:
                self._process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self._process.kill()
                self._process.wait()
        self._process = None

    def restart(self) -> GatewayProcess:
        self.stop()
        return self.start()

    @property
    def pid(self) -> int:
        assert self._process is not None
        return self._process.pid

    def logs(self) -> str:
        return self.log_path.read_text(encoding="utf-8", errors="replace") if self.log_path.exists() else ""

    def __enter__(self) -> GatewayProcess:
        return self.start()

    def __exit__(self, *_exc: object) -> None:
        self.stop()
