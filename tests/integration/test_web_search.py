"""Web search through Kiro's MCP endpoint (issue 12), with the official SDKs against the gateway and the fake Kiro.

Claude Code's WebSearch side request (one hosted `web_search_20250305` tool) is answered by the gateway from one MCP
search; a hosted tool among others, and Codex's `web_search` tool, give the model a `web_search` function whose calls
the gateway runs. Errors: refused queries never reach upstream; MCP failures show as failed searches; a 429 is an
HTTP 429 with Retry-After before the first byte and a `rate_limit_error` event after it.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import anthropic
import httpx
import openai
import pytest

from tests.integration.conftest import API_KEY, gateway_env
from tests.support.fake_kiro import FakeKiro, SearchReply, Status, text_stream, tool_call_stream
from tests.support.gateway_process import GatewayProcess

MODEL = "claude-sonnet-4-5"
HOSTED = {"type": "web_search_20250305", "name": "web_search", "max_uses": 8}
SIDE_PROMPT = "Perform a web search for the query: kiro gateway"
BASH = {"name": "Bash", "description": "Run a shell command",
        "input_schema": {"type": "object", "properties": {"command": {"type": "string"}}, "required": ["command"]}}
EXEC = {"type": "function", "name": "exec_command", "description": "Run a command",
        "parameters": {"type": "object", "properties": {"cmd": {"type": "string"}}, "required": ["cmd"]}}
RESULTS = [
    {"title": "Zeta first", "url": "https://z.example/1", "snippet": "Zeta snippet.", "publishedDate": 1772582400000},
    {"title": "Alpha second", "url": "https://a.example/2", "snippet": "Alpha snippet.\nSecond line."},
    {"title": "Mid third", "url": "https://m.example/3", "snippet": "Mid snippet.", "publishedDate": 1700000000000},
]


@pytest.fixture(scope="module")
def gateway(fake: FakeKiro, tmp_path_factory: pytest.TempPathFactory) -> Iterator[GatewayProcess]:
    home = tmp_path_factory.mktemp("home")
    with GatewayProcess(gateway_env(fake, home), home) as process:
        yield process


@pytest.fixture(scope="module")
def gateway_off(fake: FakeKiro, tmp_path_factory: pytest.TempPathFactory) -> Iterator[GatewayProcess]:
    home = tmp_path_factory.mktemp("home-off")
    with GatewayProcess(gateway_env(fake, home, WEB_SEARCH_ENABLED="false"), home) as process:
        yield process


def claude(gateway: GatewayProcess) -> anthropic.Anthropic:
    return anthropic.Anthropic(base_url=gateway.url, api_key=API_KEY, max_retries=0, timeout=30)


def codex(gateway: GatewayProcess) -> openai.OpenAI:
    return openai.OpenAI(base_url=f"{gateway.url}/v1", api_key=API_KEY, max_retries=0, timeout=30)


def sse_events(raw: str) -> list[tuple[str, dict[str, Any]]]:
    out = []
    for block in raw.split("\n\n"):
        lines = [line for line in block.split("\n") if line and not line.startswith(":")]
        if lines:
            out.append((lines[0].removeprefix("event: "), json.loads(lines[1].removeprefix("data: "))))
    return out


def post_stream(gateway: GatewayProcess, path: str, body: dict[str, Any]) -> tuple[httpx.Response, str]:
    with httpx.stream("POST", f"{gateway.url}{path}", json={**body, "stream": True}, timeout=30,
                      headers={"x-api-key": API_KEY, "Authorization": f"Bearer {API_KEY}"}) as response:
        return response, response.read().decode()


def side_request(query_text: str = SIDE_PROMPT, **extra: Any) -> dict[str, Any]:
    return {"model": MODEL, "max_tokens": 1024, "tools": [HOSTED],
            "messages": [{"role": "user", "content": [{"type": "text", "text": query_text}]}], **extra}


def chat_tools(fake: FakeKiro, index: int = -1) -> list[str]:
    message = fake.requests("chat")[index].json["conversationState"]["currentMessage"]["userInputMessage"]
    return [t["toolSpecification"]["name"] for t in (message.get("userInputMessageContext") or {}).get("tools", [])]


# ------------------------------------------------------------------------------------------------ side request


def test_side_request_gives_the_exact_blocks(gateway: GatewayProcess, fake: FakeKiro) -> None:
    fake.enqueue_search(SearchReply(results=RESULTS))
    message = claude(gateway).messages.create(**side_request())
    assert [block.type for block in message.content] == ["server_tool_use", "web_search_tool_result", "text"]
    use, result, text = message.content
    assert use.id.startswith("srvtoolu_") and len(use.id) == len("srvtoolu_") + 32
    assert use.name == "web_search" and use.input == {"query": "kiro gateway"}
    assert result.tool_use_id == use.id
    assert [(r.title, r.url, r.encrypted_content, r.page_age) for r in result.content] == [
        ("Zeta first", "https://z.example/1", "Zeta snippet.", "March 4, 2026"),
        ("Alpha second", "https://a.example/2", "Alpha snippet.\nSecond line.", None),
        ("Mid third", "https://m.example/3", "Mid snippet.", "November 14, 2023"),
    ]
    for snippet in ("Zeta snippet.", "Alpha snippet.", "Second line.", "Mid snippet."):
        assert snippet in text.text
    assert text.text.index("Zeta first") < text.text.index("Alpha second") < text.text.index("Mid third")
    assert message.stop_reason == "end_turn"
    assert message.usage.server_tool_use.web_search_requests == 1
    assert fake.requests("chat") == []  # answered without a model
    sent = fake.requests("mcp")
    assert len(sent) == 1
    assert sent[0].json["method"] == "tools/call"
    assert sent[0].json["params"] == {"name": "web_search", "arguments": {"query": "kiro gateway"}}
    assert sent[0].headers["authorization"].startswith("Bearer ")
    assert sent[0].headers["x-amzn-kiro-profile-arn"] == fake.profile_arn
    assert "tokentype" not in sent[0].headers  # not an API-key account


def test_side_request_streamed_gives_the_same_blocks(gateway: GatewayProcess, fake: FakeKiro) -> None:
    fake.enqueue_search(SearchReply(results=RESULTS))
    response, raw = post_stream(gateway, "/v1/messages?beta=true", side_request())
    assert response.status_code == 200
    events = sse_events(raw)
    assert [name for name, _ in events] == [
        "message_start", "content_block_start", "content_block_stop", "content_block_start", "content_block_stop",
        "content_block_start", "content_block_delta", "content_block_stop", "message_delta", "message_stop"]
    use = events[1][1]["content_block"]
    assert events[1][1]["index"] == 0 and use["type"] == "server_tool_use" and use["input"] == {"query": "kiro gateway"}
    result = events[3][1]["content_block"]
    assert events[3][1]["index"] == 1 and result["tool_use_id"] == use["id"]
    assert [r["title"] for r in result["content"]] == ["Zeta first", "Alpha second", "Mid third"]
    assert events[5][1]["index"] == 2 and "Alpha snippet." in events[6][1]["delta"]["text"]
    delta = events[8][1]
    assert delta["delta"]["stop_reason"] == "end_turn"
    assert delta["usage"]["server_tool_use"] == {"web_search_requests": 1}

    fake.enqueue_search(SearchReply(results=RESULTS))
    with claude(gateway).messages.stream(**side_request()) as stream:
        final = stream.get_final_message()
    assert [block.type for block in final.content] == ["server_tool_use", "web_search_tool_result", "text"]
    assert [r.url for r in final.content[1].content] == [r["url"] for r in RESULTS]
    assert final.usage.server_tool_use.web_search_requests == 1 and final.stop_reason == "end_turn"


def test_empty_results_are_a_normal_answer(gateway: GatewayProcess, fake: FakeKiro) -> None:
    fake.enqueue_search(SearchReply(results=[]))
    message = claude(gateway).messages.create(**side_request())
    assert message.content[1].content == []
    assert message.content[2].text == 'No web results were found for "kiro gateway".'
    assert message.stop_reason == "end_turn" and message.usage.server_tool_use.web_search_requests == 1


@pytest.mark.parametrize(("reply", "code", "said"), [
    (SearchReply(is_error="search backend unavailable"), "unavailable", "search backend unavailable"),
    (SearchReply(rpc_error=(-32602, "Invalid params")), "invalid_tool_input", "Invalid params"),
    (SearchReply(rpc_error=(-32603, "Internal error")), "unavailable", "Internal error"),
    (Status(500, {"message": "boom", "reason": None}), "unavailable", "boom"),
])
def test_failed_search_is_a_search_error_block(gateway: GatewayProcess, fake: FakeKiro, reply: Any, code: str,
                                               said: str) -> None:
    fake.enqueue_search(reply)
    message = claude(gateway).messages.create(**side_request())
    assert [block.type for block in message.content] == ["server_tool_use", "web_search_tool_result", "text"]
    error = message.content[1].content
    assert error.type == "web_search_tool_result_error" and error.error_code == code
    assert "failed" in message.content[2].text and said in message.content[2].text
    assert message.usage.server_tool_use.web_search_requests == 0
    assert len(fake.requests("mcp")) == 1  # no retry


def test_throttled_search_is_http_429_with_retry_after(gateway: GatewayProcess, fake: FakeKiro) -> None:
    throttled = {"message": "Too many requests, please wait before trying again.", "reason": None}
    fake.enqueue_search(Status(429, throttled, {"Retry-After": "7"}))
    with pytest.raises(anthropic.RateLimitError) as caught:
        claude(gateway).messages.create(**side_request())
    assert caught.value.response.headers["retry-after"] == "7"
    assert caught.value.body["error"]["type"] == "rate_limit_error"

    fake.enqueue_search(Status(429, throttled, {"Retry-After": "3"}))
    response, raw = post_stream(gateway, "/v1/messages", side_request())
    assert response.status_code == 429 and response.headers["retry-after"] == "3"
    assert json.loads(raw)["error"]["type"] == "rate_limit_error"
    assert len(fake.requests("mcp")) == 2  # one call each, never retried


@pytest.mark.parametrize("query", ["", "   ", "x" * 201])
def test_bad_query_is_refused_before_any_upstream_call(gateway: GatewayProcess, fake: FakeKiro, query: str) -> None:
    with pytest.raises(anthropic.BadRequestError) as caught:
        claude(gateway).messages.create(**side_request(f"Perform a web search for the query: {query}"))
    assert "query" in caught.value.message
    assert fake.requests() == [] or all(r.endpoint in ("refreshToken", "ListAvailableModels")
                                        for r in fake.requests())


def test_query_at_the_limit_is_searched(gateway: GatewayProcess, fake: FakeKiro) -> None:
    message = claude(gateway).messages.create(**side_request("q" * 200))
    assert message.content[0].input == {"query": "q" * 200}
    assert message.content[1].content[0].title == f"Fake Result 1 about {'q' * 200}"


def test_function_tool_named_web_search_is_left_alone(gateway: GatewayProcess, fake: FakeKiro) -> None:
    own = {"name": "web_search", "description": "The client's own search",
           "input_schema": {"type": "object", "properties": {"q": {"type": "string"}}, "required": ["q"]}}
    fake.enqueue_chat(tool_call_stream("web_search", {"q": "mine"}, tool_use_id="tooluse_own"))
    message = claude(gateway).messages.create(model=MODEL, max_tokens=256, tools=[own],
                                              messages=[{"role": "user", "content": SIDE_PROMPT}])
    assert [block.type for block in message.content] == ["tool_use"]
    assert message.content[0].id == "tooluse_own" and message.content[0].input == {"q": "mine"}
    assert message.stop_reason == "tool_use"
    assert fake.requests("mcp") == [] and chat_tools(fake) == ["web_search"]


# ------------------------------------------------------------------------------------------------ the loop


def test_mixed_tools_run_the_search_loop_streamed(gateway: GatewayProcess, fake: FakeKiro) -> None:
    fake.enqueue_chat(tool_call_stream("web_search", {"query": "python 3.14"}, text="Let me look.",
                                       tool_use_id="tooluse_s1"),
                      text_stream("Python 3.14 is out, see Zeta first."))
    fake.enqueue_search(SearchReply(results=RESULTS))
    with claude(gateway).messages.stream(model=MODEL, max_tokens=512, tools=[BASH, HOSTED],
                                         messages=[{"role": "user", "content": "Latest Python?"}]) as stream:
        final = stream.get_final_message()
    assert [block.type for block in final.content] == ["text", "server_tool_use", "web_search_tool_result", "text"]
    assert final.content[0].text == "Let me look."
    assert final.content[1].input == {"query": "python 3.14"}
    assert [r.title for r in final.content[2].content] == ["Zeta first", "Alpha second", "Mid third"]
    assert final.content[3].text == "Python 3.14 is out, see Zeta first."
    assert final.stop_reason == "end_turn" and final.usage.server_tool_use.web_search_requests == 1
    _first, second = fake.requests("chat")
    assert chat_tools(fake, 0) == ["Bash", "web_search"]
    state = second.json["conversationState"]
    assert state["history"][-1]["assistantResponseMessage"]["toolUses"] == [
        {"name": "web_search", "input": {"query": "python 3.14"}, "toolUseId": "tooluse_s1"}]
    results = state["currentMessage"]["userInputMessage"]["userInputMessageContext"]["toolResults"]
    assert results[0]["toolUseId"] == "tooluse_s1"
    told = results[0]["content"][0]["text"]
    assert "Zeta snippet." in told and "https://a.example/2" in told
    assert fake.requests("mcp")[0].json["params"]["arguments"] == {"query": "python 3.14"}


def test_mixed_tools_not_streamed_and_ending_in_a_client_tool(gateway: GatewayProcess, fake: FakeKiro) -> None:
    fake.enqueue_chat(tool_call_stream("web_search", {"query": "ls flags"}, tool_use_id="tooluse_s2"),
                      tool_call_stream("Bash", {"command": "ls -la"}, tool_use_id="tooluse_b2"))
    message = claude(gateway).messages.create(model=MODEL, max_tokens=512, tools=[HOSTED, BASH],
                                              messages=[{"role": "user", "content": "List files the right way"}])
    assert [block.type for block in message.content] == ["server_tool_use", "web_search_tool_result", "tool_use"]
    assert message.content[2].name == "Bash" and message.content[2].input == {"command": "ls -la"}
    assert message.stop_reason == "tool_use" and message.usage.server_tool_use.web_search_requests == 1
    assert message.usage.input_tokens > 0 and message.usage.output_tokens > 0


def test_searches_are_bounded_by_max_uses(gateway: GatewayProcess, fake: FakeKiro) -> None:
    fake.enqueue_chat(tool_call_stream("web_search", {"query": "one"}, tool_use_id="tooluse_m1"),
                      tool_call_stream("web_search", {"query": "two"}, tool_use_id="tooluse_m2"),
                      text_stream("Answer from one search."))
    message = claude(gateway).messages.create(
        model=MODEL, max_tokens=512, tools=[BASH, {**HOSTED, "max_uses": 1}],
        messages=[{"role": "user", "content": "Search twice"}])
    types = [block.type for block in message.content]
    assert types == ["server_tool_use", "web_search_tool_result", "server_tool_use", "web_search_tool_result", "text"]
    assert message.content[3].content.error_code == "max_uses_exceeded"
    assert message.content[4].text == "Answer from one search."
    assert message.usage.server_tool_use.web_search_requests == 1
    assert [r.json["params"]["arguments"]["query"] for r in fake.requests("mcp")] == ["one"]
    third = fake.requests("chat")[2].json["conversationState"]
    assert chat_tools(fake, 2) == ["Bash"]  # the tool is withdrawn: the model has to answer
    assert "Web search limit reached" in third["currentMessage"]["userInputMessage"]["content"]
    history = json.dumps(third["history"])
    assert "Fake Result 1 about one" in history and "[searched the web for: one]" in history
    assert "toolUses" not in history and "toolResults" not in history  # the searches are written out as text


def test_a_model_query_over_the_limit_is_not_sent(gateway: GatewayProcess, fake: FakeKiro) -> None:
    fake.enqueue_chat(tool_call_stream("web_search", {"query": "y" * 250}, tool_use_id="tooluse_l1"),
                      text_stream("I could not search."))
    message = claude(gateway).messages.create(model=MODEL, max_tokens=512, tools=[BASH, HOSTED],
                                              messages=[{"role": "user", "content": "Search long"}])
    assert message.content[1].content.error_code == "query_too_long"
    assert fake.requests("mcp") == []
    results = fake.requests("chat")[1].json["conversationState"]["currentMessage"]["userInputMessage"][
        "userInputMessageContext"]["toolResults"]
    assert "at most 200" in results[0]["content"][0]["text"]


def test_loop_search_failure_is_told_to_the_model(gateway: GatewayProcess, fake: FakeKiro) -> None:
    fake.enqueue_chat(tool_call_stream("web_search", {"query": "down"}, tool_use_id="tooluse_f1"),
                      text_stream("Search failed, answering from memory."))
    fake.enqueue_search(SearchReply(is_error="backend down"))
    message = claude(gateway).messages.create(model=MODEL, max_tokens=512, tools=[BASH, HOSTED],
                                              messages=[{"role": "user", "content": "Search"}])
    assert message.content[1].content.error_code == "unavailable"
    assert message.content[2].text == "Search failed, answering from memory."
    results = fake.requests("chat")[1].json["conversationState"]["currentMessage"]["userInputMessage"][
        "userInputMessageContext"]["toolResults"]
    told = results[0]["content"][0]["text"]
    assert told.startswith("[tool error]") and "backend down" in told


def test_loop_429_before_the_first_byte_is_http_429(gateway: GatewayProcess, fake: FakeKiro) -> None:
    fake.enqueue_chat(tool_call_stream("web_search", {"query": "busy"}, tool_use_id="tooluse_r1"))
    fake.enqueue_search(Status(429, {"message": "Too many requests", "reason": None}, {"Retry-After": "5"}))
    response, raw = post_stream(gateway, "/v1/messages", {
        "model": MODEL, "max_tokens": 256, "tools": [BASH, HOSTED], "messages": [{"role": "user", "content": "x"}]})
    assert response.status_code == 429 and response.headers["retry-after"] == "5"
    assert json.loads(raw)["error"]["type"] == "rate_limit_error"
    assert len(fake.requests("chat")) == 1  # the model was not asked again


def test_loop_429_after_text_is_an_in_stream_rate_limit_error(gateway: GatewayProcess, fake: FakeKiro) -> None:
    fake.enqueue_chat(tool_call_stream("web_search", {"query": "busy"}, text="Searching now.",
                                       tool_use_id="tooluse_r2"))
    fake.enqueue_search(Status(429, {"message": "Too many requests", "reason": None}, {"Retry-After": "5"}))
    response, raw = post_stream(gateway, "/v1/messages", {
        "model": MODEL, "max_tokens": 256, "tools": [BASH, HOSTED], "messages": [{"role": "user", "content": "x"}]})
    assert response.status_code == 200
    events = sse_events(raw)
    assert "".join(data["delta"].get("text", "") for name, data in events if name == "content_block_delta") \
        == "Searching now."
    assert events[-1][0] == "error" and events[-1][1]["error"]["type"] == "rate_limit_error"
    assert "message_stop" not in [name for name, _ in events]


# ------------------------------------------------------------------------------------------------ Codex


def codex_body(**extra: Any) -> dict[str, Any]:
    return {"model": "claude-sonnet-4.5", "store": False, "include": ["reasoning.encrypted_content"],
            "input": [{"type": "message", "role": "user", "content": [{"type": "input_text", "text": "news?"}]}],
            "tools": [EXEC, {"type": "web_search", "external_web_access": False}], **extra}


def test_codex_stream_carries_web_search_call_items(gateway: GatewayProcess, fake: FakeKiro) -> None:
    fake.enqueue_chat(tool_call_stream("web_search", {"query": "kiro news"}, tool_use_id="tooluse_c1"),
                      text_stream("Kiro news: Fake Result 1."))
    response, raw = post_stream(gateway, "/v1/responses", codex_body())
    assert response.status_code == 200
    events = [data for _, data in sse_events(raw)]
    assert events[0]["type"] == "response.created" and events[-1]["type"] == "response.completed"
    kinds = [e["type"] for e in events]
    for kind in ("response.web_search_call.in_progress", "response.web_search_call.searching",
                 "response.web_search_call.completed"):
        assert kind in kinds
    done = [e["item"] for e in events if e["type"] == "response.output_item.done"]
    assert [item["type"] for item in done] == ["web_search_call", "message"]
    assert done[0]["status"] == "completed" and done[0]["action"] == {"type": "search", "query": "kiro news"}
    assert done[0]["id"].startswith("ws_")
    assert done[1]["content"][0]["text"] == "Kiro news: Fake Result 1."
    assert [item["type"] for item in events[-1]["response"]["output"]] == ["web_search_call", "message"]
    assert chat_tools(fake, 0) == ["exec_command", "web_search"]
    assert "Fake Result 1 about kiro news" in json.dumps(fake.requests("chat")[1].json)


def test_codex_not_streamed_live_mode_and_failed_search(gateway: GatewayProcess, fake: FakeKiro) -> None:
    fake.enqueue_chat(tool_call_stream("web_search", {"query": "kiro"}, tool_use_id="tooluse_c2"),
                      text_stream("No luck."))
    fake.enqueue_search(SearchReply(rpc_error=(-32603, "Internal error")))
    body = codex_body(tools=[EXEC, {"type": "web_search", "external_web_access": True}])
    response = codex(gateway).responses.create(**body)
    assert [item.type for item in response.output] == ["web_search_call", "message"]
    assert response.output[0].status == "failed" and response.output[0].action.query == "kiro"
    assert response.output_text == "No luck." and response.status == "completed"


# ------------------------------------------------------------------------------------------------ turned off


@pytest.mark.parametrize("tools", [[HOSTED], [BASH, HOSTED]])
def test_turned_off_hosted_tool_is_a_clear_400(gateway_off: GatewayProcess, fake: FakeKiro,
                                               tools: list[dict[str, Any]]) -> None:
    with pytest.raises(anthropic.BadRequestError) as caught:
        claude(gateway_off).messages.create(model=MODEL, max_tokens=64, tools=tools,
                                            messages=[{"role": "user", "content": SIDE_PROMPT}])
    assert caught.value.body["type"] == "error" and caught.value.body["error"]["type"] == "invalid_request_error"
    assert "WEB_SEARCH_ENABLED=false" in caught.value.message
    assert fake.requests("chat") == [] and fake.requests("mcp") == []


def test_turned_off_codex_tool_is_dropped(gateway_off: GatewayProcess, fake: FakeKiro) -> None:
    fake.enqueue_chat(text_stream("Plain answer."))
    response = codex(gateway_off).responses.create(**codex_body())
    assert response.output_text == "Plain answer."
    assert chat_tools(fake) == ["exec_command"] and fake.requests("mcp") == []
    assert "web search is turned off" in Path(gateway_off.log_path).read_text()


@pytest.mark.parametrize("max_uses", [0, -1, "5", True, 1.5])
def test_bad_max_uses_is_a_400(gateway: GatewayProcess, fake: FakeKiro, max_uses: Any) -> None:
    response = httpx.post(f"{gateway.url}/v1/messages", headers={"x-api-key": API_KEY}, timeout=30, json={
        "model": MODEL, "max_tokens": 64, "tools": [BASH, {**HOSTED, "max_uses": max_uses}],
        "messages": [{"role": "user", "content": "x"}]})
    assert response.status_code == 400
    body = response.json()
    assert body["type"] == "error" and body["error"]["type"] == "invalid_request_error"
    assert "max_uses" in body["error"]["message"]
    assert fake.requests("chat") == [] and fake.requests("mcp") == []
