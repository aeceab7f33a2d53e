"""Model names: what clients call a model, what Kiro calls it, and what `/v1/models` lists.

Clients send Anthropic-style names (`claude-sonnet-4-5-20250929`, `claude-opus-4-8[1m]`), Kiro wants its own
dotted ids (`claude-sonnet-4.5`). Resolution never refuses a name ("a gateway, not a gatekeeper"): an unknown one is
passed through and Kiro itself answers `INVALID_MODEL_ID` if it must.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any, Literal

DEFAULT_MAX_INPUT_TOKENS = 200000  # the reference gateway's default when Kiro gives no tokenLimits
DEFAULT_MAX_OUTPUT_TOKENS = 8192

# The runtime host has no ListAvailableModels, so this list (reference 2.4.dev) is what is known without one.
FALLBACK_MODEL_IDS: tuple[str, ...] = (
    "auto",
    "claude-sonnet-4",
    "claude-haiku-4.5",
    "claude-sonnet-4.5",
    "claude-opus-4.5",
    "claude-sonnet-4.6",
    "claude-opus-4.6",
    "claude-opus-4.7",
    "claude-opus-4.8",
    "deepseek-3.2",
    "glm-5",
    "minimax-m2.1",
    "minimax-m2.5",
    "qwen3-coder-next",
)
# Models that work but that Kiro does not list (client-facing name -> Kiro's internal id). The reference's 2.4.dev
# empties it because the runtime host maps the id to `auto`; pass `hidden={}` to ModelCatalog for that behaviour.
HIDDEN_MODELS: dict[str, str] = {"claude-3.7-sonnet": "CLAUDE_3_7_SONNET_20250219_V1_0"}
# Cursor has its own "auto"; `auto-kiro` reaches Kiro's.
MODEL_ALIASES: dict[str, str] = {"auto-kiro": "auto"}
HIDDEN_FROM_LIST: frozenset[str] = frozenset({"auto"})

_FAMILY = r"(haiku|sonnet|opus)"
_CONTEXT_SUFFIX = re.compile(r"\[\d+(?:\.\d+)?[km]\]$")  # Claude Code's `[1m]`, also e.g. `[200k]`
_RULES: tuple[tuple[re.Pattern[str], str], ...] = (
    # 1. claude-sonnet-4-5[-20250929|-latest|-N] -> claude-sonnet-4.5
    (re.compile(rf"^claude-{_FAMILY}-(\d+)-(\d{{1,2}})(?:-(?:\d{{8}}|latest|\d+))?$"), r"claude-\1-\2.\3"),
    # 2. claude-sonnet-4[-20250514] -> claude-sonnet-4
    (re.compile(rf"^claude-{_FAMILY}-(\d+)(?:-\d{{8}})?$"), r"claude-\1-\2"),
    # 3. legacy claude-3-7-sonnet[-anything] -> claude-3.7-sonnet
    (re.compile(rf"^claude-(\d+)-(\d+)-{_FAMILY}(?:-.*)?$"), r"claude-\1.\2-\3"),
    # 4. dotted with a date: the date goes
    (re.compile(rf"^(claude-{_FAMILY}-\d+\.\d+)-\d{{8}}$"), r"\1"),
    (re.compile(rf"^(claude-\d+\.\d+-{_FAMILY})-\d{{8}}$"), r"\1"),
    # 5. inverted with any suffix: claude-4.5-opus-high -> claude-opus-4.5
    (re.compile(rf"^claude-(\d+)\.(\d+)-{_FAMILY}-.+$"), r"claude-\3-\1.\2"),
)


def normalize_model_name(name: str) -> str:
    """A client's model name in Kiro's dotted form (reference §5.3); names no rule matches come back unchanged."""
    stripped = _CONTEXT_SUFFIX.sub("", name.strip(), count=1) if name else name
    lowered = stripped.lower()
    for pattern, replacement in _RULES:
        if pattern.match(lowered):
            return pattern.sub(replacement, lowered)
    return stripped


@dataclass(frozen=True)
class ResolvedModel:
    """The id to send to Kiro, where it came from, and the context size used for token maths."""

    kiro_id: str
    source: Literal["cache", "hidden", "alias", "passthrough"]
    max_input_tokens: int


@dataclass(frozen=True)
class _Entry:
    model_id: str
    display_name: str
    max_input_tokens: int
    max_output_tokens: int


class ModelCatalog:
    """Known models (from ListAvailableModels, else the fallback list), hidden models and aliases."""

    def __init__(
        self,
        models: list[dict[str, Any]] | None = None,
        *,
        hidden: dict[str, str] | None = None,
        aliases: dict[str, str] | None = None,
    ) -> None:
        self.from_upstream = models is not None  # False: the static fallback, limits are defaults
        source = models if models is not None else [{"modelId": m} for m in FALLBACK_MODEL_IDS]
        self._entries: dict[str, _Entry] = {}
        self._raw: dict[str, dict[str, Any]] = {}
        for raw in source:
            entry = _entry(raw)
            if entry is not None:
                self._entries.setdefault(entry.model_id.lower(), entry)
                self._raw.setdefault(entry.model_id.lower(), raw)
        self._hidden = {k.lower(): (k, v) for k, v in (HIDDEN_MODELS if hidden is None else hidden).items()}
        self._aliases = {k.lower(): v for k, v in (MODEL_ALIASES if aliases is None else aliases).items()}
        self._alias_names = list((MODEL_ALIASES if aliases is None else aliases).keys())

    def resolve(self, name: str) -> ResolvedModel:
        """alias → normalise → cache → hidden → passthrough. Never raises."""
        target = self._aliases.get(name.strip().lower())
        normalised = normalize_model_name(target if target is not None else name)
        entry = self._entries.get(normalised.lower())
        if entry is not None:
            source: Literal["cache", "alias"] = "alias" if target is not None else "cache"
            return ResolvedModel(entry.model_id, source, entry.max_input_tokens)
        hidden = self._hidden.get(normalised.lower())
        if hidden is not None:
            return ResolvedModel(hidden[1], "hidden", DEFAULT_MAX_INPUT_TOKENS)
        return ResolvedModel(normalised, "alias" if target is not None else "passthrough", DEFAULT_MAX_INPUT_TOKENS)

    def upstream_entry(self, model_id: str) -> dict[str, Any] | None:
        """The ListAvailableModels item of a Kiro id as received (e.g. its `promptCaching`), when the catalogue came
        from the upstream and lists that id."""
        return self._raw.get(model_id.lower()) if self.from_upstream else None

    def list_models(self) -> list[dict[str, Any]]:
        """What `/v1/models` shows: known ids minus HIDDEN_FROM_LIST, hidden models and aliases, sorted by id."""
        rows: dict[str, dict[str, Any]] = {}
        for entry in self._entries.values():
            if entry.model_id not in HIDDEN_FROM_LIST:
                rows[entry.model_id] = _row(entry.model_id, entry)
        for name, _ in self._hidden.values():
            rows.setdefault(name, _row(name, None))
        for alias in self._alias_names:
            target = self._entries.get(normalize_model_name(self._aliases[alias.lower()]).lower())
            rows.setdefault(alias, _row(alias, target))
        return [rows[key] for key in sorted(rows)]


def _entry(raw: dict[str, Any]) -> _Entry | None:
    """One ListAvailableModels item; items without a modelId are ignored."""
    model_id = raw.get("modelId")
    if not isinstance(model_id, str) or not model_id:
        return None
    limits = raw.get("tokenLimits") or {}
    return _Entry(
        model_id=model_id,
        display_name=str(raw.get("modelName") or model_id),
        max_input_tokens=_positive(limits.get("maxInputTokens"), DEFAULT_MAX_INPUT_TOKENS),
        max_output_tokens=_positive(limits.get("maxOutputTokens"), DEFAULT_MAX_OUTPUT_TOKENS),
    )


def _positive(value: Any, default: int) -> int:
    return value if isinstance(value, int) and not isinstance(value, bool) and value > 0 else default


def _row(model_id: str, entry: _Entry | None) -> dict[str, Any]:
    return {
        "id": model_id,
        "max_input_tokens": entry.max_input_tokens if entry else DEFAULT_MAX_INPUT_TOKENS,
        "max_output_tokens": entry.max_output_tokens if entry else DEFAULT_MAX_OUTPUT_TOKENS,
        "display_name": entry.display_name if entry else model_id,
    }
