"""Usage counters as flat named numbers per UTC day, and the summaries built from them. Pure: no I/O, no clock.

One answered (or failed) chat request adds to a handful of counters of its day: totals, the same per model and per
client-key name, its error class, and a time-to-first-token histogram. Both stores (SQLite locally, one DynamoDB item
per day on AWS) keep exactly these names, so the summaries below read the same on both.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any

METRICS = ("requests", "credits", "input_tokens", "output_tokens", "web_searches", "nominal_credits",
           "credits_unknown")
# webSearches: MCP searches that reached Kiro; nominalCredits: their WEB_SEARCH_NOMINAL_CREDITS (Kiro meters no search
# cost: budgets count these beside `credits`); creditsUnknown: answers that began but never got Kiro's metering (e.g.
# the client hung up first), so their credits are unknown rather than 0.
_JSON_NAMES = {"requests": "requests", "credits": "credits", "input_tokens": "inputTokens",
               "output_tokens": "outputTokens", "web_searches": "webSearches", "nominal_credits": "nominalCredits",
               "credits_unknown": "creditsUnknown"}
# Upper bounds (ms) of the time-to-first-token histogram; percentiles are reported as the bound of their bucket.
TTFT_BUCKETS_MS = (100, 200, 300, 500, 750, 1000, 1500, 2000, 3000, 5000, 7500, 10_000, 15_000, 20_000, 30_000,
                   60_000, math.inf)
MAX_LABEL = 100  # model and key names are cut to this many characters (clients choose model names)
SEP = "|"
OTHER_MODELS = "other"  # the one counter name of every model outside the catalogue (client-chosen names)
Counters = dict[str, float]


def label(text: str) -> str:
    """A model or key name as a counter-name part: no separator, bounded length."""
    cleaned = "".join(ch if ch.isprintable() and ch != SEP else "_" for ch in text.strip())[:MAX_LABEL]
    return cleaned or "unknown"


def day_of(moment: float) -> str:
    """The UTC day (YYYY-MM-DD) of an epoch time."""
    return datetime.fromtimestamp(moment, UTC).date().isoformat()


def _bucket(ttft_ms: float) -> str:
    bound = next(b for b in TTFT_BUCKETS_MS if ttft_ms <= b)
    return "inf" if bound == math.inf else str(int(bound))


@dataclass(frozen=True)
class RequestUsage:
    """What one request to Kiro (an answer, or a web search) contributes to the counters."""

    model: str
    key_name: str
    credits: float | None
    input_tokens: int
    output_tokens: int
    ttft_ms: float | None
    error_kind: str | None
    at: float  # epoch seconds
    web_searches: int = 0
    nominal_credits: float = 0.0
    credits_unknown: bool = False


def increments(usage: RequestUsage) -> tuple[Counters, Counters]:
    """(counters to add to, counters to raise to at least this value) for one request."""
    values = {"requests": 1.0, "credits": float(usage.credits or 0.0), "input_tokens": float(usage.input_tokens),
              "output_tokens": float(usage.output_tokens), "web_searches": float(usage.web_searches),
              "nominal_credits": float(usage.nominal_credits), "credits_unknown": float(usage.credits_unknown)}
    adds: Counters = {}
    model, key = label(usage.model), label(usage.key_name)
    for name, value in values.items():
        if value:
            adds[name] = value
            adds[f"model{SEP}{model}{SEP}{name}"] = value
            adds[f"key{SEP}{key}{SEP}{name}"] = value
    maxes: Counters = {}
    if usage.error_kind:
        kind = label(usage.error_kind)
        adds["errors"] = 1.0
        adds[f"error{SEP}{kind}"] = 1.0
        adds[f"key{SEP}{key}{SEP}errors"] = 1.0  # per key too: `kiro-gateway keys list` shows them
        maxes[f"error_last{SEP}{kind}"] = float(int(usage.at))
    if usage.ttft_ms is not None:
        adds[f"ttft{SEP}{_bucket(usage.ttft_ms)}"] = 1.0
    return adds, maxes


def month_days(today: date) -> list[str]:
    """Every day of `today`'s month up to `today`."""
    return [(today.replace(day=1) + timedelta(days=n)).isoformat() for n in range(today.day)]


