"""SnapStart hooks of the streaming function (GatewaySnapStartFunction in template.yaml, parameter EnableSnapStart).

Why not the Python runtime's own hooks: under the Lambda Web Adapter, /opt/bootstrap replaces the runtime's handler
process with run.sh (uvicorn), so the runtime client that would run `snapshot_restore_py` hooks never starts. The
adapter (v1.1.0 = layer 30 and later) bridges the lifecycle instead: with AWS_LWA_SNAPSTART_BEFORE_CHECKPOINT_PATH and
AWS_LWA_SNAPSTART_AFTER_RESTORE_PATH set, it sends an empty POST to those paths before the snapshot and after every
restore (then re-runs the readiness check before any traffic), fails the SnapStart phase on a non-2xx answer, and
answers 403 itself when a client asks for those paths through the Function URL.

What the hooks do:

* before the checkpoint: warm what is pure CPU work and carries no secret (the tokenizer's BPE table, boto3 and the
  AWS stores, which are imported lazily), so every restore starts with it done; then drop the runtime, so no socket,
  Kiro token or AWS credential is in the snapshot.
* after a restore: drop the runtime again and reseed `random`. Nothing is built before the snapshot (the runtime is
  made on the first request), but whatever is would be copied into every restored environment: a pool's dead
  sockets and TLS state, credentials of the snapshot's moment, the same random state everywhere.

The routes exist only when those variables are set (the template sets them only with SnapStart on): a local
`kiro-gateway serve` and the buffered function have none. They do not rely on the adapter alone to keep outsiders
away: a call is answered only when it comes from the loopback interface and carries no `x-amzn-request-context`
(the adapter adds that header to every request it forwards from the Function URL; its own lifecycle calls have
none); anything else gets 403. A stray call would be harmless anyway: the next request rebuilds what was dropped
(one Secrets Manager read), and a Lambda instance serves one request at a time.
"""

from __future__ import annotations

import logging
import os
import random
from collections.abc import Callable, Mapping

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse

from gateway.runtime_holder import RuntimeHolder

log = logging.getLogger(__name__)

BEFORE_CHECKPOINT_ENV = "AWS_LWA_SNAPSTART_BEFORE_CHECKPOINT_PATH"
AFTER_RESTORE_ENV = "AWS_LWA_SNAPSTART_AFTER_RESTORE_PATH"


def warm_caches() -> None:
    """Start-up work worth keeping in the snapshot: CPU only, no network, no secrets."""
    import boto3  # noqa: F401  (the AWS stores import it on the first request otherwise)

    # lazy: loaded into the snapshot only when SnapStart takes one
    import gateway.stores.dynamo_models
    import gateway.stores.secrets_manager  # noqa: F401
    from kiro_core.tokens import encoding

    encoding()  # reads and parses the shipped cl100k BPE file


class SnapStartHooks:
    """The two lifecycle hooks on a RuntimeHolder; counts calls so logs and tests can tell what happened."""

    def __init__(self, holder: RuntimeHolder, warm: Callable[[], None] = warm_caches) -> None:
        self._holder = holder
        self._warm = warm
        self.checkpoints = 0
        self.restores = 0

    async def before_checkpoint(self) -> None:
        try:
            self._warm()
        except Exception as error:  # a failed warm-up only costs time after restore; never fail the snapshot
            log.warning("snapstart: warm-up before the snapshot failed: %s: %s", type(error).__name__, error)
        await self._holder.reset()
        self.checkpoints += 1
        log.info("snapstart: ready for the snapshot (runtime dropped)")

    async def after_restore(self) -> None:
        await self._holder.reset()
        random.seed()  # from os.urandom: every restored copy gets its own sequence
        self.restores += 1
        log.info("snapstart: restored; HTTP client and credentials are rebuilt on the next request")


_FORBIDDEN = JSONResponse({"error": "forbidden"}, status_code=403)
_LOOPBACK = ("127.", "::1")


def from_inside(request: Request) -> bool:
    """A lifecycle call of the adapter: from the loopback interface, and not a forwarded Function URL request."""
    peer = request.client.host if request.client else ""
    return peer.startswith(_LOOPBACK) and "x-amzn-request-context" not in request.headers


def install(app: FastAPI, holder: RuntimeHolder, environ: Mapping[str, str] | None = None) -> SnapStartHooks | None:
    """Add the hook routes the adapter is configured to call (none when the variables are unset)."""
    env = os.environ if environ is None else environ
    before, after = env.get(BEFORE_CHECKPOINT_ENV, ""), env.get(AFTER_RESTORE_ENV, "")
    if not before and not after:
        return None
    hooks = SnapStartHooks(holder)

    async def before_checkpoint(request: Request) -> JSONResponse:
        if not from_inside(request):
            return _FORBIDDEN
        await hooks.before_checkpoint()
        return JSONResponse({"status": "ok", "hook": "before-checkpoint"})

    async def after_restore(request: Request) -> JSONResponse:
        if not from_inside(request):
            return _FORBIDDEN
        await hooks.after_restore()
        return JSONResponse({"status": "ok", "hook": "after-restore"})

    for path, endpoint in ((before, before_checkpoint), (after, after_restore)):
        if path:
            app.add_api_route(path, endpoint, methods=["POST"], include_in_schema=False)
    return hooks
