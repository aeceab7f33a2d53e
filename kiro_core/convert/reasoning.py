"""Native reasoning: the client's intent → the `additionalModelRequestFields` one model's schema accepts.

Kiro validates these fields against the model's `additionalModelRequestFieldsSchema` (from ListAvailableModels,
`additionalProperties: false`) and answers 400 to any member or value the schema lacks, and to any field at all on a
schema-less model (docs/protocol.md §Native reasoning). So the fields are built from the client's intent, clamped to the
schema's enums (a missing level rounds *down*: cheaper, never surprising) and finally pruned against the schema,
so nothing the schema does not list can leave. No intent → no fields: the service applies its own default.

Also here: the small static table of schemas (docs/protocol.md §Native reasoning) for when no catalogue is
reachable, the envelope that carries a signature or redacted blob through a Responses client's `encrypted_content`,
and the one that wraps a signature handed to an Anthropic client with what Kiro bound it to (the model, the tools),
so that reasoning Kiro would refuse is dropped before the request instead of after a 400 and a retry, without the
gateway keeping state (docs/protocol.md §Replaying reasoning).
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
import re
from collections.abc import Callable, Sequence
from typing import Any

from kiro_core.unified import ReasoningIntent, ReasoningReplay

EFFORT_ORDER: tuple[str, ...] = ("none", "low", "medium", "high", "xhigh", "max")
_RANK = {effort: rank for rank, effort in enumerate(EFFORT_ORDER)}
_EFFORT_ALIASES = {"minimal": "low"}
# Anthropic `thinking.budget_tokens` → effort: ≤4k low, ≤16k medium, ≤64k high, else xhigh (one peer's table,
# docs/protocol.md §Native reasoning).
_BUDGET_EFFORTS: tuple[tuple[int, str], ...] = ((4096, "low"), (16384, "medium"), (65536, "high"))
DEFAULT_DISPLAY = "summarized"  # Kiro returns summary text only when asked (`omitted` gives the signature alone)
# What the Anthropic formatter signs thinking with when the upstream gave no signature; never valid upstream.
_PLACEHOLDER_SIGNATURE = re.compile(r"^sig_[0-9a-f]{32}$")
ENVELOPE_PREFIX = "kgw1."
SIGNATURE_PREFIX = "kgs1."  # an Anthropic thinking signature wrapped by `bind_signature`
_DIGEST_CHARS = 8  # one tool name's digest: 6 bytes of sha256, base64url (48 bits: collisions are harmless here)

# ---------------------------------------------------------------- client intent


def normalise_effort(effort: str | None) -> str | None:
    """An effort level in EFFORT_ORDER (`minimal` → low); None for absent or unknown levels."""
    if effort is None:
        return None
    lowered = _EFFORT_ALIASES.get(effort.lower(), effort.lower())
    return lowered if lowered in _RANK else None


def budget_effort(budget_tokens: int) -> str:
    """The effort an Anthropic thinking budget stands for."""
    for limit, effort in _BUDGET_EFFORTS:
        if budget_tokens <= limit:
            return effort
    return "xhigh"


def anthropic_intent(thinking_type: str | None, budget_tokens: int | None, effort: Any,
                     display: str | None = None) -> ReasoningIntent:
    """`thinking` + `output_config.effort` of a Messages request; an explicit effort beats the budget's.

    `display` (`summarized` / `omitted`) is passed on where the model's schema lists it."""
    named = normalise_effort(effort) if isinstance(effort, str) else None
    shown = display if isinstance(display, str) and display else None
    if thinking_type == "disabled":
        return ReasoningIntent(effort=None, mode="disabled")
    if thinking_type == "enabled":
        return ReasoningIntent(effort=named or (budget_effort(budget_tokens) if budget_tokens else None),
                               mode="adaptive", display=shown)
    if thinking_type == "adaptive":
        return ReasoningIntent(effort=named, mode="adaptive", display=shown)
    return ReasoningIntent(effort=named, display=shown)


def openai_intent(effort: str | None) -> ReasoningIntent:
    """`reasoning_effort` (chat) or `reasoning.effort` (Responses): `none` turns reasoning off."""
    if effort is not None and effort.lower() == "none":
        return ReasoningIntent(mode="disabled")
    return ReasoningIntent(effort=normalise_effort(effort))


# ---------------------------------------------------------------- schema → fields


def has_reasoning_member(schema: dict[str, Any] | None) -> bool:
    """True when the schema lets a request ask for reasoning (`output_config`, `thinking` or `reasoning`)."""
    props = _props(schema)
    return any(name in props for name in ("output_config", "thinking", "reasoning"))


