"""Whole-session requests: what a Claude Code-shaped body of 256 KB, 1 MB and 3 MB costs the gateway before the first
content byte, and whether other streams stall meanwhile. Prints numbers only; nothing here is asserted anywhere.

Runs the fake Kiro upstream in a process of its own (so its own parsing of megabyte payloads cannot delay this
process's clocks) and one gateway process per tree on 127.0.0.1 (this tree, and with `--base DIR` a checkout of an
earlier commit, e.g. `git worktree add /tmp/base dbe1e28`), and prints for each, side by side:

* tiny-request time to first content byte, p50 / p99, requests alternating between the gateways;
* time to first content byte (the first `text_delta`) of Claude Code-shaped `/v1/messages` bodies
  (bench/large_bodies.py: system blocks, 20 tools, Read exchanges whose results are real source files), and the
  upstream's own share: the very payload the gateway sent, posted straight to the fake. Every body is new to the
  gateway (no message seen before), median of `--samples`;
* the same session's next turn at 1 MB (the 1 MB body again with one new exchange);
* the longest pause of a stream paced at 50 ms while 5 different 3 MB requests pass (and the same through no gateway:
  the paced stream straight from the fake while the 5 payloads go straight to it);
* `count_tokens` with 1 MB of one repeated character: its time, and the longest pause of a paced stream meanwhile;
* the gateway's peak RSS (VmHWM) after all of it.

    python bench/bench_large.py [--base /tmp/base] [--samples 3] [--gateway-python PYTHON]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import multiprocessing
import os
import statistics
import sys
import tempfile
import time
from dataclasses import dataclass
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from large_bodies import body as large_body

from tests.support import frames
from tests.support.fake_kiro_scripts import Pause
from tests.support.gateway_process import GatewayProcess

ROOT = Path(__file__).resolve().parents[1]
API_KEY = "bench-key"
SIZES = {"256 KB": 256_000, "1 MB": 1_000_000, "3 MB": 3_000_000}
PACE = 0.05  # seconds between the paced stream's frames
PACED_FRAMES = 120  # 6 s of paced answer: longer than anything it has to outlast
TINY = {"model": "claude-sonnet-4.5", "max_tokens": 64, "stream": True,
        "messages": [{"role": "user", "content": "bench"}]}
GATEWAY_MARKER = b"text_delta"
DIRECT_MARKER = b"assistantResponseEvent"


def short_script() -> list[Any]:
    return [frames.text("Done."), frames.metering(0.01), frames.context_usage(1.0)]


def paced_script() -> list[Any]:
    out: list[Any] = []
    for number in range(PACED_FRAMES):
        out += [frames.text(f"tick{number} "), Pause(PACE)]
    return [*out, frames.metering(0.01), frames.context_usage(1.0)]


# -- the fake upstream, in its own process ---------------------------------------------------------------------------

def fake_process(connection: Connection) -> None:
    from tests.support.fake_kiro import FakeKiro

    with FakeKiro(piece_sizes=(65536, 65536), frame_writes=True) as fake:
        connection.send((fake.url, fake.gateway_env(), fake.issue_access_token(ttl=36000)))
        while True:
            command, argument = connection.recv()
            if command == "enqueue":
                fake.enqueue_chat(*argument)
                connection.send(None)
            elif command == "last_payloads":  # the newest `argument` chat payloads; forgets every request
                chats = fake.requests("chat")
                connection.send([r.body for r in chats[len(chats) - argument:]] if argument else [])
                fake.clear_requests()
            elif command == "env":  # every gateway its own refresh token (refreshing rotates it)
                connection.send(fake.gateway_env(fake.issue_refresh_token()))
            elif command == "stop":
                connection.send(None)
                return


class Upstream:
    """Commands to the fake's process."""

    def __init__(self) -> None:
        self._connection, child = multiprocessing.Pipe()
        self._process = multiprocessing.get_context("fork").Process(target=fake_process, args=(child,), daemon=True)
        self._process.start()
        self.url, self.env, self.token = self._connection.recv()

    def _call(self, command: str, argument: Any = None) -> Any:
        self._connection.send((command, argument))
        return self._connection.recv()

    def gateway_env(self) -> dict[str, str]:
        return self._call("env")

    def enqueue(self, *scripts: list[Any]) -> None:
        self._call("enqueue", scripts)

    def last_payloads(self, count: int = 1) -> list[bytes]:
        return self._call("last_payloads", count)

    def stop(self) -> None:
        self._call("stop")
        self._process.join(5)


