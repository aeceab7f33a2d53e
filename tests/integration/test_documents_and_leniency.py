"""Documents and images through all three client shapes, and fields clients send that Kiro cannot honour
(accepted and dropped, never a 4xx): official SDKs → the real gateway → the fake Kiro, which refuses malformed
documents and images whose declared format does not match their bytes, as the real service does."""

from __future__ import annotations

import base64
from typing import Any

import anthropic
import httpx
import openai
import pytest

from tests.integration.conftest import API_KEY
from tests.support.fake_kiro import FakeKiro, text_stream
from tests.support.gateway_process import GatewayProcess
from tests.support.sdk_clients import anthropic_client, openai_client

PDF = base64.b64encode(b"%PDF-1.7\n1 0 obj << >> endobj\n").decode()
WEBP = base64.b64encode(b"RIFF\x24\x00\x00\x00WEBPVP8 \x18\x00\x00\x00").decode()
ZIP = base64.b64encode(b"PK\x03\x04\x14\x00\x00\x00").decode()
MODEL = "claude-sonnet-4.5"


@pytest.fixture(scope="module")
def gateway(local_gateway: GatewayProcess) -> GatewayProcess:
    return local_gateway


claude = anthropic_client
gpt = openai_client


def current(fake: FakeKiro) -> dict[str, Any]:
    return fake.requests("chat")[-1].json["conversationState"]["currentMessage"]["userInputMessage"]


# ---------------------------------------------------------------- documents


def test_anthropic_documents_reach_the_payload(gateway: GatewayProcess, fake: FakeKiro) -> None:
    fake.enqueue_chat(text_stream("Read them."))
    claude(gateway).messages.create(model=MODEL, max_tokens=100, messages=[{"role": "user", "content": [
        {"type": "document", "title": "Q3 report.pdf",
         "source": {"type": "base64", "media_type": "application/pdf", "data": PDF}},
        {"type": "document", "title": "Q3 report.pdf", "source": {"type": "text", "media_type": "text/plain",
                                                                 "data": "plain notes"}},
        {"type": "text", "text": "Summarise."}]}])
    docs = current(fake)["documents"]
    assert [(d["name"], d["format"]) for d in docs] == [("Q3 report", "pdf"), ("Q3 report (2)", "txt")]
    assert docs[0]["source"]["bytes"] == PDF
    assert base64.b64decode(docs[1]["source"]["bytes"]) == b"plain notes"


def test_anthropic_document_inside_tool_result_is_lifted(gateway: GatewayProcess, fake: FakeKiro) -> None:
    fake.enqueue_chat(text_stream("Seen."))
    tool = {"name": "fetch", "description": "Fetch a file", "input_schema": {"type": "object", "properties": {}}}
    claude(gateway).messages.create(model=MODEL, max_tokens=100, tools=[tool], messages=[
        {"role": "user", "content": "get it"},
        {"role": "assistant", "content": [{"type": "tool_use", "id": "t1", "name": "fetch", "input": {}}]},
        {"role": "user", "content": [{"type": "tool_result", "tool_use_id": "t1", "content": [
            {"type": "text", "text": "here it is"},
            {"type": "document", "source": {"type": "base64", "media_type": "application/pdf", "data": PDF}}]}]}])
    sent = current(fake)
    assert [d["format"] for d in sent["documents"]] == ["pdf"]
    assert sent["userInputMessageContext"]["toolResults"][0]["content"][0]["text"] == "here it is"


def test_openai_chat_file_part(gateway: GatewayProcess, fake: FakeKiro) -> None:
    fake.enqueue_chat(text_stream("ok"))
    gpt(gateway).chat.completions.create(model=MODEL, messages=[{"role": "user", "content": [
        {"type": "text", "text": "Summarise."},
        {"type": "file", "file": {"filename": "data.v2.csv", "file_data": "data:text/csv;base64,YSxiCjEsMg=="}}]}])
    assert current(fake)["documents"] == [{"name": "data-v2", "format": "csv", "source": {"bytes": "YSxiCjEsMg=="}}]


def test_responses_input_file(gateway: GatewayProcess, fake: FakeKiro) -> None:
    fake.enqueue_chat(text_stream("ok"))
    gpt(gateway).responses.create(model=MODEL, input=[{"role": "user", "content": [
        {"type": "input_text", "text": "Summarise."},
        {"type": "input_file", "filename": "spec.pdf", "file_data": f"data:application/pdf;base64,{PDF}"}]}])
    assert current(fake)["documents"] == [{"name": "spec", "format": "pdf", "source": {"bytes": PDF}}]


