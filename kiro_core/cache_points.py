"""Opt-in `cachePoint` markers in the Kiro payload (single-source, so off unless configured).

See docs/protocol.md §Prompt cache.

Kiro's service model accepts `cachePoint: {"type": "default"}` on history user and assistant entries. One peer placed
two: on the first user entry (which carries the system prompt) and on the last assistant entry, and reported fewer
credits from turn 3 on; Kiro's own CLI sends none. The catalogue may limit them per model
(`promptCaching.supportsPromptCaching`, `maximumCacheCheckpointsPerRequest`, `minimumTokensPerCacheCheckpoint`):
a model that says it does not cache gets none, at most the maximum are placed (the later point first: it covers the
longer prefix), and a point is only placed where the prefix before it reaches the minimum size.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

CACHE_POINT = {"type": "default"}
MAX_POINTS = 2


@dataclass(frozen=True)
class CachePolicy:
    """What the catalogue says about prompt caching for one model; defaults when it says nothing."""

    supported: bool = True
    max_points: int = MAX_POINTS
    min_tokens: int = 0

    @classmethod
    def from_catalog(cls, entry: Mapping[str, Any] | None) -> CachePolicy:
        """From a ListAvailableModels entry (its `promptCaching` object); absent fields keep the defaults."""
        caching = entry.get("promptCaching") if isinstance(entry, Mapping) else None
        if not isinstance(caching, Mapping):
            return cls()
        supported = caching.get("supportsPromptCaching")
        most = caching.get("maximumCacheCheckpointsPerRequest")
        least = caching.get("minimumTokensPerCacheCheckpoint")
        return cls(
            supported=supported is not False,
            max_points=min(MAX_POINTS, most) if _count(most) else MAX_POINTS,
            min_tokens=least if _count(least) else 0,
        )


def _count(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value >= 0


def place_cache_points(history: list[dict[str, Any]], policy: CachePolicy,
                       count_tokens: Callable[[str], int]) -> int:
    """Mark up to two history entries in place (see the module docstring); returns how many were marked."""
    if not policy.supported or policy.max_points <= 0 or not history:
        return 0
    candidates: list[int] = []
    last_assistant = next((i for i in range(len(history) - 1, -1, -1)
                           if "assistantResponseMessage" in history[i]), None)
    if last_assistant is not None:
        candidates.append(last_assistant)
    if "userInputMessage" in history[0] and 0 not in candidates:
        candidates.append(0)
    placed = 0
    for index in candidates[: policy.max_points]:
        if policy.min_tokens and count_tokens(_prefix_text(history, index)) < policy.min_tokens:
            continue
        message = history[index].get("userInputMessage") or history[index].get("assistantResponseMessage")
        message["cachePoint"] = dict(CACHE_POINT)
        placed += 1
    return placed


def _prefix_text(history: list[dict[str, Any]], last: int) -> str:
    """The entries up to and including `last` (what a point there would cache), texts, tool calls and results."""
    return json.dumps(history[: last + 1], ensure_ascii=False)
