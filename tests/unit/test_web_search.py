"""The pure pieces of web search: detection, query checks, reading Kiro's MCP reply, texts, and both formatters."""

from __future__ import annotations

import json
from typing import Any

import pytest

from kiro_core.events import ContentDelta, Finish, ToolCallComplete, Usage
from kiro_core.format.web_search import (
    AnthropicSearchStreamFormatter,
    ResponsesSearchStreamFormatter,
    anthropic_search_message,
    responses_search_object,
)
from kiro_core.web_search import (
    SearchEvent,
    SearchFailure,
    SearchResults,
    WebResult,
    injected_tool,
    is_hosted_anthropic_type,
    is_responses_web_search_type,
    page_age,
    query_of,
    query_problem,
    read_mcp_reply,
    side_request_query,
    summary_text,
)


def reply(inner: Any = None, *, is_error: bool = False, text: str | None = None) -> bytes:
    content_text = text if text is not None else json.dumps(inner)
    return json.dumps({"jsonrpc": "2.0", "id": "1", "result": {
        "content": [{"type": "text", "text": content_text}], "isError": is_error}}).encode()


RESULT = {"title": "T", "url": "https://t.example", "snippet": "S", "publishedDate": 1772582400000}


@pytest.mark.parametrize(("tool_type", "hosted"), [
    ("web_search_20250305", True), ("web_search_20260209", True), ("web_search", False), (None, False),
    ("custom", False), ("web_fetch_20250910", False), ("web_search_2025", False),
])
def test_hosted_anthropic_types_are_dated(tool_type: str | None, hosted: bool) -> None:
    assert is_hosted_anthropic_type(tool_type) is hosted


@pytest.mark.parametrize(("tool_type", "hosted"), [
    ("web_search", True), ("web_search_preview", True), ("web_search_2025_08_26", True), ("function", False),
    ("namespace", False), ("web_search_20250305", False),
])
def test_responses_web_search_types(tool_type: str, hosted: bool) -> None:
    assert is_responses_web_search_type(tool_type) is hosted


def test_side_request_needs_exactly_one_hosted_web_search_tool() -> None:
    text = "Perform a web search for the query: kiro gateway "
    assert side_request_query([("web_search_20250305", "web_search")], text) == "kiro gateway"
    assert side_request_query([("web_search_20250305", "web_search")], "plain question") == "plain question"
    assert side_request_query([(None, "web_search")], text) is None  # a function tool named web_search
    assert side_request_query([("custom", "web_search")], text) is None
    assert side_request_query([("web_search_20250305", "web_search"), (None, "Bash")], text) is None
    assert side_request_query([("web_search_20250305", "search")], text) is None
    assert side_request_query([], text) is None


def test_query_problems() -> None:
    assert query_problem("ok", 200) is None
    assert query_problem("x" * 200, 200) is None
    assert query_problem("x" * 201, 200) == ("query_too_long", "The web search query is 201 characters long; "
                                                                "Kiro accepts at most 200.")
    assert query_problem(" \n", 200)[0] == "invalid_tool_input"  # type: ignore[index]


def test_query_of_model_arguments() -> None:
    assert query_of('{"query": " a b "}') == "a b"
    assert query_of({"query": 3}) == ""
    assert query_of("not json") == ""


def test_injected_tool_shape() -> None:
    tool = injected_tool(150)
    assert tool.name == "web_search" and tool.input_schema["required"] == ["query"]
    assert tool.input_schema["properties"]["query"]["type"] == "string"
    assert "150" in tool.input_schema["properties"]["query"]["description"]


@pytest.mark.parametrize(("value", "shown"), [
    (1772582400000, "March 4, 2026"), ("1772582400000", "March 4, 2026"), (1700000000000.0, "November 14, 2023"),
    ("2025-12-31T23:00:00Z", "December 31, 2025"), (None, None), (0, None), (True, None), ("soon", None),
    (10**20, None),
])
def test_page_age(value: Any, shown: str | None) -> None:
    assert page_age(value) == shown


def test_reply_with_results_keeps_order_and_skips_url_less_entries() -> None:
    inner = {"results": [RESULT, {"title": "no url"}, {"url": "https://b.example", "snippet": None}],
             "totalResults": 3, "query": "q"}
    outcome = read_mcp_reply(reply(inner), "q")
    assert outcome == SearchResults("q", (WebResult("T", "https://t.example", "S", "March 4, 2026"),
                                          WebResult("https://b.example", "https://b.example", "", None)))


