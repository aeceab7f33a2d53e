"""`kiro-gateway serve` for the person at the terminal (issue 20): one readable line per request on a TTY (a real
pseudo-terminal), JSON lines when piped, `--version`, and the bounds that keep a slow or oversized client from holding
a connection (slowloris, huge or countless headers)."""

from __future__ import annotations

import contextlib
import json
import os
import pty
import select
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from importlib.metadata import version
from pathlib import Path

import httpx
import pytest

from tests.integration.conftest import API_KEY, gateway_env
from tests.support.fake_kiro import FakeKiro
from tests.support.fake_kiro_scripts import text_stream
from tests.support.gateway_process import GatewayProcess, free_port

CHAT = {"model": "claude-sonnet-4.5", "messages": [{"role": "user", "content": "hi"}]}
GENEROUS = 20.0  # seconds: a cut connection must be cut well before this (the configured bounds are 1-2 s)


def test_version_prints_the_package_version_and_exits_0() -> None:
    for flag in ("--version", "-V"):
        result = subprocess.run([sys.executable, "-m", "gateway.cli", flag], capture_output=True, text=True,
                                timeout=60)
        assert result.returncode == 0, result.stderr
        assert result.stdout.strip() == f"kiro-gateway {version('kiro-serverless-gateway')}"


class TerminalGateway:
    """`serve` with stdout and stderr on a pseudo-terminal, as when a person runs it in a terminal window."""

    def __init__(self, env: dict[str, str], workdir: Path) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        full = {key: value for key, value in os.environ.items() if not key.startswith(("KIRO_", "AWS_", "LOG_"))}
        full.update(env)
        full.pop("NO_COLOR", None)
        master, slave = pty.openpty()
        self.process = subprocess.Popen(
            [sys.executable, "-m", "gateway.cli", "serve", "--port", str(self.port)],
            cwd=workdir, env=full, stdin=subprocess.DEVNULL, stdout=slave, stderr=slave)
        os.close(slave)
        self.master = master
        self.output = bytearray()
        self._reader = threading.Thread(target=self._drain, daemon=True)
        self._reader.start()

    def _drain(self) -> None:
        while True:
            ready, _, _ = select.select([self.master], [], [], 0.2)
            if ready:
                try:
                    chunk = os.read(self.master, 65536)
                except OSError:  # EIO: the child closed the terminal
                    return
                if not chunk:
                    return
                self.output.extend(chunk)
            elif self.process.poll() is not None:
                return

    def text(self) -> str:
        return bytes(self.output).decode("utf-8", "replace")

    def wait_for(self, needle: str, timeout: float = 30.0) -> str:
        deadline = time.monotonic() + timeout
        while needle not in self.text():
            assert time.monotonic() < deadline, f"{needle!r} not shown:\n{self.text()}"
            assert self.process.poll() is None, f"serve exited:\n{self.text()}"
            time.sleep(0.05)
        return self.text()

    def stop(self) -> None:
        self.process.terminate()
        try:
            self.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
        self._reader.join(timeout=5)
        os.close(self.master)


@pytest.fixture
def terminal(fake: FakeKiro, tmp_path: Path) -> Iterator[TerminalGateway]:
    gateway = TerminalGateway(gateway_env(fake, tmp_path, LOG_LEVEL="INFO"), tmp_path)
    try:
        yield gateway
    finally:
        gateway.stop()


