"""OpenAI Responses API: request model, adapter, formatter, and the real `openai` SDK reading what we produce."""

from __future__ import annotations

import json
from typing import Any

import openai
import pytest
from pydantic import ValidationError

from kiro_core.convert.kiro import build_kiro_request
from kiro_core.convert.options import ConversionOptions
from kiro_core.convert.responses import custom_tool_names, responses_to_conversation
from kiro_core.errors import GatewayError, InvalidRequestError
from kiro_core.events import ContentDelta, Finish, OutputEvent, StreamError, ThinkingDelta, ToolCallComplete, Usage
from kiro_core.format.responses import ResponsesStreamFormatter, responses_object
from kiro_core.models.responses import (
    CustomToolCallItem,
    FunctionCallItem,
    FunctionCallOutputItem,
    MessageItem,
    OtherItem,
    ReasoningItem,
    ResponsesRequest,
)
from kiro_core.stream import CollectedAnswer, collect
from kiro_core.unified import Image, ThinkingRequest, ToolCall, ToolResult
from tests.support import sdk_replay as replay
from tests.unit.test_convert_kiro import check_invariants

OPTS = ConversionOptions()
MODEL, RESP_ID, CREATED = "claude-sonnet-4.5", "resp_0123456789abcdef", 1_700_000_000
USAGE = Usage(input_tokens=100, output_tokens=20, cache_read_input_tokens=30)
PNG = "iVBORw0KGgoAAAANSUhEUg=="
EXEC_TOOL = {"type": "function", "name": "exec_command", "description": "Run a shell command", "strict": False,
             "parameters": {"type": "object", "properties": {"cmd": {"type": "string"}}, "required": ["cmd"]}}
PATCH_TOOL = {"type": "custom", "name": "apply_patch", "description": "Edit files with a patch.",
              "format": {"type": "grammar", "syntax": "lark", "definition": "start: begin_patch"}}

# What Codex CLI sends on its second turn (shape observed from Codex 0.169; contents shortened).
CODEX_REQUEST: dict[str, Any] = {
    "model": "claude-sonnet-4.5",
    "instructions": "You are Codex.",
    "input": [
        {"type": "message", "role": "developer", "content": [{"type": "input_text", "text": "<permissions>"}]},
        {"type": "message", "role": "user", "content": [{"type": "input_text", "text": "<environment_context>"}]},
        {"type": "message", "role": "user", "content": [{"type": "input_text", "text": "List the files"}]},
        {"type": "reasoning", "id": "rs_1", "summary": [{"type": "summary_text", "text": "ls"}],
         "encrypted_content": None},
        {"type": "message", "role": "assistant", "id": "msg_1",
         "content": [{"type": "output_text", "text": "Listing.", "annotations": []}]},
        {"type": "function_call", "id": "fc_1", "name": "exec_command", "arguments": "{\"cmd\":\"ls\"}",
         "call_id": "tooluse_a"},
        {"type": "function_call", "name": "exec_command", "arguments": "{\"cmd\":\"pwd\"}", "call_id": "tooluse_b"},
        {"type": "function_call_output", "call_id": "tooluse_a", "output": "README.md\nsrc"},
        {"type": "function_call_output", "call_id": "tooluse_b", "output": "/work"},
    ],
    "tools": [EXEC_TOOL, PATCH_TOOL,
              {"type": "namespace", "name": "mcp__docs", "tools": [{"type": "function", "name": "search"}]},
              {"type": "web_search", "external_web_access": False}],
    "tool_choice": "auto",
    "parallel_tool_calls": False,
    "reasoning": {"effort": "medium", "summary": "auto"},
    "store": False,
    "stream": True,
    "include": ["reasoning.encrypted_content"],
    "prompt_cache_key": "0199-abc",
    "text": {"verbosity": "medium"},
}


def request(**body: Any) -> ResponsesRequest:
    body.setdefault("model", MODEL)
    body.setdefault("input", "hi")
    return ResponsesRequest.model_validate(body)


def convert(**body: Any) -> Any:
    return responses_to_conversation(request(**body), OPTS)


# ---------------------------------------------------------------------------------------------------- request model


