"""Strict, bounded JSON for request bodies: what a public URL must refuse before any model parsing or upstream call.

Python's `json` accepts `NaN`/`Infinity`, turns `1e400` into `inf`, keeps lone surrogates from `\\ud800` escapes and
recurses once per nesting level. Each of those used to surface later as a 500 (a RecursionError, or an answer that
could not be encoded after the upstream was already paid for). Here they are refused at the edge with a 4xx naming
the field, so everything downstream, and everything echoed back to the client, is finite and valid Unicode.

Pure: bytes in, a value or a `JsonRejected` out. The caller maps the rejection to its own error shape.
"""

from __future__ import annotations

import json
import math
import re
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from gateway.settings import Settings

import orjson

from kiro_core.error_text import field_path

# Escapes that can decode to a surrogate code point; valid pairs are joined by the decoder, lone ones survive.
_SURROGATE_ESCAPE = re.compile(rb"\\u[dD][89a-fA-F]")
_LONE_SURROGATE = re.compile("[\ud800-\udfff]")
_HUGE = float(2**63)  # orjson may read an integer literal this large as a float: such bodies are read by `json`


@dataclass(frozen=True, slots=True)
class JsonLimits:
    """Structural bounds of a request body. Real requests sit far below each (docs/errors.md, "Request limits")."""

    max_depth: int = 128  # nesting of objects and arrays; deep JSON Schemas in tools stay well under 40
    max_array_items: int = 100_000  # a year of Claude Code turns is fewer messages than this
    max_object_keys: int = 10_000
    max_string_chars: int = 10_000_000  # about 7 MB of base64 image data; Kiro rejects far smaller fields

    @classmethod
    def of(cls, settings: Settings) -> JsonLimits:
        """The limits MAX_JSON_DEPTH, MAX_JSON_ARRAY_ITEMS, MAX_JSON_OBJECT_KEYS and MAX_JSON_STRING_CHARS set."""
        server = settings.server
        return cls(max_depth=server.max_json_depth, max_array_items=server.max_json_array_items,
                   max_object_keys=server.max_json_object_keys, max_string_chars=server.max_json_string_chars)


class JsonRejected(ValueError):
    """The body is not acceptable JSON; `path` names the field (dotted, list indexes as numbers), `too_large`
    marks size limits (413) as opposed to malformed content (400)."""

    def __init__(self, message: str, path: str | None = None, *, too_large: bool = False):
        super().__init__(message)
        self.message = message
        self.path = path
        self.too_large = too_large


class _NonFinite:
    """Stands in for a NaN/Infinity literal or an overflowing number until the walk can name its field."""

    __slots__ = ("literal",)

    def __init__(self, literal: str):
        self.literal = literal


def _parse_constant(literal: str) -> _NonFinite:
    return _NonFinite(literal)


def _parse_float(literal: str) -> float | _NonFinite:
    value = float(literal)
    return value if math.isfinite(value) else _NonFinite(literal)


def loads_strict(body: bytes, limits: JsonLimits) -> Any:
    """Decode `body` as strict JSON within `limits`; raises JsonRejected with the offending field's path.

    orjson reads the bytes first (a 1 MB conversation in ~2 ms, against ~8 ms for decoding then `json.loads`): it
    refuses NaN/Infinity, overflowing numbers, lone surrogate escapes and invalid UTF-8 by itself. Whatever it
    refuses goes through `json` below, which names the offending field exactly as before; so does a body holding a
    number of 2**63 or more, which orjson may have read from an integer literal as a float (`json` keeps it exact).
    """
    try:
        value = orjson.loads(body)
    except orjson.JSONDecodeError:
        pass
    else:
        if not _has_huge_float(value):
            # orjson refuses lone surrogates; checked anyway (versions differ) where an escape could make one.
            check_surrogates = _has_surrogate_escape(body)
            if not _within(value, limits, check_surrogates=check_surrogates):
                _explain(value, limits, check_surrogates=check_surrogates)
            return value
    return _loads_stdlib(body, limits)


def _has_surrogate_escape(body: bytes) -> bool:
    """Whether `body` holds a surrogate escape: a match of `_SURROGATE_ESCAPE` after an even number of backslashes
    (`\\\\ud83d`, source text quoting an escape, is a backslash then text)."""
    for match in _SURROGATE_ESCAPE.finditer(body):
        start = before = match.start()
        while before > 0 and body[before - 1] == 0x5C:  # backslash
            before -= 1
        if (start - before) % 2 == 0:
            return True
    return False


def _has_huge_float(root: Any) -> bool:
    stack = [root]
    while stack:
        value = stack.pop()
        kind = type(value)
        if kind is dict:
            stack.extend(value.values())
        elif kind is list:
            stack.extend(value)
        elif kind is float and not -_HUGE < value < _HUGE:
            return True
    return False


