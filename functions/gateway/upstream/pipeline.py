"""One upstream answer, from the open HTTP response to batches of output events.

The commit boundary: nothing is sent to the client until the first decoded event has produced output. Before that,
a silent upstream (first-token timeout), an empty stream, a dropped connection or a retryable in-stream exception
makes a fresh upstream request; after it, failures end the client's stream with its own error event. The boundary is
a point in the stream, not in time: a failure that follows output is after it even when both arrive in one read.
During upstream silence after the commit, `KEEPALIVE` items let the route send pings so that proxies do not cut the
stream.
"""

from __future__ import annotations

import logging
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field

import anyio
import httpx

from gateway.upstream.errors import classify_network_error
from gateway.upstream.kiro_client import KiroClient
from gateway.upstream.pump import UpstreamPump
from kiro_core.errors import ErrorKind, GatewayError
from kiro_core.events import Finish, OutputEvent, StreamError
from kiro_core.eventstream import KiroEventDecoder
from kiro_core.stream import ResponseAssembler

log = logging.getLogger(__name__)

KEEPALIVE = None  # yielded (instead of a batch) after `keepalive_interval` seconds of upstream silence
RETRYABLE_STREAM_ERRORS = {"RATE_LIMIT", "UPSTREAM", "OVERLOADED"}


@dataclass
class AnswerStats:
    """What the request log line and metrics need to know about one answer."""

    started: float = field(default_factory=time.perf_counter)
    first_output_at: float | None = None
    upstream_attempts: int = 0
    finish: Finish | None = None
    error_kind: str | None = None
    metered: float | None = None  # credits Kiro metered for an answer that closed without its Finish (None: none)

    @property
    def ttft_ms(self) -> float | None:
        if self.first_output_at is None:
            return None
        return round((self.first_output_at - self.started) * 1000, 1)


class _Attempt:
    """One upstream response being read (by its pump), decoded and assembled."""

    def __init__(self, response: httpx.Response, assembler: ResponseAssembler):
        self.response = response
        # aiter_raw skips httpx's decoder and re-chunker layers (two generators per chunk); they are only needed
        # when the upstream compresses, which Kiro's event stream does not.
        identity = response.headers.get("content-encoding", "identity").lower() in ("", "identity")
        self.pump = UpstreamPump(response.aiter_raw() if identity else response.aiter_bytes())
        self.decoder = KiroEventDecoder()
        self.assembler = assembler
        self.bytes_seen = 0

    def feed(self, chunk: bytes) -> list[OutputEvent]:
        self.bytes_seen += len(chunk)
        events = self.decoder.feed(chunk)
        if not events:
            return events
        assemble = self.assembler.feed
        if len(events) == 1:
            return assemble(events[0])
        outputs: list[OutputEvent] = []
        for event in events:
            outputs.extend(assemble(event))
        return outputs

    def finish(self) -> list[OutputEvent]:
        outputs: list[OutputEvent] = []
        for event in self.decoder.close():
            outputs.extend(self.assembler.feed(event))
        outputs.extend(self.assembler.finish())
        return outputs

    async def aclose(self) -> None:
        await self.pump.aclose()
        await self.response.aclose()


def _stream_error_to_gateway(error: StreamError) -> GatewayError:
    kind = ErrorKind[error.kind_name] if error.kind_name in ErrorKind.__members__ else ErrorKind.UPSTREAM
    return GatewayError(kind, error.message, retry_after=error.retry_after)


