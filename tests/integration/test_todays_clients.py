"""What the newest Claude Code and Codex send, end to end through the gateway process (issue 19): per-turn effort,
`thinking.display: "omitted"`, `clear_thinking`, mid-conversation system messages and byte stability, deferred tools,
reasoning that Kiro would refuse, the compaction wording, unknown betas and Codex's WebSocket attempt.

The fake Kiro refuses replayed signatures under another model or without a tool they were minted with, like the
real service (docs/protocol.md §Replaying reasoning), so "one upstream request" means the gateway left that
reasoning out itself.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from kiro_core.convert.reasoning import unbind_signature
from tests.support.fake_kiro import DEFAULT_MODELS, REASONING_MODELS, FakeKiro, Status, text_stream
from tests.support.fake_kiro_checks import fake_signature
from tests.support.fake_kiro_scripts import reasoning_stream
from tests.support.gateway_process import GatewayProcess
from tests.support.sdk_clients import TEST_API_KEY, anthropic_client, openai_client

SUMMARY = "Three steps: read, think, answer."
TOO_LARGE = {"message": "Input is too long.", "reason": "CONTENT_LENGTH_EXCEEDS_THRESHOLD"}


@pytest.fixture(scope="module")
def fake() -> Iterator[FakeKiro]:
    with FakeKiro() as server:
        server.set_models(DEFAULT_MODELS + REASONING_MODELS)
        yield server


@pytest.fixture(scope="module")
def gateway(local_gateway: GatewayProcess) -> GatewayProcess:
    return local_gateway


def payloads(fake: FakeKiro) -> list[dict[str, Any]]:
    return [r.json for r in fake.requests("chat")]


def current(payload: dict[str, Any]) -> dict[str, Any]:
    return payload["conversationState"]["currentMessage"]["userInputMessage"]


def tool(name: str, **extra: Any) -> dict[str, Any]:
    return {"name": name, "description": f"{name} tool", "input_schema": {"type": "object", "properties": {}},
            **extra}


def tool_names(payload: dict[str, Any]) -> list[str]:
    tools = (current(payload).get("userInputMessageContext") or {}).get("tools") or []
    return [t["toolSpecification"]["name"] for t in tools]


def reasoned_turn(gateway: GatewayProcess, fake: FakeKiro, model: str, **params: Any) -> list[dict[str, Any]]:
    """One streamed answer with native reasoning; the conversation with that answer replayed, plus a new question."""
    messages: list[dict[str, Any]] = [{"role": "user", "content": "Plan it."}]
    fake.enqueue_chat(reasoning_stream("Done.", SUMMARY))
    with anthropic_client(gateway).messages.stream(model=model, max_tokens=32000, messages=messages,
                                                   **params) as stream:
        final = stream.get_final_message()
    answer = {"role": "assistant", "content": [b.model_dump(exclude_none=True) for b in final.content]}
    return [*messages, answer, {"role": "user", "content": "Next?"}]


# ---------------------------------------------------------------- per-turn effort


@pytest.mark.parametrize(("messages", "effort"), [
    # the last turn's message-level effort governs, clamped to the schema (Sonnet 4.6 has no xhigh → high)
    ([{"role": "user", "content": "q"}, {"role": "system", "content": "env", "output_config": {"effort": "xhigh"}}],
     "high"),
    ([{"role": "user", "content": "q", "output_config": {"effort": "max"}}], "max"),
    # an earlier turn's message-level effort governed that turn only: the top-level one applies now
    ([{"role": "user", "content": "q"}, {"role": "system", "content": "env", "output_config": {"effort": "max"}},
      {"role": "assistant", "content": "a"}, {"role": "user", "content": "q2"}], "low"),
])
def test_message_level_effort_governs_its_turn(gateway: GatewayProcess, fake: FakeKiro,
                                               messages: list[dict[str, Any]], effort: str) -> None:
    fake.enqueue_chat(text_stream("ok"))
    anthropic_client(gateway).messages.create(model="claude-sonnet-4-6", max_tokens=32000, messages=messages,
                                              thinking={"type": "adaptive"},
                                              extra_body={"output_config": {"effort": "low"}})
    (payload,) = payloads(fake)
    assert payload["additionalModelRequestFields"]["output_config"] == {"effort": effort}


# ---------------------------------------------------------------- display omitted


def test_display_omitted_streams_signed_thinking_without_text_and_replays_it(gateway: GatewayProcess,
                                                                              fake: FakeKiro) -> None:
    messages = reasoned_turn(gateway, fake, "claude-sonnet-4-6", thinking={"type": "adaptive", "display": "omitted"},
                             extra_body={"output_config": {"effort": "high"}})
    thinking = messages[1]["content"][0]
    assert thinking["type"] == "thinking" and thinking["thinking"] == "" and thinking["signature"]
    assert SUMMARY not in json.dumps(messages)  # the client never sees the text...
    assert payloads(fake)[0]["additionalModelRequestFields"]["thinking"] == {"type": "adaptive",
                                                                             "display": "omitted"}
    fake.clear_requests()
    fake.enqueue_chat(text_stream("Next."))
    anthropic_client(gateway).messages.create(model="claude-sonnet-4-6", max_tokens=32000, messages=messages,
                                              thinking={"type": "adaptive", "display": "omitted"})
    (payload,) = payloads(fake)  # ...yet Kiro gets back exactly what it signed: accepted on the first request
    replayed = payload["conversationState"]["history"][1]["assistantResponseMessage"]["reasoningContent"]
    assert replayed == {"reasoningText": {"text": SUMMARY, "signature": fake_signature(SUMMARY)}}


def test_display_omitted_without_streaming(gateway: GatewayProcess, fake: FakeKiro) -> None:
    fake.enqueue_chat(reasoning_stream("Done.", SUMMARY))
    message = anthropic_client(gateway).messages.create(
        model="claude-sonnet-4-6", max_tokens=32000, messages=[{"role": "user", "content": "Plan it."}],
        thinking={"type": "adaptive", "display": "omitted"}, extra_body={"output_config": {"effort": "high"}})
    thinking = message.content[0]
    assert thinking.type == "thinking" and thinking.thinking == ""
    assert unbind_signature(thinking.signature, "").signature == fake_signature(SUMMARY)


# ---------------------------------------------------------------- clear_thinking


def _three_signed_turns() -> list[dict[str, Any]]:
    messages: list[dict[str, Any]] = []
    for number in range(3):
        summary = f"Thought {number}."
        messages += [{"role": "user", "content": f"q{number}"},
                     {"role": "assistant", "content": [
                         {"type": "thinking", "thinking": summary, "signature": fake_signature(summary)},
                         {"type": "text", "text": f"a{number}"}]}]
    return [*messages, {"role": "user", "content": "last"}]


@pytest.mark.parametrize(("keep", "kept"), [
    ({"type": "thinking_turns", "value": 1}, [False, False, True]),
    ({"type": "thinking_turns", "value": 2}, [False, True, True]),
    ("all", [True, True, True]),
    (None, [False, False, True]),  # no keep: Anthropic's default, the last turn
])
def test_clear_thinking_keeps_the_newest_turns(gateway: GatewayProcess, fake: FakeKiro, keep: Any,
                                               kept: list[bool]) -> None:
    edit: dict[str, Any] = {"type": "clear_thinking_20251015", **({"keep": keep} if keep is not None else {})}
    fake.enqueue_chat(text_stream("ok"))
    anthropic_client(gateway).messages.create(
        model="claude-sonnet-4-6", max_tokens=32000, messages=_three_signed_turns(), thinking={"type": "adaptive"},
        extra_body={"output_config": {"effort": "high"},
                    "context_management": {"edits": [edit, {"type": "clear_tool_uses_20250919"}]}},
        extra_headers={"anthropic-beta": "context-management-2025-06-27,some-future-beta-2031-01-01"})
    (payload,) = payloads(fake)
    history = payload["conversationState"]["history"]
    assistants = [e["assistantResponseMessage"] for e in history if "assistantResponseMessage" in e]
    assert ["reasoningContent" in a for a in assistants] == kept


# ---------------------------------------------------------------- mid-conversation system messages


def test_mid_conversation_system_message_keeps_its_place_and_the_history_its_bytes(gateway: GatewayProcess,
                                                                                    fake: FakeKiro) -> None:
    api = anthropic_client(gateway)
    session = {"metadata": {"user_id": json.dumps({"session_id": "7f8e3d51-5f0e-4c1b-9b2a-1d2c3b4a5e6f"})}}
    turn_one = [{"role": "user", "content": "first question"}, {"role": "assistant", "content": "first answer"},
                {"role": "user", "content": "second question"}]
    turn_two = [*turn_one, {"role": "assistant", "content": "second answer"},
                {"role": "system", "content": "Plan mode is now on.", "output_config": {"effort": "high"}},
                {"role": "user", "content": "third question"}]
    for messages in (turn_one, turn_two):
        fake.enqueue_chat(text_stream("ok"))
        api.messages.create(model="claude-sonnet-4-5", max_tokens=1000, system="You are helpful.",
                            messages=messages, extra_body=session)
    first, second = fake.requests("chat")
    assert first.json["conversationState"]["conversationId"] == second.json["conversationState"]["conversationId"]
    history_one = first.body[:first.body.index(b'],"currentMessage":')]
    assert second.body.startswith(history_one)  # nothing before the system message moved
    assert "Plan mode" not in json.dumps(second.json["conversationState"]["history"])
    # it opens its own turn (after the per-request thinking tags, which are never in history)
    assert current(second.json)["content"].endswith("</thinking_instruction>\n\nPlan mode is now on.\n\nthird question")


# ---------------------------------------------------------------- deferred tools


def test_deferred_tools_are_sent_once_referenced(gateway: GatewayProcess, fake: FakeKiro) -> None:
    tools = [tool("Read"), tool("ToolSearch"), *(tool(f"mcp__many__t{i}", defer_loading=True) for i in range(20))]
    messages: list[dict[str, Any]] = [{"role": "user", "content": "Use the t7 tool."}]
    api = anthropic_client(gateway)
    fake.enqueue_chat(text_stream("ok"), text_stream("ok"))
    api.messages.create(model="claude-sonnet-4-5", max_tokens=1000, messages=messages, tools=tools)
    messages += [
        {"role": "assistant", "content": [{"type": "tool_use", "id": "toolu_s", "name": "ToolSearch",
                                           "input": {"query": "t7"}}]},
        {"role": "user", "content": [{"type": "tool_result", "tool_use_id": "toolu_s",
                                      "content": [{"type": "tool_reference", "tool_name": "mcp__many__t7"}]}]},
    ]
    api.messages.create(model="claude-sonnet-4-5", max_tokens=1000, messages=messages, tools=tools)
    before, after = payloads(fake)
    assert tool_names(before) == ["Read", "ToolSearch"]
    assert tool_names(after) == ["Read", "ToolSearch", "mcp__many__t7"]
    result = current(after)["userInputMessageContext"]["toolResults"][0]
    assert "mcp__many__t7" in result["content"][0]["text"]  # the reference is understood, not dropped


# ---------------------------------------------------------------- reasoning Kiro would refuse


def test_model_switch_drops_reasoning_before_the_request(gateway: GatewayProcess, fake: FakeKiro) -> None:
    messages = reasoned_turn(gateway, fake, "claude-sonnet-4-6", thinking={"type": "adaptive"},
                             extra_body={"output_config": {"effort": "high"}})
    fake.clear_requests()
    fake.enqueue_chat(text_stream("Switched."))
    answer = anthropic_client(gateway).messages.create(model="claude-opus-5-5", max_tokens=32000, messages=messages,
                                                       thinking={"type": "adaptive"})
    assert answer.content[-1].text == "Switched."
    (payload,) = payloads(fake)  # exactly one upstream request: no 400, no retry
    assert "reasoningContent" not in json.dumps(payload)
    # ...and back on the model that minted it, the same reasoning is replayed and accepted
    fake.clear_requests()
    fake.enqueue_chat(text_stream("Back."))
    anthropic_client(gateway).messages.create(model="claude-sonnet-4-6", max_tokens=32000, messages=messages,
                                              thinking={"type": "adaptive"})
    (payload,) = payloads(fake)
    assert "reasoningContent" in payload["conversationState"]["history"][1]["assistantResponseMessage"]


def test_responses_model_switch_drops_sealed_reasoning_before_the_request(gateway: GatewayProcess,
                                                                          fake: FakeKiro) -> None:
    api = openai_client(gateway)
    history: list[Any] = [{"role": "user", "content": "Plan it."}]
    fake.enqueue_chat(reasoning_stream("Done.", SUMMARY))
    with api.responses.stream(model="claude-sonnet-4.6", input=history, store=False, reasoning={"effort": "high"},
                              include=["reasoning.encrypted_content"]) as stream:
        final = stream.get_final_response()
    history += [*(i.model_dump(exclude_none=True) for i in final.output), {"role": "user", "content": "Next?"}]
    fake.clear_requests()
    fake.enqueue_chat(text_stream("Switched."))
    assert api.responses.create(model="claude-opus-5.5", input=history, store=False).output_text == "Switched."
    (payload,) = payloads(fake)  # one request: the reasoning minted under Sonnet 4.6 was left out
    assert "reasoningContent" not in json.dumps(payload)


@pytest.mark.parametrize(("later_tools", "replayed"), [(["Read"], False), (["Read", "Write", "Grep"], True)])
def test_reasoning_minted_with_a_tool_since_removed_is_dropped(gateway: GatewayProcess, fake: FakeKiro,
                                                               later_tools: list[str], replayed: bool) -> None:
    tools = [tool("Read"), tool("Write")]
    messages = reasoned_turn(gateway, fake, "claude-sonnet-4-6", thinking={"type": "adaptive"}, tools=tools,
                             extra_body={"output_config": {"effort": "high"}})
    fake.clear_requests()
    fake.enqueue_chat(text_stream("ok"))
    anthropic_client(gateway).messages.create(model="claude-sonnet-4-6", max_tokens=32000, messages=messages,
                                              thinking={"type": "adaptive"},
                                              tools=[tool(name) for name in later_tools])
    (payload,) = payloads(fake)
    assert ("reasoningContent" in json.dumps(payload)) is replayed


# ---------------------------------------------------------------- compaction wording


def test_size_rejection_is_worded_for_each_api(gateway: GatewayProcess, fake: FakeKiro) -> None:
    import anthropic
    import openai

    messages = [{"role": "user", "content": "word " * 3000}]
    fake.enqueue_chat([Status(400, TOO_LARGE)])
    with pytest.raises(anthropic.BadRequestError) as caught:
        anthropic_client(gateway).messages.create(model="claude-sonnet-4-6", max_tokens=1000, messages=messages)
    message = caught.value.body["error"]["message"]
    tokens, maximum = message.removeprefix("prompt is too long: ").split(" tokens > ")
    assert message.startswith("prompt is too long: ") and maximum == "1000000 maximum"  # the catalogue's context
    count = httpx.post(f"{gateway.url}/v1/messages/count_tokens", headers={"x-api-key": TEST_API_KEY},
                       json={"model": "claude-sonnet-4-6", "messages": messages}).json()["input_tokens"]
    assert int(tokens) == count  # the gateway's own estimate of this request
    fake.enqueue_chat([Status(400, TOO_LARGE)])
    with pytest.raises(openai.BadRequestError) as raised:
        openai_client(gateway).chat.completions.create(model="claude-sonnet-4.6", messages=messages)
    assert raised.value.code == "context_length_exceeded"
    assert len(fake.requests("chat")) == 2  # no retry, no failover


# ---------------------------------------------------------------- Codex's WebSocket attempt


def test_codex_websocket_upgrade_is_refused_at_once(gateway: GatewayProcess, fake: FakeKiro) -> None:
    headers = {"Authorization": f"Bearer {TEST_API_KEY}", "Connection": "Upgrade", "Upgrade": "websocket",
               "Sec-WebSocket-Version": "13", "Sec-WebSocket-Key": "dGhlIHNhbXBsZSBub25jZQ==",
               "OpenAI-Beta": "responses_websockets=2026-02-06"}
    answer = httpx.get(f"{gateway.url}/v1/responses", headers=headers)
    assert answer.status_code == 426  # Codex falls back to HTTP on 426 without retrying
    assert answer.json()["error"]["message"]
    assert httpx.get(f"{gateway.url}/v1/responses",
                     headers={"Authorization": f"Bearer {TEST_API_KEY}"}).status_code == 405
    assert fake.requests("chat") == []
