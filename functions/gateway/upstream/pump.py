"""One long-lived reader per upstream answer: the body is read into a buffer, the consumer takes all that arrived.

Why not read chunk by chunk: Kiro writes one event-stream frame per network write, and httpx hands over one HTTP
chunk at a time even when a single socket read brought many. Reading in a task of its own lets that task drain
everything already received before the consumer runs again, so frames that arrive together are decoded, formatted
and sent to the client together (one write instead of one per frame). The consumer's deadline (first-token timeout,
keep-alive) is one timer per pump, re-armed only when it fires early; nothing is created per network read but the
waiter future the consumer parks on.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator

import anyio

HIGH_WATER = 1 << 20  # bytes buffered before the reader waits for the consumer (TCP back-pressure on the upstream)


class UpstreamPump:
    """Reads `source` in its own task; `take()` returns everything received since the previous call."""

    __slots__ = ("_chunks", "_deadline", "_drained", "_ended", "_error", "_loop", "_scope", "_size", "_task",
                 "_timer", "_waiter")

    def __init__(self, source: AsyncIterator[bytes]) -> None:
        self._loop = asyncio.get_running_loop()
        self._chunks: list[bytes] = []
        self._size = 0
        self._ended = False
        self._error: Exception | None = None
        self._waiter: asyncio.Future[None] | None = None
        self._drained: asyncio.Future[None] | None = None
        self._deadline = 0.0
        self._timer: asyncio.TimerHandle | None = None
        self._scope: anyio.CancelScope | None = None
        self._task = self._loop.create_task(self._read(source))

    def time(self) -> float:
        """The clock `take()` deadlines are on (the event loop's)."""
        return self._loop.time()

    async def _read(self, source: AsyncIterator[bytes]) -> None:
        with anyio.CancelScope() as self._scope:
            await self._read_all(source)

    async def _read_all(self, source: AsyncIterator[bytes]) -> None:
        try:
            async for chunk in source:
                if not chunk:
                    continue
                self._chunks.append(chunk)
                self._size += len(chunk)
                waiter = self._waiter
                if waiter is not None and not waiter.done():
                    waiter.set_result(None)
                if self._size > HIGH_WATER:
                    self._drained = self._loop.create_future()
                    await self._drained
        except Exception as error:  # handed to the consumer after the bytes that came before it
            self._error = error
        finally:
            self._ended = True
            waiter = self._waiter
            if waiter is not None and not waiter.done():
                waiter.set_result(None)

    async def take(self, deadline: float) -> bytes | None:
        """Bytes received so far, waiting for some if there are none; None when `deadline` (on `time()`) passes
        first; b"" once the body has ended. A read failure is raised once the bytes before it have been taken."""
        while True:
            if self._chunks:
                chunks = self._chunks
                self._chunks = []
                self._size = 0
                drained = self._drained
                if drained is not None:
                    self._drained = None
                    if not drained.done():
                        drained.set_result(None)
                return chunks[0] if len(chunks) == 1 else b"".join(chunks)
            if self._ended:
                error, self._error = self._error, None
                if error is not None:
                    raise error
                return b""
            if self._loop.time() >= deadline:
                return None
            self._deadline = deadline
            timer = self._timer
            if timer is None or timer.when() > deadline:
                if timer is not None:
                    timer.cancel()
                self._timer = self._loop.call_at(deadline, self._alarm)
            waiter = self._waiter = self._loop.create_future()
            try:
                await waiter
            finally:
                self._waiter = None

    def _alarm(self) -> None:
        """The deadline timer: wake a waiting consumer once its deadline is due, else re-arm for it."""
        self._timer = None
        waiter = self._waiter
        if waiter is None or waiter.done():
            return
        if self._loop.time() >= self._deadline:
            waiter.set_result(None)
        else:
            self._timer = self._loop.call_at(self._deadline, self._alarm)

    async def aclose(self) -> None:
        """Stop reading (the caller closes the response); safe to call more than once, and when cancelled."""
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        task = self._task
        if not task.done():
            # Through the reader's cancel scope, not `task.cancel()`: a native cancellation also lands inside
            # httpcore's shielded clean-up and leaves the connection checked out of the pool for good.
            if self._scope is not None:
                self._scope.cancel()
            else:
                task.cancel()  # not started yet: nothing of httpcore's is running
        with contextlib.suppress(BaseException):
            await task
