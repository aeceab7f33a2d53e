"""Regression tests for the request classes a fuzzer once turned into 500s (issue 13), against the real gateway
process and the fake upstream: each is now a 4xx in the client's own shape, with nothing sent upstream."""

from __future__ import annotations

import http.client
import json
import socket
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.integration.conftest import API_KEY, gateway_env
from tests.support.fake_kiro import FakeKiro
from tests.support.gateway_process import GatewayProcess
from tests.support.hostile import ROUTES, VALID_BODIES, assert_client_error, tool_with_schema, with_raw_field

HEADERS = {"x-api-key": API_KEY, "content-type": "application/json"}


@pytest.fixture(scope="module")
def gateway(fake: FakeKiro, tmp_path_factory: pytest.TempPathFactory) -> Iterator[GatewayProcess]:
    home = tmp_path_factory.mktemp("home")
    with GatewayProcess(gateway_env(fake, home, MAX_JSON_DEPTH="64"), home) as process:
        yield process


def post_raw(gateway: GatewayProcess, route: str, body: bytes) -> httpx.Response:
    return httpx.post(gateway.url + route, content=body, headers=HEADERS, timeout=30)


def refused(gateway: GatewayProcess, fake: FakeKiro, route: str, body: bytes, status: int = 400) -> dict[str, str]:
    """Post `body`; assert a 4xx in the route's shape and an untouched upstream; return the error object."""
    before = len(fake.requests("chat"))
    error = assert_client_error(route, post_raw(gateway, route, body), status)
    assert len(fake.requests("chat")) == before, "a refused request reached the upstream"
    return error


@pytest.mark.parametrize("route", ROUTES)
def test_json_nested_a_thousand_levels_is_refused(gateway: GatewayProcess, fake: FakeKiro, route: str) -> None:
    error = refused(gateway, fake, route, with_raw_field(route, "metadata", "[" * 1000 + "]" * 1000))
    assert "deeper than 64" in error["message"]


@pytest.mark.parametrize("route", ROUTES)
def test_json_just_past_the_depth_limit_names_the_field(gateway: GatewayProcess, fake: FakeKiro, route: str) -> None:
    error = refused(gateway, fake, route, with_raw_field(route, "metadata", '{"a":' * 70 + "1" + "}" * 70))
    assert "metadata.a.a" in error["message"]


@pytest.mark.parametrize("route", ["/v1/messages", "/v1/messages/count_tokens"])
@pytest.mark.parametrize("block_type", [{"x": 1}, ["text"], 7, None])
def test_anthropic_block_with_a_non_string_type(gateway: GatewayProcess, fake: FakeKiro, route: str,
                                                block_type: object) -> None:
    body = dict(VALID_BODIES[route], messages=[{"role": "user", "content": [{"type": block_type, "text": "x"}]}])
    error = refused(gateway, fake, route, json.dumps(body).encode())
    assert error["type"] == "invalid_request_error" and "messages.0.content" in error["message"]


@pytest.mark.parametrize("literal", ["NaN", "Infinity", "-Infinity", "1e400"])
@pytest.mark.parametrize("field", ["temperature", "top_p", "metadata"])
def test_responses_non_finite_numbers_in_echoed_fields(gateway: GatewayProcess, fake: FakeKiro, literal: str,
                                                       field: str) -> None:
    raw = f'{{"k": {literal}}}' if field == "metadata" else literal
    error = refused(gateway, fake, "/v1/responses", with_raw_field("/v1/responses", field, raw))
    assert error["param"] == (f"{field}.k" if field == "metadata" else field)
    assert "finite" in error["message"]


@pytest.mark.parametrize("route", ["/v1/chat/completions", "/v1/responses", "/v1/messages"])
@pytest.mark.parametrize("literal", ["NaN", "Infinity", "1e400"])
def test_non_finite_number_in_a_tool_schema_is_not_sent_upstream(gateway: GatewayProcess, fake: FakeKiro,
                                                                  route: str, literal: str) -> None:
    schema = f'{{"type":"object","properties":{{"n":{{"type":"number","maximum":{literal}}}}}}}'
    error = refused(gateway, fake, route, with_raw_field(route, "tools", tool_with_schema(route, schema)))
    assert "maximum" in error["message"] and "finite" in error["message"]


