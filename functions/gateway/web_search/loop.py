"""The agentic loop for an answer whose model has the injected `web_search` tool (docs/protocol.md §Web search).

Within one client request: ask the model; when its turn ends with only `web_search` calls, run them against MCP, add
the call and its results to the conversation and ask again; stop when the model answers or calls a client tool.

How it streams. Each upstream turn is read as it comes: text and thinking go to the client at once (a model that
says "Let me look that up" before searching shows it), `web_search` calls are held back, and a turn's `Finish` is
kept until the turn is known to be the last. So the normal path stays incremental, and a search-then-answer shows as
text, search, text — the shape Anthropic's own server tools have. Nothing reaches the client before the first text,
thinking or client tool call: searches made before that (the common case: the model searches first) fail as HTTP
errors in the client's shape; after it, as the client's in-stream error event.

Bounds. Every call counts against `limit` (the client's `max_uses` capped by WEB_SEARCH_MAX_USES). A call past it is
not run: the model is told the limit is reached, and its next turn is asked without the tool, with the loop's
searches written into the conversation as text, so it has to answer. `web_search` calls made next to client tool
calls are dropped (logged): the client's tools run first and the model can search on its next turn.

Usage is summed over the turns (tokens and Kiro's credits), as Anthropic sums server-tool iterations. Each search is
recorded for the caller's key as it happens (`gateway.client_keys.ledger`), and the key's credit budgets are checked
before each search and each further model turn: a used-up budget ends the answer with the budget's 429.
"""

from __future__ import annotations

import contextlib
import json
import logging
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, replace

import anyio

from gateway.runtime import GatewayRuntime
from gateway.upstream.pipeline import AnswerStats
from gateway.web_search.mcp import WebSearcher
from kiro_core.errors import ErrorKind, GatewayError
from kiro_core.events import ContentDelta, Finish, StreamError, ThinkingDelta, ToolCallComplete, Usage
from kiro_core.format.web_search import AnswerEvent, stream_error
from kiro_core.unified import Conversation, Message, ToolCall, ToolResult
from kiro_core.web_search import (
    ERROR_MAX_USES,
    TOOL_NAME,
    SearchEvent,
    SearchFailure,
    limit_text,
    query_of,
    query_problem,
    summary_text,
)

log = logging.getLogger(__name__)

Batch = list[AnswerEvent] | None  # None: upstream silence (the route sends a keep-alive)


def _visible(event: AnswerEvent) -> bool:
    """Does this event show the client something (and so commit the response)?"""
    if isinstance(event, ContentDelta | ThinkingDelta):
        return bool(event.text)
    return not isinstance(event, SearchEvent)


@dataclass
class LoopAnswer:
    """What the routes' `stream_response` / `collect_answer` read of an answer: its stream and input estimate."""

    stream: SearchLoopStream
    input_tokens: int


