#!/usr/bin/env bash
# Installs the AWS SAM CLI into its own virtual environment (.venv-sam/ at the repository root).
#
# aws-sam-cli pins exact versions of boto3, click and friends, so it must not share an environment with the
# gateway. Idempotent: an existing .venv-sam with the pinned version is left alone.
# Usage: bash scripts/install-sam.sh          (then: .venv-sam/bin/sam --version)
# Env:   SAM_CLI_VERSION (default below), PYTHON (interpreter for the venv, default python3)
set -euo pipefail
cd "$(dirname "$0")/.."

SAM_CLI_VERSION="${SAM_CLI_VERSION:-1.170.0}"
PYTHON="${PYTHON:-python3}"
VENV=".venv-sam"

if [ -x "$VENV/bin/sam" ] && "$VENV/bin/python" -m pip show aws-sam-cli 2>/dev/null \
        | grep -qx "Version: ${SAM_CLI_VERSION}"; then
    echo "sam ${SAM_CLI_VERSION} already installed in ${VENV}"
    exit 0
fi

"$PYTHON" -m venv "$VENV"
"$VENV/bin/python" -m pip install --quiet --upgrade pip
"$VENV/bin/python" -m pip install --quiet "aws-sam-cli==${SAM_CLI_VERSION}"
# No telemetry from CI or test runs.
"$VENV/bin/sam" --version
