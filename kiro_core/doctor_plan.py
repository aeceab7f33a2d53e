"""The pure half of `kiro-gateway doctor`: which models to probe, what to send them, and what their streams showed.

Kept free of I/O so the plan (how many requests, at which credit multiplier) can be shown and confirmed before any
credit is spent, and so the verdict on a stream is testable from bytes alone.
"""

from __future__ import annotations

import json
import re
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from botocore.eventstream import EventStreamBuffer

from kiro_core.model_capabilities import capabilities_of, lowest_effort, schema_enum

PROBE_PROMPT = "Reply with the single word: ok"
USAGE_EVENTS = ("meteringEvent", "contextUsageEvent", "metadataEvent")
_FAMILY = re.compile(r"^claude-(opus|sonnet|haiku)\b")
SKIPPED_IDS = frozenset({"auto"})  # a router, not a model: probing it says nothing about a family


def family_of(model_id: str) -> str:
    """claude-opus / claude-sonnet / claude-haiku / other claude / gpt / the id's first dash-separated word."""
    lowered = model_id.lower()
    match = _FAMILY.match(lowered)
    if match:
        return f"claude-{match.group(1)}"
    if lowered.startswith("claude-"):
        return "claude"
    if lowered.startswith("gpt-"):
        return "gpt"
    return lowered.split("-", 1)[0]


@dataclass(frozen=True)
class Probe:
    """One planned request: the Kiro id, its credit multiplier (None: not advertised) and the request fields."""

    model_id: str
    rate_multiplier: float | None
    fields: dict[str, Any] | None  # `additionalModelRequestFields`, or None for a schema-less model


def default_models(catalog: list[dict[str, Any]]) -> list[str]:
    """One model per family, in catalogue order of families: the one with a request-field schema (so native
    reasoning can be checked), then the lowest credit multiplier, then catalogue order."""
    best: dict[str, tuple[tuple[int, float, int], str]] = {}
    for index, raw in enumerate(catalog):
        model_id = raw.get("modelId")
        if not isinstance(model_id, str) or not model_id or model_id in SKIPPED_IDS:
            continue
        caps = capabilities_of(raw)
        rank = (0 if caps.reasoning_efforts else 1, caps.rate_multiplier if caps.rate_multiplier is not None
                else float("inf"), index)
        family = family_of(model_id)
        if family not in best or rank < best[family][0]:
            best[family] = (rank, model_id)
    return [model_id for _, model_id in best.values()]


def request_fields(schema: Any) -> dict[str, Any] | None:
    """The cheapest `additionalModelRequestFields` that still asks for native reasoning, built from the model's own
    schema: the lowest effort of its enum (never `none`, which would ask for no reasoning), plus adaptive, summarised
    thinking where the schema offers it (Claude); None when the schema has no effort."""
    caps = capabilities_of({"additionalModelRequestFieldsSchema": schema})
    if caps.effort_member is None or caps.reasoning_efforts is None:
        return None
    effort = lowest_effort(caps.reasoning_efforts)
    if effort is None:
        return None
    fields: dict[str, Any] = {caps.effort_member: {"effort": effort}}
    if "adaptive" in schema_enum(schema, "thinking", "type"):
        thinking: dict[str, Any] = {"type": "adaptive"}
        if "summarized" in schema_enum(schema, "thinking", "display"):
            thinking["display"] = "summarized"
        fields["thinking"] = thinking
    return fields


def plan(catalog: list[dict[str, Any]], model_ids: list[str]) -> list[Probe]:
    """Probes for `model_ids` (Kiro ids); a model missing from the catalogue is still probed, without fields."""
    by_id = {str(raw.get("modelId")).lower(): raw for raw in catalog if isinstance(raw.get("modelId"), str)}
    probes: dict[str, Probe] = {}
    for model_id in model_ids:
        raw = by_id.get(model_id.lower(), {})
        wire = str(raw.get("modelId") or model_id)
        probes.setdefault(wire.lower(), Probe(wire, capabilities_of(raw).rate_multiplier,
                                              request_fields(raw.get("additionalModelRequestFieldsSchema"))))
    return list(probes.values())


def probe_payload(probe: Probe, conversation_id: str, profile_arn: str = "") -> bytes:
    """The generateAssistantResponse body of a probe: one short user turn, the request fields at the top level."""
    message = {"content": PROBE_PROMPT, "modelId": probe.model_id, "origin": "AI_EDITOR"}
    payload: dict[str, Any] = {"conversationState": {"chatTriggerType": "MANUAL", "conversationId": conversation_id,
                                                     "currentMessage": {"userInputMessage": message}}}
    if profile_arn:
        payload["profileArn"] = profile_arn
    if probe.fields:
        payload["additionalModelRequestFields"] = probe.fields
    return json.dumps(payload, separators=(",", ":")).encode()


@dataclass
class StreamCensus:
    """What a probe's event stream carried: frame counts per event type, credits, errors. Fed raw network chunks."""

    events: Counter[str] = field(default_factory=Counter)
    credits: float = 0.0
    text: str = ""
    errors: list[str] = field(default_factory=list)
    _buffer: EventStreamBuffer = field(default_factory=EventStreamBuffer, repr=False)
    _broken: bool = field(default=False, repr=False)

    def feed(self, chunk: bytes) -> None:
        if self._broken:
            return
        self._buffer.add_data(chunk)
        try:
            for message in self._buffer:
                self._note(dict(message.headers), message.payload)
        except Exception as error:  # a corrupt frame: frame boundaries are lost, nothing after it can be trusted
            self.errors.append(f"corrupt event stream ({type(error).__name__})")
            self._broken = True

    def _note(self, headers: dict[str, Any], payload: bytes) -> None:
        kind = headers.get(":message-type")
        if kind != "event":
            code = headers.get(":exception-type") or headers.get(":error-code") or kind
            self.errors.append(f"{code}: {_message(payload, headers)}")
            return
        event_type = str(headers.get(":event-type"))
        self.events[event_type] += 1
        body = _json(payload)
        if event_type == "meteringEvent":
            usage = body.get("usage")
            if isinstance(usage, int | float) and not isinstance(usage, bool):
                self.credits += float(usage)
        elif event_type == "assistantResponseEvent" and isinstance(body.get("content"), str):
            self.text += body["content"]

    @property
    def reasoning(self) -> bool:
        return self.events["reasoningContentEvent"] > 0

    def usage_seen(self) -> list[str]:
        return [name for name in USAGE_EVENTS if self.events[name]]


def _json(payload: bytes) -> dict[str, Any]:
    try:
        body = json.loads(payload.decode("utf-8"))
    except ValueError:
        return {}
    return body if isinstance(body, dict) else {}


def _message(payload: bytes, headers: dict[str, Any]) -> str:
    body = _json(payload)
    text = body.get("message") or body.get("Message") or headers.get(":error-message") or payload[:200].decode(
        "utf-8", "replace")
    return str(text)[:300]
