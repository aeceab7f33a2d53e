"""Capabilities read from raw ListAvailableModels entries (docs/protocol.md §Models): never raise, never guess."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from kiro_core.model_capabilities import (
    ModelCapabilities,
    capabilities_of,
    effort_enum,
    lowest_effort,
    schema_enum,
)

CLAUDE_SCHEMA = {
    "properties": {
        "output_config": {"properties": {"effort": {"enum": ["max", "low", "high"]}}},
        "thinking": {"properties": {"type": {"enum": ["adaptive", "disabled"]}, "display": {"enum": ["summarized"]}}},
    }
}


def test_effort_enum_of_both_branches() -> None:
    assert effort_enum(CLAUDE_SCHEMA) == ("output_config", ("max", "low", "high"))
    gpt = {"properties": {"reasoning": {"properties": {"effort": {"enum": ["none", "low"]}}}}}
    assert effort_enum(gpt) == ("reasoning", ("none", "low"))
    assert effort_enum(None) == (None, None)
    assert effort_enum({"properties": {"output_config": {"type": "object"}}}) == (None, None)


def test_schema_enum_walks_properties() -> None:
    assert schema_enum(CLAUDE_SCHEMA, "thinking", "type") == ("adaptive", "disabled")
    assert schema_enum(CLAUDE_SCHEMA, "thinking", "nope") == ()
    assert schema_enum("junk", "thinking") == ()


@pytest.mark.parametrize(
    ("efforts", "allow_none", "expected"),
    [
        (("max", "low", "high"), False, "low"),
        (("none", "low", "medium"), False, "low"),
        (("none", "low"), True, "none"),
        (("none",), False, None),
        (("turbo", "high"), False, "high"),
        ((), False, None),
    ],
)
def test_lowest_effort(efforts: tuple[str, ...], allow_none: bool, expected: str | None) -> None:
    assert lowest_effort(efforts, allow_none=allow_none) == expected


def test_capabilities_of_a_full_entry() -> None:
    raw: dict[str, Any] = {
        "modelId": "claude-opus-5.5",
        "supportedInputTypes": ["TEXT", "IMAGE"],
        "rateMultiplier": 2,
        "rateUnit": "Credit",
        "promptCaching": {"supportsPromptCaching": True},
        "additionalModelRequestFieldsSchema": CLAUDE_SCHEMA,
    }
    caps = capabilities_of(raw)
    assert caps == ModelCapabilities(True, ("max", "low", "high"), "output_config", 2.0, "Credit", ("TEXT", "IMAGE"))
    assert caps.as_row()["rate_multiplier"] == 2.0


def test_capabilities_of_a_bare_entry_are_unknown() -> None:
    assert capabilities_of({"modelId": "x"}) == ModelCapabilities()
    assert capabilities_of({"modelId": "x"}).as_row() == {}
    bad = {"rateMultiplier": True, "promptCaching": "yes", "supportedInputTypes": "TEXT", "rateUnit": 3}
    assert capabilities_of(bad) == ModelCapabilities()


@given(st.recursive(st.none() | st.booleans() | st.integers() | st.text(max_size=5),
                    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=12), inner,
                                                                               max_size=4), max_leaves=20))
def test_never_raises(junk: Any) -> None:
    raw = {"additionalModelRequestFieldsSchema": junk, "promptCaching": junk, "rateMultiplier": junk,
           "supportedInputTypes": junk}
    capabilities_of(raw).as_row()
    effort_enum(junk)
