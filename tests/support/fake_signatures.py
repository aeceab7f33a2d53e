"""The fake upstream's reasoning signatures: what its streams send and the only ones its checks accept back."""

from __future__ import annotations

import hashlib

_SECRET = b"fake-kiro-signing-key"


def fake_signature(text: str) -> str:
    """The signature the fake attaches to reasoning `text` (and accepts back only with the same text)."""
    return "EqQB" + hashlib.sha256(_SECRET + text.encode()).hexdigest()
