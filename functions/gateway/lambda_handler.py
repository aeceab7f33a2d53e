"""Buffered Lambda entry point (BufferedFunction in template.yaml): API Gateway REST / Function URL events via Mangum.

Mangum buffers: a streamed (SSE) answer reaches the client all at once, and API Gateway cuts requests at 29 s. The
streaming deployment is GatewayFunction (Lambda Web Adapter + uvicorn, run.sh); this one serves `sam local start-api`
and tests. The app is built at import; its clients, credentials and model cache are created on the first request,
which is why `lifespan="off"` (the default "auto" would run start-up and shut-down on every invocation).
"""

from __future__ import annotations

from mangum import Mangum

from gateway.app import create_app
from gateway.logging_setup import configure_logging
from gateway.settings import Settings

settings = Settings.from_env()
# JSON lines through the secret scrubber, as under uvicorn
configure_logging(settings.logging.log_level, settings.logging.log_format)
app = create_app(settings)
handler = Mangum(app, lifespan="off")
