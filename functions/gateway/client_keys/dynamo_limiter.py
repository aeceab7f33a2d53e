"""The limiter on the DynamoDB state table, shared by every Lambda instance (and any process given the table).

Items (pk; `expires_at` is the table's TTL attribute, so finished windows and idle slot sets are deleted eventually;
every read checks the time itself, since TTL deletion is lazy):

* a window, `<key>` = {count `n`, window end `expires_at`}: counted with one conditional `UpdateItem`
  (`SET n = n + 1` if the window is open and `n < limit`, returning the old item when the condition fails); a missing
  or finished window is opened with a conditional `PutItem` (`attribute_not_exists(pk) OR expires_at <= now`), and a
  lost race for that simply retries the count. One write per allowed request.
* a slot set, `<key>` = {`holders`: {token: lease end}, `version`, `expires_at`}: taken by a consistent read, then a
  `PutItem` conditioned on the version read (expired holders are dropped in the same write, which is how a crashed
  instance's slot comes back); given back by `UpdateItem REMOVE holders.<token>` that also bumps the version, so a
  concurrent taker that read the old set retries.

* a client key, `ckey#<name>`: its rpm and its concurrency slots together, so admitting a request is ONE conditional
  `UpdateItem` (see `admit_key`). The rpm is a sliding log of `rpm` slots `r0..r<rpm-1>`, each the time of one
  admission; a request takes a slot whose time is over 60 s old (`SET r<i> = :now` if `r<i> <= :now - 60`), so no
  60-second span holds more than `rpm` admissions. The slot to try is the oldest one this instance saw in its last
  answer (`ReturnValues=ALL_NEW`); a stale guess fails the condition, the failure returns the item, and the next try
  uses a slot that is free in it. Concurrency slots are attributes `h<token>` = lease end with a count `c`, taken in
  the same write (`c < :limit`) and given back after the answer by `REMOVE h<token> SET c = c - 1`; leases of crashed
  holders are removed when a refusal finds them expired. A key with a credit budget also keeps its spending there
  (`dd`/`dc`: UTC day and its credits, `md`/`mc`: month and its credits), added after each answer by the same write
  that gives the slot back (`settle_key`), and checked in the admission's condition, so a budget is exact across
  instances (overshot only by the answers in flight). Spending from before this item kept it (an existing
  deployment, or a new month) is seeded once from the usage counters (`seed_spend`). The item holds at most
  `rpm` + `concurrency` + 8 attributes, all set by the key's owner; none grows with client input.

Any AWS failure is logged (and counted as the `StateTableUnavailable` metric) and the request is allowed: a limit
must not take the gateway down with the table (docs/client-keys.md "When the state table is down").
"""

from __future__ import annotations

import asyncio
import logging
import math
import random
import time
import uuid
from typing import Any

from gateway import observability
from gateway.client_keys.limiter import KEY_WINDOW, Budget, Clock, KeyAdmission, Spent, Verdict, rate_state
from gateway.stores.aws_clients import LazyClient, aws_errors, client_config, is_client_error, short_error

log = logging.getLogger(__name__)

_ATTEMPTS = 6
_TTL_SLACK = 60  # seconds an item outlives its window / leases before DynamoDB may delete it
RING_MAX = 2000  # rpm slots kept in one key item (about 20 bytes each); a larger rpm is counted in a fixed window
KEY_PREFIX = "ckey#"


