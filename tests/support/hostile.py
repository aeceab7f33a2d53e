"""What a hostile client sends, and what the gateway must answer: shared by the regression and fuzzing tests."""

from __future__ import annotations

import json
from typing import Any

import httpx

ROUTES = ("/v1/chat/completions", "/v1/responses", "/v1/messages", "/v1/messages/count_tokens")

# The smallest valid body of each POST route, for tests that break one field at a time.
VALID_BODIES: dict[str, dict[str, Any]] = {
    "/v1/chat/completions": {"model": "claude-sonnet-4.5", "messages": [{"role": "user", "content": "hi"}]},
    "/v1/responses": {"model": "claude-sonnet-4.5", "input": "hi"},
    "/v1/messages": {"model": "claude-sonnet-4.5", "max_tokens": 16, "messages": [{"role": "user", "content": "hi"}]},
    "/v1/messages/count_tokens": {"model": "claude-sonnet-4.5", "messages": [{"role": "user", "content": "hi"}]},
}



def tool_with_schema(route: str, schema: str) -> str:
    """A tool list in the route's own spelling whose parameter schema is `schema`, as raw JSON text (raw so that
    literals that are not JSON, such as NaN, can be embedded)."""
    if route == "/v1/chat/completions":
        return f'[{{"type":"function","function":{{"name":"t","parameters":{schema}}}}}]'
    if route == "/v1/responses":
        return f'[{{"type":"function","name":"t","parameters":{schema}}}]'
    return f'[{{"name":"t","input_schema":{schema}}}]'


def with_raw_field(route: str, field: str, raw_value: str) -> bytes:
    """The route's valid body with `field` set to `raw_value`, spliced in as raw JSON text."""
    body = {key: value for key, value in VALID_BODIES[route].items() if key != field}
    text = json.dumps(body)
    return (text[:-1] + f', "{field}": {raw_value}}}').encode()


def is_anthropic(route: str) -> bool:
    return route.startswith("/v1/messages")


def assert_client_error(route: str, response: httpx.Response, status: int | None = None) -> dict[str, Any]:
    """A 4xx whose body is the route's own error shape (OpenAI or Anthropic); returns the inner error object."""
    assert 400 <= response.status_code < 500, (response.status_code, response.text[:500])
    if status is not None:
        assert response.status_code == status, (response.status_code, response.text[:500])
    body = response.json()
    if is_anthropic(route):
        assert body["type"] == "error", body
        error = body["error"]
        assert isinstance(error["type"], str) and isinstance(error["message"], str)
    else:
        error = body["error"]
        assert isinstance(error["type"], str) and isinstance(error["message"], str) and "param" in error
    return error
