"""Web search through Kiro's MCP `web_search` tool: the pure pieces (docs/protocol.md §Web search).

Two client shapes meet one upstream call:
* Claude Code's WebSearch tool sends a **side request**: a `/v1/messages` call whose only tool is a dated hosted tool
  `{"type": "web_search_20250305", "name": "web_search"}` and whose user text is "Perform a web search for the query:
  <q>". The gateway answers it itself (no model call): one search, then the Anthropic block sequence.
* Anything else that offers hosted web search (Anthropic mixed tool sets, Codex's `{"type": "web_search"}`) gets a
  `web_search` *function* tool injected; the gateway runs the model's calls of it (the agentic loop, in
  `gateway.web_search`) and shows them to the client as search blocks / `web_search_call` items.

Here: detection, query checks, the JSON-RPC body, reading Kiro's reply into a `SearchOutcome`, and the texts the
model and the client read (a summary that carries every snippet: on later turns it is the only trace of the search
the model keeps, since hosted-search blocks have no Kiro equivalent). No I/O, no clock.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from datetime import UTC, date, datetime
from typing import Any

from kiro_core.unified import ToolSpec

TOOL_NAME = "web_search"  # the MCP tool, the injected function tool, and the hosted tool's name
QUERY_FIELD = "query"
# Kiro refuses longer queries with JSON-RPC -32602 (docs/protocol.md §Web search); callers pass the configured limit.
DEFAULT_MAX_QUERY_CHARS = 200
CLAUDE_CODE_PREFIX = "Perform a web search for the query:"
INVALID_PARAMS = -32602  # JSON-RPC "invalid params": what Kiro answers to an over-long query

# Anthropic's `web_search_tool_result_error.error_code` values.
ERROR_UNAVAILABLE = "unavailable"
ERROR_INVALID_INPUT = "invalid_tool_input"
ERROR_QUERY_TOO_LONG = "query_too_long"
ERROR_MAX_USES = "max_uses_exceeded"
ERROR_TOO_MANY_REQUESTS = "too_many_requests"

_DATED_HOSTED_TYPE = re.compile(r"web_search_\d{8}")
# Codex 0.169 sends `web_search`; OpenAI also documents dated variants such as `web_search_2025_08_26`.
_RESPONSES_TYPES = re.compile(r"web_search(_preview)?(_\d{4}_\d{2}_\d{2})?")

INJECTED_DESCRIPTION = (
    "Search the web for current information. Returns the most relevant pages with their title, URL, publication "
    "date and a text snippet. Use it for anything that may have changed recently or that you are unsure of, and "
    "cite the URLs you rely on in your answer."
)


def injected_tool(max_query_chars: int = DEFAULT_MAX_QUERY_CHARS) -> ToolSpec:
    """The function tool the model gets in place of a hosted web search tool."""
    schema = {
        "type": "object",
        "properties": {
            QUERY_FIELD: {"type": "string",
                          "description": f"The search query, at most {max_query_chars} characters."},
        },
        "required": [QUERY_FIELD],
    }
    return ToolSpec(name=TOOL_NAME, description=INJECTED_DESCRIPTION, input_schema=schema)


# ------------------------------------------------------------------------------------------------ detection


def is_hosted_anthropic_type(tool_type: str | None) -> bool:
    """A dated hosted web search tool type (`web_search_20250305`, `web_search_20260209`, ...)."""
    return bool(tool_type) and _DATED_HOSTED_TYPE.fullmatch(tool_type or "") is not None


def is_responses_web_search_type(tool_type: str | None) -> bool:
    """A Responses API hosted web search tool (`web_search`, `web_search_preview`, dated variants)."""
    return bool(tool_type) and _RESPONSES_TYPES.fullmatch(tool_type or "") is not None


def side_request_query(tools: list[tuple[str | None, str]], user_text: str) -> str | None:
    """The query of Claude Code's WebSearch side request, or None when the request is not one.

    `tools` are (type, name) pairs. A side request has exactly one tool, a dated hosted `web_search`; its query is
    the last user text without Claude Code's "Perform a web search for the query:" lead-in. A function tool that
    merely happens to be named `web_search` (it has no hosted type) never makes a side request.
    """
    if len(tools) != 1:
        return None
    tool_type, name = tools[0]
    if name != TOOL_NAME or not is_hosted_anthropic_type(tool_type):
        return None
    text = user_text.strip()
    if text.startswith(CLAUDE_CODE_PREFIX):
        text = text[len(CLAUDE_CODE_PREFIX):].strip()
    return text


def query_problem(query: str, max_chars: int) -> tuple[str, str] | None:
    """(Anthropic error code, message) when the query cannot be sent to Kiro; None when it can."""
    if not query.strip():
        return ERROR_INVALID_INPUT, "The web search query is empty."
    if len(query) > max_chars:
        return ERROR_QUERY_TOO_LONG, (f"The web search query is {len(query)} characters long; Kiro accepts at most "
                                      f"{max_chars}.")
    return None


def query_of(arguments: str | dict[str, Any]) -> str:
    """The `query` a model's web_search call carries ("" when absent or not a string)."""
    if isinstance(arguments, str):
        try:
            arguments = json.loads(arguments)
        except ValueError:
            return ""
    value = arguments.get(QUERY_FIELD) if isinstance(arguments, dict) else None
    return value.strip() if isinstance(value, str) else ""


