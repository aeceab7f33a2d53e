"""Helpers for the AWS tests: boto3 clients on moto, and resources shaped like the SAM template's."""

from __future__ import annotations

import json
import uuid
from typing import Any

REGION = "us-east-1"


def aws_environment(endpoint: str) -> dict[str, str]:
    """The variables that route boto3 to moto with fake credentials (also handed to subprocesses)."""
    return {
        "AWS_ENDPOINT_URL": endpoint,
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_SESSION_TOKEN": "testing",
        "AWS_DEFAULT_REGION": REGION,
        "AWS_REGION": REGION,
        "AWS_CONFIG_FILE": "/nonexistent/aws-config",
        "AWS_SHARED_CREDENTIALS_FILE": "/nonexistent/aws-credentials",
        "AWS_EC2_METADATA_DISABLED": "true",
    }



def client(service: str) -> Any:
    import boto3

    return boto3.session.Session(region_name=REGION).client(service)


def create_secret(document: dict[str, Any], name: str | None = None) -> str:
    """A secret holding `document` as JSON; returns its ARN."""
    answer = client("secretsmanager").create_secret(
        Name=name or f"kiro-gateway-{uuid.uuid4().hex[:8]}", SecretString=json.dumps(document)
    )
    return answer["ARN"]


def read_secret(secret_id: str) -> dict[str, Any]:
    return json.loads(client("secretsmanager").get_secret_value(SecretId=secret_id)["SecretString"])


def create_table(name: str | None = None) -> str:
    """A table shaped like the template's StateTable (pk string key); returns its name."""
    table = name or f"kiro-state-{uuid.uuid4().hex[:8]}"
    client("dynamodb").create_table(
        TableName=table,
        AttributeDefinitions=[{"AttributeName": "pk", "AttributeType": "S"}],
        KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}],
        BillingMode="PAY_PER_REQUEST",
    )
    return table
