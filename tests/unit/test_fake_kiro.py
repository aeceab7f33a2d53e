"""The fake Kiro upstream itself: real frames, real chunking, real auth rules, real faults (a broken fake would make
every integration test lie)."""

from __future__ import annotations

import json
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from botocore.eventstream import ChecksumMismatch, EventStreamBuffer

from tests.support.fake_kiro import (
    DEFAULT_MODELS,
    Corrupt,
    Drop,
    FakeKiro,
    Pause,
    Status,
    exception_stream,
    probe_stream,
    silent_stream,
    text_stream,
    throttled,
    tool_call_stream,
    truncated_tool_stream,
)
from tests.support.fake_kiro_http import MANAGEMENT_MODELS_TARGET as MODELS_TARGET


@pytest.fixture
def fake() -> Iterator[FakeKiro]:
    with FakeKiro(piece_sizes=(1, 5)) as server:
        yield server


def chat_body(content: str = "hello there", tools: list[Any] | None = None,
              results: list[Any] | None = None) -> dict[str, Any]:
    context: dict[str, Any] = {}
    if tools:
        context["tools"] = tools
    if results:
        context["toolResults"] = results
    message: dict[str, Any] = {"content": content, "modelId": "claude-sonnet-4.5", "origin": "AI_EDITOR"}
    if context:
        message["userInputMessageContext"] = context
    return {"conversationState": {"chatTriggerType": "MANUAL", "conversationId": "c-1",
                                  "currentMessage": {"userInputMessage": message}}}


def login(fake: FakeKiro) -> str:
    response = httpx.post(f"{fake.url}/refreshToken", json={"refreshToken": fake.issue_refresh_token()})
    assert response.status_code == 200
    return response.json()["accessToken"]


def stream(fake: FakeKiro, token: str, body: dict[str, Any] | None = None) -> tuple[int, list[bytes]]:
    with httpx.stream("POST", f"{fake.url}/generateAssistantResponse", json=body or chat_body(),
                      headers={"Authorization": f"Bearer {token}"}) as response:
        return response.status_code, list(response.iter_raw())


def decode(chunks: list[bytes]) -> list[tuple[dict[str, Any], Any]]:
    buffer = EventStreamBuffer()
    buffer.add_data(b"".join(chunks))
    return [(dict(m.headers), json.loads(m.payload) if m.payload else None) for m in buffer]


def test_default_answer_echoes_in_valid_frames_cut_into_small_pieces(fake: FakeKiro) -> None:
    status, chunks = stream(fake, login(fake), chat_body("first line\nsay hi"))
    assert status == 200
    assert len(chunks) > 20 and max(len(c) for c in chunks) <= 5  # really split, never above the configured size
    events = decode(chunks)
    text = "".join(p["content"] for h, p in events if h[":event-type"] == "assistantResponseEvent")
    assert text == "Echo: say hi"
    kinds = [h[":event-type"] for h, _ in events]
    assert kinds[-2:] == ["meteringEvent", "contextUsageEvent"]
    assert events[-2][1] == {"unit": "credit", "unitPlural": "credits", "usage": 0.0169}


def test_default_answer_calls_the_first_tool_with_fragmented_input(fake: FakeKiro) -> None:
    schema = {"type": "object", "properties": {"city": {"type": "string"}, "days": {"type": "integer"}},
              "required": ["city", "days"]}
    tools = [{"toolSpecification": {"name": "get_weather", "description": "d", "inputSchema": {"json": schema}}}]
    _, chunks = stream(fake, login(fake), chat_body("weather?", tools=tools))
    tool_events = [p for h, p in decode(chunks) if h[":event-type"] == "toolUseEvent"]
    assert tool_events[0].keys() == {"name", "toolUseId"} and tool_events[-1]["stop"] is True
    pieces = [p["input"] for p in tool_events if "input" in p]
    assert len(pieces) > 1 and json.loads("".join(pieces)) == {"city": "example", "days": 1}


def test_default_answer_mentions_tool_results(fake: FakeKiro) -> None:
    results = [{"content": [{"text": "22 degrees"}], "status": "success", "toolUseId": "t1"}]
    _, chunks = stream(fake, login(fake), chat_body("", results=results))
    text = "".join(p["content"] for h, p in decode(chunks) if h[":event-type"] == "assistantResponseEvent")
    assert "22 degrees" in text


