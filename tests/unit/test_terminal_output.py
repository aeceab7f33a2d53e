"""The pure parts of issue 20: log formats, the rate-limit state and its headers."""

from __future__ import annotations

import asyncio
import io
import json
import logging
from datetime import datetime

import pytest

from gateway.client_keys.limiter import MemoryLimiter, RateLimitState
from gateway.edge.rate_limit_headers import duration, rate_limit_headers
from gateway.logging_setup import SCRUBBER, JsonFormatter, wants_text
from gateway.text_log import LifecycleFilter, TextFormatter


def record(name: str, msg: str, level: int = logging.INFO, **extra: object) -> logging.LogRecord:
    entry = logging.LogRecord(name, level, __file__, 1, msg, (), None)
    entry.__dict__.update(extra)
    return entry


def test_json_lines_never_carry_uvicorns_coloured_copy() -> None:
    line = JsonFormatter().format(record("uvicorn.error", "Started", color_message="Started \x1b[36m1\x1b[0m"))
    assert "\x1b" not in line and "\\u001b" not in line and "color_message" not in json.loads(line)


def test_a_request_is_one_aligned_line_with_the_figures_a_person_scans() -> None:
    line = TextFormatter(SCRUBBER.scrub, colour=False).format(record(
        "gateway.request", "POST /v1/messages 200", method="POST", path="/v1/messages", status=200,
        duration_ms=1834.2, model="claude-sonnet-4.5", client_key="laptop", input_tokens=12_400, output_tokens=340,
        credits=0.25, ttft_ms=412.0))
    assert "\x1b" not in line and "\n" not in line
    words = line.split()
    assert words[1:4] == ["200", "POST", "/v1/messages"]
    for part in ("claude-sonnet-4.5", "laptop", "12k→340", "0.25 cr", "ttft", "412ms"):
        assert part in line
    assert words[-1] == "1.8s"
    failed = TextFormatter(SCRUBBER.scrub, colour=True).format(record(
        "gateway.request", "x", method="POST", path="/v1/messages", status=429, duration_ms=3.0, refused="rpm"))
    assert "\x1b[33m" in failed and failed.removesuffix("\x1b[0m").endswith("rpm")


def test_uvicorns_lifecycle_becomes_short_words_and_the_banner_repeats_are_dropped() -> None:
    keep = LifecycleFilter()
    ready = record("uvicorn.error", "Application startup complete.")
    assert keep.filter(ready) and ready.getMessage() == "ready"
    assert not keep.filter(record("uvicorn.error", "Uvicorn running on %s://%s:%d (Press CTRL+C to quit)"))
    other = record("gateway.cli", "Application startup complete.")
    assert keep.filter(other) and other.getMessage() == "Application startup complete."


def test_log_format_choice(monkeypatch: pytest.MonkeyPatch) -> None:
    terminal = io.StringIO()
    terminal.isatty = lambda: True  # type: ignore[method-assign]
    monkeypatch.setattr("sys.stderr", terminal)
    monkeypatch.delenv("AWS_LAMBDA_FUNCTION_NAME", raising=False)
    assert wants_text("") and not wants_text("json")
    monkeypatch.setenv("AWS_LAMBDA_FUNCTION_NAME", "gateway")
    assert not wants_text("") and wants_text("text")
    monkeypatch.setattr("sys.stderr", io.StringIO())
    monkeypatch.delenv("AWS_LAMBDA_FUNCTION_NAME")
    assert not wants_text("")


def test_the_memory_limiter_reports_the_window_it_counted_in() -> None:
    now = [1000.0]
    limiter = MemoryLimiter(clock=lambda: now[0], wall=lambda: now[0] + 4000.0)
    states = []
    for _ in range(3):
        states.append(asyncio.run(limiter.admit_key("k", 3, None, 60.0)).rate)
        now[0] += 10
    assert [state.remaining for state in states] == [2, 1, 0]
    # fully replenished when the newest admission has left the sliding 60 s
    assert [state.reset_at for state in states] == [5060.0, 5070.0, 5080.0]
    refused = asyncio.run(limiter.admit_key("k", 3, None, 60.0))
    assert refused.refused == "rpm" and refused.retry_after == 30.0  # the oldest admission leaves first
    assert refused.rate == RateLimitState(3, 0, 5080.0)


def test_headers_of_both_conventions() -> None:
    headers = dict(rate_limit_headers(RateLimitState(20, 7, 1_765_159_260.2), now=1_765_159_200.0))
    assert headers[b"x-ratelimit-limit-requests"] == headers[b"anthropic-ratelimit-requests-limit"] == b"20"
    assert headers[b"x-ratelimit-remaining-requests"] == headers[b"anthropic-ratelimit-requests-remaining"] == b"7"
    assert headers[b"x-ratelimit-reset-requests"] == b"1m1s"
    reset = datetime.fromisoformat(headers[b"anthropic-ratelimit-requests-reset"].decode().replace("Z", "+00:00"))
    assert reset.timestamp() == 1_765_159_261
    assert [duration(s) for s in (0.2, 59.0, 60.0, 125.5)] == ["1s", "59s", "1m0s", "2m6s"]
