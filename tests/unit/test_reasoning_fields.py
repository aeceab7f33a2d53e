"""Native reasoning: intent mapping, clamping, schema pruning, the static table and the Responses envelope."""

from __future__ import annotations

import pytest

from kiro_core.convert import reasoning as r
from kiro_core.convert.kiro import build_kiro_request
from kiro_core.convert.options import ConversionOptions
from kiro_core.unified import Conversation, Message, ReasoningIntent, ReasoningReplay, ThinkingRequest

CLAUDE_46 = r.STATIC_SCHEMAS["claude-sonnet-4.6"]  # low/medium/high/max, adaptive+disabled
OPUS_55 = r.STATIC_SCHEMAS["claude-opus-5.5"]  # five levels, adaptive only
GPT = r.STATIC_SCHEMAS["gpt-5.6-sol"]


@pytest.mark.parametrize(("wanted", "allowed", "expected"), [
    ("high", ["low", "medium", "high", "max"], "high"),
    ("xhigh", ["low", "medium", "high", "max"], "high"),  # round down, not up to max
    ("max", ["low", "medium", "high"], "high"),
    ("low", ["medium", "high"], "medium"),  # nothing lower: the lowest there is
    ("low", ["none", "medium"], "medium"),  # never `none` (that is "off") for a real effort
    ("high", [], None),
])
def test_clamp_rounds_down(wanted: str, allowed: list[str], expected: str | None) -> None:
    assert r.clamp_effort(wanted, allowed) == expected


@pytest.mark.parametrize(("budget", "effort"), [(1024, "low"), (4096, "low"), (10000, "medium"),
                                                 (31999, "high"), (100000, "xhigh")])
def test_budget_table(budget: int, effort: str) -> None:
    assert r.anthropic_intent("enabled", budget, None) == ReasoningIntent(effort=effort, mode="adaptive")


def test_intents() -> None:
    assert r.anthropic_intent("enabled", 31999, "low") == ReasoningIntent("low", "adaptive")  # explicit wins
    assert r.anthropic_intent("disabled", None, "high") == ReasoningIntent(None, "disabled")
    assert r.anthropic_intent(None, None, None) == ReasoningIntent()
    assert r.anthropic_intent(None, None, "max") == ReasoningIntent("max")
    assert r.openai_intent("none") == ReasoningIntent(mode="disabled")
    assert r.openai_intent("minimal") == ReasoningIntent("low")
    assert r.openai_intent(None) == ReasoningIntent()


@pytest.mark.parametrize(("intent", "schema", "fields"), [
    (ReasoningIntent("xhigh"), CLAUDE_46, {"output_config": {"effort": "high"},
                                           "thinking": {"type": "adaptive", "display": "summarized"}}),
    (ReasoningIntent("xhigh"), OPUS_55, {"output_config": {"effort": "xhigh"},
                                         "thinking": {"type": "adaptive", "display": "summarized"}}),
    (ReasoningIntent(mode="disabled"), CLAUDE_46, {"thinking": {"type": "disabled"}}),
    # always-on model: adaptive + the lowest effort instead of a disabled the schema lacks
    (ReasoningIntent(mode="disabled"), OPUS_55, {"output_config": {"effort": "low"},
                                                 "thinking": {"type": "adaptive", "display": "summarized"}}),
    (ReasoningIntent(mode="adaptive"), CLAUDE_46, {"thinking": {"type": "adaptive", "display": "summarized"}}),
    (ReasoningIntent("minimal"), GPT, {"reasoning": {"effort": "low"}}),
    (ReasoningIntent("xhigh"), GPT, {"reasoning": {"effort": "xhigh"}}),
    (ReasoningIntent(mode="disabled"), GPT, {"reasoning": {"effort": "none"}}),
    (ReasoningIntent(mode="adaptive"), GPT, {}),
    (ReasoningIntent(), CLAUDE_46, {}),  # no intent: the service default
    (ReasoningIntent("high"), None, {}),  # schema-less model: never any field
])
def test_request_fields(intent: ReasoningIntent, schema: dict | None, fields: dict) -> None:
    assert r.request_fields(intent, schema) == fields


