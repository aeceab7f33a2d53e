"""Stable conversation ids from the client's session (kiro_core.session), and the cache-friendly payload they go in."""

from __future__ import annotations

import itertools
import json
import uuid
from typing import Any

import pytest

from kiro_core.cache_points import CachePolicy, place_cache_points
from kiro_core.convert.anthropic import anthropic_to_conversation
from kiro_core.convert.kiro import build_kiro_request
from kiro_core.convert.openai import openai_to_conversation
from kiro_core.convert.options import ConversionOptions
from kiro_core.convert.responses import responses_to_conversation
from kiro_core.models.anthropic import MessagesRequest
from kiro_core.models.openai import ChatCompletionRequest
from kiro_core.models.responses import ResponsesRequest
from kiro_core.session import (
    SessionHints,
    claude_code_session,
    conversation_ids,
    session_hints,
    stable_uuid,
)
from kiro_core.unified import Conversation, Message, ToolResult

SESSION = "0f8e2a7c-5d1b-4c3e-9a6f-123456789abc"
OPTS = ConversionOptions()


def conv(*messages: Message) -> Conversation:
    return Conversation(model="m", messages=list(messages))


def is_lower_uuid(value: str) -> bool:
    return str(uuid.UUID(value)) == value


# ---------------------------------------------------------------- where the session comes from


def test_claude_code_user_id_forms() -> None:
    assert claude_code_session(json.dumps({"device_id": "d", "account_uuid": "", "session_id": SESSION})) == SESSION
    assert claude_code_session(f"user_abc123_account_def_session_{SESSION}") == SESSION
    assert claude_code_session("user_abc123") == ""
    assert claude_code_session("{not json") == ""
    assert claude_code_session(42) == ""


@pytest.mark.parametrize(("headers", "body", "session", "source"), [
    ({"x-claude-code-session-id": "h"}, {"metadata": {"user_id": f"u_session_{SESSION}"}}, "h",
     "x-claude-code-session-id"),
    ({}, {"metadata": {"user_id": json.dumps({"session_id": SESSION})}}, SESSION, "metadata.user_id"),
    ({"session-id": "s"}, {"prompt_cache_key": "k"}, "k", "prompt_cache_key"),
    ({"session-id": "s", "x-client-request-id": "r"}, {}, "s", "session-id"),
    ({"x-session-affinity": "a", "x-client-request-id": "r"}, {}, "a", "x-session-affinity"),
    ({"x-client-request-id": "r"}, {"body_session_id": "b"}, "r", "x-client-request-id"),
    ({}, {"body_session_id": "b"}, "b", "session_id"),
    ({"x-kiro-session-id": "x"}, {}, "x", "x-kiro-session-id"),
    ({"anthropic-session-id": "x"}, {}, "x", "anthropic-session-id"),
    ({}, {"metadata": {"session_id": "m"}}, "m", "metadata.session_id"),
    ({}, {}, "", ""),
])
def test_session_sources_in_the_reference_order(headers: dict, body: dict, session: str, source: str) -> None:
    hints = session_hints(headers, **body)
    assert (hints.session, hints.source) == (session, source)


def test_sub_agents_and_child_threads_are_named_apart_from_their_session() -> None:
    claude = session_hints({"x-claude-code-session-id": "s", "x-claude-code-agent-id": "agent-7"})
    assert (claude.session, claude.agent) == ("s", "agent-7")
    codex_child = session_hints({"thread-id": "child"}, prompt_cache_key="root")
    assert (codex_child.session, codex_child.agent) == ("root", "child")
    codex_root = session_hints({"thread-id": "root", "session-id": "root"}, prompt_cache_key="root",
                               client_metadata={"turn_id": "t1"})
    assert (codex_root.session, codex_root.agent, codex_root.turn) == ("root", "", "t1")


# ---------------------------------------------------------------- the ids


