"""What the gateway adds on top of Kiro: latency to the first content byte, peak memory, CPU per streamed frame.

Runs the fake Kiro upstream and the real gateway process (`kiro-gateway serve`) on 127.0.0.1 and compares the
time to the first content byte through the gateway with the same request made directly to the fake upstream:

    python bench/bench_gateway.py [--requests 200] [--concurrency 20] [--frames 2000]

Targets (issue 3): <= 5 ms added at p50 and <= 15 ms at p99 sequentially, <= 150 MB peak RSS.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
import tempfile
import time
from pathlib import Path

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tests.support import frames
from tests.support.fake_kiro import FakeKiro
from tests.support.gateway_process import GatewayProcess

API_KEY = "bench-key"
CHAT_BODY = {"model": "claude-sonnet-4.5", "messages": [{"role": "user", "content": "bench"}], "stream": True}
KIRO_BODY = {"conversationState": {"chatTriggerType": "MANUAL", "conversationId": "bench", "currentMessage": {
    "userInputMessage": {"content": "bench", "modelId": "claude-sonnet-4.5", "origin": "AI_EDITOR"}}}}


def answer_script(text_frames: int) -> list[bytes]:
    return [frames.text(f"token{i} ") for i in range(text_frames)] + [frames.metering(0.01),
                                                                       frames.context_usage(1.0)]


async def first_content_direct(http: httpx.AsyncClient, url: str, token: str) -> float:
    started = time.perf_counter()
    async with http.stream("POST", f"{url}/generateAssistantResponse", content=json.dumps(KIRO_BODY),
                           headers={"Authorization": f"Bearer {token}", "Content-Type": "application/json"}) as r:
        return await _time_to_marker(r, started, b"assistantResponseEvent")


async def first_content_gateway(http: httpx.AsyncClient, url: str) -> float:
    started = time.perf_counter()
    async with http.stream("POST", f"{url}/v1/chat/completions", json=CHAT_BODY,
                           headers={"Authorization": f"Bearer {API_KEY}"}) as r:
        if r.status_code != 200:
            raise RuntimeError(f"gateway answered {r.status_code}: {await r.aread()!r}")
        return await _time_to_marker(r, started, b'"content":"token')


async def _time_to_marker(response: httpx.Response, started: float, marker: bytes) -> float:
    """Seconds from `started` to the first chunk holding `marker`; the rest of the body is drained."""
    elapsed: float | None = None
    async for chunk in response.aiter_raw():
        if elapsed is None and marker in chunk:
            elapsed = time.perf_counter() - started
    if elapsed is None:
        raise RuntimeError(f"{marker!r} never arrived")
    return elapsed


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


async def measure(fn, count: int, concurrency: int) -> list[float]:
    semaphore = asyncio.Semaphore(concurrency)
    results: list[float] = []

    async def one() -> None:
        async with semaphore:
            results.append(await fn())

    await asyncio.gather(*(one() for _ in range(count)))
    return results


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def peak_rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return float("nan")


async def run(args: argparse.Namespace) -> None:
    with FakeKiro(piece_sizes=(65536, 65536)) as fake, tempfile.TemporaryDirectory() as home:
        env = fake.gateway_env()
        env.update({"PROXY_API_KEY": API_KEY, "HOME": home, "KIRO_STATE_FILE": f"{home}/state.json",
                    "LOG_LEVEL": "WARNING", "FAKE_REASONING": "false"})
        with GatewayProcess(env, Path(home)) as gateway:
            token = fake.issue_access_token(ttl=3600)
            limits = httpx.Limits(max_connections=100, max_keepalive_connections=100)
            async with httpx.AsyncClient(timeout=60, limits=limits) as http:
                short = answer_script(20)
                fake.enqueue_chat(*[short] * 10)
                for _ in range(10):  # warm-up: token refresh, model list, connection pools
                    await first_content_gateway(http, gateway.url)
                print(f"{'mode':<28}{'p50 ms':>10}{'p99 ms':>10}")
                for concurrency in (1, args.concurrency):
                    fake.enqueue_chat(*[short] * (2 * args.requests))
                    direct = await measure(lambda: first_content_direct(http, fake.url, token), args.requests,
                                           concurrency)
                    via = await measure(lambda: first_content_gateway(http, gateway.url), args.requests, concurrency)
                    label = "sequential" if concurrency == 1 else f"{concurrency} concurrent streams"
                    for name, values in (("direct", direct), ("gateway", via)):
                        print(f"{label + ' ' + name:<28}{percentile(values, .5) * 1000:>10.2f}"
                              f"{percentile(values, .99) * 1000:>10.2f}")
                    added50 = (percentile(via, .5) - percentile(direct, .5)) * 1000
                    added99 = (percentile(via, .99) - percentile(direct, .99)) * 1000
                    print(f"{label + ' added':<28}{added50:>10.2f}{added99:>10.2f}")
                long = answer_script(args.frames)
                fake.enqueue_chat(*[long] * 5)
                before = cpu_seconds(gateway.pid)
                for _ in range(5):
                    await first_content_gateway(http, gateway.url)
                used = cpu_seconds(gateway.pid) - before
                print(f"gateway CPU per streamed frame: {used / (5 * (args.frames + 2)) * 1e6:.1f} µs "
                      f"({5 * (args.frames + 2)} frames)")
                print(f"gateway peak RSS: {peak_rss_mb(gateway.pid):.1f} MB")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--requests", type=int, default=200)
    parser.add_argument("--concurrency", type=int, default=20)
    parser.add_argument("--frames", type=int, default=2000)
    asyncio.run(run(parser.parse_args()))


if __name__ == "__main__":
    main()