class DynamoLimiter:
    def __init__(self, table_name: str, *, dynamodb: Any = None, clock: Clock = time.time) -> None:
        self.table_name = table_name
        self._clock = clock
        self._dynamodb = LazyClient("dynamodb", None, client_config(2, 3, 2), dynamodb)
        self._seen: dict[str, dict[int, float]] = {}  # key name -> its rpm slot times, as this instance last saw them

    # -- client keys: rpm and concurrency in one write ---------------------------------------------------------

    counts_spending = True

    async def admit_key(self, name: str, rpm: int | None, concurrency: int | None, lease: float,
                        budget: Budget | None = None) -> KeyAdmission:
        if rpm is None and concurrency is None and budget is None:
            return KeyAdmission()
        if rpm is not None and rpm > RING_MAX:
            return await self._admit_large(name, rpm, concurrency, lease, budget)
        token = uuid.uuid4().hex if concurrency is not None else None
        try:
            for _ in range(_ATTEMPTS):
                now = self._clock()
                slot = self._pick_slot(name, rpm) if rpm is not None else None
                try:
                    answer = await self._call("update_item", **self._admission(name, slot, token, concurrency,
                                                                               lease, now, budget))
                except aws_errors() as error:
                    if not is_client_error(error, "ConditionalCheckFailedException"):
                        raise
                    old = getattr(error, "response", {}).get("Item") or {}
                    refusal = await self._refusal(name, old, rpm, concurrency, now, budget)
                    if refusal is not None:
                        return refusal
                    continue  # our view was stale (another instance took the slot): try a slot free in `old`
                item = answer.get("Attributes") or {}
                self._remember(name, item, rpm)
                rate = rate_state(list(self._seen[name].values()), rpm, now, KEY_WINDOW) if rpm else None
                return KeyAdmission(token=token, rate=rate, spent=_spent(item, budget))
        except aws_errors() as error:
            _unavailable("rate and concurrency limits", error, "allowing the request")
            return KeyAdmission(token="" if concurrency is not None else None, unavailable=True)
        log.warning("client key %s: too much contention on its limits; refusing", name)
        return KeyAdmission("concurrency" if concurrency is not None else "rpm", 1.0)

    def _admission(self, name: str, slot: int | None, token: str | None, concurrency: int | None, lease: float,
                   now: float, budget: Budget | None) -> dict[str, Any]:
        names: dict[str, str] = {"#e": "expires_at"}
        values: dict[str, Any] = {":ttl": _num(now + max(KEY_WINDOW, lease if token else 0.0) + _TTL_SLACK)}
        sets, conditions = ["#e = :ttl"], []
        if slot is not None:
            names["#s"] = f"r{slot}"
            values.update({":now": _exact(now), ":old": _exact(now - KEY_WINDOW)})
            sets.append("#s = :now")
            conditions.append("(attribute_not_exists(#s) OR #s <= :old)")
        if token is not None:
            names.update({"#h": f"h{token}", "#c": "c"})
            values.update({":lease": _exact(now + lease), ":one": {"N": "1"}, ":zero": {"N": "0"},
                           ":limit": {"N": str(concurrency)}})
            sets.extend(["#h = :lease", "#c = if_not_exists(#c, :zero) + :one"])
            conditions.append("(attribute_not_exists(#c) OR #c < :limit)")
        if budget is not None:
            for period, limit, current in (("d", budget.daily, budget.day), ("m", budget.monthly, budget.month)):
                if limit is not None:
                    names.update({f"#{period}d": f"{period}d", f"#{period}c": f"{period}c"})
                    values.update({f":{period}p": {"S": current}, f":{period}l": {"N": repr(float(limit))}})
                    conditions.append(f"(attribute_not_exists(#{period}d) OR #{period}d <> :{period}p "
                                      f"OR #{period}c < :{period}l)")
        return {"Key": {"pk": {"S": KEY_PREFIX + name}}, "UpdateExpression": "SET " + ", ".join(sets),
                **({"ConditionExpression": " AND ".join(conditions)} if conditions else {}),
                "ExpressionAttributeNames": names, "ExpressionAttributeValues": values,
                "ReturnValues": "ALL_NEW" if slot is not None or budget is not None else "NONE",
                "ReturnValuesOnConditionCheckFailure": "ALL_OLD"}

    def _pick_slot(self, name: str, rpm: int) -> int:
        """The slot that was oldest (or never used) in this instance's last view; a random one on a cold instance,
        so that cold instances do not all try slot 0."""
        seen = self._seen.get(name)
        if seen is None:
            return random.randrange(rpm)
        return min(range(rpm), key=lambda index: seen.get(index, float("-inf")))

    def _remember(self, name: str, item: dict[str, Any], rpm: int | None) -> None:
        if rpm is None:
            return
        seen: dict[int, float] = {}
        for index in range(rpm):
            value = item.get(f"r{index}", {}).get("N")
            if value is not None:
                seen[index] = float(value)
        self._seen[name] = seen
        if len(self._seen) > 4096:
            self._seen = {name: seen}

    async def _refusal(self, name: str, old: dict[str, Any], rpm: int | None, concurrency: int | None,
                       now: float, budget: Budget | None) -> KeyAdmission | None:
        """Why the admission write failed, from the item it returned: a refusal, or None to try again (a stale view,
        or crashed holders' leases that have just been removed)."""
        self._remember(name, old, rpm)
        spent = _spent(old, budget)
        if budget is not None and spent is not None and _over_budget(budget, spent):
            return KeyAdmission("budget", spent=spent)
        if rpm is not None:
            times = list(self._seen[name].values())
            recent = [t for t in times if t > now - KEY_WINDOW]
            if len(recent) >= rpm:  # the next place frees when the oldest admission leaves the window
                return KeyAdmission("rpm", max(0.001, min(recent) + KEY_WINDOW - now),
                                    rate=rate_state(times, rpm, now, KEY_WINDOW))
        if concurrency is not None and int(old.get("c", {}).get("N", "0")) >= concurrency:
            expired = {attr: value for attr, value in old.items()
                       if attr.startswith("h") and float(value.get("N", "0")) <= now}
            if not expired:
                rate = rate_state(list(self._seen.get(name, {}).values()), rpm, now, KEY_WINDOW) if rpm else None
                return KeyAdmission("concurrency", 1.0, rate=rate)
            await self._drop_holders(name, expired)
        return None

    async def _drop_holders(self, name: str, expired: dict[str, Any]) -> None:
        """Remove holders whose lease ran out (crashed instances), if they are still as read."""
        names = {f"#x{i}": attr for i, attr in enumerate(expired)}
        values = {f":x{i}": value for i, value in enumerate(expired.values())}
        try:
            await self._call(
                "update_item", Key={"pk": {"S": KEY_PREFIX + name}},
                UpdateExpression="REMOVE " + ", ".join(names) + " SET #c = #c - :k",
                ConditionExpression=" AND ".join(f"{n} = :x{i}" for i, n in enumerate(names)),
                ExpressionAttributeNames={**names, "#c": "c"},
                ExpressionAttributeValues={**values, ":k": {"N": str(len(expired))}},
            )
        except aws_errors() as error:
            if not is_client_error(error, "ConditionalCheckFailedException"):
                raise

    async def _admit_large(self, name: str, rpm: int, concurrency: int | None, lease: float,
                           budget: Budget | None) -> KeyAdmission:
        """An rpm above RING_MAX: counted in a fixed window (`hit`), then a slot (two writes; documented)."""
        verdict = await self.hit(f"ckrate#{name}", rpm, KEY_WINDOW)
        if not verdict.allowed:
            return KeyAdmission("rpm", verdict.retry_after)
        return await self.admit_key(name, None, concurrency, lease, budget)

    async def seed_spend(self, name: str, spent: Spent) -> None:
        """Start the key's own spending counters from the usage counters' figures (once per key and month: an
        existing deployment's first request, or the month's first), unless another instance did already."""
        try:
            await self._call(
                "update_item", Key={"pk": {"S": KEY_PREFIX + name}},
                UpdateExpression="SET dd = :d, dc = :dc, md = :m, mc = :mc",
                ConditionExpression="attribute_not_exists(md) OR md <> :m",
                ExpressionAttributeValues={":d": {"S": spent.day}, ":dc": {"N": repr(spent.today)},
                                           ":m": {"S": spent.month}, ":mc": {"N": repr(spent.this_month)}},
            )
        except aws_errors() as error:
            if not is_client_error(error, "ConditionalCheckFailedException"):
                _unavailable("credit budgets", error, "not seeded")

    async def settle_key(self, name: str, token: str | None, credits: float, day: str, month: str) -> None:
        """After an answer, ONE write: give the slot back and add the answer's credits to the key's spending."""
        for _ in range(_ATTEMPTS):
            names: dict[str, str] = {}
            values: dict[str, Any] = {}
            removes, sets, conditions = [], [], []
            if token:
                names.update({"#h": f"h{token}", "#c": "c"})
                values[":one"] = {"N": "1"}
                removes.append("#h")
                sets.append("#c = #c - :one")
                conditions.append("attribute_exists(#h)")
            if credits:
                values.update({":cr": {"N": repr(float(credits))}, ":d": {"S": day}, ":m": {"S": month}})
                sets.extend(["dc = dc + :cr", "mc = mc + :cr"])
                conditions.append("dd = :d AND md = :m")
            if not sets:
                return
            expression = ("REMOVE " + ", ".join(removes) + " " if removes else "") + "SET " + ", ".join(sets)
            try:
                await self._call("update_item", Key={"pk": {"S": KEY_PREFIX + name}}, UpdateExpression=expression,
                                 ConditionExpression=" AND ".join(conditions),
                                 **({"ExpressionAttributeNames": names} if names else {}),
                                 ExpressionAttributeValues=values, ReturnValuesOnConditionCheckFailure="ALL_OLD")
                return
            except aws_errors() as error:
                if not is_client_error(error, "ConditionalCheckFailedException"):
                    log.warning("could not settle client key %s (%s: %s); its slot lease frees the slot", name,
                                type(error).__name__, short_error(error))
                    return
                old = getattr(error, "response", {}).get("Item") or {}
            if token and f"h{token}" not in old:
                token = None  # its lease ran out and was removed already
            if credits and (old.get("dd", {}).get("S") != day or old.get("md", {}).get("S") != month):
                await self._roll_spend(name, old, day, month)
        log.warning("client key %s: could not settle after several tries", name)

    async def _roll_spend(self, name: str, old: dict[str, Any], day: str, month: str) -> None:
        """A new day or month (or no counters yet): restart the counters of the periods that changed."""
        same_month = old.get("md", {}).get("S") == month
        try:
            await self._call(
                "update_item", Key={"pk": {"S": KEY_PREFIX + name}},
                UpdateExpression="SET dd = :d, dc = :zero, md = :m, mc = " + ("mc" if same_month else ":zero"),
                ConditionExpression="(attribute_not_exists(dd) OR dd <> :d) OR (attribute_not_exists(md) OR md <> :m)",
                ExpressionAttributeValues={":d": {"S": day}, ":m": {"S": month}, ":zero": {"N": "0"}},
            )
        except aws_errors() as error:
            if not is_client_error(error, "ConditionalCheckFailedException"):
                raise

    async def release_key(self, name: str, token: str) -> None:
        if not token:
            return
        try:
            await self._call(
                "update_item", Key={"pk": {"S": KEY_PREFIX + name}},
                UpdateExpression="REMOVE #h SET #c = #c - :one", ConditionExpression="attribute_exists(#h)",
                ExpressionAttributeNames={"#h": f"h{token}", "#c": "c"},
                ExpressionAttributeValues={":one": {"N": "1"}},
            )
        except aws_errors() as error:
            if not is_client_error(error, "ConditionalCheckFailedException"):
                log.warning("could not release a concurrency slot (%s: %s); its lease frees it",
                            type(error).__name__, short_error(error))

    async def _call(self, operation: str, **kwargs: Any) -> dict[str, Any]:
        client = self._dynamodb.get()
        return await asyncio.to_thread(getattr(client, operation), TableName=self.table_name, **kwargs)

    # -- windows -----------------------------------------------------------------------------------------------

    async def hit(self, key: str, limit: int, window: float, *, hold: float = 0.0) -> Verdict:
        try:
            verdict = await self._hit(key, limit, window)
            if verdict.allowed and hold and verdict.count >= limit:
                await self._stretch(key, self._clock() + hold)
            return verdict
        except aws_errors() as error:
            _unavailable("limit counter", error, "allowing the request")
            return Verdict(True)

    async def _hit(self, key: str, limit: int, window: float) -> Verdict:
        for _ in range(_ATTEMPTS):
            now = self._clock()
            try:
                answer = await self._call(
                    "update_item", Key={"pk": {"S": key}},
                    UpdateExpression="SET #n = #n + :one",
                    ConditionExpression="#e > :now AND #n < :limit",
                    ExpressionAttributeNames={"#n": "n", "#e": "expires_at"},
                    ExpressionAttributeValues={":one": {"N": "1"}, ":now": _exact(now), ":limit": {"N": str(limit)}},
                    ReturnValues="ALL_NEW", ReturnValuesOnConditionCheckFailure="ALL_OLD",
                )
                counted = answer["Attributes"]
                return Verdict(True, 0.0, int(counted["n"]["N"]), float(counted["expires_at"]["N"]) - now)
            except aws_errors() as error:
                if not is_client_error(error, "ConditionalCheckFailedException"):
                    raise
                old = getattr(error, "response", {}).get("Item") or {}
            end = float(old["expires_at"]["N"]) if "expires_at" in old else 0.0
            if end > now:
                return Verdict(False, end - now, int(old.get("n", {}).get("N", limit)), end - now)
            try:
                await self._call(
                    "put_item",
                    Item={"pk": {"S": key}, "n": {"N": "1"}, "expires_at": _num(now + window)},
                    ConditionExpression="attribute_not_exists(pk) OR #e <= :now",
                    ExpressionAttributeNames={"#e": "expires_at"}, ExpressionAttributeValues={":now": _exact(now)},
                )
                return Verdict(True, 0.0, 1, math.ceil(now + window) - now)
            except aws_errors() as error:
                if not is_client_error(error, "ConditionalCheckFailedException"):
                    raise  # another instance opened the window first: count in it
        log.warning("limit counter %s: too much contention; allowing the request", key)
        return Verdict(True)

    async def _stretch(self, key: str, until: float) -> None:
        try:
            await self._call(
                "update_item", Key={"pk": {"S": key}}, UpdateExpression="SET #e = :until",
                ConditionExpression="attribute_exists(pk) AND #e < :until",
                ExpressionAttributeNames={"#e": "expires_at"}, ExpressionAttributeValues={":until": _num(until)},
            )
        except aws_errors() as error:
            if not is_client_error(error, "ConditionalCheckFailedException"):
                raise

    async def wait_for(self, key: str, limit: int) -> float:
        try:
            answer = await self._call("get_item", Key={"pk": {"S": key}})
        except aws_errors() as error:
            _unavailable("failed-authentication throttle", error, "not blocking")
            return 0.0
        item = answer.get("Item") or {}
        try:
            end, count = float(item["expires_at"]["N"]), int(item["n"]["N"])
        except (KeyError, ValueError):
            return 0.0
        now = self._clock()
        return end - now if end > now and count >= limit else 0.0

    # -- slots -------------------------------------------------------------------------------------------------

    async def acquire(self, key: str, limit: int, lease: float) -> str | None:
        token = uuid.uuid4().hex
        try:
            for _ in range(_ATTEMPTS):
                answer = await self._call("get_item", Key={"pk": {"S": key}}, ConsistentRead=True)
                item = answer.get("Item")
                now = self._clock()
                holders = _holders(item, now)
                if len(holders) >= limit:
                    return None
                holders[token] = now + lease
                version = int(item["version"]["N"]) if item and "version" in item else 0
                condition = {"ConditionExpression": "#v = :v", "ExpressionAttributeNames": {"#v": "version"},
                             "ExpressionAttributeValues": {":v": {"N": str(version)}}} if item else {
                    "ConditionExpression": "attribute_not_exists(pk)"}
                try:
                    await self._call("put_item", Item={
                        "pk": {"S": key},
                        "holders": {"M": {name: _exact(end) for name, end in holders.items()}},
                        "version": {"N": str(version + 1)},
                        "expires_at": _num(max(holders.values()) + _TTL_SLACK),
                    }, **condition)
                    return token
                except aws_errors() as error:
                    if not is_client_error(error, "ConditionalCheckFailedException"):
                        raise
                await asyncio.sleep(random.uniform(0.005, 0.05))  # another instance changed the set meanwhile
        except aws_errors() as error:
            _unavailable("concurrency counter", error, "allowing the request")
            return ""
        log.warning("concurrency counter %s: too much contention; refusing", key)
        return None

    async def release(self, key: str, token: str) -> None:
        if not token:
            return
        try:
            await self._call(
                "update_item", Key={"pk": {"S": key}},
                UpdateExpression="REMOVE holders.#t SET #v = #v + :one",
                ConditionExpression="attribute_exists(pk)",
                ExpressionAttributeNames={"#t": token, "#v": "version"},
                ExpressionAttributeValues={":one": {"N": "1"}},
            )
        except aws_errors() as error:
            if not is_client_error(error, "ConditionalCheckFailedException"):
                log.warning("could not release a concurrency slot (%s: %s); its lease frees it",
                            type(error).__name__, short_error(error))