# ------------------------------------------------------------------------------------------------ outcomes


@dataclass(frozen=True, slots=True)
class WebResult:
    title: str
    url: str
    snippet: str
    page_age: str | None  # "Month D, YYYY", from Kiro's `publishedDate`


@dataclass(frozen=True, slots=True)
class SearchResults:
    """A search that worked; `results` may be empty (Kiro found nothing), in Kiro's order."""

    query: str
    results: tuple[WebResult, ...]


@dataclass(frozen=True, slots=True)
class SearchFailure:
    """A search that did not give results; `code` is Anthropic's error code, `message` says why."""

    query: str
    code: str
    message: str


SearchOutcome = SearchResults | SearchFailure


@dataclass(frozen=True, slots=True)
class SearchEvent:
    """An output event of its own: the gateway ran (or refused) one web search during the answer.

    `id` is what the client sees (`srvtoolu_…` for Anthropic, `ws_…` for Responses)."""

    id: str
    query: str
    outcome: SearchOutcome

    @property
    def succeeded(self) -> bool:
        return isinstance(self.outcome, SearchResults)


def mcp_request(query: str, request_id: str) -> dict[str, Any]:
    """The JSON-RPC 2.0 `tools/call` body for one search."""
    return {"jsonrpc": "2.0", "id": request_id, "method": "tools/call",
            "params": {"name": TOOL_NAME, "arguments": {QUERY_FIELD: query}}}


def read_mcp_reply(body: bytes | str, query: str) -> SearchOutcome:
    """Kiro's HTTP 200 reply to `tools/call` → results or a failure; never raises.

    Only an explicit `results: []` is an empty search: `isError`, JSON-RPC errors, an inner `error`, and anything
    unreadable are failures (docs/protocol.md §Web search). A reply framed as server-sent events (MCP's streamable HTTP)
    is read from its last `data:` line.
    """
    text = body.decode("utf-8", errors="replace") if isinstance(body, bytes) else body
    message = _json_object(_last_sse_data(text) if text.lstrip().startswith(("event:", "data:")) else text)
    if message is None:
        return SearchFailure(query, ERROR_UNAVAILABLE, "Kiro's web search answered with something that is not JSON.")
    error = message.get("error")
    if isinstance(error, dict):
        code = ERROR_INVALID_INPUT if error.get("code") == INVALID_PARAMS else ERROR_UNAVAILABLE
        said = str(error.get("message") or "no message")[:300]
        return SearchFailure(query, code, f"Kiro's web search refused the call: {said} (JSON-RPC {error.get('code')}).")
    result = message.get("result")
    if not isinstance(result, dict):
        return SearchFailure(query, ERROR_UNAVAILABLE, "Kiro's web search reply has no result.")
    inner_text = _first_text(result.get("content"))
    if result.get("isError"):
        said = (inner_text or "no detail").strip()[:300]
        return SearchFailure(query, ERROR_UNAVAILABLE, f"Kiro's web search failed: {said}")
    inner = _json_object(inner_text or "")
    if inner is None:
        return SearchFailure(query, ERROR_UNAVAILABLE, "Kiro's web search result is not the expected JSON.")
    results = inner.get("results")
    if not isinstance(results, list):
        said = inner.get("error")
        detail = f": {str(said)[:300]}" if said else " (no 'results' list)"
        return SearchFailure(query, ERROR_UNAVAILABLE, f"Kiro's web search gave no results{detail}.")
    return SearchResults(query, tuple(r for r in (_web_result(item) for item in results) if r is not None))


