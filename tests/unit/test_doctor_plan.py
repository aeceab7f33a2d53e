"""The doctor's pure half: model choice per family, request fields from the schema, the probe body, the census."""

from __future__ import annotations

import json

import pytest

from gateway.cli.doctor import Check, Report, _fix_for, describe_plan, mask_arn
from kiro_core.doctor_plan import Probe, StreamCensus, default_models, family_of, plan, probe_payload, request_fields
from tests.support import frames
from tests.support.fake_kiro import DEFAULT_MODELS, claude_fields_schema, gpt_fields_schema


@pytest.mark.parametrize(
    ("model_id", "family"),
    [("claude-opus-5.5", "claude-opus"), ("claude-sonnet-4", "claude-sonnet"), ("claude-haiku-4.5", "claude-haiku"),
     ("claude-fable-5.1", "claude"), ("gpt-5.6-sol", "gpt"), ("qwen3-coder-next", "qwen3"), ("glm-5", "glm"),
     ("minimax-m2.5", "minimax"), ("kimi-k3", "kimi")],
)
def test_families(model_id: str, family: str) -> None:
    assert family_of(model_id) == family


def test_default_models_one_per_family_preferring_a_schema_then_the_cheapest() -> None:
    chosen = default_models(DEFAULT_MODELS)
    assert chosen == ["claude-sonnet-4.6", "claude-haiku-4.5", "claude-opus-5.5", "gpt-5.6-luna", "deepseek-3.2",
                      "glm-5", "minimax-m2.5", "qwen3-coder-next"]
    assert default_models([{"modelId": "auto"}, {"modelName": "no id"}]) == []


def test_request_fields_use_the_lowest_effort_of_the_schema() -> None:
    claude = request_fields(claude_fields_schema(("max", "medium", "low"), ("adaptive", "disabled"), 128000))
    assert claude == {"output_config": {"effort": "low"}, "thinking": {"type": "adaptive", "display": "summarized"}}
    assert request_fields(gpt_fields_schema()) == {"reasoning": {"effort": "low"}}  # never "none"
    no_adaptive = claude_fields_schema(("high",), ("disabled",), 64000)
    assert request_fields(no_adaptive) == {"output_config": {"effort": "high"}}
    assert request_fields(None) is None and request_fields({"type": "object"}) is None


def test_plan_keeps_order_dedupes_and_probes_unknown_models_without_fields() -> None:
    probes = plan(DEFAULT_MODELS, ["GPT-5.6-SOL", "kimi-k3", "gpt-5.6-sol"])
    assert probes == [Probe("gpt-5.6-sol", 4.4, {"reasoning": {"effort": "low"}}), Probe("kimi-k3", None, None)]


def test_probe_payload() -> None:
    body = json.loads(probe_payload(Probe("claude-opus-5.5", 2.0, {"output_config": {"effort": "low"}}), "c-1", "arn"))
    assert body["profileArn"] == "arn" and body["additionalModelRequestFields"] == {"output_config": {"effort": "low"}}
    message = body["conversationState"]["currentMessage"]["userInputMessage"]
    assert message["modelId"] == "claude-opus-5.5" and message["origin"] == "AI_EDITOR"
    bare = json.loads(probe_payload(Probe("glm-5", None, None), "c-2"))
    assert "additionalModelRequestFields" not in bare and "profileArn" not in bare


def test_census_counts_frames_credits_text_and_errors_across_odd_chunks() -> None:
    stream = b"".join([frames.reasoning("thinking"), frames.reasoning("", "sig"), frames.text("o"), frames.text("k"),
                       frames.metadata_stop(), frames.context_usage(1.5), frames.metering(0.02), frames.metering(0.01),
                       frames.exception_frame("ThrottlingException", "Rate exceeded")])
    census = StreamCensus()
    for start in range(0, len(stream), 7):
        census.feed(stream[start:start + 7])
    assert census.reasoning and census.events["reasoningContentEvent"] == 2 and census.text == "ok"
    assert census.usage_seen() == ["meteringEvent", "contextUsageEvent", "metadataEvent"]
    assert census.credits == pytest.approx(0.03)
    assert census.errors == ["ThrottlingException: Rate exceeded"]


def test_census_stops_at_a_corrupt_frame() -> None:
    bad = bytearray(frames.text("x"))
    bad[-1] ^= 0xFF
    census = StreamCensus()
    census.feed(bytes(bad) + frames.metering(1.0))
    assert census.errors and census.credits == 0.0


def test_arn_masking_and_plan_text() -> None:
    masked = mask_arn("arn:aws:codewhisperer:us-east-1:699475941385:profile/FAKEPROFILE01")
    assert masked == "arn:aws:codewhisperer:us-east-1:****:profile/…LE01" and "699475941385" not in masked
    assert mask_arn("") == "(none)"
    text = describe_plan([Probe("claude-opus-5.5", 2.0, {"output_config": {"effort": "low"}}), Probe("x", None, None)])
    assert "2 streamed request(s)" in text and "rateMultiplier 2" in text and "effort low" in text
    assert "rate unknown" in text


@pytest.mark.parametrize(
    ("status", "message", "setting"),
    [(400, "Kiro API error 400: Kiro does not know this model.", "--models"),
     (400, "profileArn is required for this request.", "PROFILE_ARN"),
     (403, "The bearer token included in the request is invalid.", "REFRESH_TOKEN"),
     (429, "Too many requests", "MAX_RETRIES"),
     (None, "connection refused", "KIRO_API_REGION")],
)
def test_every_failure_names_a_setting(status: int | None, message: str, setting: str) -> None:
    assert setting in _fix_for(status, message)


def test_report_json_shape_and_verdict() -> None:
    report = Report(catalog=["a"], credits=0.5)
    report.add("one", True, "fine")
    report.checks.append(Check("two", False, "broken", "SET_THIS"))
    assert report.as_json() == {"ok": False, "catalog": ["a"], "credits": 0.5, "checks": [
        {"name": "one", "ok": True, "detail": "fine"},
        {"name": "two", "ok": False, "detail": "broken (fix: SET_THIS)"}]}
    assert not Report().ok