def test_builders_have_the_real_shapes(fake: FakeKiro) -> None:
    token = login(fake)
    fake.enqueue_chat(text_stream("answer", thinking="hmm"), truncated_tool_stream("Write", {"content": "x" * 40}),
                      exception_stream("partial"))
    text = "".join(p["content"] for h, p in decode(stream(fake, token)[1]) if "content" in (p or {}))
    assert text == "<thinking>hmm</thinking>\n\nanswer"
    cut = [p for h, p in decode(stream(fake, token)[1])]
    assert not any(p.get("stop") for p in cut) and all(h_p.get("name") == "Write" for h_p in cut)
    with pytest.raises(ValueError):
        json.loads("".join(p.get("input", "") for p in cut))
    headers, payload = decode(stream(fake, token)[1])[-1]
    assert headers[":message-type"] == "exception" and headers[":exception-type"] == "ThrottlingException"
    assert payload == {"message": "Rate exceeded"}


def test_refresh_tokens_are_single_use_and_rotate(fake: FakeKiro) -> None:
    original = fake.issue_refresh_token()
    first = httpx.post(f"{fake.url}/refreshToken", json={"refreshToken": original})
    assert first.status_code == 200 and first.json()["refreshToken"] != original
    assert first.json()["expiresIn"] == 3600 and first.json()["profileArn"] == fake.profile_arn
    again = httpx.post(f"{fake.url}/refreshToken", json={"refreshToken": original})
    assert again.status_code == 401 and again.json()["message"] == "Invalid refresh token"
    rotated = httpx.post(f"{fake.url}/refreshToken", json={"refreshToken": first.json()["refreshToken"]})
    assert rotated.status_code == 200 and fake.refresh_count == 2


def test_oidc_token_endpoint_checks_client_and_grant(fake: FakeKiro) -> None:
    client_id, secret = fake.register_client()
    token = fake.issue_refresh_token()
    body = {"grantType": "refresh_token", "clientId": client_id, "clientSecret": secret, "refreshToken": token}
    ok = httpx.post(f"{fake.url}/token", json=body)
    assert ok.status_code == 200 and ok.json()["tokenType"] == "Bearer" and ok.json()["refreshToken"] != token
    reused = httpx.post(f"{fake.url}/token", json=body)
    assert reused.status_code == 400 and reused.json()["error"] == "invalid_grant"
    rotated = ok.json()["refreshToken"]
    wrong = httpx.post(f"{fake.url}/token", json={**body, "clientSecret": "nope", "refreshToken": rotated})
    assert wrong.status_code == 401 and wrong.json()["error"] == "invalid_client"


