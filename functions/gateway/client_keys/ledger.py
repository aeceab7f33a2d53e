"""One client request's spending at Kiro beyond its answer: each web search recorded for the caller's key as it
happens, and the key's credit budgets checked before each further upstream call of the request.

The answer itself is recorded once, when it ends (`gateway.edge.serving`). A search counts as a request and as a
search (`webSearches`) of the key, with WEB_SEARCH_NOMINAL_CREDITS as its `nominalCredits` when Kiro answered it
(Kiro meters no search cost; budgets count nominal credits beside metered ones). The budget check is the gate's
(`client_keys.budget.check_budget`), here with the credits this request has used and not yet recorded added.
"""

from __future__ import annotations

import time
from datetime import UTC, datetime

from starlette.requests import Request

from gateway import observability
from gateway.client_keys.budget import check_budget
from gateway.client_keys.gate import Caller
from gateway.client_keys.records import ClientKey
from gateway.edge.request_log import RequestRecord, record_of
from gateway.usage.counters import RequestUsage
from gateway.usage.service import UsageService
from kiro_core.errors import GatewayError

SEARCH_MODEL = "web_search"  # the model name searches are counted under (they use no model)


class Ledger:
    def __init__(self, usage: UsageService, record: RequestRecord, key_name: str, key: ClientKey | None,
                 nominal_search_credits: float) -> None:
        self._usage = usage
        self._record = record
        self.key_name = key_name
        self._key = key
        self._nominal = nominal_search_credits

    @classmethod
    def of(cls, request: Request, usage: UsageService, nominal_search_credits: float) -> Ledger:
        """The ledger of the key this request authenticated with."""
        caller = getattr(request.state, "client_key", None)
        key = caller.key if isinstance(caller, Caller) else None
        record = record_of(request)
        name = caller.name if isinstance(caller, Caller) else str(record.fields.get("client_key") or "unknown")
        return cls(usage, record, name, key, nominal_search_credits)

    async def check(self, pending_credits: float = 0.0) -> None:
        """Raise the budget's 429 when the key has used up a budget, counting `pending_credits` this request spent
        that are not recorded yet."""
        if self._key is None:
            return

        async def spent(name: str) -> tuple[float, float]:
            today, month = await self._usage.key_credits(name)
            return today + pending_credits, month + pending_credits

        try:
            await check_budget(self._key, datetime.now(UTC), spent)
        except GatewayError:
            self._record.update(refused="budget")
            observability.record_key_refusal(self.key_name, "budget")
            raise

    async def searched(self, *, answered: bool, error_kind: str | None) -> None:
        """Record one search that reached Kiro (`answered`: Kiro gave an MCP reply, which costs the nominal credits)."""
        await self._usage.record(RequestUsage(
            model=SEARCH_MODEL, key_name=self.key_name, credits=None, input_tokens=0, output_tokens=0, ttft_ms=None,
            error_kind=error_kind, at=time.time(), web_searches=1,
            nominal_credits=self._nominal if answered else 0.0))
