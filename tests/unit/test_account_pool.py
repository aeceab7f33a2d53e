"""The account pool's rules without the network: selection order, concurrency caps, verdicts and the answer when no
account can serve (the integration tests drive the same code through the gateway process)."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from gateway.accounts.config import AccountsError, parse_accounts
from gateway.accounts.health import COOLING, EXHAUSTED, REVOKED, SUSPENDED, Health, MemoryHealthStore
from gateway.accounts.pool import Account, AccountPool
from gateway.accounts.verdicts import Policy, judge, quota_reset
from gateway.auth.refresh import RefreshError
from gateway.upstream.errors import classify_upstream
from kiro_core.errors import ErrorKind, GatewayError

NOW = 1_800_000_000.0


class Clock:
    def __init__(self) -> None:
        self.now = NOW

    def __call__(self) -> float:
        return self.now


def pool_of(*names: str, clock: Clock, **options: Any) -> AccountPool:
    configs = parse_accounts([{"name": n, "kind": "api_key", "apiKey": f"ksk_{n}_" + "x" * 20} for n in names],
                             "test accounts")
    accounts = [Account(c, kiro=None, source="test") for c in configs]  # type: ignore[arg-type]
    return AccountPool(accounts, MemoryHealthStore(clock=clock), clock=clock, **options)


def upstream(status: int, body: bytes) -> GatewayError:
    return classify_upstream(status, body)[0]


THROTTLE = b'{"message":"Too many requests","reason":"USER_REQUEST_RATE_EXCEEDED","retryAfterMilliseconds":2000}'


def run(pool: AccountPool, failures: dict[str, GatewayError], served: list[str]) -> str:
    async def attempt(account: Account, release: Any) -> str:
        served.append(account.name)
        if account.name in failures:
            raise failures.pop(account.name)
        release()
        return account.name

    return asyncio.run(pool.run(attempt))


def test_sticky_prefers_list_order_and_fails_over_on_a_throttle() -> None:
    clock = Clock()
    pool = pool_of("a", "b", "c", clock=clock)
    served: list[str] = []
    assert run(pool, {"a": upstream(429, THROTTLE)}, served) == "b"
    assert run(pool, {}, served) == "b"  # a rests for max(2 s, 8 s)
    clock.now += 8.5
    assert run(pool, {}, served) == "a"
    assert served == ["a", "b", "b", "a"]


def test_repeated_throttles_rest_longer() -> None:
    clock = Clock()
    pool = pool_of("a", "b", clock=clock)
    run(pool, {"a": upstream(429, THROTTLE)}, [])
    clock.now += 9
    run(pool, {"a": upstream(429, THROTTLE)}, [])
    state = asyncio.run(pool.states(fresh=True))["a"]
    assert state.strikes == 2 and state.until == clock.now + 60


def test_round_robin_starts_one_further_each_request() -> None:
    clock = Clock()
    pool = pool_of("a", "b", "c", clock=clock, selection="round_robin")
    served: list[str] = []
    for _ in range(4):
        run(pool, {}, served)
    assert served == ["b", "c", "a", "b"]


def test_concurrency_cap_moves_to_the_next_account_then_waits_then_answers_429() -> None:
    clock = Clock()
    pool = pool_of("a", "b", clock=clock, max_concurrency=1, queue_timeout=0.2)

    async def scenario() -> tuple[list[str], GatewayError]:
        releases: list[Any] = []
        names: list[str] = []

        async def hold(account: Account, release: Any) -> str:
            releases.append(release)
            names.append(account.name)
            return account.name

        await pool.run(hold)
        await pool.run(hold)  # a is busy: b
        with pytest.raises(GatewayError) as caught:
            await pool.run(hold)  # both busy past the queue timeout
        waiter = asyncio.ensure_future(pool.run(hold))
        await asyncio.sleep(0)
        releases[0]()  # a frees up: the waiting request takes it
        await waiter
        return names, caught.value

    names, error = asyncio.run(scenario())
    assert names == ["a", "b", "a"]
    assert error.kind is ErrorKind.RATE_LIMIT and error.retry_after == 1.0


def test_every_account_resting_names_the_soonest() -> None:
    clock = Clock()
    pool = pool_of("a", "b", clock=clock)
    slow = upstream(429, THROTTLE.replace(b"2000", b"90000"))
    with pytest.raises(GatewayError) as caught:
        run(pool, {"a": slow, "b": upstream(429, THROTTLE.replace(b"2000", b"30000"))}, [])
    assert caught.value.kind is ErrorKind.THROTTLED and caught.value.retry_after == 30
    assert "'b'" in caught.value.message


def test_quota_suspension_and_refusals_answer_with_their_own_class() -> None:
    clock = Clock()
    quota = upstream(402, b'{"message":"You have reached the limit.","reason":"MONTHLY_REQUEST_COUNT"}')
    with pytest.raises(GatewayError) as caught:
        run(pool_of("a", "b", clock=clock), {"a": quota, "b": upstream(402, b'{"reason":"MONTHLY_REQUEST_COUNT"}')},
            [])
    assert caught.value.kind is ErrorKind.QUOTA and caught.value.retry_after is None

    suspended = b'{"message":"Your User ID (x) temporarily is suspended. We\'ve locked your account","reason":null}'
    with pytest.raises(GatewayError) as caught:
        run(pool_of("a", "b", clock=clock), {"a": upstream(403, suspended), "b": upstream(403, suspended)}, [])
    assert caught.value.kind is ErrorKind.PERMISSION and caught.value.status == 403

    bad = b'{"message":"The bearer token included in the request is invalid."}'
    with pytest.raises(GatewayError) as caught:
        run(pool_of("a", "b", clock=clock), {"a": upstream(403, bad), "b": upstream(403, bad)}, [])
    assert caught.value.kind is ErrorKind.UPSTREAM and caught.value.status == 502
    assert "(a, b)" in caught.value.message and "API key of account 'a'" in caught.value.message


def test_a_pool_of_one_returns_the_upstream_answer_and_never_skips() -> None:
    clock = Clock()
    pool = pool_of("solo", clock=clock)
    throttled = upstream(429, THROTTLE)
    with pytest.raises(GatewayError) as caught:
        run(pool, {"solo": throttled}, [])
    assert caught.value is throttled  # the error main gives for one account, unchanged
    served: list[str] = []
    assert run(pool, {}, served) == "solo"  # not kept out while it "rests"


def test_request_errors_are_not_failed_over() -> None:
    clock = Clock()
    served: list[str] = []
    with pytest.raises(GatewayError) as caught:
        run(pool_of("a", "b", clock=clock), {"a": upstream(400, b'{"message":"Improperly formed request."}')},
            served)
    assert caught.value.status == 400 and served == ["a"]


def test_verdicts() -> None:
    policy = Policy()
    rejected = RefreshError(401, "Kiro rejected the refresh token").as_gateway_error()
    verdict = judge(rejected, name="a", api_key=False, fingerprint="f1", previous=None, now=NOW, policy=policy)
    assert verdict is not None and verdict.health.state == REVOKED and verdict.health.until is None
    assert verdict.error.status == 502
    down = RefreshError(None, "could not reach").as_gateway_error()
    verdict = judge(down, name="a", api_key=False, fingerprint="f1", previous=None, now=NOW, policy=policy)
    assert verdict is not None and verdict.health.state == COOLING and verdict.health.until == NOW + 30
    quota = upstream(429, b'{"reason":"DAILY_REQUEST_COUNT","message":"limit"}')
    verdict = judge(quota, name="a", api_key=True, fingerprint="f", previous=None, now=NOW, policy=policy)
    assert verdict is not None and verdict.health.state == EXHAUSTED
    assert verdict.health.until == quota_reset("DAILY_REQUEST_COUNT", NOW) and verdict.health.until > NOW
    suspended = upstream(403, b'{"reason":"TEMPORARILY_SUSPENDED","message":"locked"}')
    verdict = judge(suspended, name="a", api_key=True, fingerprint="f", previous=None, now=NOW,
                    policy=Policy(suspended_retry=900))
    assert verdict is not None and verdict.health.state == SUSPENDED and verdict.health.until == NOW + 900
    assert judge(upstream(500, b"boom"), name="a", api_key=True, fingerprint="f", previous=None, now=NOW,
                 policy=policy) is None  # retried on the same account by the client; not the account's fault


def test_a_revoked_state_ends_with_a_new_credential() -> None:
    revoked = Health(REVOKED, None, "refused", "x", NOW, fingerprint="old")
    assert revoked.active(NOW + 10**6, "old") and not revoked.active(NOW, "new")


def test_memory_store_keeps_the_longer_state(tmp_path: Any) -> None:
    clock = Clock()
    store = MemoryHealthStore(tmp_path / "states.json", clock=clock)
    asyncio.run(store.mark("a", Health(COOLING, NOW + 60, "t", "m", NOW)))
    asyncio.run(store.mark("a", Health(COOLING, NOW + 8, "t", "m", NOW)))
    assert asyncio.run(store.read(["a"]))["a"].until == NOW + 60
    asyncio.run(store.mark("a", Health(SUSPENDED, None, "s", "m", NOW)))
    again = MemoryHealthStore(tmp_path / "states.json", clock=clock)  # lasting states survive a restart
    assert asyncio.run(again.read(["a"]))["a"].state == SUSPENDED


@pytest.mark.parametrize(("entries", "words"), [
    ({"name": "a"}, "JSON array"),
    ([{"name": "a", "kind": "api_key"}], "needs `apiKey`"),
    ([{"name": "a", "kind": "refresh_token"}], "needs `refreshToken`"),
    ([{"name": "a", "kind": "magic", "apiKey": "k"}], "`kind`"),
    ([{"name": "a", "apiKey": "ksk_" + "x" * 20}, {"name": "a", "apiKey": "ksk_" + "y" * 20}], "used twice"),
    ([{"name": "", "apiKey": "k"}], "`name`"),
    ([{"name": "a", "apiKey": "k", "enabled": "yes"}], "`enabled`"),
])
def test_bad_account_lists_are_refused_with_the_reason(entries: Any, words: str) -> None:
    with pytest.raises(AccountsError) as caught:
        parse_accounts(entries, "the file")
    assert words in str(caught.value)
    assert "ksk_" not in str(caught.value)
