"""Model names: what clients call a model, what Kiro calls it, and what `/v1/models` lists.

Clients send Anthropic-style names (`claude-sonnet-4-5-20250929`, `claude-opus-4-8[1m]`), Kiro wants its own
dotted ids (`claude-sonnet-4.5`). Resolution never refuses a name ("a gateway, not a gatekeeper"): an unknown one is
passed through and Kiro itself answers `INVALID_MODEL_ID` if it must.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Any, Literal

from kiro_core.model_capabilities import ModelCapabilities, capabilities_of

DEFAULT_MAX_INPUT_TOKENS = 200000  # the reference gateway's default when Kiro gives no tokenLimits
DEFAULT_MAX_OUTPUT_TOKENS = 8192

# What is known when no catalogue answers (docs/protocol.md §Models: the GA ids of late 2026;
# announced-only ids such as Haiku 5.5 or Kimi K3 are left to the live catalogue).
FALLBACK_MODEL_IDS: tuple[str, ...] = (
    "auto",
    "claude-opus-5.5",
    "claude-opus-5",
    "claude-sonnet-5.5",
    "claude-sonnet-5",
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
    "gpt-5.6-sol",
    "gpt-5.6-terra",
    "gpt-5.6-luna",
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
    # 0. a zero minor is Anthropic's alias of the undotted id: claude-sonnet-4-0, claude-opus-5.0 -> claude-opus-5
    (re.compile(rf"^claude-{_FAMILY}-(\d+)[-.]0(?:-(?:\d{{8}}|latest))?$"), r"claude-\1-\2"),
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
    """A client's model name in Kiro's dotted form (protocol.md §Models); names no rule matches come back unchanged."""
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
    request_fields_schema: dict[str, Any] | None = None  # additionalModelRequestFieldsSchema, when listed


_UNKNOWN = ModelCapabilities()


@dataclass(frozen=True)
class _Entry:
    model_id: str
    display_name: str
    max_input_tokens: int
    max_output_tokens: int
    capabilities: ModelCapabilities = _UNKNOWN
    request_fields_schema: dict[str, Any] | None = None


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
        # `deepseek-3-2`, `gpt-5-6-sol`: a client's dashed spelling of a catalogue id that no rule dots
        self._dashed = {_dashed(key): entry for key, entry in reversed(self._entries.items())}
        self._hidden = {k.lower(): (k, v) for k, v in (HIDDEN_MODELS if hidden is None else hidden).items()}
        self._aliases = {k.lower(): v for k, v in (MODEL_ALIASES if aliases is None else aliases).items()}
        self._alias_names = list((MODEL_ALIASES if aliases is None else aliases).keys())

    def resolve(self, name: str) -> ResolvedModel:
        """alias → normalise → cache → hidden → passthrough. Never raises."""
        target = self._aliases.get(name.strip().lower())
        normalised = normalize_model_name(target if target is not None else name)
        entry = self._entries.get(normalised.lower()) or self._dashed.get(_dashed(normalised))
        if entry is not None:
            source: Literal["cache", "alias"] = "alias" if target is not None else "cache"
            return ResolvedModel(entry.model_id, source, entry.max_input_tokens, entry.request_fields_schema)
        hidden = self._hidden.get(normalised.lower())
        if hidden is not None:
            return ResolvedModel(hidden[1], "hidden", DEFAULT_MAX_INPUT_TOKENS)
        return ResolvedModel(normalised, "alias" if target is not None else "passthrough", DEFAULT_MAX_INPUT_TOKENS)

    def model_ids(self) -> list[str]:
        """Every catalogue id, in catalogue order (including ids hidden from `/v1/models`)."""
        return [entry.model_id for entry in self._entries.values()]

    def capabilities(self, model_id: str) -> ModelCapabilities | None:
        """What the catalogue advertises for `model_id` (a Kiro id), or None when it is not in the catalogue."""
        entry = self._entries.get(model_id.lower())
        return entry.capabilities if entry is not None else None

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
        capabilities=capabilities_of(raw),
        request_fields_schema=_schema(raw.get("additionalModelRequestFieldsSchema")),
    )


def _dashed(model_id: str) -> str:
    return model_id.lower().replace(".", "-")


def _schema(value: Any) -> dict[str, Any] | None:
    """The request-fields schema: a JSON object (a string holding one is read too); anything else → None."""
    if isinstance(value, str):
        try:
            value = json.loads(value)
        except ValueError:
            return None
    return value if isinstance(value, dict) else None


def _positive(value: Any, default: int) -> int:
    return value if isinstance(value, int) and not isinstance(value, bool) and value > 0 else default


def _row(model_id: str, entry: _Entry | None) -> dict[str, Any]:
    return {
        "id": model_id,
        "max_input_tokens": entry.max_input_tokens if entry else DEFAULT_MAX_INPUT_TOKENS,
        "max_output_tokens": entry.max_output_tokens if entry else DEFAULT_MAX_OUTPUT_TOKENS,
        "display_name": entry.display_name if entry else model_id,
        **(entry.capabilities.as_row() if entry else {}),
    }