def test_same_session_same_id_other_session_or_client_key_other_id() -> None:
    one = conversation_ids(conv(Message("user", "hi")), SessionHints("s1", scope="key-a"), "r1")
    again = conversation_ids(conv(Message("user", "hi"), Message("assistant", "yo"), Message("user", "more")),
                             SessionHints("s1", scope="key-a"), "r2")
    other_session = conversation_ids(conv(Message("user", "hi")), SessionHints("s2", scope="key-a"), "r3")
    other_key = conversation_ids(conv(Message("user", "hi")), SessionHints("s1", scope="key-b"), "r4")
    assert one.derived and is_lower_uuid(one.conversation_id)
    assert again.conversation_id == one.conversation_id
    assert other_session.conversation_id != one.conversation_id
    assert other_key.conversation_id != one.conversation_id


def test_random_only_when_the_client_names_no_session() -> None:
    ids = conversation_ids(conv(Message("user", "hi")), SessionHints(scope="key-a"), "random-1")
    assert (ids.conversation_id, ids.continuation_id, ids.derived) == ("random-1", "random-1", False)
    assert conversation_ids(conv(Message("user", "hi")), None, "random-2").conversation_id == "random-2"


def test_a_sub_agent_is_its_own_conversation_rooted_in_the_session() -> None:
    root = conversation_ids(conv(Message("user", "hi")), SessionHints("s", scope="k"), "r")
    child = conversation_ids(conv(Message("user", "task")), SessionHints("s", agent="a1", scope="k"), "r")
    assert child.conversation_id != root.conversation_id
    assert child.root_conversation_id == root.conversation_id == root.root_conversation_id


def test_continuation_id_is_kept_across_tool_round_trips_and_changes_with_the_next_user_input() -> None:
    hints = SessionHints("s", scope="k")
    first = conv(Message("user", "fix it"))
    tool_round = conv(Message("user", "fix it"), Message("assistant", "", tool_calls=[]),
                      Message("user", tool_results=[ToolResult("t1", "ok")]))
    next_turn = conv(*tool_round.messages, Message("assistant", "done"), Message("user", "thanks"))
    ids = [conversation_ids(c, hints, "r").continuation_id for c in (first, tool_round, next_turn)]
    assert ids[0] == ids[1] != ids[2]
    codex = SessionHints("s", turn="turn-9", scope="k")
    same_turn_id = [conversation_ids(c, codex, "r").continuation_id for c in (first, next_turn)]
    assert same_turn_id[0] == same_turn_id[1]


def test_stable_uuid_is_a_lowercase_uuid_of_its_parts() -> None:
    assert stable_uuid("a", "b") == stable_uuid("a", "b") != stable_uuid("a", "c")
    assert is_lower_uuid(stable_uuid("a"))


# ---------------------------------------------------------------- the payload


def payload_fields(conversation: Conversation, hints: SessionHints, options: ConversionOptions = OPTS) -> dict:
    ids = conversation_ids(conversation, hints, "random")
    req = build_kiro_request(conversation, "claude-sonnet-4.5", options, ids.conversation_id,
                             continuation_id=ids.continuation_id, root_conversation_id=ids.root_conversation_id)
    return req.payload["conversationState"]


def test_payload_carries_agent_mode_and_continuation_and_root_only_when_enabled() -> None:
    hints = SessionHints("s", agent="a", scope="k")
    state = payload_fields(conv(Message("user", "hi")), hints)
    assert state["agentTaskType"] == "vibe"
    assert is_lower_uuid(state["agentContinuationId"])
    assert "rootConversationId" not in state
    with_root = payload_fields(conv(Message("user", "hi")), hints, ConversionOptions(root_conversation_id=True))
    assert with_root["rootConversationId"] != with_root["conversationId"]
    bare = payload_fields(conv(Message("user", "hi")), hints,
                          ConversionOptions(agent_task_type="", agent_continuation=False))
    assert "agentTaskType" not in bare and "agentContinuationId" not in bare


# A Claude Code-like session: a system prompt in blocks with cache_control, tools, thinking, tool round trips.
SYSTEM = [{"type": "text", "text": "You are Claude Code.", "cache_control": {"type": "ephemeral"}},
          {"type": "text", "text": "Use the tools. Today is a good day."}]
TOOLS = [{"name": "Bash", "description": "Run a command", "input_schema": {
    "type": "object", "properties": {"command": {"type": "string"}}, "required": ["command"],
    "additionalProperties": False}}]