def last_days(today: date, count: int) -> list[str]:
    """The `count` days ending with `today`, oldest first."""
    return [(today - timedelta(days=n)).isoformat() for n in range(count - 1, -1, -1)]


def _round(value: float) -> float | int:
    return round(value, 6) if value % 1 else int(value)


def summary(days: Iterable[Counters]) -> dict[str, Any]:
    """Totals over some days, with `byModel` and `byKey` maps (the `gateway.today` / `gateway.month` shape)."""
    totals: Counters = {}
    for counters in days:
        for name, value in counters.items():
            totals[name] = totals.get(name, 0.0) + value
    out: dict[str, Any] = {_JSON_NAMES[m]: _round(totals.get(m, 0.0)) for m in METRICS}
    out["errors"] = _round(totals.get("errors", 0.0))
    for group, field in (("model", "byModel"), ("key", "byKey")):
        table: dict[str, dict[str, float | int]] = {}
        for name, value in totals.items():
            parts = name.split(SEP)
            if len(parts) == 3 and parts[0] == group and (parts[2] in _JSON_NAMES or parts[2] == "errors"):
                row = table.setdefault(parts[1], {_JSON_NAMES[m]: 0 for m in METRICS})
                row[_JSON_NAMES.get(parts[2], parts[2])] = _round(value)
        out[field] = dict(sorted(table.items(), key=lambda item: (-item[1]["credits"], item[0])))
    return out


def daily_series(days: Mapping[str, Counters], order: list[str]) -> list[dict[str, Any]]:
    """One entry per day of `order` (missing days count zero), for the page's chart."""
    return [{"date": day, **{k: v for k, v in summary([days.get(day, {})]).items() if k not in ("byModel", "byKey")}}
            for day in order]


def ttft_percentiles(days: Iterable[Counters]) -> dict[str, Any]:
    """p50/p90/p99 of time to first token as the upper bound (ms) of their histogram bucket; None without data."""
    counts: dict[str, float] = {}
    for counters in days:
        for name, value in counters.items():
            if name.startswith(f"ttft{SEP}"):
                counts[name[5:]] = counts.get(name[5:], 0.0) + value
    total = sum(counts.values())
    out: dict[str, Any] = {"count": int(total)}
    for p in (50, 90, 99):
        out[f"p{p}"] = None
        running = 0.0
        for bound in TTFT_BUCKETS_MS:
            key = "inf" if bound == math.inf else str(int(bound))
            running += counts.get(key, 0.0)
            if total and running >= total * p / 100:
                out[f"p{p}"] = None if bound == math.inf else int(bound)
                break
    return out


def errors_by_class(days: Mapping[str, Counters]) -> dict[str, dict[str, Any]]:
    """Error counts per class over the given days, with the last time each was seen (ISO 8601, UTC)."""
    out: dict[str, dict[str, Any]] = {}
    for counters in days.values():
        for name, value in counters.items():
            if name.startswith(f"error{SEP}"):
                entry = out.setdefault(name[6:], {"count": 0, "lastAt": None})
                entry["count"] += int(value)
    for kind, entry in out.items():
        last = max((c.get(f"error_last{SEP}{kind}", 0.0) for c in days.values()), default=0.0)
        entry["lastAt"] = datetime.fromtimestamp(last, UTC).isoformat().replace("+00:00", "Z") if last else None
    return dict(sorted(out.items(), key=lambda item: (-item[1]["count"], item[0])))


def only_key(days: Mapping[str, Counters], key_name: str) -> dict[str, Counters]:
    """Each day's counters reduced to one key's: its `key|<name>|…` counters, and the same figures as the totals."""
    prefix = f"key{SEP}{label(key_name)}{SEP}"
    out: dict[str, Counters] = {}
    for day, values in days.items():
        own = {name: value for name, value in values.items() if name.startswith(prefix)}
        if own:
            out[day] = {**own, **{name[len(prefix):]: value for name, value in own.items()}}
    return out