def test_every_item_kind_is_routed_to_its_model() -> None:
    req = request(input=[
        {"type": "message", "role": "user", "content": "a"},
        {"role": "assistant", "content": [{"type": "output_text", "text": "b"}]},
        {"type": "function_call", "call_id": "c1", "name": "f", "arguments": "{}"},
        {"type": "function_call_output", "call_id": "c1", "output": [{"type": "input_text", "text": "ok"}]},
        {"type": "custom_tool_call", "call_id": "c2", "name": "apply_patch", "input": "*** Begin Patch"},
        {"type": "reasoning", "id": "rs_1", "summary": []},
        {"type": "web_search_call", "id": "ws_1", "status": "completed"},
    ])
    kinds = [type(item) for item in req.input]
    assert kinds == [MessageItem, MessageItem, FunctionCallItem, FunctionCallOutputItem, CustomToolCallItem,
                     ReasoningItem, OtherItem]


def test_codex_request_validates_and_keeps_unknown_fields() -> None:
    req = ResponsesRequest.model_validate(CODEX_REQUEST)
    assert req.store is False and req.include == ["reasoning.encrypted_content"]
    assert req.model_extra == {"prompt_cache_key": "0199-abc"}
    assert [tool.type for tool in req.tools or []] == ["function", "custom", "namespace", "web_search"]


@pytest.mark.parametrize(
    "body, location, fragment",
    [
        ({"model": MODEL}, "input", "Field required"),
        ({"model": MODEL, "input": 42}, "input", "string or a list of input items"),
        ({"model": MODEL, "input": []}, "input", "empty list"),
        ({"model": MODEL, "input": ["hi"]}, "input.items.0", "must be an object"),
        ({"model": MODEL, "input": [{"content": "no role"}]}, "input.items.0", "'type' (or a 'role'"),
        ({"model": MODEL, "input": [{"role": "user", "content": 7}]}, "input.items.0.message.content",
         "string or a list"),
        ({"model": MODEL, "input": [{"type": "function_call", "name": "f", "arguments": "{}"}]},
         "input.items.0.function_call.call_id", "Field required"),
        ({"model": MODEL, "input": [{"type": "function_call_output", "call_id": "c", "output": 3}]},
         "input.items.0.function_call_output.output", "string or a list"),
        ({"model": MODEL, "input": [{"role": "user", "content": [{"type": "input_text"}]}]},
         "input.items.0.message.content.parts.0", "needs a string 'text'"),
        ({"model": MODEL, "input": "hi", "tools": [{"type": "function", "parameters": {}}]}, "tools.0", "'name'"),
        ({"model": MODEL, "input": "hi", "max_output_tokens": 0}, "max_output_tokens", "greater than or equal"),
        ({"model": MODEL, "input": "hi", "reasoning": {"effort": "huge"}}, "reasoning.effort", "Input should be"),
        ({"model": "", "input": "hi"}, "model", "at least 1"),
    ],
)
def test_malformed_requests_are_rejected_precisely(body: dict[str, Any], location: str, fragment: str) -> None:
    with pytest.raises(ValidationError) as caught:
        ResponsesRequest.model_validate(body)
    errors = caught.value.errors()
    assert len(errors) == 1, errors
    assert ".".join(map(str, errors[0]["loc"])) == location
    assert fragment in errors[0]["msg"]


def test_echo_repeats_the_request_settings() -> None:
    echo = ResponsesRequest.model_validate(CODEX_REQUEST).echo()
    assert echo["instructions"] == "You are Codex." and echo["store"] is False
    assert echo["parallel_tool_calls"] is False and echo["tool_choice"] == "auto"
    assert echo["reasoning"] == {"effort": "medium", "summary": "auto"}
    assert [tool["type"] for tool in echo["tools"]] == ["function", "custom", "namespace", "web_search"]
    assert request().echo()["parallel_tool_calls"] is True


# ---------------------------------------------------------------------------------------------------------- adapter


def test_codex_request_converts_to_a_conversation() -> None:
    req = ResponsesRequest.model_validate(CODEX_REQUEST)
    c = responses_to_conversation(req, OPTS)
    assert c.system == "You are Codex.\n<permissions>"
    assert [tool.name for tool in c.tools] == ["exec_command", "apply_patch"]
    assert c.tools[1].input_schema["required"] == ["input"]
    assert "lark grammar" in c.tools[1].description and "start: begin_patch" in c.tools[1].description
    assert [m.role for m in c.messages] == ["user", "user", "assistant", "user"]
    assistant = c.messages[2]
    assert assistant.text == "Listing."
    assert assistant.tool_calls == [ToolCall("tooluse_a", "exec_command", {"cmd": "ls"}),
                                    ToolCall("tooluse_b", "exec_command", {"cmd": "pwd"})]
    assert c.messages[3].tool_results == [ToolResult("tooluse_a", "README.md\nsrc"), ToolResult("tooluse_b", "/work")]
    assert c.stream is True and c.model == MODEL
    assert c.thinking == ThinkingRequest(enabled=True, budget_tokens=2048)  # medium: half of the default 4096
    assert custom_tool_names(req) == frozenset({"apply_patch"})


