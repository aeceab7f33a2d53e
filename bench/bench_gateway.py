"""What the gateway costs on top of Kiro, measured direct (client → fake Kiro) and through the gateway side by side.

Runs the fake Kiro upstream (in this process) and the real gateway process (`python -m gateway.cli serve`) on
127.0.0.1 and reports, in one table:

* time to the first content byte (short answers, sequential and concurrent), p50 / p99;
* a long answer (`--frames` text frames) end to end, sequential and `--concurrency` at once, and the ratio
  direct ÷ gateway (1.0 would be a gateway that costs nothing);
* gateway CPU per streamed frame (/proc/PID/task/*/schedstat): over the long answers above, where frames that reach the
  gateway together may be handled together, and over paced answers (`--pace` ms between frames, as a model
  generates them), where every network read holds exactly one frame; and the gateway's peak RSS (VmHWM);
* start-to-ready: process start → `/health` answers 200, for `python -m uvicorn --factory gateway.app:create_app`
  (what Lambda runs) and for `python -m gateway.cli serve`.

By default the fake upstream writes ONE event-stream frame per network write (TCP_NODELAY), as Kiro does, so the
gateway pays its per-read cost once per frame. `--chunked` restores the old mode (64 KB writes holding many frames).

    python bench/bench_gateway.py [--runs 3] [--requests 200] [--concurrency 20] [--frames 2000]
                                  [--paced-frames 500] [--pace 1.0] [--chunked]

With `--runs N` every figure is the best of N rounds (a fresh gateway process each round); the machine is shared,
so single rounds are noisy. Prints numbers only: no figure here is asserted anywhere.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import http.client
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tests.support import frames
from tests.support.fake_kiro import FakeKiro
from tests.support.gateway_process import GatewayProcess, free_port

ROOT = Path(__file__).resolve().parents[1]
API_KEY = "bench-key"
CHAT_BODY = {"model": "claude-sonnet-4.5", "messages": [{"role": "user", "content": "bench"}], "stream": True}
KIRO_BODY = {"conversationState": {"chatTriggerType": "MANUAL", "conversationId": "bench", "currentMessage": {
    "userInputMessage": {"content": "bench", "modelId": "claude-sonnet-4.5", "origin": "AI_EDITOR"}}}}
DIRECT_MARKER = b"assistantResponseEvent"
GATEWAY_MARKER = b'"content":"token'
LONG_ROUNDS = 5  # sequential long answers per round (the median is kept)
PACED_ROUNDS = 3  # paced answers per round, for the one-frame-per-read CPU figure


def answer_script(text_frames: int) -> list[bytes]:
    return [frames.text(f"token{i} ") for i in range(text_frames)] + [frames.metering(0.01),
                                                                       frames.context_usage(1.0)]


@dataclass
class Target:
    """Where one side of the comparison sends its request."""

    url: str
    headers: dict[str, str]
    body: bytes
    marker: bytes

    async def timed(self, http: httpx.AsyncClient) -> tuple[float, float]:
        """(seconds to the first content chunk, seconds to the end of the body)."""
        started = time.perf_counter()
        first: float | None = None
        async with http.stream("POST", self.url, content=self.body, headers=self.headers) as response:
            if response.status_code != 200:
                raise RuntimeError(f"{self.url} answered {response.status_code}: {await response.aread()!r}")
            async for chunk in response.aiter_raw():
                if first is None and self.marker in chunk:
                    first = time.perf_counter() - started
        if first is None:
            raise RuntimeError(f"{self.marker!r} never arrived from {self.url}")
        return first, time.perf_counter() - started


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


async def measure(fn: Callable[[], Awaitable[tuple[float, float]]], count: int,
                  concurrency: int) -> list[tuple[float, float]]:
    semaphore = asyncio.Semaphore(concurrency)
    results: list[tuple[float, float]] = []

    async def one() -> None:
        async with semaphore:
            results.append(await fn())

    await asyncio.gather(*(one() for _ in range(count)))
    return results


def cpu_seconds(pid: int) -> float:
    """CPU time of every thread of `pid`, user and system, to the nanosecond (schedstat's run time; /proc/PID/stat
    counts in 10 ms ticks, too coarse for a process that wakes for tens of microseconds at a time)."""
    total = 0
    for task in Path(f"/proc/{pid}/task").iterdir():
        with contextlib.suppress(OSError):  # a thread that ended meanwhile
            total += int((task / "schedstat").read_text().split()[0])
    return total / 1e9


def peak_rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def gateway_env(fake: FakeKiro, home: str) -> dict[str, str]:
    env = fake.gateway_env()
    env.update({"PROXY_API_KEY": API_KEY, "HOME": home, "KIRO_STATE_FILE": f"{home}/state.json",
                "LOG_LEVEL": "WARNING", "FAKE_REASONING": "false"})
    return env


async def one_round(args: argparse.Namespace) -> dict[str, float]:
    pieces = (65536, 65536)
    out: dict[str, float] = {}
    with FakeKiro(piece_sizes=pieces, frame_writes=not args.chunked) as fake, \
            tempfile.TemporaryDirectory() as home:
        with GatewayProcess(gateway_env(fake, home), Path(home), python=args.gateway_python) as gateway:
            token = fake.issue_access_token(ttl=3600)
            direct = Target(f"{fake.url}/generateAssistantResponse",
                            {"Authorization": f"Bearer {token}", "Content-Type": "application/json"},
                            json.dumps(KIRO_BODY).encode(), DIRECT_MARKER)
            via = Target(f"{gateway.url}/v1/chat/completions",
                         {"Authorization": f"Bearer {API_KEY}", "Content-Type": "application/json"},
                         json.dumps(CHAT_BODY).encode(), GATEWAY_MARKER)
            limits = httpx.Limits(max_connections=100, max_keepalive_connections=100)
            async with httpx.AsyncClient(timeout=120, limits=limits) as http:
                short = answer_script(20)
                fake.enqueue_chat(*[short] * 10)
                for _ in range(10):  # warm-up: token refresh, model list, connection pools
                    await via.timed(http)
                for concurrency in (1, args.concurrency):
                    label = "seq" if concurrency == 1 else "conc"
                    for side, target in (("direct", direct), ("gateway", via)):
                        fake.enqueue_chat(*[short] * args.requests)
                        firsts = [first for first, _ in await measure(lambda t=target: t.timed(http),
                                                                      args.requests, concurrency)]
                        out[f"ttfb {label} p50 {side}"] = percentile(firsts, .5) * 1000
                        out[f"ttfb {label} p99 {side}"] = percentile(firsts, .99) * 1000
                long = answer_script(args.frames)
                frames_per_answer = args.frames + 2
                for side, target in (("direct", direct), ("gateway", via)):
                    fake.enqueue_chat(*[long] * LONG_ROUNDS)
                    before = cpu_seconds(gateway.pid)
                    totals = [(await target.timed(http))[1] for _ in range(LONG_ROUNDS)]
                    if side == "gateway":
                        used = cpu_seconds(gateway.pid) - before
                        out["cpu us/frame gateway"] = used / (LONG_ROUNDS * frames_per_answer) * 1e6
                    out[f"long seq {side}"] = statistics.median(totals) * 1000
                for side, target in (("direct", direct), ("gateway", via)):
                    fake.enqueue_chat(*[long] * args.concurrency)
                    started = time.perf_counter()
                    await measure(lambda t=target: t.timed(http), args.concurrency, args.concurrency)
                    out[f"long conc {side}"] = (time.perf_counter() - started) * 1000
                # Frames spaced in time, as a model generates them: every read holds one frame, nothing coalesces.
                fake.piece_delay = args.pace / 1000
                paced = answer_script(args.paced_frames)
                fake.enqueue_chat(*[paced] * PACED_ROUNDS)
                before = cpu_seconds(gateway.pid)
                for _ in range(PACED_ROUNDS):
                    await via.timed(http)
                used = cpu_seconds(gateway.pid) - before
                out["cpu paced us/frame gateway"] = used / (PACED_ROUNDS * (args.paced_frames + 2)) * 1e6
                fake.piece_delay = 0.0
            out["peak rss MB gateway"] = peak_rss_mb(gateway.pid)
        env = {**os.environ, **gateway_env(fake, home)}
        out["ready uvicorn gateway"] = start_to_ready(
            [args.gateway_python, "-m", "uvicorn", "--factory", "gateway.app:create_app", "--no-access-log"], env)
        out["ready cli gateway"] = start_to_ready([args.gateway_python, "-m", "gateway.cli", "serve"], env)
    return out


def start_to_ready(command: list[str], env: dict[str, str]) -> float:
    """Milliseconds from spawning `command` (on a free port) to `/health` answering 200."""
    port = free_port()
    started = time.perf_counter()
    process = subprocess.Popen([*command, "--host", "127.0.0.1", "--port", str(port)], env=env, cwd=ROOT,
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        while time.perf_counter() - started < 30:
            if process.poll() is not None:
                raise RuntimeError(f"{command} exited with {process.returncode}")
            connection = http.client.HTTPConnection("127.0.0.1", port, timeout=1)
            try:
                connection.request("GET", "/health")
                if connection.getresponse().status == 200:
                    return (time.perf_counter() - started) * 1000
            except OSError:
                time.sleep(0.002)
            finally:
                connection.close()
        raise RuntimeError(f"{command} never became ready")
    finally:
        process.terminate()
        process.wait()


ROWS = [  # (label, key prefix, unit); lower is better for every figure
    ("time to first content, sequential p50", "ttfb seq p50", "ms"),
    ("time to first content, sequential p99", "ttfb seq p99", "ms"),
    ("time to first content, concurrent p50", "ttfb conc p50", "ms"),
    ("time to first content, concurrent p99", "ttfb conc p99", "ms"),
    ("long answer, sequential (median)", "long seq", "ms"),
    ("long answers, concurrent (wall)", "long conc", "ms"),
    ("CPU per frame, long answers above", "cpu us/frame", "µs"),
    ("CPU per frame, paced (1 frame per read)", "cpu paced us/frame", "µs"),
    ("peak RSS", "peak rss MB", "MB"),
    ("start → /health 200, uvicorn --factory", "ready uvicorn", "ms"),
    ("start → /health 200, kiro-gateway serve", "ready cli", "ms"),
]


def best(rounds: list[dict[str, float]], key: str) -> float:
    values = [r[key] for r in rounds if key in r]
    if not values:
        return float("nan")
    return min(values)


def report(rounds: list[dict[str, float]], args: argparse.Namespace) -> None:
    mode = "one 64 KB write per many frames" if args.chunked else "one frame per network write"
    print(f"upstream: {mode}; long answer = {args.frames} frames; concurrency {args.concurrency}; "
          f"{args.requests} short requests per row; best of {len(rounds)} round(s); {os.cpu_count()} CPUs")
    print(f"{'figure':<42}{'direct':>12}{'gateway':>12}{'added / ratio':>16}")
    for label, key, unit in ROWS:
        direct, via = best(rounds, f"{key} direct"), best(rounds, f"{key} gateway")
        extra = ""
        if key.startswith("ttfb"):
            extra = f"{via - direct:+.2f} {unit}"
        elif key.startswith("long"):
            extra = f"÷ {direct / via:.2f}"  # the best direct time over the best gateway time
        shown_direct = "" if direct != direct else f"{direct:.2f} {unit}"
        print(f"{label:<42}{shown_direct:>12}{f'{via:.2f} {unit}':>12}{extra:>16}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=1, help="rounds; each figure is the best of them")
    parser.add_argument("--requests", type=int, default=200, help="short answers per time-to-first-byte row")
    parser.add_argument("--concurrency", type=int, default=20)
    parser.add_argument("--frames", type=int, default=2000, help="text frames in the long answer")
    parser.add_argument("--paced-frames", type=int, default=500, help="frames in each paced answer")
    parser.add_argument("--pace", type=float, default=1.0, help="milliseconds between paced frames")
    parser.add_argument("--chunked", action="store_true", help="old upstream mode: 64 KB writes, many frames each")
    parser.add_argument("--gateway-python", default=sys.executable,
                        help="interpreter that runs the gateway, e.g. a venv with only its runtime dependencies "
                             "(`pip install .`): development tools installed next to it (trio, rich) are imported "
                             "by httpx/httpcore on their own and add memory and start-up time the Lambda layer "
                             "does not have")
    args = parser.parse_args()
    rounds = []
    for number in range(args.runs):
        rounds.append(asyncio.run(one_round(args)))
        print(f"round {number + 1}/{args.runs} done", file=sys.stderr)
    report(rounds, args)


if __name__ == "__main__":
    main()