def _loads_stdlib(body: bytes, limits: JsonLimits) -> Any:
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError as error:
        raise JsonRejected(f"The request body is not valid UTF-8 (byte {error.start}).") from None
    try:
        value = json.loads(text, parse_constant=_parse_constant, parse_float=_parse_float)
    except RecursionError:
        raise JsonRejected(f"The request body nests deeper than {limits.max_depth} levels.") from None
    except ValueError as error:  # JSONDecodeError, and int() of a number with too many digits
        raise JsonRejected(f"The request body is not valid JSON: {error}") from None
    check_surrogates = _SURROGATE_ESCAPE.search(body) is not None
    if not _within(value, limits, check_surrogates=check_surrogates):
        _explain(value, limits, check_surrogates=check_surrogates)
    return value


def _within(root: Any, limits: JsonLimits, *, check_surrogates: bool) -> bool:
    """The fast pass every request pays for (a few ms for a 1 MB conversation): no paths, just a verdict."""
    max_depth, max_items, max_keys, max_chars = (limits.max_depth, limits.max_array_items, limits.max_object_keys,
                                                 limits.max_string_chars)
    stack: list[tuple[Any, int]] = [(root, 0)]
    while stack:
        value, depth = stack.pop()
        kind = type(value)
        if kind is dict:
            if depth >= max_depth or len(value) > max_keys:
                return False
            if check_surrogates and any(_LONE_SURROGATE.search(key) for key in value):
                return False
            children = value.values()
        elif kind is list:
            if depth >= max_depth or len(value) > max_items:
                return False
            children = value
        elif kind is str:
            if len(value) > max_chars or (check_surrogates and _LONE_SURROGATE.search(value)):
                return False
            continue
        elif kind is _NonFinite:
            return False
        else:
            continue
        depth += 1
        for item in children:
            child = type(item)
            if child is dict or child is list or child is _NonFinite:
                stack.append((item, depth))
            elif child is str and (len(item) > max_chars or (check_surrogates and _LONE_SURROGATE.search(item))):
                return False
    return True


def _explain(root: Any, limits: JsonLimits, *, check_surrogates: bool) -> None:
    """The slow pass, run only for a body the fast pass refused: finds the failing node and raises with its path."""
    # Each entry: (value, depth, parent entry index, key in parent).
    entries: list[tuple[Any, int, int, Any]] = [(root, 0, -1, None)]
    stack = [0]
    while stack:
        index = stack.pop()
        value, depth, _parent, _key = entries[index]
        if isinstance(value, dict):
            if depth >= limits.max_depth:
                _fail(entries, index, f"nests deeper than {limits.max_depth} levels")
            if len(value) > limits.max_object_keys:
                _fail(entries, index, f"has {len(value)} keys; at most {limits.max_object_keys} are accepted",
                      too_large=True)
            for key, item in value.items():
                if check_surrogates and _LONE_SURROGATE.search(key):
                    entries.append((item, depth + 1, index, key))
                    _fail(entries, len(entries) - 1, "has a key with invalid Unicode (a lone surrogate escape)")
                if isinstance(item, dict | list | str | _NonFinite):
                    entries.append((item, depth + 1, index, key))
                    stack.append(len(entries) - 1)
        elif isinstance(value, list):
            if depth >= limits.max_depth:
                _fail(entries, index, f"nests deeper than {limits.max_depth} levels")
            if len(value) > limits.max_array_items:
                _fail(entries, index, f"has {len(value)} items; at most {limits.max_array_items} are accepted",
                      too_large=True)
            for position, item in enumerate(value):
                if isinstance(item, dict | list | str | _NonFinite):
                    entries.append((item, depth + 1, index, position))
                    stack.append(len(entries) - 1)
        elif isinstance(value, str):
            if len(value) > limits.max_string_chars:
                _fail(entries, index, f"is a string of {len(value)} characters; at most {limits.max_string_chars} "
                      "are accepted", too_large=True)
            if check_surrogates and _LONE_SURROGATE.search(value):
                _fail(entries, index, "is not valid Unicode (a lone surrogate escape such as \\ud800)")
        elif isinstance(value, _NonFinite):
            _fail(entries, index, f"is {value.literal!r}; JSON numbers must be finite")
    raise AssertionError("the fast pass refused a body the slow pass accepts")  # the two passes must agree


def _fail(entries: list[tuple[Any, int, int, Any]], index: int, problem: str, *, too_large: bool = False) -> None:
    parts: list[Any] = []
    while index > 0:
        _value, _depth, parent, key = entries[index]
        parts.append(key)
        index = parent
    path = field_path(reversed(parts)) or None  # a key may hold what the 400 could not otherwise encode
    raise JsonRejected(f"{path or 'The request body'} {problem}.", path, too_large=too_large)
