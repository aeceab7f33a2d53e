"""template.yaml: linted by cfn-lint and `sam validate --lint`, and its transformed form checked property by property.

cfn-lint does not check every enum (a wrong Function URL InvokeMode passes it), so the properties that decide whether
streaming works at all are asserted here on the CloudFormation that the SAM transform (samtranslator, offline)
produces from the template.

The streaming function has two variants, one deployed per stack (parameter EnableSnapStart): GatewayFunction
(default) and GatewaySnapStartFunction (published version, alias, SnapStart, adapter hooks). The transform keeps
CloudFormation conditions, so `deployed()` picks the resources a stack with the given setting would have.
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

from gateway.snapstart import AFTER_RESTORE_ENV, BEFORE_CHECKPOINT_ENV
from tests.aws.samcli import REPO_ROOT, TEMPLATE, sam_binary, sam_environment

STREAMING = {False: "GatewayFunction", True: "GatewaySnapStartFunction"}


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


def deployed(template: dict[str, Any], snapstart: bool) -> dict[str, Any]:
    """The template as a stack with EnableSnapStart=snapstart has it: resources of the other variant removed."""
    active = {None, "SnapStartOn" if snapstart else "SnapStartOff"}
    resources = {name: r for name, r in template["Resources"].items() if r.get("Condition") in active}
    return {**template, "Resources": resources}


def streaming_function(template: dict[str, Any], snapstart: bool) -> dict[str, Any]:
    return deployed(template, snapstart)["Resources"][STREAMING[snapstart]]["Properties"]


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


def _url_target(stack: dict[str, Any], snapstart: bool) -> dict[str, Any]:
    """What the Function URL must invoke: the function itself, or (SnapStart) its alias."""
    if not snapstart:
        return {"Ref": "GatewayFunction"}
    aliases = resources_of(stack, "AWS::Lambda::Alias")
    assert list(aliases) == ["GatewaySnapStartFunctionAliaslive"]
    return {"Ref": "GatewaySnapStartFunctionAliaslive"}


@pytest.mark.parametrize("snapstart", [False, True], ids=["default", "snapstart"])
def test_function_url_streams_without_iam_auth(transformed, snapstart):
    stack = deployed(transformed, snapstart)
    urls = resources_of(stack, "AWS::Lambda::Url")
    assert list(urls) == [f"{STREAMING[snapstart]}Url"]
    properties = next(iter(urls.values()))["Properties"]
    assert properties["InvokeMode"] == "RESPONSE_STREAM"
    assert properties["AuthType"] == "NONE"
    target = _url_target(stack, snapstart)
    assert properties["TargetFunctionArn"] == target
    assert "Qualifier" not in properties  # the alias ARN is the target; no second qualifier
    # Since October 2025 a public URL needs both permissions; SAM adds them, on what the URL invokes.
    actions = {
        p["Properties"]["Action"]
        for p in resources_of(stack, "AWS::Lambda::Permission").values()
        if p["Properties"]["FunctionName"] == target
    }
    assert actions == {"lambda:InvokeFunctionUrl", "lambda:InvokeFunction"}


def test_default_stack_publishes_no_version_and_has_no_snapstart(transformed):
    stack = deployed(transformed, snapstart=False)
    assert not resources_of(stack, "AWS::Lambda::Alias")
    assert not resources_of(stack, "AWS::Lambda::Version")
    assert "GatewaySnapStartFunction" not in stack["Resources"]
    function = streaming_function(transformed, snapstart=False)
    assert "SnapStart" not in function
    env = function["Environment"]["Variables"]
    assert BEFORE_CHECKPOINT_ENV not in env and AFTER_RESTORE_ENV not in env


def test_snapstart_stack_snapshots_published_versions_behind_the_alias(transformed):
    stack = deployed(transformed, snapstart=True)
    assert "GatewayFunction" not in stack["Resources"]
    function = streaming_function(transformed, snapstart=True)
    assert function["SnapStart"] == {"ApplyOn": "PublishedVersions"}
    versions = resources_of(stack, "AWS::Lambda::Version")
    assert len(versions) == 1
    version_name, version = next(iter(versions.items()))
    assert version["Properties"]["FunctionName"] == {"Ref": "GatewaySnapStartFunction"}
    alias = stack["Resources"]["GatewaySnapStartFunctionAliaslive"]["Properties"]
    assert alias["Name"] == "live"
    assert alias["FunctionName"] == {"Ref": "GatewaySnapStartFunction"}
    assert alias["FunctionVersion"] == {"Fn::GetAtt": [version_name, "Version"]}
    # SnapStart for Python: 3.12 and later, zip packages.
    assert function["Runtime"] in {"python3.12", "python3.13"} and function.get("PackageType", "Zip") == "Zip"


def test_snapstart_hook_environment_matches_the_app(transformed):
    """The adapter POSTs to the paths the template names; the app must serve exactly those (and only then)."""
    from gateway.app import create_app
    from gateway.settings import Settings

    env = streaming_function(transformed, snapstart=True)["Environment"]["Variables"]
    paths = {env[BEFORE_CHECKPOINT_ENV], env[AFTER_RESTORE_ENV]}
    assert all(path.startswith("/") for path in paths) and len(paths) == 2
    previous = {name: os.environ.get(name) for name in (BEFORE_CHECKPOINT_ENV, AFTER_RESTORE_ENV)}
    os.environ.update({name: env[name] for name in previous})
    try:
        app = create_app(Settings(proxy_api_key="k"))
    finally:
        for name, value in previous.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value
    served = {(route.path, tuple(sorted(route.methods))) for route in app.routes if hasattr(route, "methods")}
    for path in paths:
        assert (path, ("POST",)) in served, path
    assert not paths & set(app.openapi()["paths"])


def test_streaming_variants_stay_in_step(source):
    """Apart from SnapStart itself, both variants must be the same function."""
    resources = source["Resources"]
    plain = copy.deepcopy(resources["GatewayFunction"])
    snap = copy.deepcopy(resources["GatewaySnapStartFunction"])
    assert (plain.pop("Condition"), snap.pop("Condition")) == ("SnapStartOff", "SnapStartOn")
    for properties in (plain["Properties"], snap["Properties"]):
        properties.pop("Description")
    assert snap["Properties"].pop("AutoPublishAlias") == "live"
    assert snap["Properties"].pop("SnapStart") == {"ApplyOn": "PublishedVersions"}
    hooks = snap["Properties"]["Environment"]["Variables"]
    hooks.pop(BEFORE_CHECKPOINT_ENV)
    hooks.pop(AFTER_RESTORE_ENV)
    assert plain == snap


def test_snapstart_parameter_conditions_and_adapter_rule(source):
    parameter = source["Parameters"]["EnableSnapStart"]
    assert parameter["Default"] == "false" and sorted(parameter["AllowedValues"]) == ["false", "true"]
    assert source["Conditions"]["SnapStartOn"] == {"Fn::Equals": [{"Ref": "EnableSnapStart"}, "true"]}
    assert source["Conditions"]["SnapStartOff"] == {"Fn::Not": [{"Condition": "SnapStartOn"}]}
    rule = source["Rules"]["SnapStartNeedsAdapterHooks"]
    assert rule["RuleCondition"] == {"Fn::Equals": [{"Ref": "EnableSnapStart"}, "true"]}
    refused = rule["Assertions"][0]["Assert"]["Fn::Not"][0]["Fn::Contains"]
    assert refused[1] == {"Ref": "LwaLayerVersion"}
    minimum = int(source["Parameters"]["LwaLayerVersion"]["MinValue"])
    assert set(refused[0]) == {str(n) for n in range(minimum, 30)}  # every version without the hooks (< v1.1.0)
    outputs = source["Outputs"]
    for name in ("FunctionUrl", "AnthropicBaseUrl", "OpenAIBaseUrl", "GatewayFunctionName"):
        text = json.dumps(outputs[name]["Value"])
        assert "SnapStartOn" in text and "GatewaySnapStartFunction" in text and '"GatewayFunction' in text, name


@pytest.mark.parametrize("snapstart", [False, True], ids=["default", "snapstart"])
def test_lambda_web_adapter_settings(transformed, snapstart):
    function = streaming_function(transformed, snapstart)
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
    assert "SnapStart" not in function and "AutoPublishAlias" not in function
    assert BEFORE_CHECKPOINT_ENV not in function["Environment"]["Variables"]


def test_architectures_and_runtimes_agree_with_the_layer(transformed):
    layers = resources_of(transformed, "AWS::Lambda::LayerVersion")
    assert len(layers) == 1
    layer_name, layer = next(iter(layers.items()))
    layer_archs = layer["Properties"]["CompatibleArchitectures"]
    layer_runtimes = layer["Properties"]["CompatibleRuntimes"]
    assert layer_archs == ["arm64"]
    # The Makefiles install wheels and write byte code for CPython 3.12 on aarch64: the layer must claim exactly that.
    makefile = (REPO_ROOT / "layers" / "kiro_core" / "Makefile").read_text(encoding="utf-8")
    assert "RUNTIME_PYTHON ?= 3.12" in makefile and "--python-version $(RUNTIME_PYTHON)" in makefile
    assert "aarch64" in makefile
    functions_makefile = (REPO_ROOT / "functions" / "Makefile").read_text(encoding="utf-8")
    assert "RUNTIME_PYTHON ?= 3.12" in functions_makefile
    assert layer_runtimes == ["python3.12"]
    for name in ("GatewayFunction", "GatewaySnapStartFunction", "BufferedFunction"):
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
            "dynamodb:BatchGetItem", "dynamodb:ConditionCheckItem",
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
        managed = json.dumps(role.get("ManagedPolicyArns")).replace("${AWS::Partition}", "aws")
        assert managed in (
            json.dumps(["arn:aws:iam::aws:policy/service-role/AWSLambdaBasicExecutionRole"]),
            json.dumps([{"Fn::Sub": "arn:aws:iam::aws:policy/service-role/AWSLambdaBasicExecutionRole"}]),
        ), role_name
    # Both streaming variants run with the one streaming role.
    assert "GatewaySnapStartFunctionRole" not in transformed["Resources"]
    for name in STREAMING.values():
        assert transformed["Resources"][name]["Properties"]["Role"] == {"Fn::GetAtt": ["GatewayFunctionRole", "Arn"]}


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

    for name in ("GatewayFunction", "GatewaySnapStartFunction", "BufferedFunction"):
        logging_config = transformed["Resources"][name]["Properties"]["LoggingConfig"]
        group = transformed["Resources"][logging_config["LogGroup"]["Ref"]]
        assert group["Type"] == "AWS::Logs::LogGroup"
        assert group["Properties"]["RetentionInDays"] == {"Ref": "LogRetentionDays"}


def test_parameters_and_outputs(source):
    parameters = source["Parameters"]
    assert int(parameters["LwaLayerVersion"]["Default"]) == 30  # Lambda Web Adapter v1.1.0
    assert "30 is v1.1.0" in parameters["LwaLayerVersion"]["Description"]
    assert int(parameters["MemorySize"]["Default"]) == 1024  # docs/deploy.md, "Choosing MemorySize"
    assert "Choosing MemorySize" in (REPO_ROOT / "docs" / "deploy.md").read_text(encoding="utf-8")
    assert int(parameters["Timeout"]["Default"]) >= 600
    for name in ("LogRetentionDays", "ModelCacheTtl"):
        assert name in parameters
    outputs = source["Outputs"]
    for name in ("FunctionUrl", "SecretArn", "TableName", "BufferedApiUrl", "AnthropicBaseUrl", "OpenAIBaseUrl"):
        assert name in outputs, name
    assert outputs["SecretArn"]["Value"] == {"Ref": "KiroSecret"}


# ---------------------------------------------------------------- cost guard (issue 10)


def with_conditions(template: dict[str, Any], *active: str) -> dict[str, dict[str, Any]]:
    """Resources a stack has when exactly the named conditions hold (SnapStart off unless named)."""
    on = {None, *active, "SnapStartOff" if "SnapStartOn" not in active else "SnapStartOn"}
    return {name: r for name, r in template["Resources"].items() if r.get("Condition") in on}


def test_reserved_concurrency_caps_both_streaming_variants(source, transformed):
    parameter = source["Parameters"]["ReservedConcurrency"]
    assert int(parameter["Default"]) == 10 and int(parameter["MinValue"]) == 0
    assert "one person" in parameter["Description"] and "0 reserves nothing" in parameter["Description"]
    assert source["Conditions"]["HasReservedConcurrency"] == {"Fn::Not": [{"Fn::Equals": [
        {"Ref": "ReservedConcurrency"}, 0]}]}
    for snapstart in (False, True):
        function = deployed(transformed, snapstart)["Resources"][STREAMING[snapstart]]["Properties"]
        assert function["ReservedConcurrentExecutions"] == {
            "Fn::If": ["HasReservedConcurrency", {"Ref": "ReservedConcurrency"}, {"Ref": "AWS::NoValue"}]}


def test_buffered_api_is_absent_by_default(source, transformed):
    assert source["Parameters"]["EnableBufferedApi"]["Default"] == "false"
    default = with_conditions(transformed)
    assert "BufferedFunction" not in default and "BufferedApi" not in default
    assert not [r for r in default.values() if r["Type"].startswith("AWS::ApiGateway::")]
    assert source["Outputs"]["BufferedApiUrl"]["Condition"] == "BufferedApiOn"
    enabled = with_conditions(transformed, "BufferedApiOn")
    assert enabled["BufferedFunction"]["Type"] == "AWS::Lambda::Function"
    assert [r for r in enabled.values() if r["Type"] == "AWS::ApiGateway::RestApi"]


def test_alarms_on_invocations_and_credits_tell_an_optional_email(source, transformed):
    alarms = resources_of(transformed, "AWS::CloudWatch::Alarm")
    invocations = alarms["InvocationsAlarm"]["Properties"]
    assert (invocations["Namespace"], invocations["MetricName"], invocations["Period"]) == (
        "AWS/Lambda", "Invocations", 3600)
    assert invocations["Threshold"] == {"Ref": "AlarmInvocationsPerHour"}
    assert invocations["Dimensions"][0]["Value"] == {
        "Fn::If": ["SnapStartOn", {"Ref": "GatewaySnapStartFunction"}, {"Ref": "GatewayFunction"}]}
    credits = alarms["CreditsAlarm"]["Properties"]
    assert (credits["Namespace"], credits["MetricName"], credits["Statistic"]) == ("KiroGateway", "Credits", "Sum")
    assert credits["Threshold"] == {"Ref": "AlarmCreditsPerHour"}
    for alarm in (invocations, credits):
        assert alarm["AlarmActions"] == {"Fn::If": ["HasAlarmEmail", [{"Ref": "AlarmTopic"}],
                                                    {"Ref": "AWS::NoValue"}]}
        assert alarm["TreatMissingData"] == "notBreaching"
    topic = transformed["Resources"]["AlarmTopic"]
    assert topic["Condition"] == "HasAlarmEmail"
    assert topic["Properties"]["Subscription"] == [{"Protocol": "email", "Endpoint": {"Ref": "AlarmEmail"}}]
    assert source["Parameters"]["AlarmEmail"]["Default"] == ""