def _last_sse_data(text: str) -> str:
    data = [line[5:].strip() for line in text.splitlines() if line.startswith("data:")]
    return data[-1] if data else ""


def _json_object(text: str) -> dict[str, Any] | None:
    try:
        value = json.loads(text)
    except ValueError:
        return None
    return value if isinstance(value, dict) else None


def _first_text(content: Any) -> str | None:
    if not isinstance(content, list):
        return None
    for part in content:
        if isinstance(part, dict) and part.get("type") == "text" and isinstance(part.get("text"), str):
            return str(part["text"])
    return None


def _web_result(item: Any) -> WebResult | None:
    """One result; entries without a URL cannot be cited and are skipped."""
    if not isinstance(item, dict) or not isinstance(item.get("url"), str) or not item["url"]:
        return None
    title = item.get("title") if isinstance(item.get("title"), str) else ""
    snippet = item.get("snippet") if isinstance(item.get("snippet"), str) else ""
    return WebResult(title=title or item["url"], url=item["url"], snippet=snippet or "",
                     page_age=page_age(item.get("publishedDate")))


_MONTHS = ("January", "February", "March", "April", "May", "June", "July", "August", "September", "October",
           "November", "December")


def page_age(published: Any) -> str | None:
    """Kiro's `publishedDate` (epoch milliseconds, or an ISO date) as "Month D, YYYY" (UTC); None if unknown."""
    day: date | None = None
    if isinstance(published, str) and published.strip().isdigit():
        published = int(published.strip())
    if isinstance(published, int | float) and not isinstance(published, bool) and published > 0:
        try:
            day = datetime.fromtimestamp(published / 1000, UTC).date()
        except (OverflowError, OSError, ValueError):
            return None
    elif isinstance(published, str):
        try:
            day = date.fromisoformat(published.strip()[:10])
        except ValueError:
            return None
    if day is None:
        return None
    return f"{_MONTHS[day.month - 1]} {day.day}, {day.year}"


# ------------------------------------------------------------------------------------------------ texts


def summary_text(outcome: SearchOutcome) -> str:
    """What the model reads about a search: every result with its title, URL, date and full snippet, in order."""
    quoted = json.dumps(outcome.query, ensure_ascii=False)
    if isinstance(outcome, SearchFailure):
        return f"The web search for {quoted} failed: {outcome.message}"
    if not outcome.results:
        return f"No web results were found for {quoted}."
    count = len(outcome.results)
    lines = [f"Web search results for {quoted} ({count} result{'s' if count != 1 else ''}):"]
    for number, result in enumerate(outcome.results, 1):
        lines.append("")
        lines.append(f"{number}. {result.title}")
        lines.append(f"   URL: {result.url}")
        if result.page_age:
            lines.append(f"   Published: {result.page_age}")
        if result.snippet:
            lines.extend(f"   {line}" if line else "" for line in result.snippet.strip().splitlines())
    lines.append("")
    lines.append("Cite the URLs of the results you use.")
    return "\n".join(lines)


def limit_text(limit: int) -> str:
    """The tool result a model gets for a search past the bound."""
    return (f"Web search limit reached: {limit} search{'es' if limit != 1 else ''} already ran for this request. "
            f"Do not call {TOOL_NAME} again; answer now with the results you have.")


def replayed_block_text(block: dict[str, Any]) -> str:
    """A `server_tool_use` / `web_search_tool_result` block replayed in an Anthropic history, as text for Kiro
    (which has no such blocks): the query, and each result's title, URL and date. Snippets are left out: in
    answers from Anthropic itself `encrypted_content` is an opaque token, not text."""
    if block.get("type") == "server_tool_use":
        query = (block.get("input") or {}).get(QUERY_FIELD) if isinstance(block.get("input"), dict) else None
        return f"[searched the web for: {query}]" if block.get("name") == TOOL_NAME and query else ""
    content = block.get("content")
    if not isinstance(content, list):
        return "[the web search failed]" if isinstance(content, dict) else ""
    lines = [f"- {item.get('title') or item.get('url')} ({item.get('url')})"
             + (f", {item['page_age']}" if item.get("page_age") else "")
             for item in content if isinstance(item, dict) and item.get("url")]
    return "\n".join(["[web search results:", *lines, "]"]) if lines else "[the web search found nothing]"