# -- one gateway ------------------------------------------------------------------------------------------------------

@dataclass
class Gateway:
    label: str
    process: GatewayProcess

    @property
    def messages(self) -> str:
        return self.process.url + "/v1/messages"


def start_gateway(label: str, tree: Path, upstream: Upstream, home: Path, python: str,
                  extra: dict[str, str]) -> Gateway:
    env = upstream.gateway_env()
    env.update({"PROXY_API_KEY": API_KEY, "HOME": str(home), "KIRO_STATE_FILE": str(home / f"{label}.json"),
                "LOG_LEVEL": "WARNING", "FAKE_REASONING": "false",
                "PYTHONPATH": f"{tree}{os.pathsep}{tree / 'functions'}", **extra})
    return Gateway(label, GatewayProcess(env, home, log_path=home / f"{label}.log", python=python).start())


async def first_content(http: httpx.AsyncClient, url: str, body: bytes, headers: dict[str, str],
                        marker: bytes) -> float:
    """Seconds from sending `body` to the first chunk holding `marker` (the rest is read and dropped)."""
    started = time.perf_counter()
    first = None
    async with http.stream("POST", url, content=body, headers=headers) as response:
        if response.status_code != 200:
            raise RuntimeError(f"{url} answered {response.status_code}: {(await response.aread())[:300]!r}")
        async for chunk in response.aiter_raw():
            if first is None and marker in chunk:
                first = time.perf_counter() - started
    if first is None:
        raise RuntimeError(f"{marker!r} never came from {url}")
    return first


def gateway_headers() -> dict[str, str]:
    return {"x-api-key": API_KEY, "content-type": "application/json", "anthropic-version": "2023-06-01"}


def direct_headers(upstream: Upstream) -> dict[str, str]:
    return {"Authorization": f"Bearer {upstream.token}", "Content-Type": "application/json"}


async def paced_gaps(http: httpx.AsyncClient, url: str, body: bytes, headers: dict[str, str], marker: bytes,
                     started: asyncio.Event, done: asyncio.Event) -> float:
    """The longest silence between chunks of a paced stream, measured from its first content chunk until `done`."""
    last = None
    longest = 0.0
    async with http.stream("POST", url, content=body, headers=headers) as response:
        async for chunk in response.aiter_raw():
            now = time.perf_counter()
            if last is None:
                if marker not in chunk:
                    continue
                started.set()
            else:
                longest = max(longest, now - last)
            last = now
            if done.is_set():
                break
    return longest


async def pause_while(http: httpx.AsyncClient, upstream: Upstream, paced: tuple[str, bytes, dict[str, str], bytes],
                      work: list[tuple[str, bytes, dict[str, str]]], answers: int) -> tuple[float, list[float]]:
    """(longest pause of the paced stream, seconds each request of `work` took) with `work` sent at once."""
    url, body, headers, marker = paced
    upstream.enqueue(paced_script())
    started, done = asyncio.Event(), asyncio.Event()
    reader = asyncio.create_task(paced_gaps(http, url, body, headers, marker, started, done))
    await started.wait()
    upstream.enqueue(*[short_script()] * answers)

    async def one(target: str, content: bytes, heads: dict[str, str]) -> float:
        begun = time.perf_counter()
        response = await http.post(target, content=content, headers=heads)
        if response.status_code != 200:
            raise RuntimeError(f"{target} answered {response.status_code}: {response.text[:300]}")
        return time.perf_counter() - begun

    took = await asyncio.gather(*(one(*item) for item in work))
    await asyncio.sleep(3 * PACE)
    done.set()
    return await reader, list(took)


def peak_rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def encoded(data: dict[str, Any]) -> bytes:
    return json.dumps(data, ensure_ascii=False).encode()


