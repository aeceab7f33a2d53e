"""The fake Kiro's request checks: the 400s the real service gives for reasoning fields, replayed reasoning,
documents and images (docs/protocol.md §Native reasoning, §Documents and images), so tests fail the way production
would.

Signatures are the fake's own: `fake_signature(text)` is what its reasoning streams send, and a replayed
`reasoningText` whose signature is not `fake_signature(text)` is "tampered"; one minted for another model, or for
a tool the request no longer declares, is refused the same way.
"""

from __future__ import annotations

import base64
import binascii
import re
from collections.abc import Callable, Iterator, Mapping
from typing import Any

from tests.support.fake_kiro_scripts import Status
from tests.support.fake_signatures import fake_signature

IMPROPER = {"message": "Improperly formed request.", "reason": "REQUEST_BODY_INVALID"}
SIGNATURE_INVALID = {"message": "Invalid `signature` in `thinking` block", "reason": "THINKING_SIGNATURE_INVALID"}
NOT_SUPPORTED = {"message": "additionalModelRequestFields is not supported for this model", "reason": None}
DOCUMENT_FORMATS = {"pdf", "csv", "doc", "docx", "html", "md", "txt", "xls", "xlsx"}
_NAME = re.compile(r"^[A-Za-z0-9\s\-_()\[\]]{1,200}$")
_MAGIC = {"png": b"\x89PNG", "jpeg": b"\xff\xd8\xff", "gif": b"GIF8", "webp": b"RIFF"}


def _bad(message: str, reason: str | None = "REQUEST_BODY_INVALID") -> Status:
    return Status(400, {"message": message, "reason": reason})


Binding = Callable[[str], "set[tuple[str, frozenset[str]]] | None"]


def check_chat(body: dict[str, Any], models: Mapping[str, dict[str, Any]], minted: Binding | None = None
               ) -> Status | None:
    """The 400 the real service would answer to this generateAssistantResponse body, or None; `minted` says
    what a signature the fake issued was bound to (model id, tool names)."""
    state = body.get("conversationState") or {}
    current = ((state.get("currentMessage") or {}).get("userInputMessage")) or {}
    model_id = str(current.get("modelId", "")).lower()
    model = models.get(model_id) or {}
    tools = frozenset(str((t.get("toolSpecification") or {}).get("name"))
                      for t in (current.get("userInputMessageContext") or {}).get("tools") or [])
    fields = body.get("additionalModelRequestFields")
    if fields is not None:
        schema = model.get("additionalModelRequestFieldsSchema")
        if not schema:
            return Status(400, NOT_SUPPORTED)
        problem = schema_problem(fields, schema, "")
        if problem:
            return _bad(f"Invalid additionalModelRequestFields: {problem}")
    names: set[str] = set()
    for user in _user_messages(state):
        problem = _media_problem(user, names)
        if problem:
            return problem
    for entry in state.get("history") or []:
        reasoning = (entry.get("assistantResponseMessage") or {}).get("reasoningContent")
        if reasoning is not None and (problem := _reasoning_problem(reasoning)):
            return problem
        signature = ((reasoning or {}).get("reasoningText") or {}).get("signature")
        bound = minted(signature) if minted is not None and isinstance(signature, str) else None
        if bound is not None and not any(model == model_id and names <= tools for model, names in bound):
            return Status(400, SIGNATURE_INVALID)
    return None


def _user_messages(state: dict[str, Any]) -> Iterator[dict[str, Any]]:
    for entry in state.get("history") or []:
        if isinstance(entry.get("userInputMessage"), dict):
            yield entry["userInputMessage"]
    current = (state.get("currentMessage") or {}).get("userInputMessage")
    if isinstance(current, dict):
        yield current


def _reasoning_problem(reasoning: Any) -> Status | None:
    if not isinstance(reasoning, dict) or len(reasoning) != 1:
        return Status(400, IMPROPER)
    if "redactedContent" in reasoning:
        return None if _is_base64(reasoning["redactedContent"]) else Status(400, IMPROPER)
    shown = reasoning.get("reasoningText")
    if not isinstance(shown, dict) or not isinstance(shown.get("text"), str) or not shown.get("signature"):
        return Status(400, IMPROPER)
    if shown["signature"] != fake_signature(shown["text"]):
        return Status(400, SIGNATURE_INVALID)
    return None


def _media_problem(user: dict[str, Any], names: set[str]) -> Status | None:
    documents = user.get("documents") or []
    if len(documents) > 5:
        return _bad("At most 5 documents per message.")
    for doc in documents:
        name = doc.get("name")
        if doc.get("format") not in DOCUMENT_FORMATS or not _is_base64((doc.get("source") or {}).get("bytes")):
            return Status(400, IMPROPER)
        if not isinstance(name, str) or not _NAME.match(name) or re.search(r"\s\s", name):
            return _bad("Document name must be 1-200 characters containing only alphanumeric characters, "
                        "whitespace, hyphens, underscores, parentheses, or square brackets, with no consecutive "
                        "whitespace")
        if name in names:
            return _bad("Duplicate document name in the request.")
        names.add(name)
    for image in user.get("images") or []:
        declared = image.get("format")
        data = (image.get("source") or {}).get("bytes") or ""
        head = _head(data)
        actual = next((fmt for fmt, magic in _MAGIC.items() if head.startswith(magic)), None)
        if actual is not None and actual != declared:
            return _bad(f"The image was specified using the image/{declared} media type, but the image appears "
                        f"to be a image/{actual} image", None)
    return None


def schema_problem(value: Any, schema: dict[str, Any], path: str) -> str:
    """What is wrong with `value` under a (small) JSON schema, in the service's words; "" when it conforms."""
    where = path or "value"
    if "enum" in schema and value not in schema["enum"]:
        return f"{where} must be one of {schema['enum']}"
    kind = schema.get("type")
    if kind == "object":
        if not isinstance(value, dict):
            return f"{where} must be an object"
        props = schema.get("properties") or {}
        for name, member in value.items():
            if name not in props:
                if schema.get("additionalProperties") is False:
                    return (f"property '{name}' is not defined in the schema and the schema does not allow "
                            "additional properties")
                continue
            problem = schema_problem(member, props[name], f"{path}.{name}".lstrip("."))
            if problem:
                return problem
        missing = [name for name in schema.get("required") or [] if name not in value]
        return f"{where} is missing required property '{missing[0]}'" if missing else ""
    if kind == "string" and not isinstance(value, str):
        return f"{where} must be a string"
    if kind in ("integer", "number"):
        if isinstance(value, bool) or not isinstance(value, int | float):
            return f"{where} must be a number"
        if "maximum" in schema and value > schema["maximum"]:
            return f"{where} must have a maximum value of {float(schema['maximum'])}"
        if "minimum" in schema and value < schema["minimum"]:
            return f"{where} must have a minimum value of {float(schema['minimum'])}"
    return ""


def _is_base64(value: Any) -> bool:
    if not isinstance(value, str) or not value:
        return False
    try:
        base64.b64decode(value, validate=True)
    except (binascii.Error, ValueError):
        return False
    return True


def _head(data: str) -> bytes:
    try:
        return base64.b64decode(data[:16] + "=" * (-len(data[:16]) % 4))
    except (binascii.Error, ValueError):
        return b""