def test_codex_request_builds_a_valid_kiro_payload() -> None:
    kiro = build_kiro_request(responses_to_conversation(ResponsesRequest.model_validate(CODEX_REQUEST), OPTS),
                              "claude-sonnet-4.5", OPTS, "conv-1")
    check_invariants(kiro)
    state = kiro.payload["conversationState"]
    results = state["currentMessage"]["userInputMessage"]["userInputMessageContext"]["toolResults"]
    assert [r["toolUseId"] for r in results] == ["tooluse_a", "tooluse_b"]
    uses = state["history"][-1]["assistantResponseMessage"]["toolUses"]
    assert [u["toolUseId"] for u in uses] == ["tooluse_a", "tooluse_b"]


def test_string_input_is_one_user_message() -> None:
    c = convert(input="Hello", instructions="Be brief.")
    assert c.system == "Be brief." and [(m.role, m.text) for m in c.messages] == [("user", "Hello")]


def test_custom_tool_history_round_trips_through_the_input_field() -> None:
    c = convert(tools=[PATCH_TOOL], input=[
        {"role": "user", "content": "patch it"},
        {"type": "custom_tool_call", "call_id": "t1", "name": "apply_patch", "input": "*** Begin Patch"},
        {"type": "custom_tool_call_output", "call_id": "t1", "output": "Done!"},
    ])
    assert c.messages[1].tool_calls == [ToolCall("t1", "apply_patch", {"input": "*** Begin Patch"})]
    assert c.messages[2].tool_results == [ToolResult("t1", "Done!")]


def test_tool_output_parts_keep_text_and_inline_images() -> None:
    c = convert(input=[
        {"role": "user", "content": "screenshot"},
        {"type": "function_call", "call_id": "s1", "name": "shot", "arguments": ""},
        {"type": "function_call_output", "call_id": "s1", "output": [
            {"type": "input_text", "text": "taken"},
            {"type": "input_image", "image_url": f"data:image/png;base64,{PNG}"}]},
    ])
    assert c.messages[1].tool_calls[0].arguments == {}
    assert c.messages[2].tool_results == [ToolResult("s1", "taken")]
    assert c.messages[2].images == [Image("image/png", PNG)]


def test_url_image_becomes_a_note_and_bad_data_url_is_refused() -> None:
    c = convert(input=[{"role": "user", "content": [
        {"type": "input_text", "text": "look"}, {"type": "input_image", "image_url": "https://x.test/a.png"}]}])
    assert c.messages[0].images == [] and "https://x.test/a.png" in c.messages[0].text
    with pytest.raises(InvalidRequestError, match=r"input\[0\]: the image data URL is not valid base64"):
        convert(input=[{"role": "user", "content": [{"type": "input_image", "image_url": "data:image/png;base64,@@"}]}])


def test_function_call_with_broken_arguments_is_refused_with_its_position() -> None:
    with pytest.raises(InvalidRequestError, match=r"input\[1\]: function_call 'c1' \(f\) has arguments that are"):
        convert(input=[{"role": "user", "content": "x"},
                       {"type": "function_call", "call_id": "c1", "name": "f", "arguments": "{\"a\":"}])


def test_previous_response_id_is_refused_with_what_to_do_instead() -> None:
    with pytest.raises(InvalidRequestError) as caught:
        convert(previous_response_id="resp_abc")
    assert caught.value.status == 400 and caught.value.param == "previous_response_id"
    assert "full history" in caught.value.message and "store=false" in caught.value.message