def anthropic_turns() -> list[list[dict[str, Any]]]:
    """The `messages` of five consecutive requests of one session (each resends the whole history)."""
    turns: list[list[dict[str, Any]]] = [[{"role": "user", "content": [
        {"type": "text", "text": "<system-reminder>ctx</system-reminder>"}, {"type": "text", "text": "List files"}]}]]
    steps: list[list[dict[str, Any]]] = [
        [{"role": "assistant", "content": [{"type": "thinking", "thinking": "ls", "signature": "sig"},
                                           {"type": "text", "text": "Let me look."},
                                           {"type": "tool_use", "id": "toolu_1", "name": "Bash",
                                            "input": {"command": "ls"}}]},
         {"role": "user", "content": [{"type": "tool_result", "tool_use_id": "toolu_1", "content": "a.py\nb.py"}]}],
        [{"role": "assistant", "content": [{"type": "text", "text": "Two files: a.py and b.py."}]},
         # a system message in mid-session (Claude Code 2.1.3xx: its environment block, with a per-turn effort)
         {"role": "system", "content": "# Environment\nPlan mode is on.", "output_config": {"effort": "medium"}},
         {"role": "user", "content": "Show a.py"}],
        [{"role": "assistant", "content": [{"type": "tool_use", "id": "toolu_2", "name": "Bash",
                                            "input": {"command": "cat a.py"}}]},
         {"role": "user", "content": [{"type": "tool_result", "tool_use_id": "toolu_2",
                                       "content": [{"type": "text", "text": "print('hi')"}]}]}],
        [{"role": "assistant", "content": "It prints hi."}, {"role": "user", "content": "Thanks ☺"}],
    ]
    for step in steps:
        turns.append(turns[-1] + step)
    return turns


def anthropic_body(messages: list[dict[str, Any]]) -> bytes:
    request = MessagesRequest.model_validate({
        "model": "claude-sonnet-4-5", "max_tokens": 32000, "stream": True, "system": SYSTEM, "tools": TOOLS,
        "thinking": {"type": "enabled", "budget_tokens": 31999}, "messages": messages,
        "metadata": {"user_id": json.dumps({"session_id": SESSION})}})
    conversation = anthropic_to_conversation(request, OPTS)
    hints = session_hints({}, metadata=request.metadata, scope="key-hash")
    ids = conversation_ids(conversation, hints, str(uuid.uuid4()))
    return build_kiro_request(conversation, "claude-sonnet-4.5", OPTS, ids.conversation_id,
                              continuation_id=ids.continuation_id).body


def history_prefix(body: bytes) -> bytes:
    """Turn N's body up to the end of its last history entry (or up to `"history":[` for a first turn)."""
    end = body.find(b'],"currentMessage":')
    if end >= 0:
        return body[:end]
    start = body.find(b',"currentMessage":')
    return body[:start] + b',"history":['


def test_projection_turn_n_plus_one_starts_with_the_exact_bytes_of_turn_n_history() -> None:
    bodies = [anthropic_body(messages) for messages in anthropic_turns()]
    for previous, following in itertools.pairwise(bodies):
        prefix = history_prefix(previous)
        assert following.startswith(prefix), (prefix[-200:], following[: len(prefix)][-200:])
        assert len(following) > len(prefix)
    # The mid-session system message kept its place: it opens its own user turn, the first entry is untouched.
    last = json.loads(bodies[-1])["conversationState"]
    assert "Plan mode" not in last["history"][0]["userInputMessage"]["content"]
    assert last["history"][4]["userInputMessage"]["content"] == "# Environment\nPlan mode is on.\n\nShow a.py"
    # Nothing per-request sits in history: the thinking tags ride only on the current message.
    assert all("<thinking_mode>enabled" not in json.dumps(entry) for entry in last["history"])
    assert last["currentMessage"]["userInputMessage"]["content"].startswith("<thinking_mode>")