async def measure(gateways: list[Gateway], upstream: Upstream, args: argparse.Namespace) -> dict[str, dict[str, Any]]:
    out: dict[str, dict[str, Any]] = {g.label: {} for g in gateways}
    limits = httpx.Limits(max_connections=50, max_keepalive_connections=50)
    async with httpx.AsyncClient(timeout=300, limits=limits) as http:
        tiny = encoded(TINY)
        for gateway in gateways:  # warm-up: token refresh, model list, connections, the tokenizer's vocabulary
            upstream.enqueue(*[short_script()] * 5)
            for _ in range(5):
                await first_content(http, gateway.messages, tiny, gateway_headers(), GATEWAY_MARKER)
        # Tiny requests, alternating between the gateways.
        firsts: dict[str, list[float]] = {g.label: [] for g in gateways}
        upstream.enqueue(*[short_script()] * (args.tiny * len(gateways)))
        for _ in range(args.tiny):
            for gateway in gateways:
                firsts[gateway.label].append(await first_content(http, gateway.messages, tiny, gateway_headers(),
                                                                 GATEWAY_MARKER))
        for gateway in gateways:
            values = sorted(firsts[gateway.label])
            out[gateway.label]["tiny p50"] = values[len(values) // 2] * 1000
            out[gateway.label]["tiny p99"] = values[min(len(values) - 1, round(0.99 * (len(values) - 1)))] * 1000
        print("tiny requests done", file=sys.stderr)
        direct_url = upstream.url + "/generateAssistantResponse"
        variant = 0

        async def first_and_direct(gateway: Gateway, content: bytes) -> tuple[float, float]:
            upstream.enqueue(short_script())
            via = await first_content(http, gateway.messages, content, gateway_headers(), GATEWAY_MARKER)
            payload = upstream.last_payloads()[0]
            upstream.enqueue(short_script())
            return via, await first_content(http, direct_url, payload, direct_headers(upstream), DIRECT_MARKER)

        # Each sample is a new body, sent to every gateway in turn (each has its own memory: new to each).
        samples: dict[tuple[str, str], list[tuple[float, float]]] = {}
        for label, size in SIZES.items():
            for _ in range(args.samples):
                variant += 1
                content = encoded(large_body(size, variant=variant))
                for gateway in gateways:
                    samples.setdefault((gateway.label, label), []).append(await first_and_direct(gateway, content))
                    out[gateway.label][f"{label} body"] = len(content) / 1e6
        # The same session's next turn: the 1 MB body, then it again with one new exchange.
        for _ in range(args.samples):
            variant += 1
            first_turn = encoded(large_body(1_000_000, variant=variant))
            turn = encoded(large_body(1_000_000, variant=variant, extra_exchanges=1))
            for gateway in gateways:
                upstream.enqueue(short_script())
                await first_content(http, gateway.messages, first_turn, gateway_headers(), GATEWAY_MARKER)
                samples.setdefault((gateway.label, "next turn"), []).append(await first_and_direct(gateway, turn))
        for (gateway_label, label), pairs in samples.items():
            out[gateway_label][f"{label} ttfb"] = statistics.median(via for via, _ in pairs) * 1000
            out[gateway_label][f"{label} direct"] = statistics.median(direct for _, direct in pairs) * 1000
        print("sizes done", file=sys.stderr)
        for gateway in gateways:
            figures = out[gateway.label]
            # A stream paced at 50 ms while five different 3 MB requests pass.
            bodies = []
            for _ in range(5):
                variant += 1
                bodies.append(encoded(large_body(3_000_000, variant=variant, stream=False)))
            work = [(gateway.messages, content, gateway_headers()) for content in bodies]
            pause, took = await pause_while(http, upstream, (gateway.messages, tiny, gateway_headers(),
                                                             GATEWAY_MARKER), work, 5)
            figures["pause 5x3MB"] = pause * 1000
            figures["5x3MB wall"] = max(took) * 1000
            payloads = upstream.last_payloads(6)[1:]  # the five 3 MB payloads (the paced request came first)
            work = [(direct_url, payload, direct_headers(upstream)) for payload in payloads]
            direct_paced = encoded({"conversationState": {"chatTriggerType": "MANUAL", "conversationId": "bench",
                                                          "currentMessage": {"userInputMessage": {
                                                              "content": "bench", "modelId": "claude-sonnet-4.5",
                                                              "origin": "AI_EDITOR"}}}})
            pause, _took = await pause_while(http, upstream, (direct_url, direct_paced, direct_headers(upstream),
                                                              DIRECT_MARKER), work, 5)
            figures["pause 5x3MB direct"] = pause * 1000
            upstream.last_payloads(0)
            # count_tokens with 1 MB of one repeated character, a paced stream meanwhile.
            flood = encoded({"model": "claude-sonnet-4.5", "messages": [{"role": "user", "content": " " * 1_000_000}]})
            pause, took = await pause_while(
                http, upstream, (gateway.messages, tiny, gateway_headers(), GATEWAY_MARKER),
                [(gateway.process.url + "/v1/messages/count_tokens", flood, gateway_headers())], 0)
            figures["count_tokens"] = took[0] * 1000
            figures["pause count_tokens"] = pause * 1000
            figures["peak rss"] = peak_rss_mb(gateway.process.pid)
            upstream.last_payloads(0)
            print(f"{gateway.label}: done", file=sys.stderr)
    return out


ROWS = [  # (label, key, direct key or None)
    ("tiny request, time to first content p50", "tiny p50", None),
    ("tiny request, time to first content p99", "tiny p99", None),
    ("256 KB body: time to first content", "256 KB ttfb", "256 KB direct"),
    ("1 MB body: time to first content", "1 MB ttfb", "1 MB direct"),
    ("3 MB body: time to first content", "3 MB ttfb", "3 MB direct"),
    ("1 MB, same session's next turn", "next turn ttfb", "next turn direct"),
    ("longest pause of a 50 ms stream, 5 × 3 MB", "pause 5x3MB", "pause 5x3MB direct"),
    ("5 × 3 MB requests at once (wall)", "5x3MB wall", None),
    ("count_tokens, 1 MB of one character", "count_tokens", None),
    ("longest pause of a 50 ms stream meanwhile", "pause count_tokens", None),
    ("peak RSS after all of the above", "peak rss", None),
]


def report(out: dict[str, dict[str, Any]]) -> None:
    labels = list(out)
    sizes = ", ".join(f"{label} = {out[labels[0]].get(f'{label} body', 0):.2f} MB" for label in SIZES)
    print(f"bodies: {sizes}; {os.cpu_count()} CPUs; load average {os.getloadavg()[0]:.1f}")
    print("'direct' is the upstream's own figure (the same payload straight to the fake, no gateway); "
          "'share' is the gateway's time minus it")
    header = f"{'figure':<44}{'direct':>10}"
    for label in labels:
        header += f"{label:>12}{'share':>10}"
    print(header)
    for title, key, direct_key in ROWS:
        unit = "MB" if key == "peak rss" else "ms"
        line = f"{title:<44}"
        direct = [out[label].get(direct_key) for label in labels] if direct_key else []
        shown = statistics.median(direct) if direct and None not in direct else None
        line += f"{'' if shown is None else f'{shown:.1f}':>10}"
        for number, label in enumerate(labels):
            value = out[label].get(key)
            line += f"{'' if value is None else f'{value:.1f} {unit}':>12}"
            share = value - direct[number] if direct_key and value is not None else None
            line += f"{'' if share is None else f'{share:+.1f}':>10}"
        print(line)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--base", type=Path, help="an earlier checkout to measure beside this tree")
    parser.add_argument("--samples", type=int, default=3, help="new bodies per size (the median is shown)")
    parser.add_argument("--tiny", type=int, default=300, help="tiny requests per gateway")
    parser.add_argument("--gateway-python", default=sys.executable)
    parser.add_argument("--base-env", action="append", default=[], metavar="NAME=VALUE",
                        help="a setting for the --base gateway only (e.g. --base . --base-env CPU_OFFLOAD_BYTES=1e9 "
                             "compares two configurations of this tree)")
    args = parser.parse_args()
    upstream = Upstream()
    gateways: list[Gateway] = []
    try:
        with tempfile.TemporaryDirectory() as home:
            if args.base:
                extra = dict(item.split("=", 1) for item in args.base_env)
                gateways.append(start_gateway("before", args.base.resolve(), upstream, Path(home),
                                              args.gateway_python, extra))
            gateways.append(start_gateway("after" if args.base else "gateway", ROOT, upstream, Path(home),
                                          args.gateway_python, {}))
            out = asyncio.run(measure(gateways, upstream, args))
    finally:
        for gateway in gateways:
            gateway.process.stop()
        upstream.stop()
    report(out)


if __name__ == "__main__":
    main()
