"""How long `kiro-gateway serve` lets slow or oversized clients hold a connection (issue 20, docs/serve.md).

Starts the real gateway process on 127.0.0.1 and, against it:

* drips a request's headers one byte every `--drip` seconds: seconds until the gateway answers or closes;
* sends full headers and drips the body the same way: seconds until it is cut;
* sends a 1 MB header and 20,000 headers at once: the gateway's first status line.

Each slow client gives up after `--bound` seconds ("still open"). Prints numbers only: nothing is asserted here.

    python bench/bench_slow_clients.py [--bound 45] [--drip 0.5] [--env SERVE_BODY_TIMEOUT=5 ...]
"""

from __future__ import annotations

import argparse
import contextlib
import socket
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tests.support.gateway_process import GatewayProcess

KEY = "bench-key-0123456789"


def drip(port: int, start: bytes, byte: bytes, bound: float, every: float) -> str:
    with socket.create_connection(("127.0.0.1", port)) as sock:
        sock.sendall(start)
        sock.setblocking(False)
        began = time.monotonic()
        while time.monotonic() - began < bound:
            try:
                sock.send(byte)
            except OSError:
                return f"cut after {time.monotonic() - began:.1f} s (send failed)"
            time.sleep(every)
            try:
                answer = sock.recv(200)
            except BlockingIOError:
                continue
            except OSError:
                answer = b""
            status = answer.split(b"\r\n", 1)[0].decode("latin-1") or "closed"
            return f"cut after {time.monotonic() - began:.1f} s ({status})"
    return f"still open after {bound:g} s"


def oversized(port: int, head: bytes) -> str:
    with socket.create_connection(("127.0.0.1", port), timeout=30) as sock:
        with contextlib.suppress(OSError):
            sock.sendall(b"GET /health HTTP/1.1\r\nHost: 127.0.0.1\r\n" + head + b"\r\n")
        try:
            answer = sock.recv(200)
        except OSError as error:
            return f"connection reset ({type(error).__name__})"
    return answer.split(b"\r\n", 1)[0].decode("latin-1") or "closed"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--bound", type=float, default=45.0)
    parser.add_argument("--drip", type=float, default=0.5)
    parser.add_argument("--env", action="append", default=[], help="NAME=VALUE for the gateway (repeatable)")
    args = parser.parse_args()
    home = Path(tempfile.mkdtemp(prefix="bench-slow-"))
    env = {"PROXY_API_KEY": KEY, "HOME": str(home), **dict(item.split("=", 1) for item in args.env)}
    with GatewayProcess(env, home) as gateway:
        head = b"POST /v1/messages HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Slow: "
        body = (b"POST /v1/messages HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
                b"x-api-key: " + KEY.encode() + b"\r\nContent-Length: 100000\r\n\r\n{")
        print(f"dripped headers:  {drip(gateway.port, head, b'a', args.bound, args.drip)}")
        print(f"dripped body:     {drip(gateway.port, body, b' ', args.bound, args.drip)}")
        huge = b"X-Huge: " + b"a" * 1_000_000 + b"\r\n"
        many = b"".join(b"X-N%d: 1\r\n" % i for i in range(20_000))
        print(f"1 MB header:      {oversized(gateway.port, huge)}")
        print(f"20,000 headers:   {oversized(gateway.port, many)}")


if __name__ == "__main__":
    main()
