"""Web search at the HTTP edge: which requests get it, and their responses (docs/protocol.md §Web search).

* An Anthropic request whose only tool is a dated hosted `web_search_*` tool (Claude Code's WebSearch side request)
  is answered here: one MCP search and no model call, as `server_tool_use`, `web_search_tool_result` and a text
  summary.
* Anthropic, a hosted web search tool among others, and Codex's `web_search` tool: the model gets the injected
  `web_search` function tool and `SearchLoopStream` runs its calls.
* WEB_SEARCH_ENABLED=false: an Anthropic hosted web search tool is refused with a 400 (the client asked for a search
  it would silently not get); Codex's `web_search` tool, which Codex sends on every request, is dropped with a log
  line. Codex's two modes (`web_search = "cached"` sends `external_web_access: false`, `"live"` sends true) are both
  served by a live search: Kiro has no cached index.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable

from fastapi import Request
from fastapi.responses import JSONResponse, Response, StreamingResponse

from gateway import observability
from gateway.client_keys.ledger import Ledger
from gateway.edge.http_io import SSE_HEADERS
from gateway.edge.request_log import record_of
from gateway.edge.serving import collect_answer, finish_record, stream_response
from gateway.runtime import GatewayRuntime
from gateway.settings import Settings
from gateway.web_search.loop import LoopAnswer, SearchLoopStream
from gateway.web_search.mcp import WebSearcher, refused
from kiro_core.errors import ErrorKind, GatewayError
from kiro_core.events import ContentDelta, Finish, Usage
from kiro_core.format.web_search import (
    AnthropicSearchStreamFormatter,
    anthropic_search_message,
    anthropic_tool_use_id,
)
from kiro_core.models.anthropic import AnthropicTool, MessagesRequest, TextBlock
from kiro_core.models.responses import ResponsesRequest
from kiro_core.unified import Conversation
from kiro_core.web_search import (
    TOOL_NAME,
    SearchEvent,
    injected_tool,
    is_hosted_anthropic_type,
    is_responses_web_search_type,
    query_problem,
    side_request_query,
    summary_text,
)

log = logging.getLogger(__name__)

TURNED_OFF = ("Web search is turned off on this gateway (WEB_SEARCH_ENABLED=false), so the hosted web_search tool "
              "cannot run: remove it from 'tools', or ask the gateway's operator to turn web search on.")


async def anthropic_web_search(request: Request, runtime: GatewayRuntime, parsed: MessagesRequest,
                               conversation: Conversation, message_id: str) -> Response | None:
    """The response for a Messages request that offers hosted web search; None when it offers none."""
    tools = parsed.tools or []
    hosted = [tool for tool in tools if is_hosted_anthropic_type(tool.type)]
    if not hosted:
        return None
    settings = runtime.settings
    if not settings.web_search.web_search_enabled:
        raise refused(TURNED_OFF)
    limit = _max_uses(hosted, settings)
    query = side_request_query([(tool.type, tool.name) for tool in tools], _last_user_text(parsed))
    if query is not None:
        return await _side_request(request, runtime, conversation, query, message_id)
    if any(tool.name == TOOL_NAME and not tool.is_server_tool for tool in tools):
        raise refused("The request offers both a hosted web search tool and a function tool named 'web_search'; "
                      "rename the function tool or drop one of them.")
    conversation.tools.append(injected_tool(settings.web_search.web_search_max_query_chars))
    answer = await open_search_answer(request, runtime, conversation, anthropic_tool_use_id, limit)
    if conversation.stream:
        formatter = AnthropicSearchStreamFormatter(conversation.model, message_id, answer.input_tokens)
        return stream_response(request, answer, formatter, formatter.ping())  # type: ignore[arg-type]
    events = await collect_answer(request, answer)  # type: ignore[arg-type]
    return JSONResponse(anthropic_search_message(events, conversation.model, message_id, answer.input_tokens))


def responses_web_search(settings: Settings, parsed: ResponsesRequest, conversation: Conversation) -> bool:
    """Whether this Responses request gets web search; when it does, the `web_search` tool is added to
    `conversation`. Off, the hosted tool is dropped with a log line (Codex sends it on every request)."""
    hosted = [tool for tool in parsed.tools or [] if is_responses_web_search_type(tool.type)]
    if not hosted:
        return False
    if not settings.web_search.web_search_enabled:
        log.info("the client's %r tool is dropped: web search is turned off (WEB_SEARCH_ENABLED=false)",
                 hosted[0].type)
        return False
    if any(tool.name == TOOL_NAME for tool in conversation.tools):
        log.info("the client's %r tool is dropped: it also has a function tool named %r", hosted[0].type, TOOL_NAME)
        return False
    conversation.tools.append(injected_tool(settings.web_search.web_search_max_query_chars))
    return True


async def open_search_answer(request: Request, runtime: GatewayRuntime, conversation: Conversation,
                             new_id: Callable[[], str], limit: int | None = None) -> LoopAnswer:
    """The answer through the search loop, past its commit point (see `loop`); failures before it raise."""
    search = runtime.settings.web_search
    record = record_of(request)
    record.update(model=conversation.model, stream=conversation.stream, web_search="loop")
    searches = 0

    def on_search(event: SearchEvent) -> None:
        nonlocal searches
        searches += event.succeeded
        record.update(web_search_requests=searches)

    ledger = Ledger.of(request, runtime.usage, search.web_search_nominal_credits)
    stream = SearchLoopStream(
        runtime, conversation, WebSearcher(runtime.require_pool(), search.web_search_timeout, ledger),
        limit=limit or search.web_search_max_uses, max_query_chars=search.web_search_max_query_chars,
        new_id=new_id, streamed=conversation.stream, on_search=on_search, budget=ledger.check,
    )
    try:
        await stream.start()
    except Exception as error:  # recorded like any failed answer: its turns' credits, its error class
        kind = error.kind.name if isinstance(error, GatewayError) else type(error).__name__
        stream.stats.error_kind = stream.stats.error_kind or kind
        await finish_record(runtime, record, stream.stats, conversation.stream)
        raise
    record.kiro_payload = stream.kiro_payload
    record.update(kiro_model=stream.kiro_model, input_tokens_estimate=stream.input_tokens)
    return LoopAnswer(stream, stream.input_tokens)


async def _side_request(request: Request, runtime: GatewayRuntime, conversation: Conversation, query: str,
                        message_id: str) -> Response:
    """Claude Code's WebSearch side request: one search, answered without a model (no model tokens are used)."""
    settings = runtime.settings
    record = record_of(request)
    record.update(model=conversation.model, stream=conversation.stream, web_search="side_request")
    problem = query_problem(query, settings.web_search.web_search_max_query_chars)
    if problem:
        raise GatewayError(ErrorKind.INVALID_REQUEST, problem[1], param="messages")
    ledger = Ledger.of(request, runtime.usage, settings.web_search.web_search_nominal_credits)
    searcher = WebSearcher(runtime.require_pool(), settings.web_search.web_search_timeout, ledger)  # records the search
    started = time.perf_counter()
    try:
        outcome = await searcher.search(query)
    except GatewayError as error:
        record.update(error_kind=error.kind.name)
        observability.record_request(conversation.model, None, 0, 0, error.kind.name, conversation.stream)
        raise
    event = SearchEvent(anthropic_tool_use_id(), query, outcome)
    record.update(web_search_requests=int(event.succeeded), finish_reason="stop",
                  ttft_ms=round((time.perf_counter() - started) * 1000, 1))
    observability.record_request(conversation.model, None, 0, 0, None, conversation.stream)
    events = [event, ContentDelta(summary_text(outcome)), Finish("stop", Usage(0, 0))]
    if conversation.stream:
        formatter = AnthropicSearchStreamFormatter(conversation.model, message_id, 0)
        return StreamingResponse(iter([formatter.start(), formatter.format(events)]),
                                 media_type="text/event-stream", headers=SSE_HEADERS)
    return JSONResponse(anthropic_search_message(events, conversation.model, message_id, 0))


def _max_uses(hosted: list[AnthropicTool], settings: Settings) -> int:
    """The client's `max_uses` (the smallest, if several hosted tools give one) capped by WEB_SEARCH_MAX_USES, else
    the setting: a client cannot buy more searches per request than the operator allows."""
    limits: list[int] = [settings.web_search.web_search_max_uses]
    for tool in hosted:
        value = (tool.model_extra or {}).get("max_uses")
        if value is None:
            continue
        if not isinstance(value, int) or isinstance(value, bool) or value < 1:
            raise refused(f"'max_uses' of the {tool.type} tool must be a positive integer, not {value!r}.")
        limits.append(value)
    return min(limits)


def _last_user_text(parsed: MessagesRequest) -> str:
    for message in reversed(parsed.messages):
        if message.role != "user":
            continue
        if isinstance(message.content, str):
            return message.content
        return "\n".join(block.text for block in message.content if isinstance(block, TextBlock))
    return ""
