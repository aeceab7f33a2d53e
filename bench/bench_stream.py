"""Throughput of the response hot path: Kiro bytes → events → output events → client SSE bytes, on one core.

Builds a recorded-style stream of 10,000 event-stream frames with `tests/support/frames.py` and cuts it into random
1–16 KB network chunks, then times three paths (best of N runs, `time.perf_counter`):

* text     — plain text deltas only, decoded, assembled and formatted for OpenAI (the common case; target ≥25k fr/s)
* openai   — an answer opening with a <thinking> block, text, fragmented tool calls, metering and context usage
* anthropic — the same answer through the Anthropic formatter
* text-1f  — the text stream with every frame in its own network read (worst case: one format() call per frame)
plus `decode` (the decoder alone on the text stream) for reference.

Run: `python bench/bench_stream.py [--runs N] [--profile]`; `--profile` runs cProfile over the text path.
"""

from __future__ import annotations

import argparse
import cProfile
import pstats
import random
import sys
import time
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from kiro_core.events import OutputEvent
from kiro_core.eventstream import KiroEventDecoder
from kiro_core.format.anthropic import AnthropicStreamFormatter
from kiro_core.format.openai import OpenAIStreamFormatter
from kiro_core.stream import ResponseAssembler
from tests.support import frames

FRAMES = 10_000
TARGET_FPS = 25_000
_WORDS = (
    "the", "of", "and", "to", "in", "is", "that", "for", "it", "with", "as", "was", "on", "be", "by", "this",
    "are", "from", "or", "an", "which", "function", "value", "returns", "request", "stream", "token", "parser",
    "gateway", "upstream", "client", "error", "timeout", "retry", "config", "file", "module", "test", "café",
    "naïve", "déjà—vu", "→", "≥", "日本語", "ü",
)


def _deltas(rng: random.Random, count: int) -> list[str]:
    """Text deltas shaped like Kiro's: a few words each, some punctuation and line breaks, some non-ASCII."""
    out = []
    for _ in range(count):
        words = rng.choices(_WORDS, k=rng.randint(1, 5))
        text = " " + " ".join(words)
        roll = rng.random()
        if roll < 0.08:
            text += ".\n\n"
        elif roll < 0.2:
            text += ","
        out.append(text)
    return out