def clamp_effort(wanted: str, allowed: Sequence[str]) -> str | None:
    """`wanted` if allowed, else the nearest lower allowed level, else the lowest allowed one (never `none`);
    None for an unknown level or an enum without levels."""
    levels = sorted((e for e in allowed if e in _RANK and e != "none"), key=_RANK.__getitem__)
    wanted = _EFFORT_ALIASES.get(wanted, wanted)
    if not levels or wanted not in _RANK:
        return None
    if wanted in levels:
        return wanted
    rank = _RANK[wanted]
    lower = [e for e in levels if _RANK[e] <= rank]
    return lower[-1] if lower else levels[0]


def request_fields(intent: ReasoningIntent, schema: dict[str, Any] | None, *, max_tokens: int | None = None,
                   display: str = DEFAULT_DISPLAY) -> dict[str, Any]:
    """The `additionalModelRequestFields` for this intent and schema; `{}` means send none.

    `max_tokens` (only when the caller's setting allows it) is clamped into the schema's range.
    """
    props = _props(schema)
    if not props or (intent.effort is None and intent.mode is None):
        return {}
    disabled = intent.mode == "disabled" or intent.effort == "none"
    if "reasoning" in props:
        fields = _gpt_fields(intent, _enum(props, "reasoning", "effort"), disabled)
    else:
        fields = _claude_fields(intent, props, disabled, intent.display or display)
    if fields and not disabled and max_tokens is not None and isinstance(props.get("max_tokens"), dict):
        bounds = props["max_tokens"]
        low, high = bounds.get("minimum"), bounds.get("maximum")
        value = max(max_tokens, low) if isinstance(low, int | float) else max_tokens
        fields["max_tokens"] = int(min(value, high) if isinstance(high, int | float) else value)
    kept = prune(fields, schema)
    return kept if isinstance(kept, dict) else {}


def _gpt_fields(intent: ReasoningIntent, efforts: list[str], disabled: bool) -> dict[str, Any]:
    if disabled:
        effort = "none" if "none" in efforts else clamp_effort("low", efforts)
    else:
        effort = clamp_effort(intent.effort, efforts) if intent.effort else None
    return {"reasoning": {"effort": effort}} if effort else {}


def _claude_fields(intent: ReasoningIntent, props: dict[str, Any], disabled: bool, display: str) -> dict[str, Any]:
    efforts = _enum(props, "output_config", "effort")
    types = _enum(props, "thinking", "type")
    fields: dict[str, Any] = {}
    if disabled and "disabled" in types:
        return {"thinking": {"type": "disabled"}}
    if disabled:  # a model that always thinks: the cheapest thinking instead of a 400
        effort = clamp_effort("low", efforts)
    else:
        effort = clamp_effort(intent.effort, efforts) if intent.effort else None
    if effort:
        fields["output_config"] = {"effort": effort}
    if (effort or intent.mode == "adaptive") and "adaptive" in types:
        thinking: dict[str, Any] = {"type": "adaptive"}
        if display in _enum(props, "thinking", "display"):
            thinking["display"] = display
        fields["thinking"] = thinking
    return fields


def _props(schema: Any) -> dict[str, Any]:
    props = schema.get("properties") if isinstance(schema, dict) else None
    return props if isinstance(props, dict) else {}


def _enum(props: dict[str, Any], member: str, field: str) -> list[str]:
    values = _props(props.get(member)).get(field)
    values = values.get("enum") if isinstance(values, dict) else None
    return [v for v in values if isinstance(v, str)] if isinstance(values, list) else []


_DROP = object()
_TYPES: dict[str, tuple[type, ...]] = {"string": (str,), "integer": (int,), "number": (int, float),
                                       "boolean": (bool,), "object": (dict,), "array": (list,)}


def prune(value: Any, schema: Any) -> Any:
    """`value` without anything `schema` does not accept; None when nothing acceptable is left.

    Objects keep only listed properties whose values pass (unlisted members are never sent, whatever
    `additionalProperties` says); enums, `const`, types and numeric bounds are checked; an object missing a
    required member is dropped whole.
    """
    kept = _prune(value, schema)
    return None if kept is _DROP else kept