def test_on_a_terminal_each_request_is_one_readable_coloured_line(terminal: TerminalGateway,
                                                                   fake: FakeKiro) -> None:
    terminal.wait_for("ready")
    fake.enqueue_chat(text_stream("hello there", credits=0.25))
    response = httpx.post(f"{terminal.url}/v1/chat/completions", json=CHAT,
                          headers={"authorization": f"Bearer {API_KEY}"}, timeout=30)
    assert response.status_code == 200
    shown = terminal.wait_for("/v1/chat/completions")
    line = next(line for line in shown.splitlines() if "/v1/chat/completions" in line)
    assert "\x1b[" in line  # coloured: a terminal
    plain = line.replace("\x1b[0m", "")
    for code in ("\x1b[2m", "\x1b[1m", "\x1b[32m", "\x1b[36m"):
        plain = plain.replace(code, "")
    words = plain.split()
    assert words[1:4] == ["200", "POST", "/v1/chat/completions"], plain
    assert "claude-sonnet-4.5" in words and "default" in words
    assert "0.25 cr" in plain and "ttft" in plain and "tok" in plain
    assert words[-1].endswith(("ms", "s"))  # the duration closes the line
    assert not any(row.lstrip().startswith("{") for row in shown.splitlines())  # no JSON for a person
    banner = shown.split("ready")[0]
    assert f"listening on {terminal.url}" in banner and "Kiro credentials:" in banner
    assert "Client key: PROXY_API_KEY" in banner and "Models:" in banner
    assert API_KEY not in shown


def test_piped_logs_are_json_lines_without_any_terminal_escape(fake: FakeKiro, tmp_path: Path) -> None:
    with GatewayProcess(gateway_env(fake, tmp_path, LOG_LEVEL="INFO"), tmp_path) as gateway:
        fake.enqueue_chat(text_stream("hello", credits=0.5))
        assert httpx.post(f"{gateway.url}/v1/messages", headers={"x-api-key": API_KEY}, timeout=30, json={
            **CHAT, "max_tokens": 20}).status_code == 200
        deadline = time.monotonic() + 15
        while '"/v1/messages"' not in gateway.logs() and time.monotonic() < deadline:
            time.sleep(0.05)
        logs = gateway.logs()
    assert "\x1b" not in logs and "\\u001b" not in logs and "color_message" not in logs
    records = [json.loads(line) for line in logs.splitlines() if line.startswith("{")]
    request = next(record for record in records if record.get("path") == "/v1/messages")
    assert request["status"] == 200 and request["credits"] == 0.5 and request["client_key"] == "default"
    assert any(record["logger"].startswith("uvicorn") for record in records)


def test_the_no_credentials_warning_is_said_once_and_short(tmp_path: Path) -> None:
    env = {"PROXY_API_KEY": API_KEY, "HOME": str(tmp_path)}
    with GatewayProcess(env, tmp_path) as gateway:
        for _ in range(2):
            response = httpx.post(f"{gateway.url}/v1/messages", headers={"x-api-key": API_KEY}, timeout=30,
                                  json={**CHAT, "max_tokens": 20})
            assert response.status_code == 503
        logs = gateway.logs()
    told = [line for line in logs.splitlines() if "no kiro credentials" in line.lower() or "none found" in line]
    assert len(told) == 1, told
    assert "kiro-gateway login --device" in told[0] and len(told[0]) < 240


# -- bounds ---------------------------------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def bounded(tmp_path_factory: pytest.TempPathFactory) -> Iterator[GatewayProcess]:
    home = tmp_path_factory.mktemp("bounded")
    env = {"PROXY_API_KEY": API_KEY, "HOME": str(home), "SERVE_HEADER_TIMEOUT": "1", "SERVE_BODY_TIMEOUT": "1.5",
           "SERVE_MAX_HEADERS": "50", "SERVE_MAX_HEADER_BYTES": "16384"}
    with GatewayProcess(env, home) as gateway:
        yield gateway


def connect(gateway: GatewayProcess) -> socket.socket:
    sock = socket.create_connection(("127.0.0.1", gateway.port), timeout=GENEROUS)
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    return sock


def drip_until_cut(sock: socket.socket, drip: bytes) -> bytes:
    """Sends `drip` a byte at a time, ten a second, until the server answers or closes; what it sent back."""
    sock.setblocking(False)
    deadline = time.monotonic() + GENEROUS
    answer = bytearray()
    try:
        for byte in drip:
            assert time.monotonic() < deadline, "the slow client was never cut"
            sock.send(bytes([byte]))
            time.sleep(0.1)
            try:
                chunk = sock.recv(65536)
            except BlockingIOError:
                continue
            if not chunk:
                return bytes(answer)
            answer.extend(chunk)
    except (BrokenPipeError, ConnectionResetError):
        return bytes(answer)
    pytest.fail("the slow client sent everything without being cut")


