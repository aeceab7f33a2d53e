"""Who is calling, as far as usage counters and conversation ids need to know — never the key itself.

Today there is one client key (`PROXY_API_KEY`, or the one kept in the Lambda secret), named "default". Named client
keys will map a presented key to its name here; every counter and page already goes through `client_key_name`.
"""

from __future__ import annotations

import hashlib

DEFAULT_KEY_NAME = "default"
_SCOPE_SALT = b"kiro-gateway/conversation-scope\x00"


def client_key_name(presented_key: str) -> str:
    """The name usage is counted under for a request that presented `presented_key` (already checked)."""
    return DEFAULT_KEY_NAME


def key_scope(presented_key: str) -> str:
    """A one-way hash of the presented key: conversation ids of different keys never collide, and the key itself is
    neither stored nor derivable from anything sent upstream."""
    return hashlib.sha256(_SCOPE_SALT + presented_key.encode("utf-8", "surrogatepass")).hexdigest()[:32]