def _prune(value: Any, schema: Any) -> Any:
    if schema is True:
        return value
    if not isinstance(schema, dict):
        return _DROP
    if "enum" in schema and value not in (schema["enum"] or []):
        return _DROP
    if "const" in schema and value != schema["const"]:
        return _DROP
    kinds = schema.get("type")
    if kinds is not None and not any(_is_type(value, kind) for kind in (kinds if isinstance(kinds, list) else [kinds])):
        return _DROP
    if isinstance(value, int | float) and not isinstance(value, bool):
        low, high = schema.get("minimum"), schema.get("maximum")
        if (isinstance(low, int | float) and value < low) or (isinstance(high, int | float) and value > high):
            return _DROP
    if not isinstance(value, dict):
        return value
    props = _props(schema)
    out = {}
    for name, member in value.items():
        if name in props and (kept := _prune(member, props[name])) is not _DROP:
            out[name] = kept
    if any(name not in out for name in schema.get("required") or []) or (value and not out):
        return _DROP
    return out


def _is_type(value: Any, kind: Any) -> bool:
    if kind == "null":
        return value is None
    python = _TYPES.get(kind)
    if python is None:
        return True  # a type word we do not know: let the value through to Kiro's own check
    if isinstance(value, bool) and kind != "boolean":
        return False
    return isinstance(value, python)


# ---------------------------------------------------------------- static table (no catalogue reachable)

_FIVE = ("low", "medium", "high", "xhigh", "max")
_DISPLAYS = ("summarized", "omitted")


def _claude_schema(efforts: Sequence[str], types: Sequence[str], max_tokens: int | None,
                   displays: Sequence[str] = _DISPLAYS) -> dict[str, Any]:
    thinking: dict[str, Any] = {"type": {"type": "string", "enum": list(types)}}
    if displays:
        thinking["display"] = {"type": "string", "enum": list(displays)}
    props: dict[str, Any] = {
        "output_config": {"type": "object", "additionalProperties": False,
                          "properties": {"effort": {"type": "string", "enum": list(efforts)}}},
        "thinking": {"type": "object", "additionalProperties": False, "properties": thinking, "required": ["type"]},
    }
    if max_tokens:
        props["max_tokens"] = {"type": "integer", "minimum": 1024, "maximum": max_tokens}
    return {"type": "object", "additionalProperties": False, "properties": props}


def _gpt_schema() -> dict[str, Any]:
    effort = {"type": "string", "enum": list(EFFORT_ORDER)}
    return {"type": "object", "additionalProperties": False, "properties": {
        "reasoning": {"type": "object", "additionalProperties": False, "properties": {"effort": effort}}}}


# docs/protocol.md §Native reasoning; where a value is disputed the stricter one is kept (e.g. adaptive only).
STATIC_SCHEMAS: dict[str, dict[str, Any]] = {
    "claude-opus-4.6": _claude_schema(("low", "medium", "high", "max"), ("adaptive", "disabled"), 64000),
    "claude-sonnet-4.6": _claude_schema(("low", "medium", "high", "max"), ("adaptive", "disabled"), 64000),
    "claude-opus-4.7": _claude_schema(_FIVE, ("adaptive", "disabled"), 64000),
    "claude-opus-4.8": _claude_schema(_FIVE, ("adaptive", "disabled"), 128000),
    "claude-sonnet-5": _claude_schema(_FIVE, ("adaptive",), 128000),
    "claude-opus-5": _claude_schema(_FIVE, ("adaptive",), 128000),
    "claude-opus-5.5": _claude_schema(_FIVE, ("adaptive",), 128000),
    "claude-sonnet-5.5": _claude_schema(_FIVE, ("adaptive", "between_tools"), None, displays=()),
    "gpt-5.6-sol": _gpt_schema(),
    "gpt-5.6-terra": _gpt_schema(),
    "gpt-5.6-luna": _gpt_schema(),
}


def static_schema(model_id: str) -> dict[str, Any] | None:
    """The table's schema for a Kiro model id, if it has one."""
    return STATIC_SCHEMAS.get(model_id.lower())


# ---------------------------------------------------------------- replay helpers


def is_placeholder_signature(signature: str) -> bool:
    """A signature this gateway made up (tag-extracted thinking); Kiro would reject it with a 400."""
    return bool(_PLACEHOLDER_SIGNATURE.match(signature))


def seal(text: str, signature: str | None, redacted: str | None,
         minted: tuple[str, Sequence[str]] | None = None) -> str:
    """A Responses `encrypted_content` value carrying a reasoning block verbatim, tagged with its source field and,
    given `minted` (Kiro model id, tool names), with what Kiro bound it to (see `replayable`)."""
    field, value = ("redactedContent", redacted) if redacted else ("signature", signature or "")
    data: dict[str, Any] = {"field": field, "value": value, "text": text}
    if minted is not None:
        data["m"], data["t"] = minted[0], "".join(sorted({tool_digest(n) for n in minted[1]}))
    raw = json.dumps(data, ensure_ascii=False, separators=(",", ":"))
    return ENVELOPE_PREFIX + base64.urlsafe_b64encode(raw.encode()).decode()


