"""AWS calls per request, and how many of them come before the upstream call (issue 22): counted, not timed.

The gateway runs as a process with the Lambda deployment's state (a Secrets Manager secret and the DynamoDB state
table, on moto in server mode) and reaches AWS through a counting proxy in front of moto: every call the gateway
makes is one HTTP request there, named by its `X-Amz-Target`. The fake Kiro notes the proxy's count the moment it
receives the chat request, so "before the upstream call" is the calls the proxy had seen by then.

Measured as the issue states them: a warm instance's requests with the owner's key and with a named key limited by
rpm, concurrency and a daily budget; a new instance's first request with a valid stored access token and with a
refresh due. The periodic re-reads (the key ring and client API key every CLIENT_KEYS_CACHE_SECONDS, the account
states every ACCOUNT_STATE_CACHE_SECONDS) are set longer than the test so each request is measured between them;
docs/deploy.md states what they cost.
"""

from __future__ import annotations

import http.client
import json
import os
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx
import pytest

from tests.aws.awsutil import aws_environment, client, create_secret, create_table
from tests.integration.conftest import gateway_env
from tests.support.fake_kiro import FakeKiro
from tests.support.fake_kiro_http import Received
from tests.support.gateway_process import GatewayProcess

OWNER_KEY = "owner-key-for-counting-0123456789"
BODY = {"model": "claude-sonnet-4.5", "messages": [{"role": "user", "content": "hi"}], "max_tokens": 50,
        "stream": False}