def test_concurrent_refreshes_of_one_token_succeed_exactly_once(fake: FakeKiro) -> None:
    fake.refresh_delay = 0.05
    token = fake.issue_refresh_token()
    codes: list[int] = []

    def attempt() -> None:
        codes.append(httpx.post(f"{fake.url}/refreshToken", json={"refreshToken": token}).status_code)

    threads = [threading.Thread(target=attempt) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(codes) == [200] + [401] * 7 and fake.refresh_count == 1


def test_bad_or_expired_access_tokens_get_403(fake: FakeKiro) -> None:
    token = login(fake)
    models = httpx.get(f"{fake.url}/ListAvailableModels", params={"origin": "AI_EDITOR"},
                       headers={"Authorization": f"Bearer {token}"})
    assert models.status_code == 200 and models.json()["models"][0]["tokenLimits"]["maxInputTokens"] == 200_000
    assert stream(fake, "aoa-unknown")[0] == 403
    fake.expire_access_tokens()
    with httpx.stream("POST", f"{fake.url}/generateAssistantResponse", json=chat_body(),
                      headers={"Authorization": f"Bearer {token}"}) as response:
        response.read()
    assert response.status_code == 403
    assert response.json() == {"message": "The bearer token included in the request is invalid.", "reason": None}
    assert fake.issue_access_token(ttl=-1) and stream(fake, fake.issue_access_token(ttl=-1))[0] == 403


def test_models_paginate_with_next_token(fake: FakeKiro) -> None:
    headers = {"Authorization": f"Bearer {login(fake)}"}
    first = httpx.get(f"{fake.url}/ListAvailableModels", params={"maxResults": 2}, headers=headers).json()
    second = httpx.get(f"{fake.url}/ListAvailableModels", params={"maxResults": 99, "nextToken": first["nextToken"]},
                       headers=headers).json()
    assert len(first["models"]) == 2 and second["nextToken"] is None
    assert len(second["models"]) == len(DEFAULT_MODELS) - 2 and first["defaultModel"] == {"modelId": "auto"}


def management(fake: FakeKiro, token: str, body: dict[str, Any], *, target: str = MODELS_TARGET,
               content_type: str = "application/x-amz-json-1.0") -> httpx.Response:
    return httpx.post(f"{fake.url}/", params={"origin": "AI_EDITOR"}, content=json.dumps(body),
                      headers={"Authorization": f"Bearer {token}", "x-amz-target": target,
                               "Content-Type": content_type})


def test_management_catalogue_pages_with_next_token_in_the_body(fake: FakeKiro) -> None:
    token = login(fake)
    fake.models_page_size = 7
    seen: list[dict[str, Any]] = []
    body: dict[str, Any] = {"origin": "AI_EDITOR", "profileArn": fake.profile_arn}
    for _ in range(10):
        page = management(fake, token, body).json()
        seen += page["models"]
        if "nextToken" not in page:
            break
        body["nextToken"] = page["nextToken"]
    assert [m["modelId"] for m in seen] == [m["modelId"] for m in DEFAULT_MODELS]
    assert len(fake.requests("models")) == -(-len(DEFAULT_MODELS) // 7)
    assert all(r.method == "POST" and r.headers["x-amz-target"] == MODELS_TARGET for r in fake.requests("models"))
    by_id = {m["modelId"]: m for m in seen}
    assert "additionalModelRequestFieldsSchema" not in by_id["claude-sonnet-4.5"]
    assert "additionalModelRequestFieldsSchema" not in by_id["glm-5"]
    opus = by_id["claude-opus-5.5"]["additionalModelRequestFieldsSchema"]["properties"]
    assert opus["thinking"]["properties"]["type"]["enum"] == ["adaptive"]
    assert opus["output_config"]["properties"]["effort"]["enum"] == ["low", "medium", "high", "xhigh", "max"]
    gpt = by_id["gpt-5.6-sol"]["additionalModelRequestFieldsSchema"]["properties"]
    assert set(gpt) == {"reasoning"} and by_id["gpt-5.6-sol"]["rateMultiplier"] == 4.4


def test_management_catalogue_checks_target_content_type_origin_and_token(fake: FakeKiro) -> None:
    token = login(fake)
    body = {"origin": "AI_EDITOR"}
    assert management(fake, token, body, target="AmazonCodeWhispererService.Nope").status_code == 400
    assert management(fake, token, body, content_type="application/json").status_code == 400
    assert management(fake, token, {"origin": "CLI"}).status_code == 400
    assert management(fake, "aoa-unknown", body).status_code == 403
    assert management(fake, token, body).status_code == 200


def test_management_catalogue_can_differ_per_profile(fake: FakeKiro) -> None:
    token = login(fake)
    fake.set_models([{"modelId": "glm-5"}], profile_arn="arn:aws:codewhisperer:us-east-1:1:profile/OTHER")
    other_arn = "arn:aws:codewhisperer:us-east-1:1:profile/OTHER"
    other = management(fake, token, {"origin": "AI_EDITOR", "profileArn": other_arn})
    assert [m["modelId"] for m in other.json()["models"]] == ["glm-5"]
    assert len(management(fake, token, {"origin": "AI_EDITOR"}).json()["models"]) == fake.models_page_size


def test_probe_stream_and_reasoning_on_request_fields(fake: FakeKiro) -> None:
    token = login(fake)

    def kinds(body: dict[str, Any] | None = None) -> list[tuple[str, Any]]:
        status, chunks = stream(fake, token, body)
        assert status == 200
        return [(headers[":event-type"], payload) for headers, payload in decode(chunks)]

    fake.enqueue_chat(probe_stream("ok", reasoning="hmm", metering=False))
    events = kinds()
    types = [kind for kind, _ in events]
    assert types[0] == "reasoningContentEvent" and "meteringEvent" not in types
    assert types[-2:] == ["metadataEvent", "contextUsageEvent"] and events[-2][1] == {"stopReason": "END_TURN"}
    native = chat_body()
    native["conversationState"]["currentMessage"]["userInputMessage"]["modelId"] = "claude-sonnet-4.6"  # has a schema
    events = kinds({**native, "additionalModelRequestFields": {"output_config": {"effort": "low"}}})
    assert [kind for kind, _ in events][:3] == ["reasoningContentEvent"] * 3 and events[2][1]["signature"]
    assert kinds()[0][0] != "reasoningContentEvent"


def test_drop_cuts_the_stream_mid_body(fake: FakeKiro) -> None:
    token = login(fake)
    for reset in (False, True):
        fake.enqueue_chat([*text_stream("partial answer"), Drop(reset=reset)])
        with pytest.raises((httpx.RemoteProtocolError, httpx.ReadError)):
            stream(fake, token)
    assert stream(fake, token)[0] == 200  # the server is still fine afterwards


def test_status_pause_and_corrupt_steps(fake: FakeKiro) -> None:
    token = login(fake)
    fake.enqueue_chat(throttled(3), [Pause(0.3), Status(503, "busy")], silent_stream(0.4, text_stream("late")),
                      [*text_stream("ok"), Corrupt()])
    with httpx.stream("POST", f"{fake.url}/generateAssistantResponse", json=chat_body(),
                      headers={"Authorization": f"Bearer {token}"}) as response:
        assert response.status_code == 429 and response.headers["retry-after"] == "3"
    started = time.monotonic()
    assert stream(fake, token)[0] == 503 and time.monotonic() - started >= 0.3
    with httpx.stream("POST", f"{fake.url}/generateAssistantResponse", json=chat_body(),
                      headers={"Authorization": f"Bearer {token}"}) as response:
        headers_at = time.monotonic()
        raw = response.iter_raw()
        first_byte = next(raw)
        assert response.status_code == 200 and first_byte and time.monotonic() - headers_at >= 0.35
        assert list(raw)
    with pytest.raises(ChecksumMismatch):
        decode(stream(fake, token)[1])
    with pytest.raises(ValueError, match="Status"):
        fake.enqueue_chat([*text_stream("x"), Status(500)])


def test_fail_next_and_request_log(fake: FakeKiro) -> None:
    fake.fail_next("refresh", 500, {"message": "Internal"}, times=2)
    token = fake.issue_refresh_token()
    codes = [httpx.post(f"{fake.url}/refreshToken", json={"refreshToken": token}).status_code for _ in range(3)]
    assert codes == [500, 500, 200]
    fake.fail_next("chat", 429, headers={"Retry-After": "1"})
    access = httpx.post(f"{fake.url}/refreshToken", json={"refreshToken": fake.issue_refresh_token()}).json()
    assert stream(fake, access["accessToken"])[0] == 429
    chats = fake.requests("chat")
    assert chats[0].json["conversationState"]["conversationId"] == "c-1"
    assert chats[0].headers["authorization"] == f"Bearer {access['accessToken']}"
    assert [r.json["refreshToken"] for r in fake.requests("refreshToken")][:3] == [token] * 3
    with pytest.raises(ValueError):
        fake.fail_next("nowhere", 500)


def test_tool_call_builder_without_text_and_odd_fragments() -> None:
    script = tool_call_stream("Read", '{"path": "/tmp/ä"}', fragment_size=3)
    buffer = EventStreamBuffer()
    buffer.add_data(b"".join(s for s in script if isinstance(s, bytes)))
    inputs = [json.loads(m.payload).get("input", "") for m in buffer if m.headers[":event-type"] == "toolUseEvent"]
    assert "".join(inputs) == '{"path": "/tmp/ä"}'


def test_cli_prints_url_and_a_working_refresh_token() -> None:
    process = subprocess.Popen([sys.executable, "-m", "tests.support.fake_kiro", "--port", "0"],
                               stdout=subprocess.PIPE, text=True)
    try:
        assert process.stdout is not None
        url = process.stdout.readline().split()[-1]
        token = process.stdout.readline().split()[-1]
        response = httpx.post(f"{url}/refreshToken", json={"refreshToken": token}, timeout=5)
        assert response.status_code == 200
    finally:
        process.terminate()
        process.wait(timeout=5)
