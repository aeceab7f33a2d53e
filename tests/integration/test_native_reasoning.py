"""Native reasoning end to end: official SDKs → the real gateway → a fake Kiro whose catalogue advertises
`additionalModelRequestFieldsSchema`s and which validates fields and replayed signatures like the real service."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from kiro_core.convert.reasoning import unbind_signature
from kiro_core.unified import ReasoningReplay
from tests.integration.conftest import gateway_env
from tests.support.fake_kiro import DEFAULT_MODELS, REASONING_MODELS, FakeKiro, text_stream
from tests.support.fake_kiro_checks import fake_signature
from tests.support.fake_kiro_scripts import gpt_reasoning_stream, reasoning_stream, redacted_stream
from tests.support.gateway_process import GatewayProcess
from tests.support.sdk_clients import anthropic_client, openai_client

SUMMARY = "Two plus two is four, simple arithmetic."


@pytest.fixture(scope="module")
def fake() -> Iterator[FakeKiro]:
    with FakeKiro() as server:
        server.set_models(DEFAULT_MODELS + REASONING_MODELS)
        yield server


@pytest.fixture(scope="module")
def gateway(local_gateway: GatewayProcess) -> GatewayProcess:
    return local_gateway


claude = anthropic_client
gpt = openai_client


def last_payload(fake: FakeKiro) -> dict[str, Any]:
    return fake.requests("chat")[-1].json


def current_content(payload: dict[str, Any]) -> str:
    return payload["conversationState"]["currentMessage"]["userInputMessage"]["content"]


# ---------------------------------------------------------------- effort reaches the payload


@pytest.mark.parametrize(("model", "params", "fields"), [
    ("claude-sonnet-4-6", {"thinking": {"type": "enabled", "budget_tokens": 31999}},
     {"output_config": {"effort": "high"}, "thinking": {"type": "adaptive", "display": "summarized"}}),
    ("claude-sonnet-4-6", {"extra_body": {"output_config": {"effort": "xhigh"}}},
     {"output_config": {"effort": "high"}, "thinking": {"type": "adaptive", "display": "summarized"}}),
    ("claude-sonnet-4-6", {"thinking": {"type": "disabled"}}, {"thinking": {"type": "disabled"}}),
    ("claude-opus-5-5", {"thinking": {"type": "disabled"}},
     {"output_config": {"effort": "low"}, "thinking": {"type": "adaptive", "display": "summarized"}}),
    ("claude-sonnet-4-6", {}, None),  # no effort named: the service default
])
def test_anthropic_effort_is_clamped_per_model(gateway: GatewayProcess, fake: FakeKiro, model: str,
                                               params: dict[str, Any], fields: dict[str, Any] | None) -> None:
    fake.enqueue_chat(text_stream("ok"))
    message = claude(gateway).messages.create(model=model, max_tokens=32000,
                                              messages=[{"role": "user", "content": "2+2?"}], **params)
    assert message.content[-1].text == "ok"
    payload = last_payload(fake)
    assert payload.get("additionalModelRequestFields") == fields
    assert "<thinking_mode>" not in current_content(payload)  # never tags next to (or instead of) native fields


def test_schema_less_model_gets_tags_and_no_fields(gateway: GatewayProcess, fake: FakeKiro) -> None:
    fake.enqueue_chat(text_stream("ok"))
    claude(gateway).messages.create(model="claude-sonnet-4-5", max_tokens=4000,
                                    thinking={"type": "enabled", "budget_tokens": 2048},
                                    extra_body={"output_config": {"effort": "high"}},
                                    messages=[{"role": "user", "content": "2+2?"}])
    payload = last_payload(fake)
    assert "additionalModelRequestFields" not in payload
    assert "<max_thinking_length>2048</max_thinking_length>" in current_content(payload)


@pytest.mark.parametrize(("model", "effort", "fields"), [
    ("claude-sonnet-4.6", "xhigh", {"output_config": {"effort": "high"},
                                    "thinking": {"type": "adaptive", "display": "summarized"}}),
    ("gpt-5.6-sol", "minimal", {"reasoning": {"effort": "low"}}),
    ("gpt-5.6-sol", "none", {"reasoning": {"effort": "none"}}),
    ("claude-sonnet-4.5", "high", None),
])
def test_openai_chat_reasoning_effort(gateway: GatewayProcess, fake: FakeKiro, model: str, effort: str,
                                      fields: dict[str, Any] | None) -> None:
    fake.enqueue_chat(text_stream("ok"))
    gpt(gateway).chat.completions.create(model=model, reasoning_effort=effort,  # type: ignore[arg-type]
                                         messages=[{"role": "user", "content": "hi"}])
    assert last_payload(fake).get("additionalModelRequestFields") == fields


@pytest.mark.parametrize(("model", "fields"), [
    ("claude-sonnet-4.6", {"output_config": {"effort": "max"},
                           "thinking": {"type": "adaptive", "display": "summarized"}}),
    ("gpt-5.6-sol", {"reasoning": {"effort": "max"}}),
    ("claude-sonnet-4.5", None),
])
def test_responses_reasoning_effort(gateway: GatewayProcess, fake: FakeKiro, model: str,
                                    fields: dict[str, Any] | None) -> None:
    fake.enqueue_chat(text_stream("ok"))
    gpt(gateway).responses.create(model=model, input="hi", reasoning={"effort": "max"})  # type: ignore[typeddict-item]
    assert last_payload(fake).get("additionalModelRequestFields") == fields


# ---------------------------------------------------------------- streaming and replay


def test_anthropic_thinking_and_signature_round_trip(gateway: GatewayProcess, fake: FakeKiro) -> None:
    api = claude(gateway)
    messages: list[dict[str, Any]] = [{"role": "user", "content": "2+2?"}]
    fake.enqueue_chat(reasoning_stream("Four.", SUMMARY))
    with api.messages.stream(model="claude-sonnet-4-6", max_tokens=32000, messages=messages,
                             thinking={"type": "enabled", "budget_tokens": 8000}) as stream:
        final = stream.get_final_message()
    thinking = final.content[0]
    assert thinking.type == "thinking" and thinking.thinking == SUMMARY
    # the upstream's, verbatim inside the gateway's envelope, which names the model (and tools) Kiro bound it to
    assert unbind_signature(thinking.signature, "") == ReasoningReplay(
        text="", signature=fake_signature(SUMMARY), minted_model="claude-sonnet-4.6", minted_tools=frozenset())
    assert final.content[1].text == "Four."

    messages += [{"role": "assistant", "content": [b.model_dump(exclude_none=True) for b in final.content]},
                 {"role": "user", "content": "And 3+3?"}]
    fake.enqueue_chat(text_stream("Six."))
    answer = api.messages.create(model="claude-sonnet-4-6", max_tokens=32000, messages=messages,
                                 thinking={"type": "enabled", "budget_tokens": 8000})
    assert answer.content[-1].text == "Six."
    assistant = last_payload(fake)["conversationState"]["history"][-1]["assistantResponseMessage"]
    assert assistant["reasoningContent"] == {"reasoningText": {"text": SUMMARY,
                                                               "signature": fake_signature(SUMMARY)}}
    assert len(fake.requests("chat")) == 2


def test_redacted_thinking_round_trip(gateway: GatewayProcess, fake: FakeKiro) -> None:
    api = claude(gateway)
    messages: list[dict[str, Any]] = [{"role": "user", "content": "secret?"}]
    fake.enqueue_chat(redacted_stream("Done.", "UkVEQUNURUQ="))
    first = api.messages.create(model="claude-sonnet-4-6", max_tokens=1000, messages=messages)
    assert [(b.type, getattr(b, "data", None)) for b in first.content] == [("redacted_thinking", "UkVEQUNURUQ="),
                                                                           ("text", None)]
    messages += [{"role": "assistant", "content": [b.model_dump(exclude_none=True) for b in first.content]},
                 {"role": "user", "content": "next"}]
    fake.enqueue_chat(text_stream("ok"))
    api.messages.create(model="claude-sonnet-4-6", max_tokens=1000, messages=messages)
    assistant = last_payload(fake)["conversationState"]["history"][-1]["assistantResponseMessage"]
    assert assistant["reasoningContent"] == {"redactedContent": "UkVEQUNURUQ="}


def _history_with_thinking(signature: str) -> list[dict[str, Any]]:
    return [{"role": "user", "content": "2+2?"},
            {"role": "assistant", "content": [{"type": "thinking", "thinking": SUMMARY, "signature": signature},
                                              {"type": "text", "text": "Four."}]},
            {"role": "user", "content": "And 3+3?"}]


def test_signature_rejection_strips_reasoning_and_retries_once(gateway: GatewayProcess, fake: FakeKiro) -> None:
    fake.enqueue_chat(text_stream("Six."))
    answer = claude(gateway).messages.create(model="claude-sonnet-4-6", max_tokens=1000,
                                             messages=_history_with_thinking("EqQBtampered"))
    assert answer.content[-1].text == "Six."
    first, second = fake.requests("chat")
    assert "reasoningContent" in str(first.json) and "reasoningContent" not in str(second.json)


def test_no_replay_to_a_schema_less_model_nor_of_placeholder_signatures(gateway: GatewayProcess,
                                                                         fake: FakeKiro) -> None:
    fake.enqueue_chat(text_stream("ok"), text_stream("ok"))
    api = claude(gateway)
    api.messages.create(model="claude-sonnet-4-5", max_tokens=100,
                        messages=_history_with_thinking(fake_signature(SUMMARY)))  # model changed: not sent
    api.messages.create(model="claude-sonnet-4-6", max_tokens=100,
                        messages=_history_with_thinking("sig_" + "0" * 32))  # our own placeholder: never sent
    assert [("reasoningContent" in str(r.json)) for r in fake.requests("chat")] == [False, False]


def test_openai_chat_streams_reasoning_content_without_signature(gateway: GatewayProcess, fake: FakeKiro) -> None:
    fake.enqueue_chat(reasoning_stream("Four.", SUMMARY, pieces=4))
    stream = gpt(gateway).chat.completions.create(model="claude-sonnet-4.6", stream=True, reasoning_effort="high",
                                                  messages=[{"role": "user", "content": "2+2?"}])
    reasoning, content = [], []
    for chunk in stream:
        if chunk.choices:
            delta = chunk.choices[0].delta
            reasoning.append(getattr(delta, "reasoning_content", None) or "")
            content.append(delta.content or "")
    assert "".join(reasoning) == SUMMARY and "".join(content) == "Four."
    assert fake_signature(SUMMARY) not in "".join(reasoning)


def test_responses_reasoning_item_and_encrypted_round_trip(gateway: GatewayProcess, fake: FakeKiro) -> None:
    api = gpt(gateway)
    history: list[Any] = [{"role": "user", "content": "2+2?"}]
    fake.enqueue_chat(reasoning_stream("Four.", SUMMARY))
    with api.responses.stream(model="claude-sonnet-4.6", input=history, store=False,
                              include=["reasoning.encrypted_content"]) as stream:
        final = stream.get_final_response()
    item = final.output[0]
    assert item.type == "reasoning" and item.summary[0].text == SUMMARY and item.encrypted_content
    history += [i.model_dump(exclude_none=True) for i in final.output]
    history.append({"role": "user", "content": "And 3+3?"})
    fake.enqueue_chat(text_stream("Six."))
    assert api.responses.create(model="claude-sonnet-4.6", input=history, store=False).output_text == "Six."
    assistant = last_payload(fake)["conversationState"]["history"][-1]["assistantResponseMessage"]
    assert assistant["reasoningContent"]["reasoningText"] == {"text": SUMMARY, "signature": fake_signature(SUMMARY)}


def test_responses_without_include_has_no_encrypted_content(gateway: GatewayProcess, fake: FakeKiro) -> None:
    fake.enqueue_chat(reasoning_stream("Four.", SUMMARY))
    final = gpt(gateway).responses.create(model="claude-sonnet-4.6", input="2+2?")
    assert final.output[0].type == "reasoning" and final.output[0].encrypted_content is None


def test_gpt_placeholder_is_hidden_and_its_blob_replayed(gateway: GatewayProcess, fake: FakeKiro) -> None:
    api = gpt(gateway)
    history: list[Any] = [{"role": "user", "content": "hi"}]
    fake.enqueue_chat(gpt_reasoning_stream("Hello!"))
    final = api.responses.create(model="gpt-5.6-sol", input=history, include=["reasoning.encrypted_content"],
                                 reasoning={"effort": "high"})
    kinds = [(i.type, getattr(i, "summary", None)) for i in final.output]
    assert sorted(kinds) == [("message", None), ("reasoning", [])]  # no "..." shown as a summary
    history += [i.model_dump(exclude_none=True) for i in final.output]
    history.append({"role": "user", "content": "again"})
    fake.enqueue_chat(text_stream("ok"))
    api.responses.create(model="gpt-5.6-sol", input=history)
    assistant = last_payload(fake)["conversationState"]["history"][-1]["assistantResponseMessage"]
    assert assistant["reasoningContent"]["reasoningText"] == {"text": "...", "signature": fake_signature("...")}


def test_static_table_only_behind_its_setting(tmp_path: Path) -> None:
    """No catalogue (ListAvailableModels failing): schema-less by default (tags), the built-in table when enabled."""
    with FakeKiro() as upstream:
        upstream.set_models(DEFAULT_MODELS + REASONING_MODELS)  # for the fake's own checks of the chat body
        upstream.fail_next("models", 500, times=100)
        for enabled, expected in (("false", None), ("true", {"output_config": {"effort": "low"}})):
            env = gateway_env(upstream, tmp_path, NATIVE_REASONING_STATIC_TABLE=enabled)
            with GatewayProcess(env, tmp_path) as process:
                upstream.enqueue_chat(text_stream("ok"))
                gpt(process).chat.completions.create(model="claude-sonnet-4.6", reasoning_effort="low",
                                                     messages=[{"role": "user", "content": "hi"}])
            fields = upstream.requests("chat")[-1].json.get("additionalModelRequestFields")
            assert (fields and {"output_config": fields["output_config"]}) == expected