def test_fields_never_leave_the_schema() -> None:
    only_effort = {"type": "object", "additionalProperties": False, "properties": {
        "output_config": {"type": "object", "properties": {"effort": {"type": "string", "enum": ["low", "high"]}}}}}
    assert r.request_fields(ReasoningIntent("medium", "adaptive"), only_effort) == {"output_config": {"effort": "low"}}
    no_display = r._claude_schema(["high"], ["adaptive"], None, displays=())
    assert r.request_fields(ReasoningIntent("high"), no_display) == {
        "output_config": {"effort": "high"}, "thinking": {"type": "adaptive"}}
    assert r.prune({"thinking": {"display": "summarized"}}, CLAUDE_46) is None  # required `type` missing
    assert r.prune({"max_tokens": 128001}, CLAUDE_46) is None


def test_max_tokens_only_when_asked_and_clamped() -> None:
    assert "max_tokens" not in r.request_fields(ReasoningIntent("high"), CLAUDE_46)
    assert r.request_fields(ReasoningIntent("high"), CLAUDE_46, max_tokens=200000)["max_tokens"] == 64000
    assert r.request_fields(ReasoningIntent("high"), CLAUDE_46, max_tokens=10)["max_tokens"] == 1024
    assert "max_tokens" not in r.request_fields(ReasoningIntent("high"), GPT, max_tokens=5000)


def test_envelope_round_trip_and_foreign_tokens() -> None:
    token = r.seal("summary", "sig-1", None)
    assert token.startswith(r.ENVELOPE_PREFIX)
    assert r.unseal(token) == ReasoningReplay(text="summary", signature="sig-1")
    assert r.unseal(r.seal("", None, "QUJD")) == ReasoningReplay(redacted="QUJD")
    assert r.unseal("gAAAAABopenai-encrypted") is None
    assert r.unseal(r.ENVELOPE_PREFIX + "!!!") is None


def test_placeholder_signatures_are_recognised() -> None:
    assert r.is_placeholder_signature("sig_" + "a" * 32)
    assert not r.is_placeholder_signature("EqQBCkYIBxgCKkA")


def _conversation(intent: ReasoningIntent, **extra: object) -> Conversation:
    history = [Message("user", "q1"), Message("assistant", "a1", reasoning=ReasoningReplay("why", "sig-1")),
               Message("user", "q2")]
    return Conversation(model="m", messages=history, reasoning=intent,
                        thinking=ThinkingRequest(enabled=True, budget_tokens=2000), **extra)  # type: ignore[arg-type]


def test_payload_native_model_gets_fields_replay_and_no_tags() -> None:
    req = build_kiro_request(_conversation(ReasoningIntent("high")), "claude-sonnet-4.6", ConversionOptions(), "c",
                             request_fields_schema=CLAUDE_46)
    state = req.payload["conversationState"]
    assert req.payload["additionalModelRequestFields"]["output_config"] == {"effort": "high"}
    assert state["history"][1]["assistantResponseMessage"]["reasoningContent"] == {
        "reasoningText": {"text": "why", "signature": "sig-1"}}
    assert "<thinking_mode>" not in state["currentMessage"]["userInputMessage"]["content"]
    assert req.replays_reasoning
    again = build_kiro_request(_conversation(ReasoningIntent("high")), "claude-sonnet-4.6", ConversionOptions(), "c",
                               request_fields_schema=CLAUDE_46, replay_reasoning=False)
    assert "reasoningContent" not in str(again.payload) and not again.replays_reasoning


def test_payload_schema_less_model_gets_tags_only() -> None:
    req = build_kiro_request(_conversation(ReasoningIntent("high")), "claude-sonnet-4.5", ConversionOptions(), "c")
    assert "additionalModelRequestFields" not in req.payload
    assert "reasoningContent" not in str(req.payload)
    assert "<thinking_mode>enabled" in req.payload["conversationState"]["currentMessage"]["userInputMessage"]["content"]


def test_payload_max_tokens_behind_option() -> None:
    conv = _conversation(ReasoningIntent("high"), max_tokens=32000)
    plain = build_kiro_request(conv, "x", ConversionOptions(), "c", request_fields_schema=CLAUDE_46)
    assert "max_tokens" not in plain.payload["additionalModelRequestFields"]
    opted = build_kiro_request(conv, "x", ConversionOptions(native_reasoning_max_tokens=True), "c",
                               request_fields_schema=CLAUDE_46)
    assert opted.payload["additionalModelRequestFields"]["max_tokens"] == 32000


def test_static_table_covers_the_reference_models() -> None:
    assert r.static_schema("claude-opus-4.8") is not None and r.static_schema("gpt-5.6-luna") is not None
    assert r.static_schema("claude-sonnet-4.5") is None
