"""Fuzzing the running gateway (issue 13): schema-driven cases from its own `/openapi.json` (schemathesis) and
hostile JSON from hypothesis, for every route. Seeded and bounded so CI runs the same cases in about a minute.

Every answer must be below 500; every 4xx must be in the client's own error shape and leave the upstream untouched.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from schemathesis.core import NOT_SET
from schemathesis.generation.modes import GenerationMode

from tests.integration.conftest import API_KEY, gateway_env
from tests.support.fake_kiro import FakeKiro
from tests.support.gateway_process import GatewayProcess
from tests.support.hostile import ROUTES, VALID_BODIES, assert_client_error, is_anthropic

FUZZ = settings(derandomize=True, deadline=None, database=None,
                suppress_health_check=list(HealthCheck), max_examples=40)
HEADERS = {"x-api-key": API_KEY, "authorization": f"Bearer {API_KEY}"}


@pytest.fixture(scope="module")
def gateway(fake: FakeKiro, tmp_path_factory: pytest.TempPathFactory) -> Iterator[GatewayProcess]:
    home = tmp_path_factory.mktemp("home")
    with GatewayProcess(gateway_env(fake, home, LOG_LEVEL="INFO"), home) as process:
        yield process


@pytest.fixture(scope="module")
def client(gateway: GatewayProcess) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=gateway.url, headers=HEADERS, timeout=60) as http:
        yield http


@pytest.fixture(scope="module")
def schema(client: httpx.Client) -> Any:
    return schemathesis.openapi.from_dict(client.get("/openapi.json").json())


def operations(document: Any) -> dict[str, Any]:
    found = {}
    for result in document.get_all_operations():
        operation = result.ok()
        found[f"{operation.method.upper()} {operation.path}"] = operation
    return found


def check(client: httpx.Client, fake: FakeKiro, method: str, path: str, **send: Any) -> httpx.Response:
    """One request; below 500 always, and a 4xx is in the client's shape with the upstream untouched."""
    before = len(fake.requests("chat"))
    response = client.request(method, path, **send)
    assert response.status_code < 500, (method, path, response.status_code, response.text[:800], send)
    if response.status_code >= 400:
        assert_client_error(path, response)
        assert len(fake.requests("chat")) == before, f"{method} {path} answered {response.status_code} after " \
                                                     "calling the upstream"
    return response


def test_the_schema_lists_every_route(schema: Any) -> None:
    assert {f"POST {route}" for route in ROUTES} | {"GET /v1/models", "GET /v1/models/{model_id}",
                                                    "GET /v1/usage"} <= set(operations(schema))


SCHEMA_CASES = [(f"POST {route}", mode) for route in ROUTES for mode in GenerationMode] + [
    ("GET /v1/models/{model_id}", GenerationMode.POSITIVE),  # a free string path parameter has no negative form
    ("GET /v1/models", GenerationMode.POSITIVE), ("GET /v1/usage", GenerationMode.POSITIVE)]


@pytest.mark.parametrize(("operation", "mode"), SCHEMA_CASES)
def test_schema_driven_cases(schema: Any, client: httpx.Client, fake: FakeKiro, operation: str,
                             mode: GenerationMode) -> None:
    strategy = operations(schema)[operation].as_strategy(generation_mode=mode)

    @FUZZ
    @given(case=strategy)
    def run(case: Any) -> None:
        send: dict[str, Any] = {}
        if case.body is not NOT_SET:
            raw = case.body if isinstance(case.body, bytes) else json.dumps(case.body, allow_nan=True).encode()
            send["content"] = raw
            send["headers"] = {"content-type": "application/json"}
        check(client, fake, case.method, case.formatted_path, **send)

    run()


# Hostile JSON: values that are valid Python but not strict JSON, deep nesting, huge numbers, wrong types.
scalars = (st.none() | st.booleans() | st.integers() | st.integers(min_value=10**30, max_value=10**40)
           | st.floats(allow_nan=True, allow_infinity=True) | st.text(max_size=20)
           | st.sampled_from(["\ud800", "\udfff", "a\udc00b", "\x00", "\u2028", "data:image/png;base64,@@"]))
