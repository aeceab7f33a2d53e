"""`kiro-gateway secret push|show` as a user runs them: a subprocess with HOME pointing at a fake home that holds a
Kiro IDE login, talking to moto in server mode."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.aws.awsutil import aws_environment, client, create_secret, read_secret

REFRESH = "aorTESTrefresh-" + "r" * 60
ACCESS = "aoaTESTaccess-" + "a" * 60
CLIENT_SECRET = "clientSECRET-" + "s" * 40
PROFILE = "arn:aws:codewhisperer:us-east-1:111122223333:profile/EXAMPLE"


@pytest.fixture
def home(tmp_path: Path) -> Path:
    """A home directory with a Kiro IDE login where `serve` would find it (~/.aws/sso/cache/kiro-auth-token.json)."""
    cache = tmp_path / "home" / ".aws" / "sso" / "cache"
    cache.mkdir(parents=True)
    (cache / "kiro-auth-token.json").write_text(json.dumps({
        "accessToken": ACCESS,
        "refreshToken": REFRESH,
        "expiresAt": "2030-01-01T00:00:00.000Z",
        "profileArn": PROFILE,
        "region": "us-east-1",
        "authMethod": "social",
        "provider": "Github",
    }), encoding="utf-8")
    return tmp_path / "home"


def run_cli(aws: str, home: Path, *args: str, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    env = {
        "PATH": os.environ.get("PATH", ""),
        "HOME": str(home),
        "PYTHONPATH": os.pathsep.join(sys.path),
        "NO_PROXY": "127.0.0.1,localhost",
        **aws_environment(aws),
    }
    return subprocess.run(
        [sys.executable, "-m", "gateway.cli", *args],
        capture_output=True, text=True, env=env, cwd=cwd or home, timeout=120,
    )


def assert_no_secret_values(output: str) -> None:
    for raw in (REFRESH, ACCESS, CLIENT_SECRET, REFRESH[:20], ACCESS[:20], CLIENT_SECRET[:20]):
        assert raw not in output


def test_push_stores_credentials_and_a_generated_key(aws, home):
    secret = create_secret({"refreshToken": ""})  # a secret without a client key yet

    result = run_cli(aws, home, "secret", "push", "--secret-id", secret)

    assert result.returncode == 0, result.stderr
    stored = read_secret(secret)
    assert stored["refreshToken"] == REFRESH
    assert stored["accessToken"] == ACCESS
    assert stored["expiresAt"].startswith("2030-01-01T00:00:00")
    assert stored["profileArn"] == PROFILE
    assert stored["region"] == "us-east-1"
    key = stored["proxyApiKey"]
    assert len(key) >= 40
    # The generated key is printed exactly once; no token ever is.
    assert result.stdout.count(key) == 1
    assert_no_secret_values(result.stdout + result.stderr)


def test_push_keeps_the_stored_key_and_drops_stale_oidc_fields(aws, home):
    secret = create_secret({
        "refreshToken": "old-refresh-token-xxxxxxxx",
        "clientId": "old-client",
        "clientSecret": "old-client-secret-xxxxxxxx",
        "proxyApiKey": "existing-client-key-123456",
        "customNote": "kept",
    })

    result = run_cli(aws, home, "secret", "push", "--secret-id", secret)

    assert result.returncode == 0, result.stderr
    stored = read_secret(secret)
    assert stored["refreshToken"] == REFRESH
    assert stored["proxyApiKey"] == "existing-client-key-123456"
    assert "clientSecret" not in stored and "clientId" not in stored  # this login is Kiro desktop
    assert stored["customNote"] == "kept"
    # First push onto this secret: the key CloudFormation generated is shown once...
    assert result.stdout.count("existing-client-key-123456") == 1
    # ...and not again on later pushes.
    again = run_cli(aws, home, "secret", "push", "--secret-id", secret)
    assert again.returncode == 0, again.stderr
    assert "existing-client-key-123456" not in again.stdout
    assert read_secret(secret)["proxyApiKey"] == "existing-client-key-123456"


def test_push_sets_the_given_api_key(aws, home):
    secret = create_secret({"refreshToken": "", "proxyApiKey": "template-generated-key"})
    result = run_cli(aws, home, "secret", "push", "--secret-id", secret, "--api-key", "my-chosen-key-000111")
    assert result.returncode == 0, result.stderr
    assert read_secret(secret)["proxyApiKey"] == "my-chosen-key-000111"


def test_push_finds_the_secret_through_samconfig_and_the_stack(aws, home, tmp_path):
    # moto's CloudFormation cannot create secrets, so the stack reports an existing one as its SecretArn output.
    secret = create_secret({"refreshToken": ""})
    template = {
        "Resources": {"StateTable": {"Type": "AWS::DynamoDB::Table", "Properties": {
            "BillingMode": "PAY_PER_REQUEST",
            "AttributeDefinitions": [{"AttributeName": "pk", "AttributeType": "S"}],
            "KeySchema": [{"AttributeName": "pk", "KeyType": "HASH"}],
        }}},
        "Outputs": {"SecretArn": {"Value": secret}},
    }
    client("cloudformation").create_stack(StackName="kiro-gateway-test", TemplateBody=json.dumps(template))
    project = tmp_path / "project"
    project.mkdir()
    (project / "samconfig.toml").write_text(
        'version = 0.1\n[default.global.parameters]\nstack_name = "kiro-gateway-test"\nregion = "us-east-1"\n',
        encoding="utf-8",
    )

    result = run_cli(aws, home, "secret", "push", cwd=project)

    assert result.returncode == 0, result.stderr
    assert read_secret(secret)["refreshToken"] == REFRESH
    assert secret in result.stdout


def test_show_masks_every_token(aws, home):
    secret = create_secret({
        "refreshToken": REFRESH,
        "accessToken": ACCESS,
        "clientId": "client-id-abcdef-123456",
        "clientSecret": CLIENT_SECRET,
        "expiresAt": "2030-01-01T00:00:00.000Z",
        "region": "us-east-1",
        "profileArn": PROFILE,
        "proxyApiKey": "client-key-abcdefghijklmnop",
    })

    result = run_cli(aws, home, "secret", "show", "--secret-id", secret)

    assert result.returncode == 0, result.stderr
    output = result.stdout + result.stderr
    assert_no_secret_values(output)
    assert "client-key-abcdefghijklmnop" not in output
    assert "client-id-abcdef-123456" not in output
    assert f"refreshToken: {REFRESH[:4]}…({len(REFRESH)} chars)" in output
    assert "expiresAt: 2030-01-01T00:00:00.000Z" in output and "region: us-east-1" in output

    revealed = run_cli(aws, home, "secret", "show", "--secret-id", secret, "--reveal-api-key")
    assert "proxyApiKey: client-key-abcdefghijklmnop" in revealed.stdout
    assert_no_secret_values(revealed.stdout + revealed.stderr)


def test_missing_secret_is_a_one_line_error(aws, home):
    result = run_cli(aws, home, "secret", "show", "--secret-id", "no-such-secret")
    assert result.returncode == 1
    assert "ResourceNotFoundException" in result.stderr
    assert "Traceback" not in result.stderr
