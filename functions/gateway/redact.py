"""Keep tokens and client secrets out of logs, error messages and banners.

Refresh tokens are long-lived credentials to a paid subscription; anything that may be printed (exception text, an
upstream error body, a debug dump) goes through `redact_text` with the secrets at hand, and anything that must name a
token for diagnosis uses `mask`, which shows just enough to tell two tokens apart.
"""

from __future__ import annotations

from collections.abc import Iterable

# Shorter strings are too likely to occur by chance in ordinary text to be worth replacing.
_MIN_SECRET_LENGTH = 6


def mask(secret: str | None) -> str:
    """`abcd…(812 chars)`: the first 4 characters and the length, never more (`<empty>` for nothing)."""
    if not secret:
        return "<empty>"
    if len(secret) <= 8:
        return f"…({len(secret)} chars)"
    return f"{secret[:4]}…({len(secret)} chars)"


def redact_text(text: str, secrets: Iterable[str | None]) -> str:
    """`text` with every occurrence of each secret replaced by its mask (longest first, so overlaps stay hidden)."""
    unique = {s for s in secrets if s and len(s) >= _MIN_SECRET_LENGTH}
    for secret in sorted(unique, key=len, reverse=True):
        if secret in text:
            text = text.replace(secret, f"[redacted {mask(secret)}]")
    return text