def _spent(item: dict[str, Any], budget: Budget | None) -> Spent | None:
    """The key's spending as `item` holds it for the budget's periods; None when it holds no figure for this month
    (to be seeded from the usage counters)."""
    if budget is None or item.get("md", {}).get("S") != budget.month:
        return None
    same_day = item.get("dd", {}).get("S") == budget.day
    return Spent(budget.day, float(item.get("dc", {}).get("N", "0")) if same_day else 0.0,
                 budget.month, float(item.get("mc", {}).get("N", "0")))


def _over_budget(budget: Budget, spent: Spent) -> bool:
    return ((budget.daily is not None and spent.today >= budget.daily)
            or (budget.monthly is not None and spent.this_month >= budget.monthly))


def _unavailable(what: str, error: BaseException, outcome: str) -> None:
    """The outage policy's fail-open branch: an error log and the `StateTableUnavailable` metric."""
    log.error("%s unavailable (%s: %s); %s", what, type(error).__name__, short_error(error), outcome)
    observability.record_state_table_unavailable(what)


def _num(value: float) -> dict[str, str]:
    """A DynamoDB number of whole epoch seconds, rounded up (TTL wants seconds; a window may last 1 s longer)."""
    return {"N": str(math.ceil(value))}


def _exact(value: float) -> dict[str, str]:
    """A DynamoDB number with millisecond precision (the present moment, in conditions)."""
    return {"N": f"{value:.3f}"}


def _holders(item: dict[str, Any] | None, now: float) -> dict[str, float]:
    """The unexpired holders of a slot set item."""
    if not item:
        return {}
    holders = {}
    for token, value in (item.get("holders", {}).get("M") or {}).items():
        try:
            end = float(value["N"])
        except (KeyError, ValueError):
            continue
        if end > now:
            holders[token] = end
    return holders