@pytest.mark.parametrize(
    "reasoning, max_output, expected",
    [
        (None, None, ThinkingRequest(enabled=True, budget_tokens=4000)),
        ({"effort": "none"}, None, ThinkingRequest(enabled=False)),
        ({"effort": "low"}, 10_000, ThinkingRequest(enabled=True, budget_tokens=2000)),
        ({"effort": "high"}, 100_000, ThinkingRequest(enabled=True, budget_tokens=10_000)),  # capped
        ({"summary": "auto"}, None, ThinkingRequest(enabled=True, budget_tokens=4000)),
    ],
)
def test_reasoning_effort_sets_the_thinking_budget(reasoning: Any, max_output: int | None,
                                                   expected: ThinkingRequest) -> None:
    c = convert(reasoning=reasoning, max_output_tokens=max_output)
    assert c.thinking == expected and c.max_tokens == max_output


# -------------------------------------------------------------------------------------------------------- formatter


def events_of(sse: bytes) -> list[dict[str, Any]]:
    """Each event's data; checks the event line names the data's type and sequence numbers count up."""
    text = sse.decode()
    assert text == "" or text.endswith("\n\n")
    out = []
    for block in text.split("\n\n")[:-1]:
        event_line, data_line = block.split("\n")
        data = json.loads(data_line.removeprefix("data: "))
        assert event_line == f"event: {data['type']}"
        out.append(data)
    return out


def formatter(parallel: bool = True, custom_tools: frozenset[str] = frozenset()) -> ResponsesStreamFormatter:
    echo = request(parallel_tool_calls=parallel).echo()
    return ResponsesStreamFormatter(MODEL, RESP_ID, CREATED, echo, custom_tools=custom_tools,
                                    parallel_tool_calls=parallel)


def run(fmt: ResponsesStreamFormatter, *batches: list[OutputEvent]) -> list[dict[str, Any]]:
    events = events_of(fmt.start() + b"".join(fmt.format(batch) for batch in batches))
    assert [e["sequence_number"] for e in events] == list(range(len(events)))
    return events


def test_start_is_created_then_in_progress() -> None:
    created, progress = run(formatter())
    assert created["type"] == "response.created" and progress["type"] == "response.in_progress"
    response = created["response"]
    assert response["id"] == RESP_ID and response["object"] == "response" and response["model"] == MODEL
    assert response["status"] == "in_progress" and response["output"] == [] and response["created_at"] == CREATED


def test_full_answer_event_order_and_items() -> None:
    events = run(formatter(), [ThinkingDelta("Let me "), ThinkingDelta("think.")],
                 [ContentDelta("It is "), ContentDelta("sunny.")],
                 [ToolCallComplete(0, "tooluse_1", "get_weather", '{"city":"Paris"}'), Finish("tool_calls", USAGE)])
    assert [e["type"] for e in events] == [
        "response.created", "response.in_progress",
        "response.output_item.added", "response.reasoning_summary_part.added", "response.reasoning_summary_text.delta",
        "response.reasoning_summary_text.done", "response.reasoning_summary_part.done", "response.output_item.done",
        "response.output_item.added", "response.content_part.added", "response.output_text.delta",
        "response.output_text.done", "response.content_part.done", "response.output_item.done",
        "response.output_item.added", "response.function_call_arguments.delta",
        "response.function_call_arguments.done", "response.output_item.done",
        "response.completed",
    ]
    by_type = {e["type"]: e for e in events}
    assert by_type["response.reasoning_summary_text.delta"]["delta"] == "Let me think."  # one batch, one delta
    assert by_type["response.output_text.delta"]["delta"] == "It is sunny."
    done_items = [e["item"] for e in events if e["type"] == "response.output_item.done"]
    reasoning, message, call = done_items
    assert reasoning["id"].startswith("rs_") and reasoning["summary"] == [{"type": "summary_text",
                                                                           "text": "Let me think."}]
    assert message["id"].startswith("msg_") and message["status"] == "completed"
    assert message["content"][0]["text"] == "It is sunny." and message["role"] == "assistant"
    assert call == {"id": call["id"], "type": "function_call", "status": "completed", "call_id": "tooluse_1",
                    "name": "get_weather", "arguments": '{"city":"Paris"}'}
    assert call["id"].startswith("fc_")
    assert [e["output_index"] for e in events if e["type"] == "response.output_item.done"] == [0, 1, 2]
    completed = events[-1]["response"]
    assert completed["status"] == "completed" and completed["output"] == done_items
    assert completed["usage"] == {"input_tokens": 100, "input_tokens_details": {"cached_tokens": 30},
                                  "output_tokens": 20, "output_tokens_details": {"reasoning_tokens": 0},
                                  "total_tokens": 120}