class CountingProxy:
    """An HTTP proxy in front of moto that records the AWS operation of every call passing through."""

    def __init__(self, target: str) -> None:
        self.target = urlsplit(target)
        self.calls: list[str] = []
        self.lock = threading.Lock()
        proxy = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                self._forward()

            def do_GET(self) -> None:
                self._forward()

            def _forward(self) -> None:
                body = self.rfile.read(int(self.headers.get("content-length") or 0))
                operation = self.headers.get("x-amz-target", "").rpartition(".")[2] or self.path
                with proxy.lock:
                    proxy.calls.append(operation)
                upstream = http.client.HTTPConnection(proxy.target.hostname, proxy.target.port, timeout=30)
                headers = {k: v for k, v in self.headers.items() if k.lower() not in ("host", "connection")}
                upstream.request(self.command, self.path, body=body, headers=headers)
                answer = upstream.getresponse()
                payload = answer.read()
                self.send_response(answer.status)
                for name, value in answer.getheaders():
                    if name.lower() not in ("transfer-encoding", "connection", "content-length", "server", "date"):
                        self.send_header(name, value)
                self.send_header("content-length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)
                upstream.close()

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def count(self) -> int:
        with self.lock:
            return len(self.calls)

    def since(self, start: int) -> list[str]:
        with self.lock:
            return self.calls[start:]


class NotingKiro(FakeKiro):
    """The fake Kiro, noting how many AWS calls the proxy had seen when each chat request arrived."""

    proxy: CountingProxy

    def _record(self, received: Received) -> Any:
        if received.endpoint == "generateAssistantResponse":
            self.chat_seen_at.append(self.proxy.count())
        return super()._record(received)


@pytest.fixture
def counted(aws: str) -> Iterator[tuple[CountingProxy, NotingKiro]]:
    proxy = CountingProxy(aws)
    proxy.thread.start()
    fake = NotingKiro()
    fake.proxy = proxy
    fake.chat_seen_at = []
    with fake:
        yield proxy, fake
    proxy.server.shutdown()
    proxy.server.server_close()


def iso(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.000Z")


def deployment(aws: str, fake: NotingKiro, home: Path, *, refresh_due: bool) -> tuple[dict[str, str], str]:
    """A secret as a deployed gateway keeps it (credentials, client API key, its table's name) with one limited
    key made by the real CLI; returns (the gateway's environment through the proxy, the limited key)."""
    table = create_table()
    access = fake.issue_access_token(ttl=0 if refresh_due else 3600)
    expires = datetime.now(UTC) + (timedelta(minutes=-5) if refresh_due else timedelta(hours=1))
    secret = create_secret({"refreshToken": fake.issue_refresh_token(), "accessToken": access,
                            "expiresAt": iso(expires), "profileArn": fake.profile_arn, "region": "us-east-1",
                            "proxyApiKey": OWNER_KEY, "stateTable": table})
    cli_env = {"PATH": os.environ.get("PATH", ""), "HOME": str(home), "PYTHONPATH": os.pathsep.join(sys.path),
               "NO_PROXY": "127.0.0.1,localhost", **aws_environment(aws)}
    created = subprocess.run([sys.executable, "-m", "gateway.cli", "keys", "create", "--name", "limited", "--rpm",
                              "100", "--concurrency", "5", "--daily-credits", "100", "--secret-id", secret],
                             capture_output=True, text=True, env=cli_env, cwd=home, timeout=120)
    assert created.returncode == 0, created.stderr
    env = gateway_env(fake, home)
    for name in ("REFRESH_TOKEN", "PROFILE_ARN", "PROXY_API_KEY"):
        env.pop(name)
    env.update(aws_environment(aws), KIRO_SECRET_ID=secret, KIRO_STATE_TABLE=table,
               CLIENT_KEYS_CACHE_SECONDS="60", ACCOUNT_STATE_CACHE_SECONDS="600", NO_PROXY="127.0.0.1,localhost")
    return env, created.stdout.strip().splitlines()[-1]


def measured(gateway: GatewayProcess, proxy: CountingProxy, fake: NotingKiro, key: str) -> tuple[int, int, list[str]]:
    """(AWS calls of one request, of them before the upstream call, their names)."""
    start, chats = proxy.count(), len(fake.chat_seen_at)
    response = httpx.post(gateway.url + "/v1/chat/completions", json=BODY,
                          headers={"authorization": f"Bearer {key}"}, timeout=60)
    assert response.status_code == 200, response.text
    settled, stable_since = proxy.count(), time.monotonic()
    while time.monotonic() - stable_since < 0.5:  # writes after the answer (none expected late): let them land
        time.sleep(0.05)
        if proxy.count() != settled:
            settled, stable_since = proxy.count(), time.monotonic()
    assert len(fake.chat_seen_at) == chats + 1
    return settled - start, fake.chat_seen_at[chats] - start, proxy.since(start)


class LambdaLikeGateway(GatewayProcess):
    """The app as the Lambda function runs it (run.sh: uvicorn's factory, no `serve` start-up summary)."""

    def start(self, timeout: float = 30.0) -> GatewayProcess:
        env = {key: value for key, value in os.environ.items() if not key.startswith(("KIRO_", "AWS_"))}
        env.update(self.env, PYTHONUNBUFFERED="1")
        with self.log_path.open("ab") as log_file:
            self._process = subprocess.Popen(
                [self.python, "-m", "uvicorn", "--factory", "gateway.app:create_app", "--host", "127.0.0.1",
                 "--port", str(self.port), "--no-access-log"],
                cwd=self.workdir, env=env, stdout=log_file, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                if httpx.get(f"{self.url}/health", timeout=1.0).status_code == 200:
                    return self
            except httpx.HTTPError:
                time.sleep(0.05)
        self.stop()
        raise RuntimeError(f"gateway did not become healthy in {timeout}s:\n{self.logs()}")


def start_gateway(env: dict[str, str], home: Path, proxy: CountingProxy) -> GatewayProcess:
    return LambdaLikeGateway({**env, "AWS_ENDPOINT_URL": proxy.url}, home, home / "counted.log").start()


@pytest.mark.parametrize("refresh_due", [False, True], ids=["stored-token-valid", "refresh-due"])
def test_a_new_instance_first_request(counted: tuple[CountingProxy, NotingKiro], aws: str, tmp_path: Path,
                                      refresh_due: bool) -> None:
    """A new instance of a deployment that has served before (its catalogue is in the table, as any earlier
    instance leaves it); `refresh_due`: the stored access token has expired since."""
    proxy, fake = counted
    env, _ = deployment(aws, fake, tmp_path, refresh_due=False)
    with GatewayProcess(dict(env), tmp_path) as earlier:  # straight to moto: not counted
        assert httpx.post(earlier.url + "/v1/chat/completions", json=BODY,
                          headers={"authorization": f"Bearer {OWNER_KEY}"}, timeout=60).status_code == 200
    refreshes = fake.refresh_count
    if refresh_due:
        secrets = client("secretsmanager")
        stored = json.loads(secrets.get_secret_value(SecretId=env["KIRO_SECRET_ID"])["SecretString"])
        stored.update(accessToken=fake.issue_access_token(ttl=0),
                      expiresAt=iso(datetime.now(UTC) - timedelta(minutes=5)))
        secrets.put_secret_value(SecretId=env["KIRO_SECRET_ID"], SecretString=json.dumps(stored))
    with start_gateway(env, tmp_path, proxy) as gateway:
        _, before, calls = measured(gateway, proxy, fake, OWNER_KEY)
    limit = 5 if refresh_due else 2
    assert before <= limit, f"{before} AWS calls before the upstream call (target {limit}): {calls}"
    assert calls.count("GetSecretValue") == 1, f"the secret is read once: {calls}"
    assert fake.refresh_count == refreshes + (1 if refresh_due else 0)


def test_a_warm_instance_per_key(counted: tuple[CountingProxy, NotingKiro], aws: str, tmp_path: Path) -> None:
    proxy, fake = counted
    env, limited = deployment(aws, fake, tmp_path, refresh_due=False)
    with start_gateway(env, tmp_path, proxy) as gateway:
        measured(gateway, proxy, fake, OWNER_KEY)  # the new instance's first request
        measured(gateway, proxy, fake, limited)  # the limited key's first (its spending is seeded once)
        owner = [measured(gateway, proxy, fake, OWNER_KEY) for _ in range(5)]
        named = [measured(gateway, proxy, fake, limited) for _ in range(5)]
    for total, before, calls in owner:
        assert total <= 1 and before == 0, f"owner's key: {total} calls, {before} before upstream: {calls}"
    for total, before, calls in named:
        assert total <= 3 and before <= 1, f"limited key: {total} calls, {before} before upstream: {calls}"
    print(json.dumps({"owner": owner, "limited": named}))
