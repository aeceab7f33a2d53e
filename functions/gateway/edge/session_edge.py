"""The HTTP side of conversation ids: read the session hints a request carries (headers and body fields) for
`kiro_core.session`, scoped by the client's key."""

from __future__ import annotations

import hashlib
from typing import Any

from fastapi import Request

from gateway.edge.deps import presented_key
from kiro_core.session import SessionHints, session_hints

_SCOPE_SALT = b"kiro-gateway/conversation-scope\x00"


def key_scope(presented_key: str) -> str:
    """A one-way hash of the presented key: conversation ids of different keys never collide, and the key itself is
    neither stored nor derivable from anything sent upstream."""
    return hashlib.sha256(_SCOPE_SALT + presented_key.encode("utf-8", "surrogatepass")).hexdigest()[:32]


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
