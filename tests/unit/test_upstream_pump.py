"""The upstream pump: what arrives together is taken together, deadlines, end of body, read failures, closing."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest

from gateway.upstream.pump import UpstreamPump


async def _source(queue: asyncio.Queue[bytes | Exception | None]) -> AsyncIterator[bytes]:
    while (item := await queue.get()) is not None:
        if isinstance(item, Exception):
            raise item
        yield item


def test_chunks_that_arrive_together_are_taken_as_one() -> None:
    async def scenario() -> None:
        queue: asyncio.Queue[bytes | Exception | None] = asyncio.Queue()
        for piece in (b"a", b"b", b"c"):
            queue.put_nowait(piece)
        pump = UpstreamPump(_source(queue))
        assert await pump.take(pump.time() + 1) == b"abc"
        queue.put_nowait(b"d")
        assert await pump.take(pump.time() + 1) == b"d"
        queue.put_nowait(None)
        assert await pump.take(pump.time() + 1) == b""
        assert await pump.take(pump.time() + 1) == b""
        await pump.aclose()

    asyncio.run(scenario())


def test_silence_past_the_deadline_returns_none_and_reading_goes_on() -> None:
    async def scenario() -> None:
        queue: asyncio.Queue[bytes | Exception | None] = asyncio.Queue()
        pump = UpstreamPump(_source(queue))
        started = pump.time()
        assert await pump.take(started + 0.05) is None
        assert pump.time() - started >= 0.05
        assert await pump.take(pump.time() + 0.02) is None  # a later deadline re-arms the same timer
        queue.put_nowait(b"late")
        assert await pump.take(pump.time() + 1) == b"late"
        await pump.aclose()

    asyncio.run(scenario())


def test_a_read_failure_comes_after_the_bytes_before_it() -> None:
    async def scenario() -> None:
        queue: asyncio.Queue[bytes | Exception | None] = asyncio.Queue()
        queue.put_nowait(b"partial")
        queue.put_nowait(ConnectionResetError("cut"))
        pump = UpstreamPump(_source(queue))
        assert await pump.take(pump.time() + 1) == b"partial"
        with pytest.raises(ConnectionResetError):
            await pump.take(pump.time() + 1)
        await pump.aclose()

    asyncio.run(scenario())


def test_close_stops_the_reader() -> None:
    async def scenario() -> None:
        closed = asyncio.Event()

        async def endless() -> AsyncIterator[bytes]:
            try:
                while True:
                    await asyncio.sleep(3600)
                    yield b"never"
            finally:
                closed.set()

        pump = UpstreamPump(endless())
        assert await pump.take(pump.time() + 0.01) is None
        await pump.aclose()
        await pump.aclose()  # twice is fine
        assert closed.is_set()

    asyncio.run(scenario())