def test_a_client_dripping_its_headers_is_cut(bounded: GatewayProcess) -> None:
    sock = connect(bounded)
    with sock:
        sock.sendall(b"POST /v1/messages HTTP/1.1\r\nHost: 127.0.0.1\r\n")
        answer = drip_until_cut(sock, b"X-Slow: " + b"a" * 400)
    assert answer == b"" or answer.startswith(b"HTTP/1.1 408"), answer[:200]
    assert httpx.get(f"{bounded.url}/health").status_code == 200


def test_a_client_dripping_its_body_is_cut(bounded: GatewayProcess) -> None:
    sock = connect(bounded)
    with sock:
        sock.sendall(b"POST /v1/messages HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
                     b"x-api-key: " + API_KEY.encode() + b"\r\nContent-Length: 5000\r\n\r\n")
        answer = drip_until_cut(sock, b"{" + b" " * 4999)
    assert b"200 OK" not in answer
    assert httpx.get(f"{bounded.url}/health").status_code == 200


@pytest.mark.parametrize("head", [
    b"X-Huge: " + b"a" * 1_000_000 + b"\r\n",
    b"".join(b"X-Many-%d: 1\r\n" % i for i in range(20_000)),
], ids=["one-megabyte-header", "twenty-thousand-headers"])
def test_oversized_heads_are_refused_with_431(bounded: GatewayProcess, head: bytes) -> None:
    refusals = bounded.logs().count("refused a request")
    sock = connect(bounded)
    answer = b""
    with sock:
        with contextlib.suppress(BrokenPipeError, ConnectionResetError):  # cut while still sending
            sock.sendall(b"GET /health HTTP/1.1\r\nHost: 127.0.0.1\r\n" + head + b"\r\n")
        try:
            answer = sock.recv(65536)
        except ConnectionResetError:
            answer = b""  # the reset for the unread rest of the head may overtake the 431 (TCP, not the gateway)
    assert answer.startswith(b"HTTP/1.1 431") or answer == b"", answer[:200]
    assert bounded.logs().count("refused a request") == refusals + 1  # refused by the head limit, not by chance
    assert httpx.get(f"{bounded.url}/health").status_code == 200


def test_too_many_small_headers_are_refused_with_431(bounded: GatewayProcess) -> None:
    head = b"".join(b"X-N%d: 1\r\n" % i for i in range(60))  # 60 > SERVE_MAX_HEADERS, well under the byte limit
    with connect(bounded) as sock:
        sock.sendall(b"GET /health HTTP/1.1\r\nHost: 127.0.0.1\r\n" + head + b"\r\n")
        answer = sock.recv(65536)
    assert answer.startswith(b"HTTP/1.1 431") and b"Too many request header fields" in answer, answer[:200]
    with connect(bounded) as sock:  # 40 headers are fine
        sock.sendall(b"GET /health HTTP/1.1\r\nHost: 127.0.0.1\r\n" + head[: head.index(b"X-N40")] + b"\r\n")
        assert sock.recv(65536).startswith(b"HTTP/1.1 200")


def test_a_large_body_is_not_mistaken_for_a_large_head(bounded: GatewayProcess) -> None:
    # Agents send 100 KB+ bodies, often in the same network reads as the head: only head bytes count against
    # SERVE_MAX_HEADER_BYTES (16 KB here), on a fresh connection and on a kept-alive one.
    text = "word " * 200_000  # 1 MB of text
    with httpx.Client(base_url=bounded.url, headers={"x-api-key": API_KEY}, timeout=60) as client:
        for _ in range(2):
            response = client.post("/v1/messages/count_tokens", json={
                "model": "claude-sonnet-4.5", "messages": [{"role": "user", "content": text}]})
            assert response.status_code == 200, response.text[:300]
            assert response.json()["input_tokens"] > 100_000