class AnswerStream:
    """An upstream answer past its commit boundary; iterate it for output batches and KEEPALIVE markers."""

    def __init__(self, attempt: _Attempt, first: list[OutputEvent], ended: bool, keepalive: float,
                 stats: AnswerStats):
        self._attempt = attempt
        self._first = first
        self._ended = ended
        self._keepalive = keepalive
        self.stats = stats
        self._closed = False
        self._on_close: list[Callable[[], None]] = []

    @classmethod
    async def open(
        cls,
        client: KiroClient,
        body: bytes,
        new_assembler: Callable[[], ResponseAssembler],
        *,
        first_token_timeout: float,
        attempts: int,
        keepalive: float,
        stats: AnswerStats | None = None,
    ) -> AnswerStream:
        """Request the answer until it yields its first output; raises a classified GatewayError otherwise."""
        stats = stats or AnswerStats()
        last_error: GatewayError | None = None
        for number in range(1, max(attempts, 1) + 1):
            stats.upstream_attempts += 1
            response = await client.open_chat_stream(body)
            attempt = _Attempt(response, new_assembler())
            try:
                result = await cls._first_output(attempt, first_token_timeout)
            except httpx.HTTPError as error:
                last_error, retryable = classify_network_error(error)
                if not retryable:
                    await attempt.aclose()
                    raise last_error from None
            except BaseException:
                await attempt.aclose()
                raise
            else:
                if result is None:
                    last_error = GatewayError(
                        ErrorKind.TIMEOUT,
                        f"Kiro did not start answering within {first_token_timeout:g}s "
                        f"({number} attempt{'s' if number > 1 else ''}). Please try again.",
                    )
                else:
                    first, ended = result
                    # Output before a failure commits the answer, however the reads split the stream: a failure
                    # that arrives in the same read as the first text is reported in-stream, never retried into
                    # an answer that looks complete.
                    error = first[0] if first and isinstance(first[0], StreamError) else None
                    if error is None and not (ended and attempt.bytes_seen == 0):
                        stats.first_output_at = time.perf_counter()
                        return cls(attempt, first, ended, keepalive, stats)
                    if error is None:
                        last_error = GatewayError(ErrorKind.UPSTREAM, "Kiro closed the answer stream without "
                                                  "sending anything.")
                    else:
                        last_error = _stream_error_to_gateway(error)
                        if error.kind_name not in RETRYABLE_STREAM_ERRORS:
                            await attempt.aclose()
                            raise last_error
            await attempt.aclose()
            log.warning("upstream attempt %s/%s failed before the first token: %s", number, attempts,
                        last_error.message)
        assert last_error is not None
        stats.error_kind = last_error.kind.name
        raise last_error

    @staticmethod
    async def _first_output(attempt: _Attempt, timeout: float) -> tuple[list[OutputEvent], bool] | None:
        """Read until something comes out: (outputs, stream ended), or None when `timeout` passes first."""
        pump = attempt.pump
        deadline = pump.time() + timeout
        while True:
            chunk = await pump.take(deadline)
            if chunk is None:
                return None
            if not chunk:
                return attempt.finish(), True
            outputs = attempt.feed(chunk)
            if outputs:
                return outputs, False

    def __aiter__(self) -> AsyncIterator[list[OutputEvent] | None]:
        return self._iterate()

    async def _iterate(self) -> AsyncIterator[list[OutputEvent] | None]:
        attempt = self._attempt
        pump = attempt.pump
        keepalive = self._keepalive
        try:
            going = self._record(self._first)
            yield self._first
            if self._ended or not going:
                return
            while True:
                try:
                    chunk = await pump.take(pump.time() + keepalive)
                except httpx.HTTPError as error:
                    classified, _ = classify_network_error(error)
                    failure = [StreamError(classified.kind.name, f"The answer was cut off: {classified.message}")]
                    self._record(failure)
                    yield failure
                    return
                if chunk is None:
                    yield KEEPALIVE
                    continue
                if not chunk:
                    break
                outputs = attempt.feed(chunk)
                if outputs:
                    ended = self._record(outputs)
                    yield outputs
                    if not ended:
                        return
            tail = attempt.finish()
            if tail:
                self._record(tail)
                yield tail
        finally:
            # Shielded: when the client disconnects, this runs inside a cancelled scope, where an unshielded
            # await would be cancelled again and leave the upstream connection open (and still streaming).
            with anyio.CancelScope(shield=True):
                await self.aclose()

    def _record(self, outputs: list[OutputEvent]) -> bool:
        """Note finish/error in the stats; False once the answer is over (error), so iteration stops."""
        for event in outputs:
            if isinstance(event, Finish):
                self.stats.finish = event
            elif isinstance(event, StreamError):
                self.stats.error_kind = event.kind_name
                return False
        return True

    def on_close(self, callback: Callable[[], None]) -> None:
        """Call `callback` once when the answer is closed (the account pool frees the account's slot)."""
        self._on_close.append(callback)

    async def aclose(self) -> None:
        if not self._closed:
            self._closed = True
            if self.stats.finish is None:  # cut short (client gone, failure): keep what Kiro metered until then
                self.stats.metered = self._attempt.assembler.credits
            try:
                await self._attempt.aclose()
            finally:
                for callback in self._on_close:
                    callback()

    async def collect(self) -> list[OutputEvent]:
        """The whole answer (non-streaming clients); an in-stream failure raises a GatewayError."""
        events: list[OutputEvent] = []
        async for batch in self:
            if batch is None:
                continue
            for event in batch:
                if isinstance(event, StreamError):
                    raise _stream_error_to_gateway(event)
                events.append(event)
        return events
