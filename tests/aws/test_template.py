"""template.yaml: linted by cfn-lint and `sam validate --lint`, and its transformed form checked property by property.

cfn-lint does not check every enum (a wrong Function URL InvokeMode passes it), so the properties that decide whether
streaming works at all are asserted here on the CloudFormation that the SAM transform (samtranslator, offline)
produces from the template.
"""

from __future__ import annotations

import copy
import json
import os
import shutil
import subprocess
import sys
from typing import Any

import pytest
from samtranslator.translator.transform import transform
from samtranslator.yaml_helper import yaml_parse

from tests.aws.samcli import REPO_ROOT, TEMPLATE, sam_binary, sam_environment


class _NoManagedPolicies:
    """The transform only needs IAM's managed-policy list for policies given by name; this template names none."""

    def load(self) -> dict[str, str]:
        return {}


@pytest.fixture(scope="module")
def source() -> dict[str, Any]:
    return yaml_parse(TEMPLATE.read_text(encoding="utf-8"))


@pytest.fixture(scope="module")
def transformed(source: dict[str, Any]) -> dict[str, Any]:
    """The CloudFormation SAM generates (local code paths replaced by S3 URIs, as `sam package` would)."""
    template = copy.deepcopy(source)
    for resource in template["Resources"].values():
        properties = resource.get("Properties", {})
        for key in ("CodeUri", "ContentUri"):
            if key in properties:
                properties[key] = "s3://example-bucket/artifact.zip"
    previous = os.environ.get("AWS_DEFAULT_REGION")
    os.environ["AWS_DEFAULT_REGION"] = "us-east-1"  # the transform resolves pseudo parameters
    try:
        return transform(template, {}, _NoManagedPolicies())
    finally:
        if previous is None:
            os.environ.pop("AWS_DEFAULT_REGION", None)
        else:
            os.environ["AWS_DEFAULT_REGION"] = previous


def as_list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]


def resources_of(template: dict[str, Any], kind: str) -> dict[str, dict[str, Any]]:
    return {name: r for name, r in template["Resources"].items() if r["Type"] == kind}


def test_cfn_lint_is_clean():
    command = [shutil.which("cfn-lint") or "", str(TEMPLATE)]
    if not command[0]:
        command = [sys.executable, "-m", "cfnlint", str(TEMPLATE)]
    result = subprocess.run(command, capture_output=True, text=True, cwd=REPO_ROOT, timeout=300)
    assert result.returncode == 0, result.stdout + result.stderr


