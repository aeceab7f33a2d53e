#!/bin/bash
# Entry point of GatewayFunction under the Lambda Web Adapter (Handler: run.sh, AWS_LAMBDA_EXEC_WRAPPER=/opt/bootstrap).
# The adapter forwards every invocation as HTTP to 127.0.0.1:$AWS_LWA_PORT and streams the answer back, so this only
# starts uvicorn there. The app builds its clients lazily on the first request, so start-up stays short.
# /opt/python is KiroCoreLayer (kiro_core + the third-party packages); the runtime's own path (boto3) is kept.
# logging.json sends every log record (uvicorn's too) through the gateway's JSON formatter and secret scrubber.
# --no-proxy-headers: the caller's address comes from the adapter's request context (gateway.client_keys).
# The keep-alive outlasts the adapter's idle connections, so it never reuses a connection uvicorn just closed.
set -euo pipefail
HERE="${LAMBDA_TASK_ROOT:-$(cd "$(dirname "$0")" && pwd)}"
export PYTHONPATH="${HERE}:/opt/python${PYTHONPATH:+:${PYTHONPATH}}"
exec python -m uvicorn --factory gateway.app:create_app \
    --host 127.0.0.1 --port "${AWS_LWA_PORT:-8000}" \
    --log-config "${HERE}/logging.json" --no-access-log --timeout-keep-alive 75 --no-proxy-headers
