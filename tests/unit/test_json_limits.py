"""The strict, bounded JSON reader every route uses (gateway.edge.json_limits)."""

from __future__ import annotations

import json
import math
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from gateway.edge.json_limits import JsonLimits, JsonRejected, loads_strict

LIMITS = JsonLimits(max_depth=8, max_array_items=5, max_object_keys=3, max_string_chars=10)


def rejected(body: bytes, limits: JsonLimits = LIMITS) -> JsonRejected:
    with pytest.raises(JsonRejected) as caught:
        loads_strict(body, limits)
    return caught.value


def test_ordinary_json_passes_unchanged() -> None:
    body = b'{"a": [1, 2.5, true, null, "\\ud83d\\ude00"], "b": {"c": "x"}}'
    assert loads_strict(body, LIMITS) == {"a": [1, 2.5, True, None, "\U0001f600"], "b": {"c": "x"}}


@pytest.mark.parametrize(("body", "path"), [
    (b'{"a": NaN}', "a"), (b'{"a": [1, Infinity]}', "a.1"), (b'{"a": {"b": -Infinity}}', "a.b"),
    (b'{"a": 1e400}', "a"), (b'[-1e999]', "0"),
])
def test_non_finite_numbers_are_named(body: bytes, path: str) -> None:
    error = rejected(body)
    assert error.path == path and "finite" in error.message and not error.too_large


@pytest.mark.parametrize(("body", "path"), [
    (b'{"a": "x\\ud800"}', "a"), (b'{"a": ["ok", "\\udc00"]}', "a.1"), (b'{"\\ud800": 1}', '"\\ud800"'),
    (b'{"a": "\\ude00\\ud83d"}', "a"),  # a pair in the wrong order is two lone surrogates
])
def test_lone_surrogates_are_refused(body: bytes, path: str) -> None:
    assert rejected(body).path == path


def test_depth_is_bounded_and_named() -> None:
    assert loads_strict(b"[" * 8 + b"]" * 8, LIMITS) == [[[[[[[[]]]]]]]]
    error = rejected(b'{"a": ' + b"[" * 8 + b"]" * 8 + b"}")
    assert error.path == "a.0.0.0.0.0.0.0" and "deeper than 8" in error.message


def test_recursion_deep_enough_to_break_the_decoder_is_refused() -> None:
    error = rejected(b"[" * 100_000 + b"]" * 100_000, JsonLimits())
    assert "deeper than 128" in error.message


@pytest.mark.parametrize(("body", "path"), [
    (b'{"a": [1, 2, 3, 4, 5, 6]}', "a"), (b'{"a": {"k1": 1, "k2": 2, "k3": 3, "k4": 4}}', "a"),
    (b'{"a": "01234567890"}', "a"),
])
def test_sizes_are_bounded_as_too_large(body: bytes, path: str) -> None:
    error = rejected(body)
    assert error.path == path and error.too_large


@pytest.mark.parametrize("body", [b"{", b"", b'{"a": 1,}', b"\xff", b'"\xed\xa0\x80"', b"1" * 5000])
def test_malformed_bodies(body: bytes) -> None:
    assert not rejected(body, JsonLimits()).too_large


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=True, allow_infinity=True) | st.text(),
    lambda children: st.lists(children, max_size=4) | st.dictionaries(
        st.text(max_size=5) | st.text(st.characters(categories=["Cs", "Cc"]), max_size=3), children, max_size=4),
    max_leaves=20,
)


def _has_non_finite(value: Any) -> bool:
    if isinstance(value, float):
        return not math.isfinite(value)
    if isinstance(value, list):
        return any(_has_non_finite(item) for item in value)
    if isinstance(value, dict):
        return any(_has_non_finite(item) for item in value.values())
    return False


def _has_surrogate(value: Any) -> bool:
    if isinstance(value, str):
        value = json.loads(json.dumps(value))  # as the decoder sees it: a high and a low surrogate side by side pair up
        return any("\ud800" <= char <= "\udfff" for char in value)
    if isinstance(value, list):
        return any(_has_surrogate(item) for item in value)
    if isinstance(value, dict):
        return any(_has_surrogate(key) or _has_surrogate(item) for key, item in value.items())
    return False


@settings(max_examples=300, derandomize=True)
@given(json_values)
def test_accepts_exactly_the_finite_valid_unicode_values(value: Any) -> None:
    body = json.dumps(value).encode()  # ASCII escapes, so surrogates travel as \\udxxx
    if _has_non_finite(value) or _has_surrogate(value):
        with pytest.raises(JsonRejected) as caught:
            loads_strict(body, JsonLimits())
        caught.value.message.encode("utf-8")  # the 400 that names the field must itself be encodable
        (caught.value.path or "").encode("utf-8")
    else:
        assert loads_strict(body, JsonLimits()) == json.loads(body)
