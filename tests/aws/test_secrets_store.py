"""SecretsManagerTokenStore against moto in server mode (real HTTP, real boto3, real conditional writes).

`do_refresh` here is the test's stand-in for the upstream token endpoint: it rotates tokens the way Kiro does (each
refresh token accepted once) and counts calls. Faults are injected with botocore's own event hooks on the client.
"""

from __future__ import annotations

import asyncio
import json
import time
from datetime import UTC, datetime, timedelta

import pytest
from botocore.exceptions import EndpointConnectionError

from gateway.stores.base import Credentials, CredentialsNotFound
from gateway.stores.refresh_lease import LEASE_KEY, RefreshBusyError
from gateway.stores.secret_document import credentials_from_document
from gateway.stores.secrets_manager import SecretsManagerTokenStore, SecretWriteError
from tests.aws.awsutil import client, create_secret, create_table, read_secret


def iso(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.000Z")


def expired_document(refresh_token: str = "refresh-0") -> dict:
    return {
        "refreshToken": refresh_token,
        "accessToken": "access-0",
        "expiresAt": iso(datetime.now(UTC) - timedelta(hours=1)),
        "profileArn": "arn:aws:codewhisperer:us-east-1:111122223333:profile/EXAMPLE",
        "region": "us-east-1",
        "proxyApiKey": "client-key-123456",
        "authMethod": "social",
        "provider": "Github",
    }


class FakeUpstream:
    """Kiro-like refresh: each refresh token works once and yields the next one."""

    def __init__(self, delay: float = 0.0):
        self.calls: list[str] = []
        self.used: set[str] = set()
        self.delay = delay

    async def __call__(self, creds: Credentials) -> Credentials:
        self.calls.append(creds.refresh_token)
        if creds.refresh_token in self.used:
            raise PermissionError("invalid_grant: refresh token already used")
        self.used.add(creds.refresh_token)
        if self.delay:
            await asyncio.sleep(self.delay)
        n = len(self.calls)
        return creds.rotated(
            access_token=f"access-{n}",
            refresh_token=f"refresh-{n}",
            expires_at=datetime.now(UTC) + timedelta(seconds=3600 - 60),
        )


async def fail_if_called(creds: Credentials) -> Credentials:
    raise AssertionError("no refresh expected")


def store_for(secret: str, table: str = "", **options) -> SecretsManagerTokenStore:
    options.setdefault("client", client("secretsmanager"))
    return SecretsManagerTokenStore(secret, table, **options)


def lease_item(table: str) -> dict | None:
    return client("dynamodb").get_item(TableName=table, Key={"pk": {"S": LEASE_KEY}}).get("Item")


def test_load_parses_the_kiro_ide_shape(aws):
    document = expired_document()
    document.update(clientId="cid", clientSecret="csecret", expiresAt="2030-01-02T03:04:05.678Z")
    store = store_for(create_secret(document))

    creds = asyncio.run(store.load())

    assert creds.refresh_token == "refresh-0"
    assert creds.access_token == "access-0"
    assert creds.expires_at == datetime(2030, 1, 2, 3, 4, 5, 678000, tzinfo=UTC)
    assert creds.profile_arn.endswith("profile/EXAMPLE")
    assert creds.region == "us-east-1"
    assert creds.auth_type == "aws_sso_oidc"
    assert creds.extra == {"authMethod": "social", "provider": "Github"}
    assert asyncio.run(store.proxy_api_key()) == "client-key-123456"
    assert "refresh-0" not in store.describe() and "access-0" not in store.describe()


def test_load_caches_for_cache_seconds(aws):
    secret = create_secret(expired_document())
    now = [1000.0]
    store = store_for(secret, clock=lambda: now[0], cache_seconds=30)
    assert asyncio.run(store.load()).refresh_token == "refresh-0"
    client("secretsmanager").put_secret_value(SecretId=secret, SecretString='{"refreshToken": "pushed"}')
    now[0] += 10
    assert asyncio.run(store.load()).refresh_token == "refresh-0"
    now[0] += 25
    assert asyncio.run(store.load()).refresh_token == "pushed"


def test_placeholder_secret_says_to_push(aws):
    # What the template creates before `kiro-gateway secret push`.
    store = store_for(create_secret({"refreshToken": "", "proxyApiKey": "generated"}))
    with pytest.raises(CredentialsNotFound, match="secret push"):
        asyncio.run(store.load())
    assert asyncio.run(store.proxy_api_key()) == "generated"


def test_missing_secret_is_credentials_not_found(aws):
    store = store_for("arn:aws:secretsmanager:us-east-1:123456789012:secret:nope-AbCdEf")
    with pytest.raises(CredentialsNotFound, match="does not exist"):
        asyncio.run(store.load())


def test_refresh_persists_rotated_token_before_returning(aws):
    secret = create_secret(expired_document())
    table = create_table()
    store = store_for(secret, table)
    upstream = FakeUpstream()

    async def scenario() -> Credentials:
        stale = await store.load()
        return await store.refresh(stale, upstream)

    fresh = asyncio.run(scenario())

    assert upstream.calls == ["refresh-0"]
    assert (fresh.refresh_token, fresh.access_token) == ("refresh-1", "access-1")
    stored = read_secret(secret)  # a separate client: what every other instance now sees
    assert stored["refreshToken"] == "refresh-1"
    assert stored["accessToken"] == "access-1"
    assert credentials_from_document(stored).expires_at == fresh.expires_at.replace(
        microsecond=fresh.expires_at.microsecond // 1000 * 1000
    )
    # Unknown keys and the client API key survive the write.
    assert stored["proxyApiKey"] == "client-key-123456"
    assert stored["authMethod"] == "social" and stored["provider"] == "Github"
    assert lease_item(table) is None  # released


def test_rotation_by_another_instance_is_adopted_without_refreshing(aws):
    secret = create_secret(expired_document())
    table = create_table()
    first, second = store_for(secret, table), store_for(secret, table)
    upstream = FakeUpstream()

    async def scenario() -> tuple[Credentials, Credentials]:
        stale_first = await first.load()
        stale_second = await second.load()
        rotated = await first.refresh(stale_first, upstream)
        adopted = await second.refresh(stale_second, fail_if_called)
        return rotated, adopted

    rotated, adopted = asyncio.run(scenario())
    assert upstream.calls == ["refresh-0"]
    assert adopted.refresh_token == rotated.refresh_token == "refresh-1"
    assert adopted.access_token == "access-1"


def test_forced_refresh_of_current_credentials_refreshes(aws):
    # A 403 from Kiro forces a refresh although the stored token looks fresh: stored == stale, so refresh.
    document = expired_document()
    document["expiresAt"] = iso(datetime.now(UTC) + timedelta(hours=1))
    secret = create_secret(document)
    store = store_for(secret, create_table())
    upstream = FakeUpstream()

    async def scenario() -> Credentials:
        return await store.refresh(await store.load(), upstream)

    assert asyncio.run(scenario()).refresh_token == "refresh-1"
    assert upstream.calls == ["refresh-0"]


def test_secret_write_that_fails_once_still_persists(aws):
    secret = create_secret(expired_document())
    secrets_client = client("secretsmanager")
    failures = []

    def fail_first_put(**kwargs):
        if not failures:
            failures.append(kwargs.get("model").name if kwargs.get("model") else "PutSecretValue")
            raise EndpointConnectionError(endpoint_url="https://secretsmanager.us-east-1.amazonaws.com")

    secrets_client.meta.events.register("before-call.secrets-manager.PutSecretValue", fail_first_put)

    async def no_wait(_seconds: float) -> None:
        return None

    store = SecretsManagerTokenStore(secret, create_table(), client=secrets_client, sleep=no_wait)
    upstream = FakeUpstream()

    async def scenario() -> Credentials:
        return await store.refresh(await store.load(), upstream)

    fresh = asyncio.run(scenario())
    assert failures == ["PutSecretValue"]  # the fault really happened
    assert read_secret(secret)["refreshToken"] == fresh.refresh_token == "refresh-1"
    assert upstream.calls == ["refresh-0"]


def test_secret_write_that_keeps_failing_raises_and_keeps_the_token(aws):
    secret = create_secret(expired_document())
    table = create_table()
    secrets_client = client("secretsmanager")
    broken = [True]

    def fail_while_broken(**_kwargs):
        if broken[0]:
            raise EndpointConnectionError(endpoint_url="https://secretsmanager.us-east-1.amazonaws.com")

    secrets_client.meta.events.register("before-call.secrets-manager.PutSecretValue", fail_while_broken)

    async def no_wait(_seconds: float) -> None:
        return None

    store = SecretsManagerTokenStore(secret, table, client=secrets_client, sleep=no_wait, write_attempts=3)
    upstream = FakeUpstream()

    async def scenario() -> None:
        stale = await store.load()
        with pytest.raises(SecretWriteError, match="kept in memory"):
            await store.refresh(stale, upstream)
        assert read_secret(secret)["refreshToken"] == "refresh-0"  # not written yet
        # The only valid credentials live in memory; load() hands them out even while the write fails.
        assert (await store.load()).refresh_token == "refresh-1"
        assert lease_item(table) is not None  # kept: others must not burn the stale stored token
        broken[0] = False
        # The next call lands the write and returns the rotated credentials without refreshing again.
        again = await store.refresh(stale, fail_if_called)
        assert again.refresh_token == "refresh-1"
        assert lease_item(table) is None  # released once the write landed

    asyncio.run(scenario())
    assert read_secret(secret)["refreshToken"] == "refresh-1"
    assert upstream.calls == ["refresh-0"]


def test_concurrent_instances_refresh_exactly_once(aws):
    secret = create_secret(expired_document())
    table = create_table()
    stores = [store_for(secret, table, client=client("secretsmanager")) for _ in range(4)]
    upstream = FakeUpstream(delay=0.3)  # a slow upstream keeps the lease held while the others arrive

    async def scenario() -> list[Credentials]:
        stale = [await store.load() for store in stores]
        return await asyncio.gather(*(store.refresh(s, upstream) for store, s in zip(stores, stale, strict=True)))

    results = asyncio.run(scenario())
    assert upstream.calls == ["refresh-0"]
    assert {r.refresh_token for r in results} == {"refresh-1"}
    assert read_secret(secret)["refreshToken"] == "refresh-1"


def test_waits_for_the_lease_holder_and_adopts_its_result(aws):
    secret = create_secret(expired_document())
    table = create_table()
    # Another instance holds the lease and will publish its result shortly.
    client("dynamodb").put_item(
        TableName=table,
        Item={"pk": {"S": LEASE_KEY}, "owner": {"S": "someone-else"}, "expires_at": {"N": str(int(time.time()) + 60)}},
    )
    store = store_for(secret, table)

    async def other_instance_finishes() -> None:
        await asyncio.sleep(0.4)
        document = expired_document("refresh-9")
        document.update(accessToken="access-9", expiresAt=iso(datetime.now(UTC) + timedelta(hours=1)))
        await asyncio.to_thread(
            client("secretsmanager").put_secret_value, SecretId=secret, SecretString=json.dumps(document)
        )

    async def scenario() -> Credentials:
        stale = await store.load()
        result, _ = await asyncio.gather(store.refresh(stale, fail_if_called), other_instance_finishes())
        return result

    started = time.monotonic()
    result = asyncio.run(scenario())
    assert result.refresh_token == "refresh-9" and result.access_token == "access-9"
    assert time.monotonic() - started < 10
    assert lease_item(table)["owner"]["S"] == "someone-else"  # never ours to release


def test_expired_lease_of_a_crashed_instance_is_taken_over(aws):
    secret = create_secret(expired_document())
    table = create_table()
    client("dynamodb").put_item(
        TableName=table,
        Item={"pk": {"S": LEASE_KEY}, "owner": {"S": "crashed"}, "expires_at": {"N": str(int(time.time()) - 5)}},
    )
    store = store_for(secret, table)
    upstream = FakeUpstream()

    async def scenario() -> Credentials:
        return await store.refresh(await store.load(), upstream)

    assert asyncio.run(scenario()).refresh_token == "refresh-1"
    assert upstream.calls == ["refresh-0"]
    assert lease_item(table) is None


def test_a_lease_held_too_long_gives_a_clear_error(aws):
    secret = create_secret(expired_document())
    table = create_table()
    client("dynamodb").put_item(
        TableName=table,
        Item={"pk": {"S": LEASE_KEY}, "owner": {"S": "stuck"}, "expires_at": {"N": str(int(time.time()) + 600)}},
    )
    store = store_for(secret, table, wait_seconds=0.5)

    async def scenario() -> None:
        await store.refresh(await store.load(), fail_if_called)

    with pytest.raises(RefreshBusyError):
        asyncio.run(scenario())


def test_refresh_token_already_used_switches_to_the_newer_stored_one(aws):
    secret = create_secret(expired_document())
    store = store_for(secret, create_table())
    calls: list[str] = []

    async def upstream(creds: Credentials) -> Credentials:
        calls.append(creds.refresh_token)
        if creds.refresh_token == "refresh-0":
            # Someone else rotated it a moment ago (their access token already near expiry, so not adoptable).
            document = expired_document("refresh-other")
            await asyncio.to_thread(
                client("secretsmanager").put_secret_value,
                SecretId=secret,
                SecretString=json.dumps(document),
            )
            raise PermissionError("invalid_grant")
        return creds.rotated(
            access_token="access-new",
            refresh_token="refresh-new",
            expires_at=datetime.now(UTC) + timedelta(hours=1),
        )

    async def scenario() -> Credentials:
        return await store.refresh(await store.load(), upstream)

    result = asyncio.run(scenario())
    assert calls == ["refresh-0", "refresh-other"]
    assert result.refresh_token == "refresh-new"
    assert read_secret(secret)["refreshToken"] == "refresh-new"


def test_real_refresh_failure_propagates_and_releases_the_lease(aws):
    secret = create_secret(expired_document())
    table = create_table()
    store = store_for(secret, table)

    async def broken(_creds: Credentials) -> Credentials:
        raise ConnectionError("upstream down")

    async def scenario() -> None:
        await store.refresh(await store.load(), broken)

    with pytest.raises(ConnectionError):
        asyncio.run(scenario())
    assert read_secret(secret)["refreshToken"] == "refresh-0"
    assert lease_item(table) is None