# Object keys are client input too (issue 21: a lone surrogate in a key made the 400 itself unencodable): lone
# surrogates, control characters, empty, very long, JSON-breaking, and raw invalid UTF-8 (BAD_UTF8_KEY is spliced in
# as bytes), at every depth through `values` and at the top level and along paths through `paths`.
BAD_UTF8_KEY = "__bad_utf8_key__"
hostile_keys = (st.sampled_from(["\ud98a", "\udb3d", "a\udc00b", "\udfff\ud800", "", "\x00", "\x1b[31m", "\u2028", ".",
                                 '"', "\\", " ", BAD_UTF8_KEY])
                | st.text(st.characters(categories=["Cs", "Cc"]), min_size=1, max_size=3)
                | st.integers(min_value=200, max_value=20_000).map(lambda size: "k" * size))
keys = (st.sampled_from(["type", "role", "content", "text", "source", "name", "input", "id", "x"])
        | st.text(max_size=4) | hostile_keys)
values = st.recursive(scalars, lambda inner: st.lists(inner, max_size=3) | st.dictionaries(keys, inner, max_size=3),
                      max_leaves=12)
deep = st.integers(min_value=100, max_value=3000).map(lambda depth: {"__raw__": "[" * depth + "]" * depth})


def _mutate(body: Any, path: list[Any], value: Any) -> Any:
    """`body` with the node at `path` replaced by `value`; missing objects on the way are made up."""
    if not path:
        return value
    head, rest = path[0], path[1:]
    if isinstance(body, dict):
        key = head if isinstance(head, str) else next(iter(body), "x") if body else "x"
        return {**body, key: _mutate(body.get(key), rest, value)}
    if isinstance(body, list) and body:
        index = head % len(body) if isinstance(head, int) else 0
        return [*body[:index], _mutate(body[index], rest, value), *body[index + 1:]]
    if isinstance(head, str):  # a scalar or absent node becomes an object: a key inside a field of the wrong type
        return {head: _mutate(None, rest, value)}
    return value


def _splice_raw(text: str) -> bytes:
    """Replace each `{"__raw__": "<brackets>"}` placeholder with its brackets, unquoted (deep nesting as text), and
    each BAD_UTF8_KEY with bytes that are not UTF-8."""
    marker = '{"__raw__": "'
    while marker in text:
        start = text.index(marker)
        end = text.index('"}', start)
        text = text[:start] + text[start + len(marker):end] + text[end + 2:]
    return text.encode().replace(BAD_UTF8_KEY.encode(), b"k\xff\xfe\xc3(")


paths = st.lists(st.sampled_from(["model", "messages", "input", "tools", "system", "content", "metadata",
                                  "max_tokens", "temperature", "stream", "source", "type", 0, 1]) | hostile_keys,
                 max_size=5)


@pytest.mark.parametrize("route", ROUTES)
def test_hostile_json_on_every_route(client: httpx.Client, fake: FakeKiro, route: str) -> None:
    base = dict(VALID_BODIES[route], stream=False) if route != "/v1/messages/count_tokens" else VALID_BODIES[route]

    @FUZZ
    @given(path=paths, value=values | deep)
    def run(path: list[Any], value: Any) -> None:
        body = _mutate(base, path, value)
        response = check(client, fake, "POST", route, content=_splice_raw(json.dumps(body, allow_nan=True)),
                         headers={"content-type": "application/json"})
        if response.status_code == 200 and route != "/v1/messages/count_tokens":
            answer = json.loads(response.text, parse_constant=_no_constants)  # strict JSON out
            assert answer.get("type") == "message" if is_anthropic(route) else answer.get("object") in (
                "chat.completion", "response")

    run()


def _no_constants(literal: str) -> float:
    raise AssertionError(f"the gateway answered with the non-JSON literal {literal}")


@pytest.mark.parametrize("route", ROUTES)
def test_non_object_bodies_and_wrong_content(client: httpx.Client, fake: FakeKiro, route: str) -> None:
    for raw in (b"", b"null", b"[]", b"42", b'"text"', b"{", b"\xff\xfe", b'{"model": NaN}', b"[" * 2000,
                b'{"model": "m", "messages": ' + b"[" * 1500 + b"]" * 1500 + b"}"):
        check(client, fake, "POST", route, content=raw, headers={"content-type": "application/json"})
