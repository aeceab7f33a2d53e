"""Waiting for an effect that happens after a response was delivered (a record written after a hang-up, a slot
released after the last byte): polled, with a limit, never a fixed sleep."""

from __future__ import annotations

import time
from collections.abc import Callable


def eventually(check: Callable[[], bool], limit: float = 15.0) -> bool:
    """Whether `check` turns true within `limit` seconds."""
    deadline = time.monotonic() + limit
    while time.monotonic() < deadline:
        if check():
            return True
        time.sleep(0.1)
    return False