class SearchLoopStream:
    """An answer made of upstream turns and searches; iterated like `pipeline.AnswerStream` (batches, None for
    keep-alives) so the routes' streaming and collecting code serves it unchanged."""

    def __init__(self, runtime: GatewayRuntime, conversation: Conversation, searcher: WebSearcher, *, limit: int,
                 max_query_chars: int, new_id: Callable[[], str], streamed: bool,
                 on_search: Callable[[SearchEvent], None] = lambda _event: None,
                 budget: Callable[[float], Awaitable[None]] | None = None):
        self._runtime = runtime
        self._base = conversation
        self._searcher = searcher
        self._limit = limit
        self._max_query_chars = max_query_chars
        self._new_id = new_id
        self._streamed = streamed
        self._on_search = on_search
        self._budget = budget  # raises the key's budget 429, given the credits this answer used and has not recorded
        self._metered: float | None = None  # credits Kiro metered over this answer's turns so far
        self._added: list[Message] = []  # the loop's own turns: assistant web_search calls, then their results
        self._used = 0
        self._usage = Usage(0, 0)
        self._committed = False
        self._first: list[AnswerEvent] = []
        self._turns = self._run()
        self.stats = AnswerStats()
        self.input_tokens = 0
        self.kiro_payload = b""
        self.kiro_model = ""

    # -- the interface the routes use ------------------------------------------------------------------------------

    async def start(self) -> None:
        """Run until the client has something to see; any failure before that raises a GatewayError."""
        async for batch in self._turns:
            if batch:
                self._first.extend(batch)
                if self._streamed and any(_visible(event) for event in batch):
                    break
        self._committed = self._streamed
        self.stats.first_output_at = time.perf_counter()

    def __aiter__(self) -> AsyncIterator[Batch]:
        return self._iterate()

    async def _iterate(self) -> AsyncIterator[Batch]:
        try:
            if self._first:
                first, self._first = self._first, []
                yield first
            async for batch in self._turns:
                yield batch
        finally:
            with anyio.CancelScope(shield=True):
                await self.aclose()

    async def aclose(self) -> None:
        with contextlib.suppress(RuntimeError):  # still running elsewhere: its own `finally` closes the upstream
            await self._turns.aclose()

    async def collect(self) -> list[AnswerEvent]:
        """The whole answer (non-streaming clients); a failure raises its GatewayError."""
        events: list[AnswerEvent] = []
        async for batch in self:
            for event in batch or ():
                if isinstance(event, StreamError):
                    raise _gateway_error(event)
                events.append(event)
        return events

    # -- the loop --------------------------------------------------------------------------------------------------

    async def _run(self) -> AsyncIterator[Batch]:
        forced = False
        first = True
        while True:
            turn = AnswerStats()
            try:
                if not first:  # the first turn passed the gate's budget check; each further one is a new request
                    await self._check_budget()
                first = False
                answer = await self._runtime.open_answer(self._conversation(forced), turn)
            except GatewayError as error:
                self._absorb(turn)
                yield self._failure(error)
                return
            if not self.kiro_payload:
                self.input_tokens, self.kiro_payload = answer.input_tokens, answer.kiro_request.body
                self.kiro_model = answer.model.kiro_id
            calls: list[ToolCallComplete] = []
            texts: list[str] = []
            finish: Finish | None = None
            client_calls = False
            try:
                async for batch in answer.stream:
                    if batch is None:
                        yield None
                        continue
                    out: list[AnswerEvent] = []
                    for event in batch:
                        if isinstance(event, ToolCallComplete) and event.name == TOOL_NAME:
                            calls.append(event)
                            continue
                        if isinstance(event, Finish):
                            finish = event
                            continue
                        if isinstance(event, StreamError) and not self._committed:
                            self.stats.error_kind = event.kind_name
                            raise _gateway_error(event)
                        if isinstance(event, StreamError):
                            self.stats.error_kind = event.kind_name
                        elif isinstance(event, ToolCallComplete):
                            client_calls = True
                        elif isinstance(event, ContentDelta):
                            texts.append(event.text)
                        out.append(event)
                    if out:
                        yield out
            finally:
                with anyio.CancelScope(shield=True):
                    await answer.stream.aclose()
                self._absorb(turn)
            if finish is None:
                return  # the turn failed after the commit; its error event has gone out
            self._usage = _added_usage(self._usage, finish.usage)
            if not calls or client_calls or forced:
                yield [self._final(finish, dropped=len(calls), client_calls=client_calls)]
                return
            try:
                searches, results, over_limit = await self._search_all(calls)
            except GatewayError as error:
                yield self._failure(error)
                return
            self._added.append(Message(role="assistant", text="".join(texts),
                                       tool_calls=[ToolCall(c.id, c.name, _arguments(c)) for c in calls]))
            self._added.append(Message(role="user", tool_results=results))
            forced = over_limit
            yield list(searches)

    def _conversation(self, forced: bool) -> Conversation:
        """The conversation for the next turn: the client's, then the loop's turns; when forced, without the tool
        and with the loop's turns as plain text (Kiro refuses tool results whose tool is not offered)."""
        if not forced:
            return replace(self._base, messages=[*self._base.messages, *self._added])
        return replace(self._base, messages=[*self._base.messages, *_as_text(self._added)],
                       tools=[tool for tool in self._base.tools if tool.name != TOOL_NAME])

    async def _search_all(self, calls: list[ToolCallComplete]) -> tuple[list[SearchEvent], list[ToolResult], bool]:
        searches: list[SearchEvent] = []
        results: list[ToolResult] = []
        over_limit = False
        for call in calls:
            query = query_of(call.arguments)
            if self._used >= self._limit:
                over_limit = True
                outcome = SearchFailure(query, ERROR_MAX_USES, limit_text(self._limit))
            else:
                self._used += 1
                problem = query_problem(query, self._max_query_chars)
                if problem:
                    outcome = SearchFailure(query, *problem)
                else:
                    await self._check_budget()  # searches cost credits too: a used-up budget ends the answer
                    outcome = await self._searcher.search(query)
            event = SearchEvent(self._new_id(), query, outcome)
            self._on_search(event)
            searches.append(event)
            results.append(ToolResult(tool_use_id=call.id, content=summary_text(outcome),
                                      is_error=not event.succeeded))
        return searches, results, over_limit

    def _final(self, finish: Finish, *, dropped: int, client_calls: bool) -> Finish:
        if dropped:
            log.info("%d web_search call(s) dropped: %s", dropped,
                     "made next to client tool calls" if client_calls else "the search limit was reached")
        reason = finish.reason
        if dropped and not client_calls and reason == "tool_calls":
            reason = "stop"  # the only calls were the dropped searches
        final = Finish(reason, self._usage, finish.notes)
        self.stats.finish = final
        return final

    def _failure(self, error: GatewayError) -> list[AnswerEvent]:
        """Before the commit a failure is the response (raised); after it, the client's in-stream error."""
        self.stats.error_kind = error.kind.name
        if not self._committed:
            raise error
        return [stream_error(error)]

    async def _check_budget(self) -> None:
        if self._budget is not None:
            await self._budget(self._metered or 0.0)

    def _absorb(self, turn: AnswerStats) -> None:
        self.stats.upstream_attempts += turn.upstream_attempts
        credits = turn.finish.usage.credits if turn.finish is not None else turn.metered
        if credits is not None:
            self._metered = (self._metered or 0.0) + credits
            self.stats.metered = self._metered  # what the ledger records if the answer ends without its Finish