def test_text_deltas_across_batches_share_one_message_item() -> None:
    events = run(formatter(), [ContentDelta("a")], [], [ContentDelta("b")], [ContentDelta(""), Finish("stop", USAGE)])
    deltas = [e for e in events if e["type"] == "response.output_text.delta"]
    assert [d["delta"] for d in deltas] == ["a", "b"] and len({d["item_id"] for d in deltas}) == 1
    done = next(e for e in events if e["type"] == "response.output_text.done")
    assert done["text"] == "ab"


def test_thinking_after_text_opens_a_new_reasoning_item() -> None:
    events = run(formatter(), [ContentDelta("x"), ThinkingDelta("y"), ContentDelta("z"), Finish("stop", USAGE)])
    items = [e["item"]["type"] for e in events if e["type"] == "response.output_item.done"]
    assert items == ["message", "reasoning", "message"]


def test_custom_tool_calls_are_unwrapped() -> None:
    call = ToolCallComplete(0, "t9", "apply_patch", '{"input":"*** Begin Patch\\n"}')
    events = run(formatter(custom_tools=frozenset({"apply_patch"})), [call, Finish("tool_calls", USAGE)])
    types = [e["type"] for e in events][2:]
    assert types == ["response.output_item.added", "response.custom_tool_call_input.delta",
                     "response.custom_tool_call_input.done", "response.output_item.done", "response.completed"]
    item = events[-2]["item"]
    assert item["type"] == "custom_tool_call" and item["id"].startswith("ctc_")
    assert item["input"] == "*** Begin Patch\n" and item["call_id"] == "t9"


def test_parallel_tool_calls_false_keeps_only_the_first_call() -> None:
    calls = [ToolCallComplete(0, "a", "f", "{}"), ToolCallComplete(1, "b", "g", "{}"), Finish("tool_calls", USAGE)]
    events = run(formatter(parallel=False), calls)
    assert [item["call_id"] for item in events[-1]["response"]["output"]] == ["a"]
    assert events[-1]["response"]["parallel_tool_calls"] is False
    assert len(run(formatter(), calls)[-1]["response"]["output"]) == 2


def test_length_finish_is_an_incomplete_response() -> None:
    events = run(formatter(), [ContentDelta("cut"), Finish("length", USAGE)])
    assert events[-1]["type"] == "response.incomplete"
    response = events[-1]["response"]
    assert response["status"] == "incomplete" and response["incomplete_details"] == {"reason": "max_output_tokens"}
    assert response["output"][0]["content"][0]["text"] == "cut"


@pytest.mark.parametrize("kind, code", [("RATE_LIMIT", "rate_limit_exceeded"), ("UPSTREAM", "server_error"),
                                        ("CONTEXT_TOO_LONG", "context_length_exceeded")])
def test_stream_error_fails_the_response_and_ends_the_stream(kind: str, code: str) -> None:
    fmt = formatter()
    events = run(fmt, [ContentDelta("Partial")], [StreamError(kind, "upstream broke"), ContentDelta("late")])
    assert [e["type"] for e in events][-2:] == ["response.output_text.delta", "response.failed"]
    assert not any(e["type"] == "response.output_item.done" for e in events)  # a partial item is never "done"
    response = events[-1]["response"]
    assert response["status"] == "failed" and response["error"] == {"code": code, "message": "upstream broke"}
    assert response["output"][0]["status"] == "incomplete"
    assert fmt.format([ContentDelta("more"), Finish("stop", USAGE)]) == b""


def test_nothing_follows_completion() -> None:
    fmt = formatter()
    run(fmt, [Finish("stop", USAGE)])
    assert fmt.format([StreamError("INTERNAL", "late")]) == b""


def test_whole_response_object() -> None:
    answer = CollectedAnswer(thinking="hmm", content="Hi.", tool_calls=[
        ToolCallComplete(0, "t1", "apply_patch", '{"input":"P"}'), ToolCallComplete(1, "t2", "f", "{}")],
        finish=Finish("tool_calls", USAGE))
    body = responses_object(answer, MODEL, RESP_ID, CREATED, request().echo(), custom_tools=frozenset({"apply_patch"}))
    assert body["status"] == "completed" and body["id"] == RESP_ID and body["error"] is None
    assert [item["type"] for item in body["output"]] == ["reasoning", "message", "custom_tool_call", "function_call"]
    assert body["output"][2]["input"] == "P" and body["usage"]["total_tokens"] == 120
    incomplete = responses_object(CollectedAnswer(content="x", finish=Finish("length", USAGE)), MODEL, RESP_ID,
                                  CREATED, {})
    assert incomplete["status"] == "incomplete" and incomplete["incomplete_details"] == {"reason": "max_output_tokens"}
    with pytest.raises(GatewayError) as caught:
        responses_object(CollectedAnswer(error=StreamError("RATE_LIMIT", "slow down")), MODEL, RESP_ID, CREATED, {})
    assert caught.value.status == 429