@pytest.mark.parametrize("field", ["instructions", "user", "metadata", "tools"])
def test_responses_lone_surrogate_in_echoed_strings(gateway: GatewayProcess, fake: FakeKiro, field: str) -> None:
    raw = {
        "instructions": '"be \\ud800 brief"',
        "user": '"\\udfff"',
        "metadata": '{"note": "\\ud83d"}',
        "tools": '[{"type": "function", "name": "t\\ud800", "parameters": {"type": "object"}}]',
    }[field]
    error = refused(gateway, fake, "/v1/responses", with_raw_field("/v1/responses", field, raw))
    assert "Unicode" in error["message"] and error["param"].startswith(field)


# Issue 21: a lone surrogate in an object KEY made the 400 itself unencodable (a 500 on every route).
SURROGATE_KEYS = {  # case: (where the key goes, as raw JSON spliced into the route's valid body; the field named)
    "top-level": (None, '"\\ud98a"'),
    "nested": ("metadata", 'metadata."\\udb3d"'),
    "in-a-wrong-typed-field": ("model", 'model."\\udb3d"'),
}


@pytest.mark.parametrize("route", ROUTES)
@pytest.mark.parametrize("case", list(SURROGATE_KEYS))
def test_a_lone_surrogate_in_a_key_is_a_400_naming_the_field(gateway: GatewayProcess, fake: FakeKiro, route: str,
                                                             case: str) -> None:
    field, named = SURROGATE_KEYS[case]
    if field is None:
        body = json.dumps(VALID_BODIES[route])[:-1].encode() + b', "\\ud98a": 1}'
    else:
        body = with_raw_field(route, field, '{"\\udb3d": "v"}')
    response = post_raw(gateway, route, body)
    response.content.decode("utf-8")  # strict UTF-8 on the wire
    before = len(fake.requests("chat"))
    error = refused(gateway, fake, route, body)
    assert len(fake.requests("chat")) == before
    assert named in error["message"] and "lone surrogate" in error["message"], error
    if "param" in error:
        assert error["param"] == named


@pytest.mark.parametrize("route", ROUTES)
def test_control_characters_and_long_keys_are_named_readably(gateway: GatewayProcess, fake: FakeKiro,
                                                            route: str) -> None:
    key = "\\u001b[31m" + "k" * 5000  # an ANSI escape and five thousand more characters
    body = with_raw_field(route, "model", '{"' + key + '": 1}')  # a key inside a field of the wrong type
    error = refused(gateway, fake, route, body)
    assert "\x1b" not in error["message"] and len(error["message"]) < 2_000


def test_a_valid_surrogate_pair_is_accepted(gateway: GatewayProcess, fake: FakeKiro) -> None:
    body = with_raw_field("/v1/responses", "instructions", '"smile \\ud83d\\ude00"')
    response = post_raw(gateway, "/v1/responses", body)
    assert response.status_code == 200, response.text
    assert response.json()["instructions"] == "smile \U0001f600"


@pytest.mark.parametrize("data", ["not base64!", "AAA", "====", "QUJD\x00"])
def test_invalid_base64_in_an_anthropic_image_is_refused(gateway: GatewayProcess, fake: FakeKiro, data: str) -> None:
    image = {"type": "image", "source": {"type": "base64", "media_type": "image/png", "data": data}}
    body = dict(VALID_BODIES["/v1/messages"], messages=[{"role": "user", "content": [image]}])
    error = refused(gateway, fake, "/v1/messages", json.dumps(body).encode())
    assert "base64" in error["message"]


def test_line_wrapped_base64_image_reaches_upstream_unwrapped(gateway: GatewayProcess, fake: FakeKiro) -> None:
    image = {"type": "image", "source": {"type": "base64", "media_type": "image/png", "data": "iVBO\nRw0K\nGgo="}}
    body = dict(VALID_BODIES["/v1/messages"], messages=[{"role": "user", "content": [image, {"type": "text",
                                                                                          "text": "what?"}]}])
    assert post_raw(gateway, "/v1/messages", json.dumps(body).encode()).status_code == 200
    sent = fake.requests("chat")[-1].json["conversationState"]["currentMessage"]["userInputMessage"]
    assert sent["images"][0]["source"]["bytes"] == "iVBORw0KGgo="


