"""Documents and image formats: naming, format detection, sniffing, limits and the adapters' document parts."""

from __future__ import annotations

import base64

import pytest

from kiro_core.convert import documents as d
from kiro_core.convert.anthropic import anthropic_to_conversation
from kiro_core.convert.kiro import build_kiro_request
from kiro_core.convert.openai import openai_to_conversation
from kiro_core.convert.options import ConversionOptions
from kiro_core.convert.responses import responses_to_conversation
from kiro_core.errors import InvalidRequestError
from kiro_core.models.anthropic import MessagesRequest
from kiro_core.models.openai import ChatCompletionRequest
from kiro_core.models.responses import ResponsesRequest
from kiro_core.unified import Conversation, Document, Image, Message

PDF = base64.b64encode(b"%PDF-1.7\n1 0 obj\n").decode()
PNG = base64.b64encode(b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR").decode()
JPEG = base64.b64encode(b"\xff\xd8\xff\xe0\x00\x10JFIF\x00").decode()
GIF = base64.b64encode(b"GIF89a\x01\x00\x01\x00").decode()
WEBP = base64.b64encode(b"RIFF\x24\x00\x00\x00WEBPVP8 ").decode()
ZIP = base64.b64encode(b"PK\x03\x04rest").decode()
OPTS = ConversionOptions()


@pytest.mark.parametrize(("filename", "name"), [
    ("Quarterly report.pdf", "Quarterly report"),
    ("/tmp/dir/notes.v2.md", "notes-v2"),
    ("a  b\t\tc.txt", "a b c"),
    ("résumé (final) [v1].docx", "r-sum- (final) [v1]"),
    ("....pdf", "document"),
    ("", "document"),
    ("x" * 300 + ".pdf", "x" * 200),
])
def test_safe_name(filename: str, name: str) -> None:
    assert d.safe_name(filename) == name


def test_unique_names() -> None:
    assert d.unique_names(["report", "Report", "report", "other"]) == ["report", "Report (2)", "report (3)", "other"]
    long = "y" * 200
    assert [len(n) for n in d.unique_names([long, long])] == [200, 200]


@pytest.mark.parametrize(("media_type", "filename", "fmt"), [
    ("application/pdf", None, "pdf"),
    ("text/x-markdown", "x.bin", "md"),
    ("application/vnd.openxmlformats-officedocument.spreadsheetml.sheet", None, "xlsx"),
    (None, "table.CSV", "csv"),
    ("application/octet-stream", "page.htm", "html"),
    ("application/zip", "a.pdf", None),
    (None, "archive.zip", None),
    ("image/png", "x.png", None),
])
def test_document_format(media_type: str | None, filename: str | None, fmt: str | None) -> None:
    assert d.document_format(media_type, filename) == fmt


def test_pdf_magic_when_nothing_else_says() -> None:
    assert d.document_format(None, None, PDF) == "pdf"
    assert d.document_format(None, None, ZIP) is None


@pytest.mark.parametrize(("data", "fmt"), [(PNG, "png"), (JPEG, "jpeg"), (GIF, "gif"), (WEBP, "webp"),
                                           (PDF, None), ("", None), ("!!", None)])
def test_sniff_image_format(data: str, fmt: str | None) -> None:
    assert d.sniff_image_format(data) == fmt


def _payload(conversation: Conversation, options: ConversionOptions = OPTS) -> dict:
    return build_kiro_request(conversation, "m", options, "c").payload


def test_image_format_follows_the_bytes() -> None:
    conv = Conversation(model="m", messages=[Message("user", "see", images=[
        Image("image/png", WEBP), Image("image/jpg", JPEG), Image("image/jpg", "AAAA")])])
    images = _payload(conv)["conversationState"]["currentMessage"]["userInputMessage"]["images"]
    assert [i["format"] for i in images] == ["webp", "jpeg", "jpeg"]


def test_documents_in_payload_with_unique_safe_names() -> None:
    docs = [Document("report.pdf", "pdf", PDF), Document("report.txt", "txt", "aGk=")]
    conv = Conversation(model="m", messages=[Message("user", "read", documents=docs)])
    sent = _payload(conv)["conversationState"]["currentMessage"]["userInputMessage"]["documents"]
    assert sent == [{"name": "report", "format": "pdf", "source": {"bytes": PDF}},
                    {"name": "report (2)", "format": "txt", "source": {"bytes": "aGk="}}]


def test_more_documents_than_the_limit_is_a_400() -> None:
    docs = [Document(f"d{i}.txt", "txt", "aGk=") for i in range(6)]
    conv = Conversation(model="m", messages=[Message("user", "read", documents=docs)])
    with pytest.raises(InvalidRequestError, match="at most 5"):
        _payload(conv)
    assert len(_payload(conv, ConversionOptions(max_documents_per_message=0))["conversationState"]
               ["currentMessage"]["userInputMessage"]["documents"]) == 6


def test_anthropic_documents_base64_text_and_in_tool_results() -> None:
    req = MessagesRequest.model_validate({"model": "m", "max_tokens": 10, "messages": [
        {"role": "assistant", "content": [{"type": "tool_use", "id": "t1", "name": "read", "input": {}}]},
        {"role": "user", "content": [
            {"type": "tool_result", "tool_use_id": "t1", "content": [
                {"type": "text", "text": "here"},
                {"type": "document", "source": {"type": "base64", "media_type": "application/pdf", "data": PDF}}]},
            {"type": "document", "title": "Notes", "source": {"type": "text", "media_type": "text/plain",
                                                             "data": "hello"}, "cache_control": {"type": "ephemeral"}},
        ]}]})
    turn = anthropic_to_conversation(req, OPTS).messages[1]
    assert [(doc.format, doc.name) for doc in turn.documents] == [("pdf", "document"), ("txt", "Notes")]
    assert base64.b64decode(turn.documents[1].data) == b"hello"


@pytest.mark.parametrize("source", [
    {"type": "url", "url": "https://example.com/a.pdf"},
    {"type": "file", "file_id": "file_123"},
    {"type": "base64", "media_type": "application/zip", "data": ZIP},
])
def test_anthropic_unsupported_documents_are_400(source: dict) -> None:
    req = MessagesRequest.model_validate({"model": "m", "max_tokens": 10, "messages": [
        {"role": "user", "content": [{"type": "document", "source": source}]}]})
    with pytest.raises(InvalidRequestError, match="messages\\[0\\]"):
        anthropic_to_conversation(req, OPTS)


def test_openai_file_parts() -> None:
    req = ChatCompletionRequest.model_validate({"model": "m", "messages": [{"role": "user", "content": [
        {"type": "text", "text": "read"},
        {"type": "file", "file": {"filename": "a.pdf", "file_data": f"data:application/pdf;base64,{PDF}"}},
        {"type": "file", "file": {"filename": "b.csv", "file_data": "YSxiCjEsMg=="}}]}]})
    (turn,) = openai_to_conversation(req, OPTS).messages
    assert turn.text == "read" and [doc.format for doc in turn.documents] == ["pdf", "csv"]
    bad = ChatCompletionRequest.model_validate({"model": "m", "messages": [{"role": "user", "content": [
        {"type": "file", "file": {"file_id": "file-abc"}}]}]})
    with pytest.raises(InvalidRequestError, match="file id"):
        openai_to_conversation(bad, OPTS)


def test_responses_input_file() -> None:
    req = ResponsesRequest.model_validate({"model": "m", "input": [{"role": "user", "content": [
        {"type": "input_text", "text": "read"},
        {"type": "input_file", "filename": "spec.md", "file_data": "IyBUaXRsZQ=="}]}]})
    (turn,) = responses_to_conversation(req, OPTS).messages
    assert [(doc.format, doc.name) for doc in turn.documents] == [("md", "spec.md")]
    for part in ({"type": "input_file", "file_url": "https://x/y.pdf"}, {"type": "input_file", "file_id": "f"},
                 {"type": "input_file", "filename": "a.zip", "file_data": ZIP}):
        bad = ResponsesRequest.model_validate({"model": "m", "input": [{"role": "user", "content": [part]}]})
        with pytest.raises(InvalidRequestError):
            responses_to_conversation(bad, OPTS)