def test_sam_validate_lint_is_clean():
    result = subprocess.run(
        [sam_binary(), "validate", "--lint", "--template-file", str(TEMPLATE), "--region", "us-east-1"],
        capture_output=True, text=True, cwd=REPO_ROOT, env=sam_environment(), timeout=300,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "is a valid SAM Template" in result.stdout + result.stderr


def test_function_url_streams_without_iam_auth(transformed):
    urls = resources_of(transformed, "AWS::Lambda::Url")
    assert list(urls) == ["GatewayFunctionUrl"]
    properties = urls["GatewayFunctionUrl"]["Properties"]
    assert properties["InvokeMode"] == "RESPONSE_STREAM"
    assert properties["AuthType"] == "NONE"
    assert properties["TargetFunctionArn"] == {"Ref": "GatewayFunction"}
    # Since October 2025 a public URL needs both permissions; SAM adds them.
    actions = {
        p["Properties"]["Action"]
        for p in resources_of(transformed, "AWS::Lambda::Permission").values()
        if p["Properties"]["FunctionName"] == {"Ref": "GatewayFunction"}
    }
    assert actions == {"lambda:InvokeFunctionUrl", "lambda:InvokeFunction"}


def test_lambda_web_adapter_settings(transformed):
    function = transformed["Resources"]["GatewayFunction"]["Properties"]
    env = function["Environment"]["Variables"]
    assert function["Handler"] == "run.sh"
    assert env["AWS_LAMBDA_EXEC_WRAPPER"] == "/opt/bootstrap"
    assert env["AWS_LWA_INVOKE_MODE"] == "response_stream"  # must match the URL's RESPONSE_STREAM
    assert env["AWS_LWA_READINESS_CHECK_PATH"] == "/health"
    port = int(env["AWS_LWA_PORT"])
    assert port != 8080 and 1024 < port < 65536  # 8080 belongs to the local runtime emulator
    run_sh = (REPO_ROOT / "functions" / "run.sh").read_text(encoding="utf-8")
    assert "AWS_LWA_PORT" in run_sh and "gateway.app:create_app" in run_sh and "/opt/python" in run_sh
    layers = function["Layers"]
    assert any(
        "753240598075:layer:LambdaAdapterLayerArm64:${LwaLayerVersion}" in json.dumps(layer) for layer in layers
    )
    # The app reads its state from AWS when these are set.
    assert env["KIRO_SECRET_ID"] == {"Ref": "KiroSecret"}
    assert env["KIRO_STATE_TABLE"] == {"Ref": "StateTable"}
    assert env["POWERTOOLS_SERVICE_NAME"] and env["POWERTOOLS_METRICS_NAMESPACE"]


def test_buffered_function_is_mangum_behind_api_gateway(transformed):
    function = transformed["Resources"]["BufferedFunction"]["Properties"]
    assert function["Handler"] == "gateway.lambda_handler.handler"
    assert "AWS_LAMBDA_EXEC_WRAPPER" not in function["Environment"]["Variables"]
    assert not any("LambdaAdapterLayer" in json.dumps(layer) for layer in function["Layers"])
    assert resources_of(transformed, "AWS::ApiGateway::RestApi")
    assert "FunctionUrlConfig" not in function


def test_architectures_and_runtimes_agree_with_the_layer(transformed):
    layers = resources_of(transformed, "AWS::Lambda::LayerVersion")
    assert len(layers) == 1
    layer_name, layer = next(iter(layers.items()))
    layer_archs = layer["Properties"]["CompatibleArchitectures"]
    layer_runtimes = layer["Properties"]["CompatibleRuntimes"]
    assert layer_archs == ["arm64"]
    # The Makefile installs wheels for CPython 3.12 on aarch64: the layer must claim exactly that.
    makefile = (REPO_ROOT / "layers" / "kiro_core" / "Makefile").read_text(encoding="utf-8")
    assert "--python-version 3.12" in makefile and "aarch64" in makefile
    assert layer_runtimes == ["python3.12"]
    for name in ("GatewayFunction", "BufferedFunction"):
        function = transformed["Resources"][name]["Properties"]
        assert function["Architectures"] == layer_archs, name
        assert function["Runtime"] in layer_runtimes, name
        assert {"Ref": layer_name} in function["Layers"], name


def test_iam_policies_grant_exactly_the_secret_and_the_table(transformed):
    expected = {
        json.dumps({"Ref": "KiroSecret"}): {
            "secretsmanager:GetSecretValue", "secretsmanager:PutSecretValue", "secretsmanager:DescribeSecret",
        },
        json.dumps({"Fn::GetAtt": ["StateTable", "Arn"]}): {
            "dynamodb:GetItem", "dynamodb:PutItem", "dynamodb:UpdateItem", "dynamodb:DeleteItem",
        },
    }
    for role_name in ("GatewayFunctionRole", "BufferedFunctionRole"):
        role = transformed["Resources"][role_name]["Properties"]
        granted: dict[str, set[str]] = {}
        for policy in role["Policies"]:
            for statement in policy["PolicyDocument"]["Statement"]:
                assert statement["Effect"] == "Allow"
                resources, actions = as_list(statement["Resource"]), as_list(statement["Action"])
                for resource in resources:
                    assert "*" not in json.dumps(resource), (role_name, resource)
                    assert all("*" not in action for action in actions), (role_name, actions)
                    granted.setdefault(json.dumps(resource), set()).update(actions)
        assert granted == expected, role_name
        # Only the AWS-managed logging policy besides: nothing else attached.
        assert role.get("ManagedPolicyArns") == ["arn:aws:iam::aws:policy/service-role/AWSLambdaBasicExecutionRole"]


def test_state_table_secret_and_logs(source, transformed):
    table = transformed["Resources"]["StateTable"]["Properties"]
    assert table["BillingMode"] == "PAY_PER_REQUEST"
    assert table["KeySchema"] == [{"AttributeName": "pk", "KeyType": "HASH"}]
    assert table["TimeToLiveSpecification"] == {"AttributeName": "expires_at", "Enabled": True}

    secret = transformed["Resources"]["KiroSecret"]
    generate = secret["Properties"]["GenerateSecretString"]
    assert generate["GenerateStringKey"] == "proxyApiKey"
    assert json.loads(generate["SecretStringTemplate"]) == {"refreshToken": ""}
    assert "SecretString" not in secret["Properties"]
    assert secret["UpdateReplacePolicy"] == "Retain"  # a replacement must not drop the rotated token
    assert not any(p.get("NoEcho") for p in source.get("Parameters", {}).values())

    for name in ("GatewayFunction", "BufferedFunction"):
        logging_config = transformed["Resources"][name]["Properties"]["LoggingConfig"]
        group = transformed["Resources"][logging_config["LogGroup"]["Ref"]]
        assert group["Type"] == "AWS::Logs::LogGroup"
        assert group["Properties"]["RetentionInDays"] == {"Ref": "LogRetentionDays"}


def test_parameters_and_outputs(source):
    parameters = source["Parameters"]
    assert int(parameters["LwaLayerVersion"]["Default"]) >= 27
    assert int(parameters["MemorySize"]["Default"]) == 1024
    assert int(parameters["Timeout"]["Default"]) >= 600
    for name in ("LogRetentionDays", "ModelCacheTtl"):
        assert name in parameters
    outputs = source["Outputs"]
    for name in ("FunctionUrl", "SecretArn", "TableName", "BufferedApiUrl", "AnthropicBaseUrl", "OpenAIBaseUrl"):
        assert name in outputs, name
    assert outputs["SecretArn"]["Value"] == {"Ref": "KiroSecret"}
