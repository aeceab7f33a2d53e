"""Client text inside error messages: always encodable, always short enough to read.

An error names the field it is about and sometimes echoes what the client sent. Both come from the client, so they
may hold what UTF-8 cannot encode (a lone surrogate from a `\\udb3d` escape, in a key as easily as in a value),
control characters that garble a terminal or a log, or a key of a megabyte. Rendering such an error used to fail
while the 400 was being written, which turned a clean refusal into a 500. Everything client-made that goes into an
error passes through `printable` (text) or `field_path` (a field's location) first.

Pure: no I/O, no framework.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

MAX_KEY_CHARS = 64  # one key of a field path; the rest is summarised by its length
MAX_TEXT_CHARS = 2_000  # a whole message or param: enough for eight field problems, never a copy of the body

# Lone surrogates (not encodable), C0/C1 controls and DEL (unreadable), the two JSON-breaking line separators.
# Newline and tab stay: messages use them and every encoder copes.
_UNPRINTABLE = re.compile("[\ud800-\udfff\x00-\x08\x0b-\x1f\x7f-\x9f\u2028\u2029]")
_KEY_UNPRINTABLE = re.compile("[\ud800-\udfff\x00-\x1f\x7f-\x9f\u2028\u2029]")  # in a key, newline and tab too
_NEEDS_QUOTES = re.compile('[.\\\\"\ud800-\udfff\x00-\x1f\x7f-\x9f\u2028\u2029]')


def _escape(match: re.Match[str]) -> str:
    return f"\\u{ord(match.group()):04x}"


def printable(text: str, limit: int = MAX_TEXT_CHARS) -> str:
    """`text` with each unprintable character written as its `\\uXXXX` escape text, cut to about `limit` chars."""
    if not isinstance(text, str):
        text = str(text)
    if len(text) > limit:
        text = f"{text[:limit]}… ({len(text)} characters)"
    return _UNPRINTABLE.sub(_escape, text)


def field_key(key: object) -> str:
    """One step of a field path: list indexes and ordinary names as they are; a key that is empty, long, or holds a
    dot, a quote or an unprintable character JSON-quoted, escaped and shortened (`{"\\udb3d": 1}` reads
    `"\\udb3d"`, an empty key `""`), so the path stays readable and unambiguous."""
    text = str(key)
    if isinstance(key, int) or (text and len(text) <= MAX_KEY_CHARS and not _NEEDS_QUOTES.search(text)):
        return text
    if len(text) > MAX_KEY_CHARS:
        text = f"{text[:MAX_KEY_CHARS]}…({len(text)} chars)"
    text = text.replace("\\", "\\\\").replace('"', '\\"')
    return f'"{_KEY_UNPRINTABLE.sub(_escape, text)}"'


def field_path(parts: Iterable[object]) -> str:
    """A field's location, dotted (`messages.0.content`), each key made printable by `field_key`."""
    return printable(".".join(field_key(part) for part in parts))