def test_unsupported_documents_are_400_in_each_shape(gateway: GatewayProcess, fake: FakeKiro) -> None:
    with pytest.raises(anthropic.BadRequestError) as anthropic_error:
        claude(gateway).messages.create(model=MODEL, max_tokens=100, messages=[{"role": "user", "content": [
            {"type": "document", "source": {"type": "url", "url": "https://example.com/a.pdf"}}]}])
    assert anthropic_error.value.body["error"]["type"] == "invalid_request_error"
    assert "inline" in anthropic_error.value.body["error"]["message"]
    with pytest.raises(openai.BadRequestError) as chat_error:
        gpt(gateway).chat.completions.create(model=MODEL, messages=[{"role": "user", "content": [
            {"type": "file", "file": {"filename": "a.zip", "file_data": f"data:application/zip;base64,{ZIP}"}}]}])
    assert "application/zip" in chat_error.value.message
    with pytest.raises(openai.BadRequestError) as responses_error:
        gpt(gateway).responses.create(model=MODEL, input=[{"role": "user", "content": [
            {"type": "input_file", "file_id": "file-abc123"}]}])
    assert "file id" in responses_error.value.message
    too_many = [{"type": "document", "source": {"type": "text", "media_type": "text/plain", "data": f"d{i}"}}
                for i in range(6)]
    with pytest.raises(anthropic.BadRequestError, match="at most 5"):
        claude(gateway).messages.create(model=MODEL, max_tokens=100,
                                        messages=[{"role": "user", "content": too_many}])
    assert fake.requests("chat") == []  # the upstream was never called


# ---------------------------------------------------------------- images


def test_image_format_is_sniffed_from_the_bytes(gateway: GatewayProcess, fake: FakeKiro) -> None:
    fake.enqueue_chat(text_stream("A picture."))
    claude(gateway).messages.create(model=MODEL, max_tokens=100, messages=[{"role": "user", "content": [
        {"type": "image", "source": {"type": "base64", "media_type": "image/png", "data": WEBP}},
        {"type": "text", "text": "What is it?"}]}])
    assert [i["format"] for i in current(fake)["images"]] == ["webp"]  # declared png; the fake would refuse it


def test_tool_result_images_are_lifted(gateway: GatewayProcess, fake: FakeKiro) -> None:
    fake.enqueue_chat(text_stream("Seen."))
    tool = {"type": "function", "function": {"name": "shot", "parameters": {"type": "object", "properties": {}}}}
    gpt(gateway).chat.completions.create(model=MODEL, tools=[tool], messages=[  # type: ignore[list-item]
        {"role": "user", "content": "screenshot"},
        {"role": "assistant", "tool_calls": [{"id": "c1", "type": "function",
                                              "function": {"name": "shot", "arguments": "{}"}}]},
        {"role": "tool", "tool_call_id": "c1", "content": [
            {"type": "text", "text": "taken"},
            {"type": "image_url", "image_url": {"url": f"data:image/jpg;base64,{WEBP}"}}]}])
    assert [i["format"] for i in current(fake)["images"]] == ["webp"]


# ---------------------------------------------------------------- lenient in


def test_fields_kiro_cannot_honour_are_accepted_and_dropped(gateway: GatewayProcess, fake: FakeKiro) -> None:
    """context_management, cache_control everywhere, the anthropic-beta header, unknown block types in history and
    list-form tool_result content: a 200, and none of it reaches Kiro."""
    fake.enqueue_chat(text_stream("Fine."))
    ephemeral = {"type": "ephemeral"}
    tool = {"name": "Bash", "description": "Run", "cache_control": ephemeral,
            "input_schema": {"type": "object", "properties": {"command": {"type": "string"}}}}
    body = {
        "model": "claude-opus-4-5", "max_tokens": 1000, "stream": False, "tools": [tool],
        "context_management": {"edits": [{"type": "clear_tool_uses_20250919"}]},
        "system": [{"type": "text", "text": "Be brief.", "cache_control": ephemeral}],
        "messages": [
            {"role": "user", "content": [{"type": "text", "text": "run ls", "cache_control": ephemeral}]},
            {"role": "assistant", "content": [
                {"type": "server_tool_use", "id": "srvtoolu_1", "name": "web_search", "input": {"query": "q"}},
                {"type": "web_search_tool_result", "tool_use_id": "srvtoolu_1", "content": []},
                {"type": "brand_new_block_2030", "payload": {"x": 1}},
                {"type": "tool_use", "id": "t1", "name": "Bash", "input": {"command": "ls"},
                 "cache_control": ephemeral}]},
            {"role": "user", "content": [{"type": "tool_result", "tool_use_id": "t1", "cache_control": ephemeral,
                                          "content": [{"type": "text", "text": "a.txt", "cache_control": ephemeral},
                                                      {"type": "tool_reference", "tool_name": "Bash"}]}]},
        ],
    }
    response = httpx.post(f"{gateway.url}/v1/messages?beta=true", json=body, timeout=30, headers={
        "x-api-key": API_KEY, "anthropic-version": "2023-06-01",
        "anthropic-beta": "context-management-2025-06-27,interleaved-thinking-2025-05-14"})
    assert response.status_code == 200, response.text
    assert response.json()["content"][-1]["text"] == "Fine."
    payload = fake.requests("chat")[-1].json
    raw = str(payload)
    assert "cache_control" not in raw and "context_management" not in raw and "brand_new_block" not in raw
    results = payload["conversationState"]["currentMessage"]["userInputMessage"]["userInputMessageContext"]
    # a tool_reference (the answer of a tool search) is understood: it says which tool it loaded (issue 19)
    assert results["toolResults"][0]["content"][0]["text"] == "a.txt\nTool loaded: Bash"