def unseal(token: str) -> ReasoningReplay | None:
    """The reasoning block a `seal` token carries; None for anything else (another gateway's or a real OpenAI
    token, or a damaged one), which is then simply not replayed."""
    if not token.startswith(ENVELOPE_PREFIX):
        return None
    try:
        data = json.loads(base64.urlsafe_b64decode(token[len(ENVELOPE_PREFIX):].encode()))
    except (ValueError, binascii.Error):
        return None
    if not isinstance(data, dict) or not isinstance(data.get("value"), str) or not data["value"]:
        return None
    text = data.get("text") if isinstance(data.get("text"), str) else ""
    model = data.get("m") if isinstance(data.get("m"), str) else None
    tools = _digests(data.get("t")) if model is not None else None
    if data.get("field") == "redactedContent":
        return ReasoningReplay(redacted=data["value"], minted_model=model, minted_tools=tools)
    if data.get("field") == "signature":
        return ReasoningReplay(text=text, signature=data["value"], minted_model=model, minted_tools=tools)
    return None


def _digests(packed: Any) -> frozenset[str]:
    """The tool digests packed by `seal` / `bind_signature` (fixed-size, concatenated)."""
    text = packed if isinstance(packed, str) else ""
    return frozenset(text[i:i + _DIGEST_CHARS] for i in range(0, len(text), _DIGEST_CHARS))


# ---------------------------------------------------------------- signature binding (Anthropic thinking blocks)


def tool_digest(name: str) -> str:
    """A short, fixed-size digest of a tool name as Kiro was given it."""
    raw = hashlib.sha256(name.encode("utf-8", "surrogatepass")).digest()[:6]
    return base64.urlsafe_b64encode(raw).decode()


def bind_signature(signature: str, model_id: str, tool_names: Sequence[str], hidden_text: str | None = None) -> str:
    """The signature an Anthropic client gets: Kiro's, wrapped with the model and tools it was minted under, and
    the reasoning text the client was not shown (`display: "omitted"`), which Kiro needs back with it."""
    meta: dict[str, Any] = {"m": model_id, "t": "".join(sorted({tool_digest(n) for n in tool_names}))}
    if hidden_text:
        meta["x"] = hidden_text
    raw = json.dumps(meta, ensure_ascii=False, separators=(",", ":")).encode("utf-8", "surrogatepass")
    return f"{SIGNATURE_PREFIX}{base64.urlsafe_b64encode(raw).decode()}.{signature}"


def unbind_signature(value: str, shown_text: str) -> ReasoningReplay:
    """What a client's thinking block replays: Kiro's own signature and text, and where it was minted (unknown for
    a signature this gateway did not wrap, which is replayed as it came)."""
    if not value.startswith(SIGNATURE_PREFIX):
        return ReasoningReplay(text=shown_text, signature=value)
    head, sep, signature = value[len(SIGNATURE_PREFIX):].partition(".")
    try:
        meta = json.loads(base64.urlsafe_b64decode(head.encode()))
    except (ValueError, binascii.Error):
        meta = None
    if not sep or not signature or not isinstance(meta, dict):
        return ReasoningReplay(text=shown_text, signature=value)  # not ours after all: Kiro will judge it
    hidden = meta.get("x")
    return ReasoningReplay(
        text=hidden if isinstance(hidden, str) else shown_text,
        signature=signature,
        minted_model=meta.get("m") if isinstance(meta.get("m"), str) else None,
        minted_tools=_digests(meta.get("t")),
    )


def signature_binder(model_id: str, tool_names: Sequence[str]) -> Callable[[str, str | None], str]:
    """`bind_signature` for one answer: what its formatter wraps every upstream signature with."""
    names = tuple(tool_names)

    def sign(signature: str, hidden_text: str | None) -> str:
        return bind_signature(signature, model_id, names, hidden_text)

    return sign


def replayable(replay: ReasoningReplay, model_id: str, tool_names: Sequence[str]) -> bool:
    """False when Kiro would refuse this reasoning (docs/protocol.md §Replaying reasoning):
    minted under another model, or under a tool that this request no longer declares."""
    if replay.minted_model is not None and replay.minted_model != model_id:
        return False
    if replay.minted_tools:
        return replay.minted_tools <= {tool_digest(n) for n in tool_names}
    return True
