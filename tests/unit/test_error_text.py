"""Client text in errors is always encodable and short (kiro_core.error_text), and rendering an error never fails
(gateway.edge.http_io.error_response)."""

from __future__ import annotations

import json

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import BaseModel

from gateway.edge.http_io import UNRENDERABLE_MESSAGE, error_response, parse_model
from gateway.edge.serving import unrenderable_stream_error
from kiro_core.error_text import MAX_KEY_CHARS, field_path, printable
from kiro_core.errors import ErrorKind, GatewayError, anthropic_error_body, openai_error_body


@pytest.mark.parametrize(("parts", "rendered"), [
    (["messages", 0, "content"], "messages.0.content"),
    (["\ud98a"], '"\\ud98a"'),
    (["metadata", "\udb3d"], 'metadata."\\udb3d"'),
    (["a", ""], 'a.""'),
    (["a\x00\x1b\n"], '"a\\u0000\\u001b\\u000a"'),
    (["x.y", 'say "hi"', "back\\slash"], '"x.y"."say \\"hi\\""."back\\\\slash"'),
    (["messages", 0, "function-after[check(), Block]"], "messages.0.function-after[check(), Block]"),
    (["caf\u00e9", "\U0001f600"], "caf\u00e9.\U0001f600"),  # readable Unicode stays as it is
])
def test_field_paths_are_readable_and_encodable(parts: list[object], rendered: str) -> None:
    assert field_path(parts) == rendered
    rendered.encode("utf-8")


def test_a_long_key_is_shortened_with_its_length() -> None:
    path = field_path(["metadata", "k" * 100_000])
    assert path == f'metadata."{"k" * MAX_KEY_CHARS}…(100000 chars)"'


def test_printable_escapes_what_cannot_be_encoded_and_bounds_the_length() -> None:
    assert printable("bad \udb3d and \x07 here\nnext\tcol") == "bad \\udb3d and \\u0007 here\nnext\tcol"
    long = printable("x" * 50_000)
    assert len(long) < 2_100 and long.endswith("(50000 characters)")


@settings(max_examples=300, derandomize=True, database=None)
@given(parts=st.lists(st.text() | st.integers(), max_size=6), text=st.text())
def test_any_path_and_text_encode(parts: list[object], text: str) -> None:
    field_path(parts).encode("utf-8")
    printable(text).encode("utf-8")
    for error in (GatewayError(ErrorKind.INVALID_REQUEST, text, param=field_path(parts)),):
        json.dumps(openai_error_body(error), ensure_ascii=False).encode("utf-8")
        json.dumps(anthropic_error_body(error), ensure_ascii=False).encode("utf-8")


class _Tagged(BaseModel):
    labels: dict[str, int]


def test_a_validation_error_names_a_weird_key_encodably() -> None:
    with pytest.raises(GatewayError) as caught:
        parse_model(_Tagged, {"labels": {"\x1b" + "k" * 500: "not a number"}})
    expected = f'labels."\\u001b{"k" * (MAX_KEY_CHARS - 1)}…(501 chars)"'
    assert caught.value.param == expected and expected in caught.value.message
    with pytest.raises(GatewayError) as caught:  # pydantic itself turns a lone surrogate in a key into U+FFFD
        parse_model(_Tagged, {"labels": {"\udb3d": "not a number"}})
    caught.value.message.encode("utf-8")
    assert caught.value.param is not None
    caught.value.param.encode("utf-8")


@pytest.mark.parametrize(("path", "anthropic"), [("/v1/messages", True), ("/v1/chat/completions", False),
                                                   ("/v1/responses", False)])
def test_an_error_that_cannot_be_rendered_still_answers_in_shape(path: str, anthropic: bool) -> None:
    broken = GatewayError(ErrorKind.INVALID_REQUEST, "fine", retry_after=float("nan"))  # ceil(nan) raises
    response = error_response(path, broken)
    body = json.loads(response.body)
    assert response.status_code == 400
    error = body["error"]
    assert error["message"] == UNRENDERABLE_MESSAGE and error["type"] == "invalid_request_error"
    assert (body["type"] == "error") if anthropic else ("param" in error and "code" in error)


def test_an_error_with_surrogates_renders_with_escapes() -> None:
    response = error_response("/v1/chat/completions", GatewayError(ErrorKind.INVALID_REQUEST, "key \udb3d",
                                                                   param='metadata."\udb3d"'))
    assert json.loads(response.body)["error"] == {"message": "key \\udb3d", "type": "invalid_request_error",
                                                  "param": 'metadata."\\udb3d"', "code": None}


@pytest.mark.parametrize("path", ["/v1/messages", "/v1/chat/completions", "/v1/responses"])
def test_the_fixed_stream_failure_is_an_error_event_in_the_clients_shape(path: str) -> None:
    raw = unrenderable_stream_error(path).decode("utf-8")
    lines = raw.rstrip("\n").split("\n")
    data = json.loads(lines[-1].removeprefix("data: "))
    if path == "/v1/messages":
        assert lines[0] == "event: error" and data["type"] == "error" and data["error"]["type"] == "api_error"
    elif path == "/v1/responses":
        assert lines[0] == "event: error" and data["type"] == "error" and data["code"] == "server_error"
    else:
        assert len(lines) == 1 and data["error"]["code"] == "internal_error"