def _gateway_error(event: StreamError) -> GatewayError:
    kind = ErrorKind.__members__.get(event.kind_name, ErrorKind.UPSTREAM)
    return GatewayError(kind, event.message, retry_after=event.retry_after)


def _arguments(call: ToolCallComplete) -> dict[str, object]:
    try:
        value = json.loads(call.arguments)
    except ValueError:
        return {}
    return value if isinstance(value, dict) else {}


def _added_usage(total: Usage, turn: Usage) -> Usage:
    credits = None if total.credits is None and turn.credits is None else (total.credits or 0) + (turn.credits or 0)
    return Usage(total.input_tokens + turn.input_tokens, total.output_tokens + turn.output_tokens,
                 total.cache_read_input_tokens + turn.cache_read_input_tokens,
                 total.cache_creation_input_tokens + turn.cache_creation_input_tokens, credits)


def _as_text(messages: list[Message]) -> list[Message]:
    """The loop's turns with their web_search calls and results written out as text."""
    out: list[Message] = []
    for message in messages:
        if message.role == "assistant":
            searched = "\n".join(f"[searched the web for: {call.arguments.get('query', '')}]"
                                 for call in message.tool_calls)
            out.append(Message(role="assistant", text="\n\n".join(t for t in (message.text, searched) if t)))
        else:
            out.append(Message(role="user", text="\n\n".join(result.content for result in message.tool_results)))
    return out
