"""Log lines for a person at a terminal (`kiro-gateway serve` on a TTY, or `LOG_FORMAT=text`).

One aligned line per request, in the order a person scans it:
`time  status  method path  model  key  tokens in/out  credits  time to first token  duration`, coloured by
status; other records are `time LEVEL message`; uvicorn's lifecycle chatter becomes one short word each (`ready`,
`shutting down`, `stopped`) since the banner already said where the server listens. Every line goes through the
same secret scrubber as the JSON lines.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable

RESET, DIM, BOLD = "\x1b[0m", "\x1b[2m", "\x1b[1m"
GREEN, YELLOW, RED, CYAN = "\x1b[32m", "\x1b[33m", "\x1b[31m", "\x1b[36m"
LEVEL_COLOURS = {"DEBUG": DIM, "INFO": "", "WARNING": YELLOW, "ERROR": RED, "CRITICAL": RED}
LEVEL_NAMES = {"DEBUG": "debug", "INFO": "info ", "WARNING": "warn ", "ERROR": "error", "CRITICAL": "fatal"}

# uvicorn's messages (record.msg, before formatting) → the short line shown instead; None drops the record
LIFECYCLE: dict[str, str | None] = {
    "Started server process [%d]": None,
    "Waiting for application startup.": None,
    "Application startup complete.": "ready",
    "Uvicorn running on %s://%s:%d (Press CTRL+C to quit)": None,  # the banner says where
    "Shutting down": "shutting down",
    "Waiting for application shutdown.": None,
    "Application shutdown complete.": None,
    "Finished server process [%d]": "stopped",
}


class LifecycleFilter(logging.Filter):
    """Turns uvicorn's start/stop messages into one short word each, dropping the ones the banner repeats."""

    def filter(self, record: logging.LogRecord) -> bool:
        if not record.name.startswith("uvicorn") or not isinstance(record.msg, str) or record.msg not in LIFECYCLE:
            return True
        short = LIFECYCLE[record.msg]
        if short is None:
            return False
        record.msg, record.args = short, ()
        return True


def _count(value: object) -> str:
    """Token counts as a person reads them: 950, 12.4k, 1.2M."""
    if not isinstance(value, int | float):
        return "-"
    if value >= 1_000_000:
        return f"{value / 1_000_000:.1f}M"
    if value >= 10_000:
        return f"{value / 1000:.0f}k"
    if value >= 1000:
        return f"{value / 1000:.1f}k"
    return f"{value:g}"


def _millis(value: object) -> str:
    if not isinstance(value, int | float):
        return "-"
    return f"{value:.0f}ms" if value < 1000 else f"{value / 1000:.1f}s"


class TextFormatter(logging.Formatter):
    """Readable, aligned lines; ANSI colours only when `colour` (a terminal, and NO_COLOR unset)."""

    def __init__(self, scrub: Callable[[str], str], colour: bool = True) -> None:
        super().__init__()
        self.scrub = scrub  # the process's secret scrubber (gateway.logging_setup), passed in: no import back up
        self.colour = colour

    def _paint(self, text: str, colour: str) -> str:
        return f"{colour}{text}{RESET}" if self.colour and colour else text

    def format(self, record: logging.LogRecord) -> str:
        stamp = self._paint(time.strftime("%H:%M:%S", time.localtime(record.created)), DIM)
        fields = record.__dict__
        if record.name == "gateway.request" and "status" in fields:
            line = f"{stamp} {self._request(fields)}"
        else:
            level = self._paint(LEVEL_NAMES.get(record.levelname, record.levelname.lower()),
                                LEVEL_COLOURS.get(record.levelname, ""))
            line = f"{stamp} {level} {record.getMessage()}"
        if record.exc_info:
            line += "\n" + self.formatException(record.exc_info)
        return self.scrub(line)

    def _request(self, fields: dict[str, object]) -> str:
        status = int(fields.get("status") or 0)
        colour = GREEN if status < 400 else YELLOW if status < 500 else RED
        route = f"{fields.get('method', '')} {fields.get('path', '')}"
        model = str(fields.get("model") or "-")
        key = str(fields.get("client_key") or "-")
        tokens = f"{_count(fields.get('input_tokens'))}→{_count(fields.get('output_tokens'))} tok"
        credits = fields.get("credits")
        spent = f"{credits:.3g} cr" if isinstance(credits, int | float) else "- cr"
        parts = [
            self._paint(f"{status:3d}", colour + BOLD), f"{route:<28.40}", self._paint(f"{model:<22.32}", CYAN),
            f"{key:<12.24}", f"{tokens:>15}", f"{spent:>9}", f"ttft {_millis(fields.get('ttft_ms')):>6}",
            f"{_millis(fields.get('duration_ms')):>7}",
        ]
        problem = fields.get("error_kind") or fields.get("refused")
        if problem:
            parts.append(self._paint(str(problem), colour))
        return " ".join(parts)
