"""Where the gateway's state lives: this machine's files, or the deployed stack (its secret and its table).

`keys`, `accounts`, `secret` and `login --push` find it the same way. The stack's secret is `--secret-id`, or the
CloudFormation stack's output `SecretArn`, the stack and region coming from `--stack-name`/`--region` or from
samconfig.toml (what `sam deploy` used); its table is the output `TableName`. AWS credentials come from the usual
chain (AWS_PROFILE, `aws configure`, SSO, environment).
"""

from __future__ import annotations

import argparse
import json
import os
import tomllib
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import Any

from gateway.cli.errors import CliError
from gateway.settings import ConfigError, Settings


def stack_arguments(parser: argparse.ArgumentParser) -> None:
    """The flags that name the deployed stack (`secret`, `keys`)."""
    parser.add_argument("--secret-id", help="secret name or ARN (default: the stack's SecretArn output)")
    parser.add_argument("--stack-name", help="CloudFormation stack (default: stack_name in samconfig.toml)")
    parser.add_argument("--region", help="AWS region (default: samconfig.toml, the ARN, then AWS_REGION)")
    parser.add_argument("--config-file", default="samconfig.toml", help="SAM config file (default: %(default)s)")
    parser.add_argument("--config-env", default="default", help="SAM config environment (default: %(default)s)")


def load_settings() -> Settings:
    """The settings `serve` would use (environment over `.env`), or a CliError naming the variable to fix."""
    try:
        return Settings.from_env()
    except ConfigError as error:
        raise CliError(f"configuration error: {error}") from None


def read_samconfig(path: Path, env: str = "default") -> dict[str, str]:
    """`stack_name` and `region` from a samconfig.toml ({} when the file is absent or holds neither)."""
    if not path.is_file():
        return {}
    try:
        document = tomllib.loads(path.read_text(encoding="utf-8"))
    except (tomllib.TOMLDecodeError, OSError) as error:
        raise CliError(f"{path} is not valid TOML: {error}") from None
    found: dict[str, str] = {}
    section = document.get(env, {})
    for command in ("global", "deploy"):
        parameters = section.get(command, {}).get("parameters", {}) if isinstance(section, dict) else {}
        for key in ("stack_name", "region"):
            value = parameters.get(key)
            if isinstance(value, str) and value and key not in found:
                found[key] = value
    return found


def aws_message(error: BaseException) -> str:
    """One line for an AWS failure: what to do about missing credentials or region, else the service's own words."""
    from botocore.exceptions import ClientError, NoCredentialsError, NoRegionError  # lazy: AWS commands only

    if isinstance(error, NoCredentialsError):
        return "no AWS credentials found (run `aws configure` or `aws sso login`, or set AWS_PROFILE)"
    if isinstance(error, NoRegionError):
        return "no AWS region (pass --region or set AWS_REGION)"
    if isinstance(error, ClientError):
        details = error.response.get("Error", {})
        return f"{details.get('Code', 'Error')}: {details.get('Message', '')}".strip()
    return f"{type(error).__name__}: {error}"


def _region_from_arn(value: str) -> str | None:
    parts = value.split(":")
    return parts[3] if len(parts) > 4 and parts[0] == "arn" and parts[3] else None


def _in(region: str | None) -> str:
    return f" in {region}" if region else ""


@dataclass(frozen=True)
class StackRef:
    """The deployed stack as the command line names it (every part optional: samconfig.toml fills the gaps)."""

    secret_id: str | None = None
    stack_name: str | None = None
    region: str | None = None
    config_file: str = "samconfig.toml"
    config_env: str = "default"

    @classmethod
    def from_args(cls, args: argparse.Namespace, region: str = "region") -> StackRef:
        """From parsed flags; `region` names the flag's attribute (`aws_region` where `--region` means Kiro's)."""
        return cls(getattr(args, "secret_id", None), getattr(args, "stack_name", None), getattr(args, region, None),
                   getattr(args, "config_file", "samconfig.toml"), getattr(args, "config_env", "default"))

    @property
    def named(self) -> bool:
        """True when the command line names a stack or a secret (else the local files are meant)."""
        return bool(self.secret_id or self.stack_name)

    def samconfig(self) -> dict[str, str]:
        return read_samconfig(Path(self.config_file), self.config_env)