def _tool_frames(rng: random.Random, tool_id: str, name: str, pieces: int) -> list[bytes]:
    args = '{"file_path": "/src/app/module.py", "content": "' + "x = 1\\n" * (pieces * 3) + '"}'
    step = max(1, len(args) // pieces)
    fragments = [args[i:i + step] for i in range(0, len(args), step)]
    return (
        [frames.tool_start(tool_id, name)]
        + [frames.tool_input(tool_id, name, fragment) for fragment in fragments]
        + [frames.tool_stop(tool_id, name)]
    )


def text_stream(rng: random.Random) -> list[bytes]:
    body = [frames.text_utf8(delta) for delta in _deltas(rng, FRAMES - 2)]
    return [*body, frames.metering(0.0169), frames.context_usage(12.5)]


def full_stream(rng: random.Random) -> list[bytes]:
    tools = (
        _tool_frames(rng, "tooluse_a1", "Write", 60)
        + _tool_frames(rng, "tooluse_b2", "Bash", 20)
        + _tool_frames(rng, "tooluse_c3", "Read", 10)
    )
    thinking = 1_500
    answer = FRAMES - thinking - len(tools) - 4
    head = [frames.text("<thinking>"), *map(frames.text_utf8, _deltas(rng, thinking)), frames.text("</thinking>\n\n")]
    body = [frames.text_utf8(delta) for delta in _deltas(rng, answer)]
    stream = head + body[: answer // 2] + tools + body[answer // 2:]
    stream += [frames.metering(0.0169), frames.context_usage(31.2)]
    assert len(stream) == FRAMES, len(stream)
    return stream


def network_chunks(rng: random.Random, data: bytes) -> list[bytes]:
    chunks, at = [], 0
    while at < len(data):
        size = rng.randint(1024, 16 * 1024)
        chunks.append(data[at:at + size])
        at += size
    return chunks


def run_pipeline(chunks: list[bytes], formatter_kind: str) -> int:
    """One whole answer through decode → assemble → format; returns the SSE bytes produced."""
    decoder = KiroEventDecoder()
    assembler = ResponseAssembler(input_tokens=1_000)
    formatter: OpenAIStreamFormatter | AnthropicStreamFormatter
    if formatter_kind == "anthropic":
        formatter = AnthropicStreamFormatter("claude-sonnet-4.5", "msg_bench", 1_000)
    else:
        formatter = OpenAIStreamFormatter("claude-sonnet-4.5", "chatcmpl-bench", 1_700_000_000)
    feed = assembler.feed
    written = len(formatter.start())
    for chunk in chunks:
        batch: list[OutputEvent] = []
        for event in decoder.feed(chunk):
            batch += feed(event)
        if batch:
            written += len(formatter.format(batch))
    tail: list[OutputEvent] = []
    for event in decoder.close():
        tail += feed(event)
    tail += assembler.finish()
    return written + len(formatter.format(tail))


def run_decode(chunks: list[bytes]) -> int:
    decoder = KiroEventDecoder()
    count = 0
    for chunk in chunks:
        count += len(decoder.feed(chunk))
    return count + len(decoder.close())


def best_of(runs: int, work: Callable[[], object]) -> float:
    best = float("inf")
    for _ in range(runs):
        started = time.perf_counter()
        work()
        best = min(best, time.perf_counter() - started)
    return best


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=7, help="runs per path; the best is reported")
    parser.add_argument("--seed", type=int, default=2024)
    parser.add_argument("--profile", action="store_true", help="cProfile the text path instead of timing")
    args = parser.parse_args()

    rng = random.Random(args.seed)
    text_frames = text_stream(rng)
    text_data = b"".join(text_frames)
    full_data = b"".join(full_stream(rng))
    text_chunks = network_chunks(rng, text_data)
    full_chunks = network_chunks(rng, full_data)
    run_pipeline(text_chunks, "openai")  # warm up: loads the tokenizer once, outside every timing

    if args.profile:
        profiler = cProfile.Profile()
        profiler.enable()
        for _ in range(args.runs):
            run_pipeline(text_chunks, "openai")
        profiler.disable()
        pstats.Stats(profiler).sort_stats("tottime").print_stats(20)
        return 0

    paths: list[tuple[str, bytes, Callable[[], object]]] = [
        ("decode", text_data, lambda: run_decode(text_chunks)),
        ("text", text_data, lambda: run_pipeline(text_chunks, "openai")),
        ("openai", full_data, lambda: run_pipeline(full_chunks, "openai")),
        ("anthropic", full_data, lambda: run_pipeline(full_chunks, "anthropic")),
        ("text-1f", text_data, lambda: run_pipeline(text_frames, "openai")),
    ]
    print(f"{FRAMES} frames per stream, network chunks of 1-16 KB, best of {args.runs} runs, Python "
          f"{sys.version.split()[0]}")
    print(f"{'path':<10} {'frames/s':>10} {'MB/s':>7} {'ms/stream':>10} {'stream KB':>10}")
    text_fps = 0.0
    for name, data, work in paths:
        seconds = best_of(args.runs, work)
        fps = FRAMES / seconds
        if name == "text":
            text_fps = fps
        print(f"{name:<10} {fps:>10,.0f} {len(data) / seconds / 1e6:>7.1f} {seconds * 1e3:>10.1f} "
              f"{len(data) / 1024:>10.0f}")
    verdict = "meets" if text_fps >= TARGET_FPS else "MISSES"
    print(f"text path {verdict} the target of {TARGET_FPS:,} frames/s")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