def test_projection_holds_for_openai_chat_and_responses() -> None:
    chat_turns = [
        [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Weather?"}],
    ]
    chat_turns.append(chat_turns[0] + [
        {"role": "assistant", "content": None, "tool_calls": [
            {"id": "c1", "type": "function", "function": {"name": "weather", "arguments": '{"city": "Oslo"}'}}]},
        {"role": "tool", "tool_call_id": "c1", "content": "rain"}])
    chat_turns.append(chat_turns[1] + [{"role": "assistant", "content": "Rain."}, {"role": "user", "content": "Ok"}])
    tools = [{"type": "function", "function": {"name": "weather", "parameters": {
        "type": "object", "properties": {"city": {"type": "string"}}}}}]

    def chat(messages: list[dict[str, Any]]) -> bytes:
        req = ChatCompletionRequest.model_validate({"model": "m", "messages": messages, "tools": tools,
                                                     "reasoning_effort": "high"})
        return build_kiro_request(openai_to_conversation(req, OPTS), "m", OPTS, "c").body

    def responses(items: list[dict[str, Any]]) -> bytes:
        req = ResponsesRequest.model_validate({"model": "m", "input": items, "prompt_cache_key": "k",
                                               "tools": [{"type": "function", "name": "weather", "parameters": {}}]})
        return build_kiro_request(responses_to_conversation(req, OPTS), "m", OPTS, "c").body

    resp_turns = [[{"role": "developer", "content": "Be brief."}, {"role": "user", "content": "Weather?"}]]
    resp_turns.append(resp_turns[0] + [
        {"type": "function_call", "call_id": "c1", "name": "weather", "arguments": '{"city":"Oslo"}'},
        {"type": "function_call_output", "call_id": "c1", "output": "rain"}])
    resp_turns.append(resp_turns[1] + [
        {"type": "message", "role": "assistant", "content": [{"type": "output_text", "text": "Rain."}]},
        {"role": "user", "content": "Ok"}])
    for build, turns in ((chat, chat_turns), (responses, resp_turns)):
        bodies = [build(t) for t in turns]
        for previous, following in itertools.pairwise(bodies):
            assert following.startswith(history_prefix(previous))


# ---------------------------------------------------------------- cache points (opt-in)


def entries() -> list[dict[str, Any]]:
    return [{"userInputMessage": {"content": "system + first question " * 50}},
            {"assistantResponseMessage": {"content": "answer one"}},
            {"userInputMessage": {"content": "second"}},
            {"assistantResponseMessage": {"content": "answer two"}}]


def marked(history: list[dict[str, Any]]) -> list[int]:
    return [i for i, e in enumerate(history) if "cachePoint" in next(iter(e.values()))]


def test_cache_points_go_on_the_system_bearing_first_entry_and_the_last_assistant() -> None:
    history = entries()
    assert place_cache_points(history, CachePolicy(), len) == 2
    assert marked(history) == [0, 3]
    assert history[3]["assistantResponseMessage"]["cachePoint"] == {"type": "default"}


@pytest.mark.parametrize(("caching", "expected"), [
    ({"supportsPromptCaching": False}, []),
    ({"supportsPromptCaching": True, "maximumCacheCheckpointsPerRequest": 1}, [3]),
    ({"supportsPromptCaching": True, "minimumTokensPerCacheCheckpoint": 10**6}, []),
    ({"supportsPromptCaching": True}, [0, 3]),
])
def test_cache_points_respect_the_catalogue(caching: dict, expected: list[int]) -> None:
    history = entries()
    place_cache_points(history, CachePolicy.from_catalog({"modelId": "x", "promptCaching": caching}), len)
    assert marked(history) == expected


def test_cache_points_are_off_by_default_and_on_with_the_setting() -> None:
    conversation = conv(Message("user", "q1"), Message("assistant", "a1"), Message("user", "q2"))
    plain = build_kiro_request(conversation, "m", OPTS, "c").body
    assert b"cachePoint" not in plain
    on = build_kiro_request(conversation, "m", ConversionOptions(cache_points=True), "c").payload
    assert marked(on["conversationState"]["history"]) == [0, 1]
    assert "cachePoint" not in on["conversationState"]["currentMessage"]["userInputMessage"]