def test_explicit_empty_results_are_a_search() -> None:
    assert read_mcp_reply(reply({"results": [], "totalResults": 0}), "q") == SearchResults("q", ())


@pytest.mark.parametrize(("body", "code", "said"), [
    (reply(text="quota exceeded", is_error=True), "unavailable", "quota exceeded"),
    (json.dumps({"jsonrpc": "2.0", "id": "1", "error": {"code": -32602, "message": "Invalid params"}}).encode(),
     "invalid_tool_input", "Invalid params"),
    (json.dumps({"jsonrpc": "2.0", "id": "1", "error": {"code": -32000, "message": "boom"}}).encode(),
     "unavailable", "boom"),
    (reply({"totalResults": 0}), "unavailable", "no 'results' list"),
    (reply({"error": "backend timeout"}), "unavailable", "backend timeout"),
    (reply(text="not json"), "unavailable", "not the expected JSON"),
    (b"<html>", "unavailable", "not JSON"),
    (json.dumps({"jsonrpc": "2.0", "id": "1"}).encode(), "unavailable", "no result"),
])
def test_failures_are_never_an_empty_success(body: bytes, code: str, said: str) -> None:
    outcome = read_mcp_reply(body, "q")
    assert isinstance(outcome, SearchFailure) and outcome.code == code and said in outcome.message


def test_reply_framed_as_server_sent_events() -> None:
    body = b"event: message\ndata: " + reply({"results": [RESULT]}) + b"\n\n"
    assert read_mcp_reply(body, "q") == SearchResults("q", (WebResult("T", "https://t.example", "S",
                                                                       "March 4, 2026"),))


def test_summary_text_carries_every_snippet_in_order() -> None:
    outcome = SearchResults("q", (WebResult("A", "https://a", "first\nsecond line", "May 1, 2026"),
                                  WebResult("B", "https://b", "", None)))
    text = summary_text(outcome)
    assert text.splitlines()[0] == 'Web search results for "q" (2 results):'
    assert "1. A\n   URL: https://a\n   Published: May 1, 2026\n   first\n   second line" in text
    assert "2. B\n   URL: https://b\n" in text
    assert summary_text(SearchResults("q", ())) == 'No web results were found for "q".'
    assert summary_text(SearchFailure("q", "unavailable", "down")) == 'The web search for "q" failed: down'


# ------------------------------------------------------------------------------------------------ formatters

SEARCH = SearchEvent("srvtoolu_" + "a" * 32, "q", SearchResults("q", (WebResult("T", "https://t", "S", None),)))
FAILED = SearchEvent("srvtoolu_" + "b" * 32, "q2", SearchFailure("q2", "max_uses_exceeded", "limit"))
DONE = Finish("stop", Usage(10, 5))


def parse_sse(raw: bytes) -> list[tuple[str, dict[str, Any]]]:
    out = []
    for block in raw.decode().split("\n\n"):
        if block:
            name, data = block.split("\n")
            out.append((name.removeprefix("event: "), json.loads(data.removeprefix("data: "))))
    return out


def test_anthropic_stream_formatter_interleaves_blocks_with_consecutive_indexes() -> None:
    formatter = AnthropicSearchStreamFormatter("m", "msg_1", 7)
    raw = formatter.start() + formatter.format([ContentDelta("Looking.")]) + formatter.format([SEARCH])
    raw += formatter.format([FAILED, ContentDelta("Answer."), DONE])
    events = parse_sse(raw)
    starts = [(data["index"], data["content_block"]["type"]) for name, data in events
              if name == "content_block_start"]
    assert starts == [(0, "text"), (1, "server_tool_use"), (2, "web_search_tool_result"), (3, "server_tool_use"),
                      (4, "web_search_tool_result"), (5, "text")]
    stops = [data["index"] for name, data in events if name == "content_block_stop"]
    assert stops == [0, 1, 2, 3, 4, 5]
    error = [data["content_block"] for name, data in events if name == "content_block_start"][4]["content"]
    assert error == {"type": "web_search_tool_result_error", "error_code": "max_uses_exceeded"}
    delta = next(data for name, data in events if name == "message_delta")
    assert delta["usage"]["server_tool_use"] == {"web_search_requests": 1}  # the failed one is not counted
    assert delta["delta"]["stop_reason"] == "end_turn" and events[-1][0] == "message_stop"
    assert formatter.format([ContentDelta("late")]) == b""


