"""Several accounts on the AWS stores (moto): the list lives in the secret's `accounts`, each refresh-token account
writes its rotated tokens into its own entry, and account states live in the DynamoDB table, so a throttle one gateway
process met is honoured by another, and after a restart."""

from __future__ import annotations

import json
from pathlib import Path

import openai

from tests.aws.awsutil import aws_environment, client, create_secret, create_table, read_secret
from tests.integration.conftest import API_KEY, gateway_env
from tests.support.fake_kiro import FakeKiro, text_stream
from tests.support.gateway_process import GatewayProcess

USER = [{"role": "user", "content": "hello"}]
THROTTLED = {"__type": "com.amazon.kiro.runtimeservice#ThrottlingException", "retryAfterMilliseconds": 120_000,
             "message": "Too many requests, please wait before trying again.", "reason": "USER_REQUEST_RATE_EXCEEDED"}


def ask(gateway: GatewayProcess) -> str:
    api = openai.OpenAI(base_url=f"{gateway.url}/v1", api_key=API_KEY, max_retries=0, timeout=30)
    chunks = api.chat.completions.create(model="claude-sonnet-4.5", messages=USER, stream=True)
    return "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)


def bearers(fake: FakeKiro) -> list[str]:
    return [r.headers.get("authorization", "").removeprefix("Bearer ") for r in fake.requests("chat")]


def test_account_states_are_shared_by_instances_and_survive_a_restart(aws: str, tmp_path: Path) -> None:
    with FakeKiro() as fake:
        first, refresh = fake.issue_api_key(), fake.issue_refresh_token()
        secret = create_secret({"proxyApiKey": API_KEY, "accounts": [
            {"name": "first", "kind": "api_key", "apiKey": first},
            {"name": "second", "kind": "refresh_token", "refreshToken": refresh, "profileArn": fake.profile_arn,
             "region": "us-east-1", "note": "kept"},
        ]})
        table = create_table()
        env = gateway_env(fake, tmp_path)
        for name in ("REFRESH_TOKEN", "PROFILE_ARN", "PROXY_API_KEY"):
            env.pop(name)
        env.update(aws_environment(aws), KIRO_SECRET_ID=secret, KIRO_STATE_TABLE=table)
        one = GatewayProcess(env, tmp_path, tmp_path / "one.log").start()
        two = GatewayProcess(env, tmp_path, tmp_path / "two.log").start()
        try:
            fake.enqueue_chat(text_stream("first serves"))
            assert ask(one) == "first serves" and bearers(fake) == [first]

            fake.fail_next_for(first, "chat", 429, THROTTLED)
            fake.enqueue_chat(text_stream("second took over"))
            assert ask(one) == "second took over"
            assert bearers(fake)[1:] == [first, bearers(fake)[2]] and bearers(fake)[2] != first

            fake.enqueue_chat(text_stream("other instance"))
            assert ask(two) == "other instance"
            assert bearers(fake)[-1] != first and len(bearers(fake)) == 4  # `two` skipped the resting account

            two.restart()
            fake.enqueue_chat(text_stream("after restart"))
            assert ask(two) == "after restart"
            assert bearers(fake)[-1] != first and len(bearers(fake)) == 5
        finally:
            one.stop()
            two.stop()
        assert fake.refresh_count == 1  # `two` adopted the token `one` refreshed and stored

    stored = read_secret(secret)
    assert stored["proxyApiKey"] == API_KEY
    assert stored["accounts"][0] == {"name": "first", "kind": "api_key", "apiKey": first}
    second = stored["accounts"][1]
    assert second["refreshToken"] != refresh and second["accessToken"] and second["note"] == "kept"
    item = client("dynamodb").get_item(TableName=table, Key={"pk": {"S": "account#first"}})["Item"]
    state = json.loads(item["state"]["S"])
    assert state["state"] == "cooling" and state["reason"] == "USER_REQUEST_RATE_EXCEEDED"
    assert int(item["expires_at"]["N"]) > state["until"]  # TTL removes it after the rest


def test_two_accounts_rotating_at_once_keep_both_tokens(aws: str) -> None:
    import asyncio

    import httpx

    from gateway.accounts.stores import SecretAccountTokenStore
    from gateway.auth.manager import AuthManager
    from gateway.auth.refresh import TokenRefresher

    with FakeKiro(refresh_delay=0.3) as fake:
        originals = [fake.issue_refresh_token() for _ in range(3)]
        secret = create_secret({"proxyApiKey": API_KEY, "accounts": [
            {"name": f"a{i}", "kind": "refresh_token", "refreshToken": token, "region": "us-east-1"}
            for i, token in enumerate(originals)]})
        table = create_table()

        async def scenario() -> None:
            async with httpx.AsyncClient(trust_env=False) as http:
                refresher = TokenRefresher(http, desktop_url=f"{fake.url}/refreshToken",
                                           oidc_url=f"{fake.url}/token", user_agent="KiroIDE-test")
                managers = [AuthManager(SecretAccountTokenStore(secret, table, f"a{i}"), refresher) for i in range(3)]
                await asyncio.gather(*(m.access_token() for m in managers))

        asyncio.run(scenario())
        assert fake.refresh_count == 3
    entries = read_secret(secret)["accounts"]
    assert [e["name"] for e in entries] == ["a0", "a1", "a2"]
    for entry, original in zip(entries, originals, strict=True):
        assert entry["refreshToken"] != original and entry["accessToken"]  # no write dropped another's tokens
