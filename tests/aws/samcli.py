"""Finding the SAM CLI for the template and build tests.

aws-sam-cli pins exact versions of boto3 and click, so it lives in its own virtual environment, made by
`bash scripts/install-sam.sh` (`.venv-sam/` at the repository root). `SAM_CLI` may name another `sam` binary.
A missing SAM CLI is a test failure with instructions, never a silent skip.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[2]
TEMPLATE = REPO_ROOT / "template.yaml"


def sam_binary() -> str:
    candidates = [os.environ.get("SAM_CLI", ""), str(REPO_ROOT / ".venv-sam" / "bin" / "sam")]
    for candidate in candidates:
        if candidate and Path(candidate).is_file() and os.access(candidate, os.X_OK):
            return candidate
    on_path = shutil.which("sam")
    if on_path:
        return on_path
    pytest.fail(
        "The AWS SAM CLI is not installed. Run `bash scripts/install-sam.sh` (creates .venv-sam/), "
        "or set SAM_CLI to a sam binary.",
        pytrace=False,
    )


def sam_environment() -> dict[str, str]:
    """The environment for sam: no telemetry, no AWS endpoint override from other tests."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_ENDPOINT_URL")}
    env.update(
        SAM_CLI_TELEMETRY="0",
        AWS_DEFAULT_REGION=env.get("AWS_DEFAULT_REGION", "us-east-1"),
    )
    return env