def test_anthropic_stream_formatter_without_searches_matches_the_plain_one() -> None:
    from kiro_core.format.anthropic import AnthropicStreamFormatter

    plain, searching = AnthropicStreamFormatter("m", "msg_1", 7), AnthropicSearchStreamFormatter("m", "msg_1", 7)
    batch = [ContentDelta("Hi"), ToolCallComplete(0, "t1", "Bash", '{"c":1}')]
    assert searching.format(batch) == plain.format(batch)


def test_anthropic_whole_message_keeps_the_order() -> None:
    events = [ContentDelta("Looking."), SEARCH, ContentDelta("Answer "), ContentDelta("here."), DONE]
    message = anthropic_search_message(events, "m", "msg_1", 99)
    assert [block["type"] for block in message["content"]] == ["text", "server_tool_use", "web_search_tool_result",
                                                               "text"]
    assert message["content"][3]["text"] == "Answer here."
    assert message["content"][2]["content"] == [{"type": "web_search_result", "url": "https://t", "title": "T",
                                                 "encrypted_content": "S", "page_age": None}]
    assert message["usage"]["server_tool_use"] == {"web_search_requests": 1}
    assert message["usage"]["input_tokens"] == 10 and message["stop_reason"] == "end_turn"


def test_responses_stream_formatter_emits_web_search_call_items() -> None:
    formatter = ResponsesSearchStreamFormatter("m", "resp_1", 1, {})
    ws = SearchEvent("ws_1", "q", SEARCH.outcome)
    raw = formatter.start() + formatter.format([ContentDelta("Looking."), ws, ContentDelta("Answer."), DONE])
    events = [data for _, data in parse_sse(raw)]
    assert [e["sequence_number"] for e in events] == list(range(len(events)))
    done = [(e["output_index"], e["item"]) for e in events if e["type"] == "response.output_item.done"]
    assert [(index, item["type"]) for index, item in done] == [(0, "message"), (1, "web_search_call"),
                                                               (2, "message")]
    assert done[1][1] == {"id": "ws_1", "type": "web_search_call", "status": "completed",
                          "action": {"type": "search", "query": "q"}}
    kinds = [e["type"] for e in events]
    assert kinds.index("response.web_search_call.in_progress") < kinds.index("response.web_search_call.searching") \
        < kinds.index("response.web_search_call.completed")
    assert events[-1]["type"] == "response.completed"
    assert [item["type"] for item in events[-1]["response"]["output"]] == ["message", "web_search_call", "message"]


def test_responses_whole_object_marks_failed_searches() -> None:
    failed = SearchEvent("ws_2", "q", SearchFailure("q", "unavailable", "down"))
    body = responses_search_object([failed, ContentDelta("No luck."), DONE], "m", "resp_1", 1, {})
    assert [item["type"] for item in body["output"]] == ["web_search_call", "message"]
    assert body["output"][0]["status"] == "failed" and body["status"] == "completed"


def test_replayed_search_blocks_become_text_for_kiro() -> None:
    from kiro_core.convert.anthropic import anthropic_to_conversation
    from kiro_core.convert.options import ConversionOptions
    from kiro_core.models.anthropic import MessagesRequest

    assistant = [
        {"type": "text", "text": "Looking."},
        {"type": "server_tool_use", "id": "srvtoolu_1", "name": "web_search", "input": {"query": "kiro"}},
        {"type": "web_search_tool_result", "tool_use_id": "srvtoolu_1", "content": [
            {"type": "web_search_result", "url": "https://a", "title": "A", "encrypted_content": "opaque",
             "page_age": "May 1, 2026"}]},
        {"type": "server_tool_use", "id": "srvtoolu_2", "name": "web_search", "input": {"query": "again"}},
        {"type": "web_search_tool_result", "tool_use_id": "srvtoolu_2",
         "content": {"type": "web_search_tool_result_error", "error_code": "unavailable"}},
        {"type": "text", "text": "Found A."},
    ]
    request = MessagesRequest.model_validate({"model": "m", "max_tokens": 10, "messages": [
        {"role": "user", "content": "q"}, {"role": "assistant", "content": assistant},
        {"role": "user", "content": "more?"}]})
    text = anthropic_to_conversation(request, ConversionOptions()).messages[1].text
    assert text == ("Looking.\n[searched the web for: kiro]\n[web search results:\n- A (https://a), May 1, 2026\n]\n"
                    "[searched the web for: again]\n[the web search failed]\nFound A.")
    assert "opaque" not in text