def aws_session(region: str | None) -> Any:
    import boto3  # lazy: ~0.2 s of imports that only the commands reaching AWS pay

    return boto3.session.Session(region_name=region)


def stack_outputs(ref: StackRef) -> tuple[str | None, str | None, dict[str, str]]:
    """(stack name, region, its outputs) from the flags and samconfig.toml; no stack named → (None, region, {})."""
    config = ref.samconfig()
    region = ref.region or config.get("region")
    stack = ref.stack_name or config.get("stack_name")
    if not stack:
        return None, region, {}
    cloudformation = aws_session(region).client("cloudformation")
    try:
        stacks = cloudformation.describe_stacks(StackName=stack)["Stacks"]
    except Exception as error:
        raise CliError(f"Could not read the stack {stack!r}{_in(region)}: {aws_message(error)}") from None
    outputs = {o.get("OutputKey"): o.get("OutputValue") for o in (stacks[0].get("Outputs") or [])} if stacks else {}
    return stack, region, outputs


class DeployedStack:
    """The deployed gateway's state: its Secrets Manager secret and (when the stack is known) its DynamoDB table."""

    def __init__(self, ref: StackRef) -> None:
        self.ref = ref
        self.secret_id, self.region = self._locate()
        self.where = self.secret_id

    def _locate(self) -> tuple[str, str | None]:
        config = self.ref.samconfig()
        if self.ref.secret_id:
            return self.ref.secret_id, self.ref.region or _region_from_arn(self.ref.secret_id) or config.get("region")
        stack, region, outputs = stack_outputs(self.ref)
        if not stack:
            raise CliError(f"No secret given: pass --secret-id or --stack-name, or run from the directory with "
                           f"{self.ref.config_file} (written by `sam deploy --guided`).")
        arn = outputs.get("SecretArn")
        if not arn:
            raise CliError(f"The stack {stack!r}{_in(region)} has no SecretArn output; is it this project's stack?")
        return arn, region or _region_from_arn(arn)

    @cached_property
    def session(self) -> Any:
        return aws_session(self.region)

    @cached_property
    def secrets(self) -> Any:
        """The Secrets Manager client of the secret's region."""
        return self.session.client("secretsmanager")

    def read_secret(self) -> dict[str, Any]:
        """The secret's JSON object, or a CliError naming the secret."""
        try:
            raw = self.secrets.get_secret_value(SecretId=self.secret_id).get("SecretString") or "{}"
        except Exception as error:
            raise CliError(f"Could not read the secret {self.secret_id}: {aws_message(error)}") from None
        try:
            document = json.loads(raw)
        except json.JSONDecodeError:
            document = None
        if not isinstance(document, dict):
            raise CliError(f"The secret {self.secret_id} does not hold a JSON object.")
        return document

    def table(self) -> str:
        """The stack's DynamoDB table (output `TableName`) when the stack is known (not with a bare --secret-id)."""
        if self.ref.secret_id:
            return ""
        stack = self.ref.stack_name or self.ref.samconfig().get("stack_name")
        if not stack:
            return ""
        try:
            found = self.session.client("cloudformation").describe_stacks(StackName=stack)["Stacks"]
        except Exception:
            return ""
        outputs = {o.get("OutputKey"): o.get("OutputValue") for o in (found[0].get("Outputs") or [])} if found else {}
        return str(outputs.get("TableName") or "")


    def lease_table(self, document: dict[str, Any] | None = None) -> str:
        """The table holding the secret's write lease (shared with the gateway's refresh and every CLI writer): the
        stack's, else KIRO_STATE_TABLE, else the one the gateway recorded in the secret (`stateTable`), else ""."""
        stored = str((document or {}).get("stateTable") or "")
        return self.table() or os.environ.get("KIRO_STATE_TABLE", "") or stored


class LocalFiles:
    """This machine's state: the files the settings (environment over `.env`) name, as `serve` reads them."""

    def __init__(self) -> None:
        self.settings = load_settings()


def locate(ref: StackRef) -> DeployedStack | LocalFiles:
    """The deployed stack when the command line names one, else this machine's files."""
    return DeployedStack(ref) if ref.named else LocalFiles()
