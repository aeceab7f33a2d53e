"""The HTTP side of conversation ids: read the session hints a request carries (headers and body fields) for
`kiro_core.session`, scoped by the client's key."""

from __future__ import annotations

from typing import Any

from fastapi import Request

from gateway.client_keys import key_scope
from gateway.routes.deps import presented_key
from kiro_core.session import SessionHints, session_hints


def _field(parsed: Any, name: str) -> Any:
    """A declared field, else an unknown one kept by the permissive request models."""
    value = getattr(parsed, name, None)
    if value is None:
        value = (getattr(parsed, "model_extra", None) or {}).get(name)
    return value


def request_session(request: Request, parsed: Any) -> SessionHints:
    """Session hints of a validated client request; headers are looked up case-insensitively."""
    metadata = _field(parsed, "metadata")
    client_metadata = _field(parsed, "client_metadata")
    return session_hints(
        request.headers,
        metadata=metadata if isinstance(metadata, dict) else None,
        prompt_cache_key=_field(parsed, "prompt_cache_key"),
        client_metadata=client_metadata if isinstance(client_metadata, dict) else None,
        body_session_id=_field(parsed, "session_id"),
        scope=key_scope(presented_key(request)),
    )
