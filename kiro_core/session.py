"""Which Kiro conversation a request belongs to, derived from what the client says about its session.

Kiro's prompt cache is keyed by a stable `conversationId` (GPT-5.6: same id → earlier prefix billed at 0.1×; a random
id per request bills every turn cold). Clients name their session in different places (docs/protocol.md §Prompt
cache):

* Claude Code: header `x-claude-code-session-id`, or `metadata.user_id` (a JSON string with `session_id`, or the
  legacy `…_session_<uuid>`); a sub-agent adds `x-claude-code-agent-id`, constant per sub-agent.
* Codex: body `prompt_cache_key`, headers `session-id` and `thread-id` (a sub-agent thread differs from the key),
  `client_metadata.turn_id` per user turn.
* Generic: `prompt_cache_key`, `x-session-affinity`, `x-client-request-id`, `session_id`; then `x-session-id`,
  `x-kiro-session-id`, `anthropic-session-id`, `metadata.session_id`.

The id is a hash of (scope, session[, agent]) shaped as a lowercase UUID: on Lambda nothing is remembered between
invocations, so it must be computed, not stored. `scope` is a hash of the client's API key, so two clients sending
the same session never share a conversation. A sub-agent is its own conversation; its root is the session's.
`agentContinuationId` stays the same for one user turn (across tool round trips) and changes with the next user input,
as Kiro's own CLI does it. Pure functions: headers come in as a plain mapping with lower-case names.
"""

from __future__ import annotations

import hashlib
import json
import re
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from kiro_core.unified import Conversation, SessionHints  # SessionHints: re-exported, defined beside Conversation

MAX_KEY_CHARS = 256  # a session key longer than this is hashed as its first 256 characters
_LEGACY_SESSION = re.compile(r"_session_([0-9A-Za-z-]{8,})$")

# Headers checked, in order, when the body names no session (docs/protocol.md §Prompt cache, generic and other clients).
_CODEX_HEADERS = ("session-id",)
_GENERIC_HEADERS = ("x-session-affinity", "x-client-request-id", "session_id", "x-session-id", "x-kiro-session-id",
                    "anthropic-session-id")


@dataclass(frozen=True, slots=True)
class ConversationIds:
    """The ids one Kiro request carries."""

    conversation_id: str
    root_conversation_id: str  # equals conversation_id unless this is a sub-agent
    continuation_id: str  # `agentContinuationId`: one per user turn
    derived: bool  # False when the client named no session (ids are random per request)


def _text(value: Any) -> str:
    return value.strip()[:MAX_KEY_CHARS] if isinstance(value, str) else ""


def claude_code_session(user_id: Any) -> str:
    """The session inside Claude Code's `metadata.user_id`: JSON with `session_id`, or the legacy
    `user_<hash>_account_<uuid>_session_<uuid>` form; "" when it names none."""
    text = _text(user_id)
    if not text:
        return ""
    if text.startswith("{"):
        try:
            parsed = json.loads(text)
        except ValueError:
            return ""
        return _text(parsed.get("session_id")) if isinstance(parsed, dict) else ""
    match = _LEGACY_SESSION.search(text)
    return match.group(1) if match else ""


def session_hints(
    headers: Mapping[str, str],
    *,
    metadata: Mapping[str, Any] | None = None,
    prompt_cache_key: Any = None,
    client_metadata: Mapping[str, Any] | None = None,
    body_session_id: Any = None,
    scope: str = "",
) -> SessionHints:
    """The session a request names, from its headers (lower-case names) and the body fields that can carry one."""
    metadata = metadata if isinstance(metadata, Mapping) else {}
    client_metadata = client_metadata if isinstance(client_metadata, Mapping) else {}
    turn = _text(client_metadata.get("turn_id"))

    session = _text(headers.get("x-claude-code-session-id"))
    if session:
        return SessionHints(session, _text(headers.get("x-claude-code-agent-id")), turn, "x-claude-code-session-id",
                            scope)
    session = claude_code_session(metadata.get("user_id"))
    if session:
        return SessionHints(session, _text(headers.get("x-claude-code-agent-id")), turn, "metadata.user_id", scope)

    thread = _text(headers.get("thread-id"))
    candidates: list[tuple[str, str]] = [("prompt_cache_key", _text(prompt_cache_key))]
    candidates += [(name, _text(headers.get(name))) for name in _CODEX_HEADERS + _GENERIC_HEADERS[:3]]
    candidates.append(("session_id", _text(body_session_id)))
    candidates += [(name, _text(headers.get(name))) for name in _GENERIC_HEADERS[3:]]
    candidates.append(("metadata.session_id", _text(metadata.get("session_id"))))
    for source, value in candidates:
        if value:
            agent = thread if thread and thread != value else ""
            return SessionHints(value, agent, turn, source, scope)
    if thread:  # a thread id alone is still a stable conversation
        return SessionHints(thread, "", turn, "thread-id", scope)
    return SessionHints(turn=turn, scope=scope)


def stable_uuid(*parts: str) -> str:
    """A lowercase UUID (version 5 layout) that is a hash of `parts`: same parts, same id; nothing stored."""
    digest = hashlib.sha256("\x1f".join(parts).encode("utf-8", "surrogatepass")).digest()
    return str(uuid.UUID(bytes=digest[:16], version=5))


def user_turn(conversation: Conversation) -> int:
    """How many user inputs the conversation holds: a user message without tool results starts a new turn, one
    that answers tool calls continues the current turn. Stable across the tool round trips of one turn."""
    return sum(1 for m in conversation.messages if m.role == "user" and not m.tool_results)


def conversation_ids(conversation: Conversation, hints: SessionHints | None, random_id: str) -> ConversationIds:
    """The conversation, root and continuation ids for a request; `random_id` (a fresh uuid4 from the caller) is used
    when the client named no session, so such requests behave exactly as before (each one its own conversation)."""
    hints = hints or SessionHints()
    if not hints.session:
        return ConversationIds(random_id, random_id, random_id, derived=False)
    root = stable_uuid("conversation", hints.scope, hints.session)
    conversation_id = stable_uuid("agent", hints.scope, hints.session, hints.agent) if hints.agent else root
    turn = hints.turn or str(user_turn(conversation))
    continuation = stable_uuid("continuation", conversation_id, turn)
    return ConversationIds(conversation_id, root, continuation, derived=True)
