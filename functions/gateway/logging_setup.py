"""Logging for machines (JSON lines) or for a person (one readable line each), with a last line of defence against
leaking secrets.

JSON is the default, and always on Lambda; a person running `kiro-gateway serve` on a terminal gets
`gateway.text_log.TextFormatter` instead (`LOG_FORMAT=json|text` overrides). Code never logs tokens on purpose;
`SecretScrubber` additionally replaces every registered secret (API key, access and refresh tokens, client
secrets — registered as they become known, rotated ones included) in every record.
"""

from __future__ import annotations

import json
import logging
import os
import re
import sys
import threading
import time
from typing import Any

_BEARER = re.compile(r"(?i)(bearer\s+)[A-Za-z0-9._~+/=-]{8,}")
# `color_message` is uvicorn's ANSI-coloured copy of the message: never in a log line
_STANDARD_ATTRS = set(vars(logging.makeLogRecord({}))) | {"message", "asctime", "color_message"}


class SecretScrubber:
    """Thread-safe set of secret strings to mask wherever they appear."""

    def __init__(self) -> None:
        self._secrets: set[str] = set()
        self._lock = threading.Lock()

    def add(self, *secrets: str | None) -> None:
        with self._lock:
            self._secrets.update(s for s in secrets if s and len(s) >= 6)

    def scrub(self, text: str) -> str:
        with self._lock:
            secrets = sorted(self._secrets, key=len, reverse=True)
        for secret in secrets:
            if secret in text:
                text = text.replace(secret, "[REDACTED]")
        return _BEARER.sub(r"\1[REDACTED]", text)


SCRUBBER = SecretScrubber()


class JsonFormatter(logging.Formatter):
    """One JSON object per line: time, level, logger, message, plus any `extra=` fields."""

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "time": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created)) + f".{int(record.msecs):03d}Z",
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        for key, value in record.__dict__.items():
            if key not in _STANDARD_ATTRS and not key.startswith("_"):
                entry[key] = value
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        return SCRUBBER.scrub(json.dumps(entry, default=str, ensure_ascii=False))


def wants_text(log_format: str = "") -> bool:
    """LOG_FORMAT if set; else readable text when stderr is a terminal and this is not Lambda."""
    if log_format:
        return log_format == "text"
    on_lambda = bool(os.environ.get("AWS_LAMBDA_FUNCTION_NAME"))
    return not on_lambda and sys.stderr.isatty()


def configure_logging(level: str = "INFO", log_format: str = "") -> None:
    """Route every logger (uvicorn's included) through one formatter on stderr: JSON, or text for a person."""
    handler = logging.StreamHandler(sys.stderr)
    if wants_text(log_format):
        from gateway.text_log import LifecycleFilter, TextFormatter  # lazy: only a terminal needs it

        colour = sys.stderr.isatty() and not os.environ.get("NO_COLOR")
        handler.setFormatter(TextFormatter(SCRUBBER.scrub, colour=colour))
        handler.addFilter(LifecycleFilter())
    else:
        handler.setFormatter(JsonFormatter())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper() if level.upper() in logging.getLevelNamesMapping() else "INFO")
    for name in ("uvicorn", "uvicorn.error", "uvicorn.access"):
        logger = logging.getLogger(name)
        logger.handlers[:] = []
        logger.propagate = True
    logging.getLogger("uvicorn.access").disabled = True  # the gateway writes its own request line
    for noisy in ("httpx", "httpcore", "botocore", "urllib3"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
