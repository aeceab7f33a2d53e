"""The buffered Lambda entry point end to end: the sample events in events/ through `gateway.lambda_handler.handler`
(Mangum, lifespan off) in one warm process, with the AWS stores on moto and the fake Kiro as upstream.

This is what BufferedFunction does on Lambda: the client key comes from the secret (`proxyApiKey`), the expired
access token is refreshed once and the rotated token written back, the model list is cached in DynamoDB.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

from tests.aws.awsutil import aws_environment, client, create_secret, create_table, read_secret
from tests.support.fake_kiro import FakeKiro

EVENTS = Path(__file__).resolve().parents[2] / "events"

# Runs in a fresh interpreter, like a Lambda instance: import the handler once, then invoke it per event.
_INVOKE = """
import json, sys, types
from pathlib import Path
import gateway.lambda_handler as entry
context = types.SimpleNamespace(aws_request_id="test-request", function_name="BufferedFunction",
                                invoked_function_arn="arn:aws:lambda:us-east-1:123456789012:function:test",
                                get_remaining_time_in_millis=lambda: 30000)
for name in sys.argv[1:]:
    event = json.loads(Path(name).read_text())
    answer = entry.handler(event, context)
    print("RESULT " + json.dumps({"event": Path(name).name, "status": answer["statusCode"], "body": answer["body"]}))
"""


def test_sample_events_through_the_mangum_handler(aws, tmp_path):
    names = ["api-health.json", "function-url-health.json", "api-models.json", "api-chat-completions.json",
             "function-url-chat-completions.json"]
    with FakeKiro() as fake:
        first_refresh = fake.issue_refresh_token()
        secret = create_secret({
            "refreshToken": first_refresh,
            "accessToken": "",
            "expiresAt": (datetime.now(UTC) - timedelta(hours=1)).strftime("%Y-%m-%dT%H:%M:%S.000Z"),
            "profileArn": fake.profile_arn,
            "region": "us-east-1",
            "proxyApiKey": "test-key",
        })
        table = create_table()
        env = {
            "PATH": os.environ.get("PATH", ""),
            "HOME": str(tmp_path),
            "PYTHONPATH": os.pathsep.join(sys.path),
            "NO_PROXY": "127.0.0.1,localhost",
            **aws_environment(aws),
            "KIRO_SECRET_ID": secret,
            "KIRO_STATE_TABLE": table,
            "KIRO_API_BASE_URL": fake.url,
            "KIRO_DESKTOP_AUTH_URL": fake.url,
            "KIRO_OIDC_URL": fake.url,
        }
        result = subprocess.run(
            [sys.executable, "-c", _INVOKE, *(str(EVENTS / n) for n in names)],
            capture_output=True, text=True, env=env, cwd=tmp_path, timeout=120,
        )
        assert result.returncode == 0, result.stderr[-3000:]
        answers = {
            a["event"]: a
            for a in (json.loads(line[7:]) for line in result.stdout.splitlines() if line.startswith("RESULT "))
        }
        assert set(answers) == set(names), result.stdout + result.stderr[-3000:]

        for name in ("api-health.json", "function-url-health.json"):
            assert answers[name]["status"] == 200, answers[name]
            assert json.loads(answers[name]["body"])["status"] == "healthy"
        models = answers["api-models.json"]
        assert models["status"] == 200, models
        assert "claude-sonnet-4.5" in {m["id"] for m in json.loads(models["body"])["data"]}
        for name in ("api-chat-completions.json", "function-url-chat-completions.json"):
            assert answers[name]["status"] == 200, answers[name]
            completion = json.loads(answers[name]["body"])
            assert completion["choices"][0]["message"]["content"], completion

        # One refresh for the whole warm instance, its result persisted; the model list cached in DynamoDB.
        assert fake.refresh_count == 1
        assert read_secret(secret)["refreshToken"] != first_refresh
        items = client("dynamodb").scan(TableName=table)["Items"]
        cached = [i for i in items if i["pk"]["S"].startswith("models#")]  # one item per account
        assert len(cached) == 1 and "claude-sonnet-4.5" in cached[0]["models"]["S"], items
        assert first_refresh not in result.stdout + result.stderr  # never logged


def test_wrong_client_key_is_refused(aws, tmp_path):
    secret = create_secret({"refreshToken": "unused-refresh-token", "proxyApiKey": "another-key"})
    env = {
        "PATH": os.environ.get("PATH", ""),
        "HOME": str(tmp_path),
        "PYTHONPATH": os.pathsep.join(sys.path),
        **aws_environment(aws),
        "KIRO_SECRET_ID": secret,
        "KIRO_STATE_TABLE": create_table(),
    }
    result = subprocess.run(
        [sys.executable, "-c", _INVOKE, str(EVENTS / "api-models.json")],
        capture_output=True, text=True, env=env, cwd=tmp_path, timeout=120,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    answer = json.loads(next(line[7:] for line in result.stdout.splitlines() if line.startswith("RESULT ")))
    assert answer["status"] == 401, answer
