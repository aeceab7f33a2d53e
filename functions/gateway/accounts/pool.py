"""The accounts of one gateway process: which one serves a request, and failover before the first byte.

Selection (`ACCOUNT_SELECTION`): `sticky` takes the first usable account in list order (so one account carries the
traffic, and the next one only while it rests); `round_robin` starts each request one account further. An account is
usable when it is enabled, no state keeps it out (`gateway.accounts.health`) and it has a free slot
(`ACCOUNT_MAX_CONCURRENCY` / `maxConcurrency`, per process). When every usable account is at its cap the request
waits up to `ACCOUNT_QUEUE_TIMEOUT` for a slot.

`run` hands an account to the caller's attempt (which opens the answer up to its commit boundary) and, when the
attempt fails with an error that says something about the account (`gateway.accounts.verdicts`), records the state
and tries the next account; any other error (a bad request, a 5xx after the same-account retries, a timeout) goes
to the client as it is. A pool of one account never skips it: the client gets the upstream's own answer as before.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, TypeVar

from gateway.accounts.config import AccountConfig
from gateway.accounts.health import COOLING, EXHAUSTED, REVOKED, SUSPENDED, Health, HealthStore
from gateway.accounts.verdicts import Policy, Verdict, judge
from gateway.stores.base import CredentialError
from kiro_core.errors import ErrorKind, GatewayError

if TYPE_CHECKING:
    from gateway.auth.manager import AuthManager
    from gateway.stores.base import TokenStore
    from gateway.upstream.kiro_client import KiroClient

log = logging.getLogger(__name__)

T = TypeVar("T")
Release = Callable[[], None]


class Account:
    """One configured account with its own Kiro client (and, for a refresh-token login, its token manager)."""

    def __init__(self, config: AccountConfig, kiro: KiroClient, *, source: str, auth: AuthManager | None = None,
                 store: TokenStore | None = None) -> None:
        self.config = config
        self.kiro = kiro
        self.source = source
        self.auth = auth
        self.store = store
        self.in_flight = 0

    @property
    def name(self) -> str:
        return self.config.name

    def describe(self) -> str:
        kind = "Kiro API key" if self.config.kind == "api_key" else "refresh token"
        return f"{self.name} ({kind}, {self.source})"


def _clock_text(moment: float) -> str:
    return datetime.fromtimestamp(moment, UTC).strftime("%Y-%m-%d %H:%M:%S UTC")


class AccountPool:
    """Selection, per-account concurrency, shared states and failover over `accounts` (list order matters)."""

    def __init__(self, accounts: list[Account], health: HealthStore, *, selection: str = "sticky",
                 max_concurrency: int = 0, queue_timeout: float = 30.0, policy: Policy | None = None,
                 state_cache_seconds: float = 0.0, clock: Callable[[], float] = time.time) -> None:
        if not accounts:
            raise ValueError("a pool needs at least one account")
        self.accounts = accounts
        self.health = health
        self.selection = selection
        self.max_concurrency = max_concurrency
        self.queue_timeout = queue_timeout
        self.policy = policy or Policy()
        self.state_cache_seconds = state_cache_seconds
        self._clock = clock
        self._turn = 0
        self._freed = asyncio.Event()
        self._view: dict[str, Health] = {}
        self._view_at = float("-inf")

    @property
    def single(self) -> bool:
        return len(self.accounts) == 1

    def first(self) -> Account:
        """The first enabled account in list order (names the catalogue cache and `serve`'s summary; requests go
        through `run` / `call`, which check the account's state)."""
        return next((a for a in self.accounts if a.config.enabled), self.accounts[0])

    def describe(self) -> str:
        return ", ".join(a.describe() + ("" if a.config.enabled else " [disabled]") for a in self.accounts)

    # -- states ------------------------------------------------------------------------------------------------

    async def states(self, *, fresh: bool = False) -> dict[str, Health]:
        """The states of this pool's accounts as the store has them (cached `ACCOUNT_STATE_CACHE_SECONDS`)."""
        now = self._clock()
        if fresh or now - self._view_at >= self.state_cache_seconds:
            names = [a.name for a in self.accounts]
            self._view = await self.health.read(names)
            self._view_at = now
            for account in self.accounts:  # a revoked state seen on a credential since replaced: forget it
                held = self._view.get(account.name)
                if held is not None and held.state == REVOKED and held.until is None \
                        and not held.active(now, account.config.fingerprint):
                    del self._view[account.name]
                    await self.health.clear(account.name)
        return self._view

    async def _note(self, account: Account, verdict: Verdict) -> None:
        health = verdict.health
        until = "until it is enabled again" if health.until is None else f"until {_clock_text(health.until)}"
        log.warning("account %s is %s (%s) %s: %s", account.name, health.state, health.reason, until, health.message)
        self._view[account.name] = health
        await self.health.mark(account.name, health)

    # -- selection ---------------------------------------------------------------------------------------------

    def _ordered(self, turn: int) -> list[Account]:
        if self.selection != "round_robin" or self.single:
            return list(self.accounts)
        start = turn % len(self.accounts)
        return self.accounts[start:] + self.accounts[:start]

    def _cap(self, account: Account) -> int:
        return account.config.max_concurrency or self.max_concurrency

    async def _acquire(self, turn: int, tried: dict[str, Verdict]) -> Account | GatewayError:
        """An account with a slot taken, or the error to answer with when none can serve."""
        deadline: float | None = None
        while True:
            self._freed.clear()
            view = {} if self.single else await self.states()
            now = self._clock()
            usable = [a for a in self._ordered(turn) if a.config.enabled and a.name not in tried
                      and (self.single or not self._kept_out(view.get(a.name), a, now))]
            if not usable:
                return self._unavailable(view, tried, now)
            for account in usable:
                cap = self._cap(account)
                if not cap or account.in_flight < cap:
                    account.in_flight += 1
                    return account
            loop = asyncio.get_running_loop()
            deadline = deadline if deadline is not None else loop.time() + self.queue_timeout
            remaining = deadline - loop.time()
            if remaining <= 0:
                return GatewayError(ErrorKind.RATE_LIMIT, "Every Kiro account of this gateway is serving as many "
                                    "requests as it may (ACCOUNT_MAX_CONCURRENCY); try again shortly.",
                                    retry_after=1.0)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._freed.wait(), remaining)

    @staticmethod
    def _kept_out(health: Health | None, account: Account, now: float) -> bool:
        return health is not None and health.active(now, account.config.fingerprint)

    def _release(self, account: Account) -> Release:
        done = False

        def release() -> None:
            nonlocal done
            if not done:
                done = True
                account.in_flight -= 1
                self._freed.set()

        return release

    # -- the failover loop -------------------------------------------------------------------------------------

    async def run(self, attempt: Callable[[Account, Release], Awaitable[T]], *, learns_refusal: bool = True) -> T:
        """`attempt(account, release)` on one account after another until one succeeds or none is left.

        `attempt` must call `release` when the account's work ends (its answer closed); the pool calls it when the
        attempt raises. With `learns_refusal` False, a 403 that is not a suspension says nothing about the account
        (an operation other than chat may be refused on its own, e.g. MCP by an organisation's policy): it goes to the
        caller as it is instead of marking the credential refused."""
        self._turn += 1
        turn = self._turn
        tried: dict[str, Verdict] = {}
        last: GatewayError | None = None
        while True:
            account = await self._acquire(turn, tried)
            if isinstance(account, GatewayError):
                raise (last if last is not None and self.single else account)
            release = self._release(account)
            try:
                return await attempt(account, release)
            except GatewayError as error:
                release()
                verdict = judge(error, name=account.name, api_key=account.config.kind == "api_key",
                                fingerprint=account.config.fingerprint, previous=self._view.get(account.name),
                                now=self._clock(), policy=self.policy)
                if verdict is None or (not learns_refusal and verdict.health.state == REVOKED
                                       and not isinstance(error, CredentialError)):
                    raise
                await self._note(account, verdict)
                if self.single:
                    raise verdict.error from None
                log.info("failing over from account %s to the next one", account.name)
                tried[account.name] = verdict
                last = verdict.error
            except BaseException:
                release()
                raise

    async def call(self, work: Callable[[Account], Awaitable[T]]) -> T:
        """One request-and-answer call (a search, the catalogue, usage limits) on a usable account, holding its slot
        for the call; the pool learns from its throttling, quota and suspension answers (and a refused token
        refresh) and fails over as for answers."""

        async def attempt(account: Account, release: Release) -> T:
            try:
                return await work(account)
            finally:
                release()

        return await self.run(attempt, learns_refusal=False)

    async def list_models(self) -> list[dict[str, Any]]:
        """The model list from the first account that can give it (with the same failover as answers)."""
        return await self.call(lambda account: account.kiro.list_models())

    async def usage_limits(self) -> dict[str, Any]:
        """Kiro's usage limits (GetUsageLimits) of the account that would serve now."""
        return await self.call(lambda account: account.kiro.get_usage_limits())

    async def catalog_key(self) -> str:
        """The key the catalogue is cached under: the first enabled account's (the accounts of one gateway share a
        subscription, and a list fetched through another account is the same list)."""
        return await self.first().kiro.catalog_key()

    # -- when nobody can serve ---------------------------------------------------------------------------------

    def _unavailable(self, view: dict[str, Health], tried: dict[str, Verdict], now: float) -> GatewayError:
        """The answer when no account can serve: the soonest recovery for rests, else the class of what keeps
        them out (quota and suspension as for one account; refused credentials as a 502 naming the accounts)."""
        states: dict[str, Health] = {}
        for account in self.accounts:
            if not account.config.enabled:
                continue
            held = tried[account.name].health if account.name in tried else view.get(account.name)
            if held is not None and held.active(now, account.config.fingerprint):
                states[account.name] = held
        if not states:
            return GatewayError(ErrorKind.INTERNAL, "No Kiro account is enabled: enable one with `kiro-gateway "
                                "accounts enable NAME`.", status=503)
        resting = {n: h for n, h in states.items() if h.state == COOLING and h.until is not None}
        if resting:
            name, soonest = min(resting.items(), key=lambda item: item[1].until or 0)
            wait = max(1.0, float(int((soonest.until or now) - now + 0.999)))
            return GatewayError(ErrorKind.THROTTLED, f"Every Kiro account of this gateway is resting after "
                                f"throttling or errors; the soonest, {name!r}, is available again in {wait:g}s (at "
                                f"{_clock_text(soonest.until or now)}). Last: {soonest.message}", retry_after=wait)
        exhausted = {n: h for n, h in states.items() if h.state == EXHAUSTED}
        if exhausted:
            name, soonest = min(exhausted.items(), key=lambda item: item[1].until or float("inf"))
            reset = _clock_text(soonest.until) if soonest.until is not None else "its reset"
            return GatewayError(ErrorKind.QUOTA, f"Every Kiro account of this gateway has reached its usage limit; "
                                f"the soonest reset is {name!r} at {reset}. Last: {soonest.message}")
        suspended = sorted(n for n, h in states.items() if h.state == SUSPENDED)
        if suspended:
            return GatewayError(ErrorKind.PERMISSION, f"Every Kiro account of this gateway is suspended or refused "
                                f"({', '.join(suspended)}): contact Kiro support, then `kiro-gateway accounts "
                                "enable NAME`.", status=403)
        names = ", ".join(sorted(states))
        last = next((v.error.message for v in tried.values()), "") or next(iter(states.values())).message
        return GatewayError(ErrorKind.UPSTREAM, f"Kiro refused the credentials of every account of this gateway "
                            f"({names}): log in again (`kiro-gateway login --device --name NAME`) or replace the API "
                            f"key (`kiro-gateway accounts add --api-key --name NAME`). Last: {last}")