# ------------------------------------------------------------------------------------------------- the openai SDK

def sse_for(raw_frames: list[bytes], cut: int = 7) -> bytes:
    return replay.sse_for(raw_frames, formatter(), cut)


def sdk_client(body: bytes, content_type: str = "text/event-stream") -> openai.OpenAI:
    return replay.replay_client(openai, body, "http://gateway.test/v1", content_type)


WEATHER = {"type": "function", "name": "get_weather", "parameters": {"type": "object", "properties": {}},
           "strict": False}


def test_sdk_stream_helper_reassembles_text_calls_and_usage() -> None:
    client = sdk_client(sse_for(replay.WEATHER_STREAM))
    with client.responses.stream(model=MODEL, input="weather?", tools=[WEATHER]) as stream:
        text = "".join(event.delta for event in stream if event.type == "response.output_text.delta")
        final = stream.get_final_response()
    assert text == "It is sunny in Zürich."
    assert final.output_text == "It is sunny in Zürich." and final.status == "completed"
    reasoning, _message, call = final.output
    assert reasoning.type == "reasoning" and reasoning.summary[0].text == "Check the weather."
    assert call.type == "function_call" and call.call_id == "tooluse_1" and call.name == "get_weather"
    assert json.loads(call.arguments) == {"city": "Zürich"}
    assert final.usage is not None and final.usage.input_tokens > 0 and final.usage.output_tokens > 0
    assert final.usage.total_tokens == final.usage.input_tokens + final.usage.output_tokens


def test_sdk_raw_stream_sees_every_item_done() -> None:
    client = sdk_client(sse_for(replay.WEATHER_STREAM, cut=3))
    events = list(client.responses.create(model=MODEL, input="weather?", stream=True))
    done = [e.item.type for e in events if e.type == "response.output_item.done"]
    assert done == ["reasoning", "message", "function_call"]
    assert events[-1].type == "response.completed" and len(events[-1].response.output) == 3


def test_sdk_reports_a_failed_stream() -> None:
    fmt = formatter()
    body = fmt.start() + fmt.format([ContentDelta("Partial")]) + fmt.format([StreamError("RATE_LIMIT", "throttled")])
    with sdk_client(body).responses.stream(model=MODEL, input="x") as stream:
        events = list(stream)
        assert events[-1].type == "response.failed"
        assert events[-1].response.error.code == "rate_limit_exceeded"
        assert events[-1].response.error.message == "throttled"
        with pytest.raises(RuntimeError, match=r"response\.completed"):
            stream.get_final_response()


def test_sdk_parses_the_whole_response_object() -> None:
    answer = collect([ThinkingDelta("t"), ContentDelta("Hello!"), Finish("stop", USAGE)])
    body = responses_object(answer, MODEL, RESP_ID, CREATED, request().echo())
    response = sdk_client(json.dumps(body).encode(), "application/json").responses.create(model=MODEL, input="hi")
    assert response.id == RESP_ID and response.output_text == "Hello!"
    assert response.usage is not None and response.usage.input_tokens_details.cached_tokens == 30


def test_a_lone_surrogate_in_the_answer_travels_as_its_escape_and_a_failure_still_renders() -> None:
    """Issue 21: upstream JSON may decode to a lone surrogate; the stream, and its failure event, must still encode."""
    events = run(formatter(), [ContentDelta("bad \ud800 text")], [Finish("stop", USAGE)])
    assert events[-1]["type"] == "response.completed"
    assert events[-1]["response"]["output"][0]["content"][0]["text"] == "bad \ud800 text"  # the JSON escape decoded
    failed = run(formatter(), [ContentDelta("bad \ud800"), StreamError("RATE_LIMIT", "throttled \udb3d")])
    assert failed[-1]["type"] == "response.failed"
    assert failed[-1]["response"]["error"]["message"] == "throttled \\udb3d"  # error text: escaped, as printable
