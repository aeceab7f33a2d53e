"""Pieces the request models share."""

from __future__ import annotations

import base64
import binascii
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Discriminator, Tag


class OpenModel(BaseModel):
    """Base for every request shape: unknown fields are tolerated and kept (a gateway that rejects a field it does
    not use breaks clients for nothing)."""

    model_config = ConfigDict(extra="allow")


def str_or_list(item: Any, message: str, *, list_tag: str = "parts", error_type: str = "content_type") -> Any:
    """The annotated type "a string, or a list of `item`" (e.g. a message's `content`).

    Validation is routed to one branch by the value's Python type, so a bad value gets one precise error
    (`error_type` / `message`) instead of one per union member. The branch tags, `text` and `list_tag`, show up
    in error locations (`content.parts.0`), so callers keep the tag their API's errors have always used.
    """

    def route(value: Any) -> str | None:
        if isinstance(value, str):
            return "text"
        if isinstance(value, list):
            return list_tag
        return None

    return Annotated[
        Annotated[str, Tag("text")] | Annotated[list[item], Tag(list_tag)],  # type: ignore[valid-type]
        Discriminator(route, custom_error_type=error_type, custom_error_message=message),
    ]


def is_base64(data: str) -> bool:
    """True for standard base64 (line breaks allowed); a `data:` URL prefix, as some clients send, is tolerated."""
    if data.startswith("data:"):
        data = data.partition(",")[2]
    try:
        base64.b64decode("".join(data.split()), validate=True)
    except (binascii.Error, ValueError):
        return False
    return True
