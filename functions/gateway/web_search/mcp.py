"""One web search through Kiro's MCP endpoint: `POST {base}/mcp` with a JSON-RPC `tools/call` (docs/protocol.md §Web
search).

Every search goes through the account pool (a usable account, its concurrency slot, what its answer teaches); URL
and headers are the account's `KiroEndpoint`'s (bearer, Kiro IDE user agent, `x-amzn-kiro-profile-arn` when the
account has a profile, `tokentype: API_KEY` for API-key accounts). Failures come in two weights:
* those that stop the whole answer, raised as `GatewayError`: throttling (429 with `Retry-After`), quota, suspension
  and a token Kiro still refuses after a refresh, on every account the pool could try — the next search would fail
  the same way;
* those that only fail this search, returned as `SearchFailure`: `isError`, JSON-RPC errors, a refused or broken
  request, 5xx, network trouble. The client sees a failed search; the model is told and answers without it.
"""

from __future__ import annotations

import json
import logging
import time
import uuid
from typing import TYPE_CHECKING, Protocol

from gateway import observability
from gateway.stores.base import CredentialError
from kiro_core.errors import ErrorKind, GatewayError
from kiro_core.web_search import (
    ERROR_UNAVAILABLE,
    SearchFailure,
    SearchOutcome,
    SearchResults,
    mcp_request,
    read_mcp_reply,
)

if TYPE_CHECKING:
    import httpx

    from gateway.accounts.pool import Account, AccountPool

log = logging.getLogger(__name__)

# Failures that say something about the account rather than this one search: the pool judges them (the account
# rests, is marked out of quota or suspended, and the search moves to the next account); when no account is left,
# they end the answer and reach the client as its own HTTP error / error event.
STOPS_THE_ANSWER = frozenset({ErrorKind.RATE_LIMIT, ErrorKind.THROTTLED, ErrorKind.QUOTA, ErrorKind.PERMISSION,
                              ErrorKind.AUTHENTICATION})


class SearchLedger(Protocol):
    """Where each search that reached Kiro is recorded (`gateway.client_keys.ledger.Ledger`)."""

    async def searched(self, *, answered: bool, error_kind: str | None) -> None: ...


class WebSearcher:
    """Runs the searches of one client request through the account pool, recording each in the request's ledger."""

    def __init__(self, pool: AccountPool, timeout: float, ledger: SearchLedger | None = None):
        self._pool = pool
        self._timeout = timeout
        self._ledger = ledger

    async def search(self, query: str) -> SearchOutcome:
        """Search once; see the module docstring for what raises and what returns a failure."""
        body = json.dumps(mcp_request(query, f"web_search_{uuid.uuid4().hex}")).encode()
        started = time.perf_counter()

        async def on_account(account: Account) -> httpx.Response | GatewayError:
            try:
                return await account.kiro.call_mcp(body, self._timeout)
            except GatewayError as error:
                if error.kind in STOPS_THE_ANSWER or isinstance(error, CredentialError):
                    raise  # the pool's to judge
                return error  # fails this search only

        try:
            reply = await self._pool.call(on_account)
        except GatewayError as error:
            log.warning("web search failed: %s (%s)", error.kind.name, error.message)
            observability.record_web_search("failed")
            await self._note(answered=False, error_kind=error.kind.name)
            raise
        if isinstance(reply, GatewayError):
            log.warning("web search failed: %s (%s)", reply.kind.name, reply.message)
            observability.record_web_search("failed")
            await self._note(answered=False, error_kind=reply.kind.name)
            return SearchFailure(query, ERROR_UNAVAILABLE, reply.message)
        await self._note(answered=True, error_kind=None)
        outcome = read_mcp_reply(reply.content, query)
        elapsed = round((time.perf_counter() - started) * 1000, 1)
        observability.record_web_search("results" if isinstance(outcome, SearchResults) else "failed")
        if isinstance(outcome, SearchResults):
            log.info("web search: %d results in %.1fms", len(outcome.results), elapsed,
                     extra={"web_search_results": len(outcome.results), "web_search_ms": elapsed})
        else:
            log.warning("web search failed after %.1fms: %s", elapsed, outcome.message)
        return outcome

    async def _note(self, *, answered: bool, error_kind: str | None) -> None:
        if self._ledger is not None:
            await self._ledger.searched(answered=answered, error_kind=error_kind)


def refused(message: str) -> GatewayError:
    """A web search request the gateway refuses before any upstream call (a 400 in the client's shape)."""
    return GatewayError(ErrorKind.INVALID_REQUEST, message, param="tools")
