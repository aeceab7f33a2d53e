"""Replaying gateway output into the official SDKs without a server, and the core pipeline run the way the
gateway runs it (frames → decoder → assembler → formatter, in awkward network chunks)."""

from __future__ import annotations

import importlib
from types import ModuleType
from typing import Any, Protocol

from kiro_core.events import OutputEvent
from kiro_core.eventstream import KiroEventDecoder
from kiro_core.stream import ResponseAssembler
from tests.support import frames

# A stream with thinking split mid-tag, raw UTF-8, a fragmented tool call, metering and context usage.
WEATHER_STREAM = [
    frames.text("<thinking>Check the"), frames.text(" weather.</thinking>\n\n"),
    frames.text_utf8("It is sunny in Zürich"), frames.text("."),
    frames.tool_start("tooluse_1", "get_weather"),
    frames.tool_input("tooluse_1", "get_weather", '{"city": "Zü'),
    frames.tool_input("tooluse_1", "get_weather", 'rich"}'),
    frames.tool_stop("tooluse_1", "get_weather"),
    frames.metering(0.0169), frames.context_usage(1.5),
]


class Formatter(Protocol):
    def start(self) -> bytes: ...

    def format(self, events: list[OutputEvent]) -> bytes: ...


def sse_for(raw_frames: list[bytes], formatter: Formatter, cut: int = 7, input_tokens: int = 50,
            opening: bytes = b"") -> bytes:
    """The SSE body the gateway would send for `raw_frames` fed in `cut`-byte network chunks."""
    data = b"".join(raw_frames)
    decoder, assembler = KiroEventDecoder(), ResponseAssembler(input_tokens=input_tokens)
    parts = [formatter.start(), opening]
    for at in range(0, len(data), cut):
        batch: list[OutputEvent] = []
        for event in decoder.feed(data[at:at + cut]):
            batch += assembler.feed(event)
        parts.append(formatter.format(batch))
    tail: list[OutputEvent] = []
    for event in decoder.close():
        tail += assembler.feed(event)
    parts.append(formatter.format(tail + assembler.finish()))
    return b"".join(parts)


def sdk_http(sdk: ModuleType) -> Any:
    """The SDK's own HTTP library: httpx in older releases, its successor httpx2 in newer ones (same API)."""
    return importlib.import_module(next(cls.__module__ for cls in sdk.DefaultHttpxClient.__mro__[1:]).partition(".")[0])


def replay_client(sdk: ModuleType, body: bytes, base_url: str, content_type: str = "text/event-stream") -> Any:
    """An `openai.OpenAI` / `anthropic.Anthropic` client whose every request is answered with `body`."""
    http = sdk_http(sdk)

    def handler(request: Any) -> Any:
        return http.Response(200, headers={"content-type": content_type}, content=body)

    client_class = sdk.OpenAI if hasattr(sdk, "OpenAI") else sdk.Anthropic
    return client_class(api_key="k", base_url=base_url, max_retries=0,
                        http_client=http.Client(transport=http.MockTransport(handler)))
