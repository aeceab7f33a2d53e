"""Documents and image formats as Kiro takes them (docs/protocol.md §Documents and images).

Kiro accepts nine document formats in `userInputMessage.documents`, with names of 1–200 characters made of letters,
digits, whitespace, `-`, `_`, parentheses and square brackets, no consecutive whitespace, unique in the request; it
rejects anything else with a bare 400. Images must be declared with the format of their actual bytes. These pure
helpers decide formats and names; the adapters raise the client-facing errors.
"""

from __future__ import annotations

import base64
import binascii
import re
from collections.abc import Iterable

from kiro_core.errors import InvalidRequestError
from kiro_core.unified import Document

DOCUMENT_FORMATS: frozenset[str] = frozenset({"pdf", "csv", "doc", "docx", "html", "md", "txt", "xls", "xlsx"})
MEDIA_TYPE_FORMATS: dict[str, str] = {
    "application/pdf": "pdf",
    "text/csv": "csv",
    "application/msword": "doc",
    "application/vnd.openxmlformats-officedocument.wordprocessingml.document": "docx",
    "text/html": "html",
    "text/markdown": "md",
    "text/x-markdown": "md",
    "text/plain": "txt",
    "application/vnd.ms-excel": "xls",
    "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet": "xlsx",
}
_EXTENSIONS = {"htm": "html", "markdown": "md", "text": "txt", **{f: f for f in DOCUMENT_FORMATS}}
# Media types that say nothing about the content: the file name (or the bytes) decide.
_GENERIC_TYPES = frozenset({"", "application/octet-stream", "binary/octet-stream", "application/unknown"})
MAX_NAME = 200
DEFAULT_NAME = "document"
_NOT_ALLOWED = re.compile(r"[^A-Za-z0-9\s\-_()\[\]]+")
_SPACES = re.compile(r"\s+")
_DASHES = re.compile(r"-{2,}")

IMAGE_FORMATS: frozenset[str] = frozenset({"png", "jpeg", "gif", "webp"})


def document_format(media_type: str | None, filename: str | None, data: str = "") -> str | None:
    """Kiro's format for a document: from a specific media type, else the file extension, else PDF magic bytes.

    None when neither names one of the nine formats (a zip archive, an image, an unknown type).
    """
    media = (media_type or "").split(";", 1)[0].strip().lower()
    if media in MEDIA_TYPE_FORMATS:
        return MEDIA_TYPE_FORMATS[media]
    if media not in _GENERIC_TYPES:
        return None
    extension = extension_of(filename)
    if extension:
        return _EXTENSIONS.get(extension)
    return "pdf" if _head(data, 4) == b"%PDF" else None


def extension_of(filename: str | None) -> str:
    """The lower-case extension of a file name ("" when it has none)."""
    base = (filename or "").replace("\\", "/").rsplit("/", 1)[-1]
    stem, dot, extension = base.rpartition(".")
    return extension.lower() if dot and stem else ""


def safe_name(filename: str | None) -> str:
    """A name Kiro accepts: no directory, no extension, allowed characters only, single spaces, ≤ 200 chars."""
    base = (filename or "").replace("\\", "/").rsplit("/", 1)[-1]
    stem, dot, _ = base.rpartition(".")
    name = stem if dot and stem else base
    name = _NOT_ALLOWED.sub("-", name)
    name = _DASHES.sub("-", _SPACES.sub(" ", name)).strip(" -")
    return name[:MAX_NAME].rstrip() or DEFAULT_NAME


def unique_names(names: Iterable[str]) -> list[str]:
    """Names made unique (case-insensitively) by a ` (2)`, ` (3)`… suffix, still within 200 characters."""
    taken: set[str] = set()
    out: list[str] = []
    for name in names:
        candidate, number = name, 1
        while candidate.lower() in taken:
            number += 1
            suffix = f" ({number})"
            candidate = name[: MAX_NAME - len(suffix)].rstrip() + suffix
        taken.add(candidate.lower())
        out.append(candidate)
    return out


def make_document(filename: str | None, media_type: str | None, data: str, where: str, param: str) -> Document:
    """A validated inline document, or an InvalidRequestError in the client's terms naming `where`."""
    fmt = document_format(media_type, filename, data)
    if fmt is None:
        shown = media_type or (f"'.{extension_of(filename)}'" if extension_of(filename) else "unknown")
        raise InvalidRequestError(
            f"{where}: documents of type {shown} cannot be sent to Kiro; supported formats are "
            f"{', '.join(sorted(DOCUMENT_FORMATS))} (base64 data).", param=param)
    clean = "".join(data.split())
    try:
        base64.b64decode(clean, validate=True)
    except (binascii.Error, ValueError):
        raise InvalidRequestError(f"{where}: the document data is not valid base64.", param=param) from None
    return Document(name=filename or DEFAULT_NAME, format=fmt, data=clean)


def text_document(title: str | None, text: str) -> Document:
    """A plain-text document (Anthropic `source.type: "text"`) as Kiro's `txt`."""
    return Document(name=title or DEFAULT_NAME, format="txt", data=base64.b64encode(text.encode()).decode())


def split_data_url(value: str) -> tuple[str | None, str]:
    """(media type or None, base64 payload) of a `data:<type>;base64,<data>` URL or of raw base64."""
    if not value.startswith("data:"):
        return None, value
    header, _, data = value[5:].partition(",")
    return header.split(";", 1)[0].strip() or None, data


def unsupported_document(where: str, param: str, what: str) -> InvalidRequestError:
    """The 400 for a document given by reference (URL, file id), which a stateless gateway cannot fetch."""
    return InvalidRequestError(
        f"{where}: {what} cannot be sent to Kiro, which only takes inline documents; send the file's content "
        "as base64 data instead.", param=param)


def sniff_image_format(data: str) -> str | None:
    """png / jpeg / gif / webp from the first bytes of base64 image data; None when they are none of these."""
    head = _head(data, 12)
    if head.startswith(b"\x89PNG\r\n\x1a\n"):
        return "png"
    if head.startswith(b"\xff\xd8\xff"):
        return "jpeg"
    if head.startswith((b"GIF87a", b"GIF89a")):
        return "gif"
    if head[:4] == b"RIFF" and head[8:12] == b"WEBP":
        return "webp"
    return None


def _head(data: str, size: int) -> bytes:
    """The first `size` decoded bytes of base64 `data` (decoding only what is needed)."""
    chunk = "".join(data[: size * 2 + 8].split())[: (size + 2) // 3 * 4]
    try:
        return base64.b64decode(chunk + "=" * (-len(chunk) % 4))[:size]
    except (binascii.Error, ValueError):
        return b""
