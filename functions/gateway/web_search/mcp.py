"""One web search through Kiro's MCP endpoint: `POST {base}/mcp` with a JSON-RPC `tools/call`.

See docs/protocol.md §Web search.

Headers are the chat client's (bearer, Kiro IDE user agent) plus `x-amzn-kiro-profile-arn` when the account has a
profile and `tokentype: API_KEY` for API-key accounts. Failures come in two weights:
* those that stop the whole answer, raised as `GatewayError`: throttling (429 with `Retry-After`), quota, and a
  token Kiro still refuses after a refresh — the next search would fail the same way;
* those that only fail this search, returned as `SearchFailure`: `isError`, JSON-RPC errors, a refused or broken
  request, 5xx, network trouble. The client sees a failed search; the model is told and answers without it.
"""

from __future__ import annotations

import json
import logging
import time
import uuid

from gateway import observability
from gateway.upstream.kiro_client import KiroClient
from kiro_core.errors import ErrorKind, GatewayError
from kiro_core.web_search import (
    ERROR_UNAVAILABLE,
    SearchFailure,
    SearchOutcome,
    SearchResults,
    mcp_request,
    read_mcp_reply,
)

log = logging.getLogger(__name__)

PROFILE_HEADER = "x-amzn-kiro-profile-arn"
# Failures that say nothing about this one search: retrying the next search would only repeat them (or extend a
# throttling penalty), so they end the answer and reach the client as its own HTTP error / error event.
STOPS_THE_ANSWER = frozenset({ErrorKind.RATE_LIMIT, ErrorKind.THROTTLED, ErrorKind.QUOTA, ErrorKind.PERMISSION,
                              ErrorKind.AUTHENTICATION})


class WebSearcher:
    """Runs searches for one gateway process (shares the Kiro client, its pool and its token handling)."""

    def __init__(self, kiro: KiroClient, timeout: float):
        self._kiro = kiro
        self._timeout = timeout

    async def _headers(self) -> dict[str, str]:
        headers: dict[str, str] = {}
        arn = await self._kiro.profile_arn()
        if arn:
            headers[PROFILE_HEADER] = arn
        if await self._kiro.uses_api_key():
            headers["tokentype"] = "API_KEY"
        return headers

    async def search(self, query: str) -> SearchOutcome:
        """Search once; see the module docstring for what raises and what returns a failure."""
        body = json.dumps(mcp_request(query, f"web_search_{uuid.uuid4().hex}")).encode()
        started = time.perf_counter()
        try:
            response = await self._kiro.call_mcp(body, await self._headers(), self._timeout)
        except GatewayError as error:
            log.warning("web search failed: %s (%s)", error.kind.name, error.message)
            observability.record_web_search("failed")
            if error.kind in STOPS_THE_ANSWER:
                raise
            return SearchFailure(query, ERROR_UNAVAILABLE, error.message)
        outcome = read_mcp_reply(response.content, query)
        elapsed = round((time.perf_counter() - started) * 1000, 1)
        observability.record_web_search("results" if isinstance(outcome, SearchResults) else "failed")
        if isinstance(outcome, SearchResults):
            log.info("web search: %d results in %.1fms", len(outcome.results), elapsed,
                     extra={"web_search_results": len(outcome.results), "web_search_ms": elapsed})
        else:
            log.warning("web search failed after %.1fms: %s", elapsed, outcome.message)
        return outcome


def refused(message: str) -> GatewayError:
    """A web search request the gateway refuses before any upstream call (a 400 in the client's shape)."""
    return GatewayError(ErrorKind.INVALID_REQUEST, message, param="tools")