@pytest.mark.parametrize("route", ROUTES)
def test_invalid_utf8_is_refused(gateway: GatewayProcess, fake: FakeKiro, route: str) -> None:
    error = refused(gateway, fake, route, json.dumps(VALID_BODIES[route]).encode()[:-1] + b', "x": "\xff\xfe"}')
    assert "UTF-8" in error["message"]


def test_a_client_error_keeps_the_keep_alive_connection_usable(gateway: GatewayProcess) -> None:
    connection = http.client.HTTPConnection("127.0.0.1", gateway.port, timeout=30)
    try:
        for body in (b'{"model": "m", "input": NaN}', b"[" * 5000, json.dumps(VALID_BODIES["/v1/responses"]).encode()):
            connection.request("POST", "/v1/responses", body=body, headers=HEADERS)
            response = connection.getresponse()
            response.read()
            assert response.getheader("connection", "").lower() != "close"
        assert response.status == 200
    finally:
        connection.close()


def test_client_hang_up_mid_body_is_not_a_server_error(gateway: GatewayProcess, fake: FakeKiro) -> None:
    before = len(fake.requests("chat"))
    with socket.create_connection(("127.0.0.1", gateway.port), timeout=10) as sock:
        sock.sendall(b"POST /v1/messages HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                     b"x-api-key: " + API_KEY.encode() + b"\r\nContent-Length: 10000000\r\n\r\n" + b'{"model": ')
    deadline = time.monotonic() + 10
    while "client_disconnected" not in gateway.logs() and time.monotonic() < deadline:
        time.sleep(0.05)
    lines = [json.loads(line) for line in gateway.logs().splitlines() if "client_disconnected" in line]
    assert lines, gateway.logs()[-2000:]
    record = next(line for line in lines if line.get("status"))
    assert record["status"] == 499 and record["level"] == "INFO"
    assert "Traceback" not in gateway.logs() and "unhandled error" not in gateway.logs()
    assert len(fake.requests("chat")) == before
    assert httpx.get(gateway.url + "/health").status_code == 200


def test_body_over_the_limit_is_413(fake: FakeKiro, tmp_path: Path) -> None:
    with GatewayProcess(gateway_env(fake, tmp_path, MAX_REQUEST_BODY_BYTES="2000", MAX_JSON_STRING_CHARS="100"),
                        tmp_path) as small:
        big = dict(VALID_BODIES["/v1/messages"], metadata={"pad": "x" * 5000})
        assert_client_error("/v1/messages", post_raw(small, "/v1/messages", json.dumps(big).encode()), 413)
        long_string = dict(VALID_BODIES["/v1/chat/completions"], user="y" * 500)
        error = assert_client_error("/v1/chat/completions",
                                    post_raw(small, "/v1/chat/completions", json.dumps(long_string).encode()), 413)
        assert error["param"] == "user"
    assert fake.requests("chat") == []


def test_openapi_documents_every_post_body(gateway: GatewayProcess) -> None:
    document = httpx.get(gateway.url + "/openapi.json").json()
    schemas = document["components"]["schemas"]
    for route in ROUTES:
        body = document["paths"][route]["post"]["requestBody"]["content"]["application/json"]["schema"]
        name = body["$ref"].rsplit("/", 1)[-1]
        assert "properties" in schemas[name] and "model" in schemas[name]["properties"]
    assert schemas["MessagesRequest"]["required"] == ["model", "messages", "max_tokens"]


def test_request_id_is_echoed_only_when_it_is_a_plain_token(gateway: GatewayProcess) -> None:
    assert httpx.get(gateway.url + "/health", headers={"x-request-id": "abc-123.x"}).headers["x-request-id"] == \
        "abc-123.x"
    for hostile in ("a b", "x" * 65, "\xe9t\xe9".encode("latin-1"), "<script>"):
        echoed = httpx.get(gateway.url + "/health", headers={"x-request-id": hostile}).headers["x-request-id"]
        assert echoed not in (hostile, "\xe9t\xe9") and echoed.isalnum()


@pytest.mark.parametrize("route", ["/v1/chat/completions", "/v1/responses", "/v1/messages"])
def test_a_tool_without_a_name_is_refused(gateway: GatewayProcess, fake: FakeKiro, route: str) -> None:
    error = refused(gateway, fake, route, with_raw_field(route, "tools", tool_with_schema(route, "{}").replace(
        '"name":"t"', '"name":""')))
    assert "name" in error["message"]
