"""Pure pieces of issue 19: per-turn effort, deferred tools, clear_thinking, display, and reasoning bound to the model
and tools Kiro minted it under (`kiro_core.convert.reasoning.bind_signature` / `seal`)."""

from __future__ import annotations

from typing import Any

import pytest

from kiro_core.convert import reasoning
from kiro_core.convert.kiro import build_kiro_request
from kiro_core.convert.options import ConversionOptions
from kiro_core.errors import ErrorKind, GatewayError, anthropic_error_body, openai_error_body, prompt_too_long_message
from kiro_core.unified import ReasoningReplay
from tests.unit.test_convert_anthropic import convert, user

SCHEMA = reasoning.STATIC_SCHEMAS["claude-opus-4.6"]  # low, medium, high, max: no xhigh


def signed(text: str, signature: str) -> dict[str, Any]:
    return {"role": "assistant", "content": [{"type": "thinking", "thinking": text, "signature": signature},
                                             {"type": "text", "text": "a"}]}


def test_signature_round_trip_keeps_kiros_signature_and_says_where_it_was_minted() -> None:
    wrapped = reasoning.bind_signature("EqQBupstream.with.dots", "claude-opus-5.5", ["Read", "Bash"])
    replay = reasoning.unbind_signature(wrapped, "shown")
    assert replay.signature == "EqQBupstream.with.dots" and replay.text == "shown"
    assert replay.minted_model == "claude-opus-5.5" and len(replay.minted_tools or ()) == 2
    hidden = reasoning.unbind_signature(reasoning.bind_signature("sig", "m", [], "the hidden summary"), "")
    assert hidden.text == "the hidden summary"  # display "omitted": Kiro gets back the text it signed
    assert reasoning.unbind_signature("EqQBplain", "t") == ReasoningReplay(text="t", signature="EqQBplain")
    assert reasoning.unbind_signature("kgs1.!!notbase64.sig", "t").signature == "kgs1.!!notbase64.sig"


@pytest.mark.parametrize(("model", "tools", "ok"), [
    ("claude-opus-5.5", ["Read", "Bash"], True),
    ("claude-opus-5.5", ["Bash", "Read", "Write"], True),  # a tool added: still valid
    ("claude-opus-5.5", ["Read"], False),  # a tool gone
    ("claude-sonnet-5", ["Read", "Bash"], False),  # another model
])
def test_replayable(model: str, tools: list[str], ok: bool) -> None:
    replay = reasoning.unbind_signature(reasoning.bind_signature("s", "claude-opus-5.5", ["Read", "Bash"]), "")
    assert reasoning.replayable(replay, model, tools) is ok
    assert reasoning.replayable(ReasoningReplay(text="t", signature="s"), model, tools)  # unknown origin: sent


def test_sealed_reasoning_carries_its_binding() -> None:
    sealed = reasoning.seal("summary", "sig", None, ("gpt-5.6-sol", ["exec_command"]))
    replay = reasoning.unseal(sealed)
    assert replay is not None and replay.signature == "sig" and replay.minted_model == "gpt-5.6-sol"
    assert not reasoning.replayable(replay, "gpt-5.6-sol", [])


def test_payload_leaves_out_reasoning_kiro_would_refuse() -> None:
    other = reasoning.bind_signature("EqQBother", "claude-sonnet-5", [])
    same = reasoning.bind_signature("EqQBsame", "claude-opus-4.6", [])
    conversation = convert(messages=[user("q1"), signed("t1", other), user("q2"), signed("t2", same), user("q3")])
    request = build_kiro_request(conversation, "claude-opus-4.6", ConversionOptions(), "cid",
                                 request_fields_schema=SCHEMA)
    history = request.payload["conversationState"]["history"]
    assert "reasoningContent" not in history[1]["assistantResponseMessage"]
    assert history[3]["assistantResponseMessage"]["reasoningContent"]["reasoningText"]["signature"] == "EqQBsame"


def test_per_turn_effort_and_display() -> None:
    c = convert(messages=[user("q"), {"role": "system", "content": "env", "output_config": {"effort": "xhigh"}}],
                output_config={"effort": "low"}, thinking={"type": "adaptive", "display": "omitted"})
    assert (c.reasoning.effort, c.reasoning.display) == ("xhigh", "omitted")
    assert reasoning.request_fields(c.reasoning, SCHEMA) == {
        "output_config": {"effort": "high"}, "thinking": {"type": "adaptive", "display": "omitted"}}


def test_deferred_tools_wait_for_a_reference() -> None:
    tools = [{"name": "Read", "input_schema": {"type": "object"}},
             {"name": "mcp__a__x", "input_schema": {"type": "object"}, "defer_loading": True},
             {"name": "mcp__a__y", "input_schema": {"type": "object"}, "defer_loading": True}]
    assert [t.name for t in convert(tools=tools, messages=[user("q")]).tools] == ["Read"]
    referenced = [user("q"), {"role": "assistant", "content": [
        {"type": "tool_use", "id": "s", "name": "ToolSearch", "input": {"query": "y"}}]},
        user({"type": "tool_result", "tool_use_id": "s",
              "content": [{"type": "tool_reference", "tool_name": "mcp__a__y"}]})]
    c = convert(tools=tools, messages=referenced)
    assert [t.name for t in c.tools] == ["Read", "mcp__a__y"]
    assert c.messages[-1].tool_results[0].content == "Tool loaded: mcp__a__y"


@pytest.mark.parametrize(("edits", "kept"), [
    ([{"type": "clear_thinking_20251015", "keep": {"type": "thinking_turns", "value": 1}}], [False, True]),
    ([{"type": "clear_thinking_20251015", "keep": "all"}], [True, True]),
    ([{"type": "clear_thinking_20251015", "keep": {"type": "thinking_turns", "value": 0}}], [False, False]),
    ([{"type": "clear_tool_uses_20250919"}], [True, True]),  # accepted, ignored
    ([{"type": "clear_thinking_20251015", "keep": {"type": "a_future_unit", "value": "x"}}], [True, True]),
])
def test_clear_thinking(edits: list[dict[str, Any]], kept: list[bool]) -> None:
    c = convert(messages=[user("q1"), signed("t1", "EqQB1"), user("q2"), signed("t2", "EqQB2"), user("q3")],
                context_management={"edits": edits})
    assert [m.reasoning is not None for m in c.messages if m.role == "assistant"] == kept


def test_too_long_is_worded_for_anthropic_and_keeps_openais_code() -> None:
    error = GatewayError(ErrorKind.CONTEXT_TOO_LONG, "The conversation is too large for Kiro.")
    error.anthropic_message = prompt_too_long_message(210345, 200000)
    assert anthropic_error_body(error)["error"]["message"] == "prompt is too long: 210345 tokens > 200000 maximum"
    assert openai_error_body(error)["error"]["code"] == "context_length_exceeded"
