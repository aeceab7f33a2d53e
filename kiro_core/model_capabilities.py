"""What a ListAvailableModels entry says a model can do, in the terms `/v1/models` and the doctor use.

The catalogue is the only trustworthy source for effort levels, limits and prices: they differ per model and per
account and keep changing (docs/protocol.md §Models). Everything here reads a raw entry and never raises; a missing or
malformed field means "not advertised", not an error.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

# Effort order everywhere (docs/protocol.md §Native reasoning); `none` exists only on GPT.
EFFORT_ORDER: tuple[str, ...] = ("none", "low", "medium", "high", "xhigh", "max")
# The schema members whose `effort` enum is the model's effort scale: Claude's and GPT-5.6's branches.
EFFORT_MEMBERS: tuple[str, ...] = ("output_config", "reasoning")


@dataclass(frozen=True)
class ModelCapabilities:
    """Capabilities advertised by one catalogue entry (None: the entry does not say)."""

    supports_prompt_caching: bool | None = None
    reasoning_efforts: tuple[str, ...] | None = None
    effort_member: str | None = None  # "output_config" or "reasoning": where the effort goes in the request fields
    rate_multiplier: float | None = None
    rate_unit: str | None = None
    input_types: tuple[str, ...] | None = None

    def as_row(self) -> dict[str, Any]:
        """The additive `/v1/models` fields; unknown capabilities are left out rather than guessed."""
        row: dict[str, Any] = {}
        if self.supports_prompt_caching is not None:
            row["supports_prompt_caching"] = self.supports_prompt_caching
        if self.reasoning_efforts is not None:
            row["reasoning_efforts"] = list(self.reasoning_efforts)
        if self.rate_multiplier is not None:
            row["rate_multiplier"] = self.rate_multiplier
        if self.input_types is not None:
            row["input_types"] = list(self.input_types)
        return row


def capabilities_of(raw: dict[str, Any]) -> ModelCapabilities:
    """Read the capability fields of one raw ListAvailableModels item."""
    caching = raw.get("promptCaching")
    supports = caching.get("supportsPromptCaching") if isinstance(caching, dict) else None
    member, efforts = effort_enum(raw.get("additionalModelRequestFieldsSchema"))
    rate = raw.get("rateMultiplier")
    unit = raw.get("rateUnit")
    inputs = raw.get("supportedInputTypes")
    return ModelCapabilities(
        supports_prompt_caching=supports if isinstance(supports, bool) else None,
        reasoning_efforts=efforts,
        effort_member=member,
        rate_multiplier=float(rate) if _is_number(rate) else None,
        rate_unit=unit if isinstance(unit, str) and unit else None,
        input_types=tuple(i for i in inputs if isinstance(i, str)) if isinstance(inputs, list) else None,
    )


def effort_enum(schema: Any) -> tuple[str | None, tuple[str, ...] | None]:
    """(member, effort values) from an `additionalModelRequestFieldsSchema`: the enum at
    `properties.<output_config|reasoning>.properties.effort.enum`, or (None, None) when there is none."""
    for member in EFFORT_MEMBERS:
        effort = _at(schema, "properties", member, "properties", "effort")
        values = effort.get("enum") if isinstance(effort, dict) else None
        if isinstance(values, list):
            strings = tuple(v for v in values if isinstance(v, str) and v)
            if strings:
                return member, strings
    return None, None


def schema_enum(schema: Any, *path: str) -> tuple[str, ...]:
    """The string enum of `properties.<path[0]>.properties.<path[1]>…` in a request-field schema (empty if none)."""
    keys: list[str] = []
    for name in path:
        keys += ["properties", name]
    node = _at(schema, *keys)
    values = node.get("enum") if isinstance(node, dict) else None
    return tuple(v for v in values if isinstance(v, str)) if isinstance(values, list) else ()


def lowest_effort(efforts: tuple[str, ...], *, allow_none: bool = False) -> str | None:
    """The cheapest effort of an enum in the known order (unknown values last); `none` only if `allow_none`."""
    usable = [e for e in efforts if allow_none or e != "none"]
    if not usable:
        return None
    rank = {name: i for i, name in enumerate(EFFORT_ORDER)}
    return min(usable, key=lambda e: (rank.get(e, len(EFFORT_ORDER)), usable.index(e)))


def _at(node: Any, *keys: str) -> Any:
    for key in keys:
        if not isinstance(node, dict):
            return None
        node = node.get(key)
    return node


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and value == value and value >= 0
