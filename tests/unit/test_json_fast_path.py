"""The orjson first pass of `loads_strict` (issue 16) reads what `json` reads, value for value and type for type."""

from __future__ import annotations

import json
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from gateway.edge.json_limits import JsonLimits, JsonRejected, loads_strict

finite_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(st.characters(exclude_categories=("Cs",))),
    lambda children: st.lists(children, max_size=4)
    | st.dictionaries(st.text(st.characters(exclude_categories=("Cs",)), max_size=5), children, max_size=4),
    max_leaves=20,
)


def typed(value: Any) -> Any:
    """The value with every scalar's type beside it (1 and 1.0 and True compare equal in Python)."""
    if isinstance(value, list):
        return [typed(item) for item in value]
    if isinstance(value, dict):
        return {key: typed(item) for key, item in value.items()}
    return (type(value).__name__, value)


@settings(max_examples=300, derandomize=True)
@given(finite_values)
def test_raw_utf8_bodies_read_as_json_reads_them(value: Any) -> None:
    body = json.dumps(value, ensure_ascii=False).encode()
    assert typed(loads_strict(body, JsonLimits())) == typed(json.loads(body))


def test_integers_beyond_64_bits_stay_integers() -> None:
    body = b'{"input": {"id": 123456789012345678901234567890, "n": -18446744073709551616}}'
    assert loads_strict(body, JsonLimits()) == {"input": {"id": 123456789012345678901234567890,
                                                          "n": -18446744073709551616}}


def test_quoted_escapes_in_source_text_are_text_and_real_lone_surrogates_are_refused() -> None:
    quoted = rb'{"content": "emoji = \"\\ud83d\\ude00\"  # \\\\ud800 in a comment"}'
    assert loads_strict(quoted, JsonLimits()) == json.loads(quoted)
    with pytest.raises(JsonRejected) as caught:
        loads_strict(rb'{"content": ["ok", "a backslash then a lone surrogate: \\\ud800"]}', JsonLimits())
    assert caught.value.path == "content.1"
