#!/usr/bin/env bash
# Installs the AWS SAM CLI into its own virtual environment (.venv-sam/ at the repository root).
#
# aws-sam-cli pins exact versions of boto3, click and friends, so it must not share an environment with the
# gateway. Idempotent: an existing .venv-sam with the pinned version is left alone (else ~25 s, ~340 MB).
# Usage: bash scripts/install-sam.sh          (then: .venv-sam/bin/sam --version)
# Env:   SAM_CLI_VERSION (default below), PYTHON (interpreter for the venv, default python3)
set -euo pipefail
cd "$(dirname "$0")/.."

SAM_CLI_VERSION="${SAM_CLI_VERSION:-1.170.0}"
PYTHON="${PYTHON:-python3}"
VENV=".venv-sam"

installed="$("$VENV/bin/python" -c 'import importlib.metadata as m; print(m.version("aws-sam-cli"))' \
    2>/dev/null || true)"
if [ -x "$VENV/bin/sam" ] && [ "$installed" = "$SAM_CLI_VERSION" ]; then
    echo "sam ${SAM_CLI_VERSION} already installed in ${VENV}"
    exit 0
fi

"$PYTHON" -m venv "$VENV"
printf '*\n' > "$VENV/.gitignore"   # never committed, whatever the repository's own .gitignore says
"$VENV/bin/python" -m pip install --quiet --upgrade pip
"$VENV/bin/python" -m pip install --quiet "aws-sam-cli==${SAM_CLI_VERSION}"
SAM_CLI_TELEMETRY=0 "$VENV/bin/sam" --version
