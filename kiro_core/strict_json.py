"""Strict JSON in: no `NaN`, `Infinity` or numbers that overflow to infinity.

Python's `json` accepts all three, and a non-finite number that gets in comes out again as a literal no JSON parser
reads (or breaks integer maths on usage figures). Upstream payloads and tool arguments are decoded with this.
"""

from __future__ import annotations

import json
import math


def _reject_constant(literal: str) -> float:
    raise ValueError(f"non-finite number {literal!r} in JSON")


def _finite_float(literal: str) -> float:
    value = float(literal)
    if not math.isfinite(value):
        raise ValueError(f"number {literal!r} overflows")
    return value


# One decoder for every call (json.loads with keyword arguments would build a decoder per call).
STRICT_DECODER = json.JSONDecoder(parse_constant=_reject_constant, parse_float=_finite_float)
loads = STRICT_DECODER.decode
