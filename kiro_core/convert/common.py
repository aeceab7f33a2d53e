"""Pieces the OpenAI chat and Responses adapters share.

Every helper takes `where` (e.g. `messages[3]`, `input[2]`) so an error or a log line names the exact place in
the client's request; `param` is the field an `InvalidRequestError` points at. Helpers that log are handed the
caller's logger, so log lines keep their logger name and wording.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any, Protocol, TypeVar

from kiro_core.convert import documents
from kiro_core.convert.options import ConversionOptions
from kiro_core.errors import InvalidRequestError
from kiro_core.models.common import is_base64
from kiro_core.unified import Document, Image, Message, ThinkingRequest, ToolResult

SYSTEM_ROLES = frozenset({"system", "developer"})
# Share of the output limit given to thinking, per reasoning effort (the reference gateway's table).
EFFORT_RATIOS: dict[str, float] = {
    "minimal": 0.10,
    "low": 0.20,
    "medium": 0.50,
    "high": 0.80,
    "xhigh": 0.95,
    "max": 1.0,
}
DEFAULT_OUTPUT_LIMIT = 4096  # the budget base when the client gives no max_tokens


@dataclass(slots=True)
class PendingToolResults:
    """A run of tool results (and the images they carry, e.g. MCP screenshots) waiting to become one user
    message, because Kiro takes tool results on a user turn."""

    results: list[ToolResult] = field(default_factory=list)
    images: list[Image] = field(default_factory=list)
    documents: list[Document] = field(default_factory=list)

    def add(self, result: ToolResult, images: list[Image], docs: list[Document] | None = None) -> None:
        self.results.append(result)
        self.images.extend(images)
        self.documents.extend(docs or [])

    def flush_into(self, messages: list[Message]) -> None:
        """Append the pending results as one user message, if there are any, and start a new run."""
        if self.results or self.images or self.documents:
            messages.append(Message(role="user", tool_results=self.results, images=self.images,
                                    documents=self.documents))
            self.results, self.images, self.documents = [], [], []


class _Part(Protocol):
    @property
    def type(self) -> str: ...


P = TypeVar("P", bound=_Part)
# What one content part contributes: (text or None, image or None); None for a part type the caller skips.
PartReader = Callable[[P], tuple[str | None, Image | None] | None]


def text_and_images(
    parts: Iterable[P], where: str, read: PartReader[P], log: logging.Logger
) -> tuple[str, list[Image]]:
    """Texts of the parts joined with a newline, and their images; unsupported parts are skipped with a warning."""
    texts: list[str] = []
    images: list[Image] = []
    for part in parts:
        got = read(part)
        if got is None:
            log.warning("%s: content part of type %r is not supported and was skipped", where, part.type)
            continue
        text, image = got
        if image is not None:
            images.append(image)
        if text is not None:
            texts.append(text)
    return "\n".join(texts), images


def image_part(
    url: str, where: str, *, param: str, skipped: str, shown: str, log: logging.Logger
) -> tuple[str | None, Image | None]:
    """A part reading (see `text_and_images`) for an image given by URL: (None, image) for a `data:` URL; for any
    other URL Kiro cannot take it (it takes inline bytes only, kiro_core does no I/O), so it is skipped with a
    warning and a note, naming `shown`, takes its place in the text so the model knows an image was there.

    `skipped` says what was skipped in the warning (e.g. "image by URL"); `param` is for a malformed data URL.
    """
    if not url.startswith("data:"):
        log.warning("%s: %s skipped, Kiro only accepts inline (base64) images", where, skipped)
        return f"[Image not shown: only inline base64 images are supported, this one was {shown}]", None
    return None, image_from_data_url(url, where, param)


def image_from_data_url(url: str, where: str, param: str) -> Image:
    """The inline image of a `data:image/<type>;base64,<data>` URL; InvalidRequestError naming `where` otherwise."""
    header, sep, data = url[5:].partition(",")
    media_type, _, encoding = header.partition(";")
    if not sep or encoding.lower() != "base64" or not media_type.startswith("image/"):
        raise InvalidRequestError(
            f"{where}: image data URLs must look like 'data:image/<type>;base64,<data>'", param=param
        )
    data = "".join(data.split())  # line-wrapped base64 is still base64
    if not is_base64(data):
        raise InvalidRequestError(f"{where}: the image data URL is not valid base64", param=param)
    return Image(media_type=media_type.lower(), data=data)


def file_document(filename: str | None, file_data: str | None, file_id: str | None, file_url: str | None,
                  where: str, param: str) -> Document:
    """An OpenAI file part (`file_data` as a data URL or raw base64) as a document; references are refused."""
    if file_data:
        media_type, data = documents.split_data_url(file_data.strip())
        return documents.make_document(filename, media_type, data, where, param)
    if file_id:
        raise documents.unsupported_document(where, param, f"the file id {file_id!r}")
    if file_url:
        raise documents.unsupported_document(where, param, f"the file URL {file_url[:200]!r}")
    raise InvalidRequestError(f"{where}: a file part needs 'file_data' (base64 or a data: URL).", param=param)


def parse_tool_arguments(raw: str | dict[str, Any] | None, where: str, call: str, param: str) -> dict[str, Any]:
    """A history call's arguments as the JSON object Kiro wants; bad JSON is the client's error, said precisely.

    `call` names the call in the message, e.g. "tool call 'call_1' (read_file)".
    """
    if raw is None:
        return {}
    if isinstance(raw, dict):
        return raw
    if not raw.strip():
        return {}
    try:
        parsed: Any = json.loads(raw)
    except json.JSONDecodeError as exc:
        raise InvalidRequestError(
            f"{where}: {call} has arguments that are not valid JSON: {exc.msg} at position {exc.pos}", param=param
        ) from exc
    if parsed is None:
        return {}
    if not isinstance(parsed, dict):
        raise InvalidRequestError(f"{where}: {call} has arguments that are JSON but not an object", param=param)
    return parsed


def thinking_from_effort(effort: str | None, output_limit: int | None, options: ConversionOptions) -> ThinkingRequest:
    """A reasoning effort → a budget that is a share of the output limit; absent → the configured default."""
    if effort is None:
        return options.default_thinking()
    if effort == "none":
        return ThinkingRequest(enabled=False)
    base = output_limit or DEFAULT_OUTPUT_LIMIT
    return ThinkingRequest(enabled=True, budget_tokens=options.cap_budget(int(base * EFFORT_RATIOS[effort])))
