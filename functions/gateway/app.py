"""The FastAPI application: routes, client authentication, and every error in the client's own shape."""

from __future__ import annotations

from gateway.startup_gc import imports_without_gc

with imports_without_gc():  # ~35 ms less CPU at start (gateway/startup_gc.py)
    import logging
    import os
    from collections.abc import AsyncIterator
    from contextlib import asynccontextmanager
    from datetime import UTC, datetime

    from fastapi import Depends, FastAPI, Request
    from fastapi.exceptions import RequestValidationError
    from fastapi.middleware.cors import CORSMiddleware
    from fastapi.responses import JSONResponse
    from starlette.exceptions import HTTPException as StarletteHTTPException

    from gateway.client_keys.gate import ClientGate, SlotReleaseMiddleware
    from gateway.edge import openapi_bodies
    from gateway.edge.deps import runtime_of
    from gateway.edge.error_guard import ErrorGuardMiddleware
    from gateway.edge.http_io import error_response
    from gateway.edge.request_log import RequestLogMiddleware
    from gateway.logging_setup import SCRUBBER
    from gateway.routes import anthropic as anthropic_routes
    from gateway.routes import key_info as key_info_routes
    from gateway.routes import models as model_routes
    from gateway.routes import openai as openai_routes
    from gateway.routes import responses as responses_routes
    from gateway.routes import usage as usage_routes
    from gateway.runtime_holder import RuntimeHolder
    from gateway.settings import Settings
    from gateway.snapstart import install as install_snapstart_hooks
    from kiro_core.error_text import field_path
    from kiro_core.errors import ErrorKind, GatewayError

log = logging.getLogger(__name__)

VERSION = "0.1.0"
EXPOSED_HEADERS = ["x-request-id", "retry-after", "x-ratelimit-limit-requests", "x-ratelimit-remaining-requests",
                   "x-ratelimit-reset-requests", "anthropic-ratelimit-requests-limit",
                   "anthropic-ratelimit-requests-remaining", "anthropic-ratelimit-requests-reset"]


async def require_api_key(request: Request) -> None:
    """The client key check, its limits and the failed-authentication throttle (gateway.client_keys.gate)."""
    runtime = await runtime_of(request)
    gate: ClientGate = request.app.state.client_gate
    gate.use_store(runtime.store)
    await gate.admit(request, runtime.proxy_api_key)


def api_docs_enabled(settings: Settings) -> bool:
    """API_DOCS, else on everywhere but Lambda (whose layer does not carry Swagger UI's files)."""
    if settings.server.api_docs:
        return settings.server.api_docs == "on"
    return not os.environ.get("AWS_LAMBDA_FUNCTION_NAME")


def create_app(settings: Settings | None = None) -> FastAPI:
    """Build the app; its upstream resources are created on the first request (works with lifespan off)."""
    settings = settings or Settings.from_env()
    logging.getLogger().setLevel(settings.logging.log_level.upper() if settings.logging.log_level.upper() in
                                 logging.getLevelNamesMapping() else "INFO")  # LOG_LEVEL under any launcher
    SCRUBBER.add(settings.server.proxy_api_key, settings.credentials.refresh_token)
    holder = RuntimeHolder(settings)

    @asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        yield
        await holder.aclose()

    # /docs is the gateway's own page (gateway.routes.api_docs): FastAPI's loads Swagger UI from a public CDN
    app = FastAPI(title="Kiro Gateway", version=VERSION, lifespan=lifespan, docs_url=None, redoc_url=None)
    app.state.runtime = holder
    app.state.settings = settings
    app.state.client_gate = ClientGate.from_settings(settings)

    protected = [Depends(require_api_key)]
    app.include_router(openai_routes.router, dependencies=protected)
    app.include_router(model_routes.router, dependencies=protected)
    app.include_router(anthropic_routes.router, dependencies=protected)
    app.include_router(responses_routes.router, dependencies=protected)
    app.include_router(usage_routes.router, dependencies=protected)
    app.include_router(usage_routes.page_router)
    app.include_router(key_info_routes.router, dependencies=protected)
    if api_docs_enabled(settings):
        from gateway.routes import api_docs  # only where /docs is served (not on Lambda by default)

        app.include_router(api_docs.router)

    # HEAD too: Claude Code probes the base URL with `HEAD /` before its first request.
    # response_model=None here and on every route: an inferred response model makes FastAPI build a pydantic field,
    # and its first field imports pydantic.v1 (~10 ms and ~1.7 MB at start) only to check it is not a v1 model.
    @app.get("/", response_model=None)
    @app.head("/", include_in_schema=False, response_model=None)
    async def root() -> dict[str, str]:
        return {"status": "ok", "message": "Kiro Gateway is running", "version": VERSION}

    @app.get("/health", response_model=None)
    @app.head("/health", include_in_schema=False, response_model=None)
    async def health() -> dict[str, str]:
        return {"status": "healthy", "timestamp": datetime.now(UTC).isoformat(), "version": VERSION}

    # Only on GatewaySnapStartFunction: POST hooks the Lambda Web Adapter calls around the snapshot.
    app.state.snapstart = install_snapstart_hooks(app, holder)

    @app.exception_handler(GatewayError)
    async def gateway_error(request: Request, error: GatewayError) -> JSONResponse:
        return error_response(request.url.path, error)

    @app.exception_handler(RequestValidationError)
    async def validation_error(request: Request, error: RequestValidationError) -> JSONResponse:
        problems = "; ".join(f"{field_path(e.get('loc', ()))}: {e.get('msg')}" for e in error.errors()[:8])
        return error_response(request.url.path, GatewayError(ErrorKind.INVALID_REQUEST, f"Invalid request: {problems}"))

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, error: StarletteHTTPException) -> JSONResponse:
        kinds = {404: ErrorKind.NOT_FOUND, 401: ErrorKind.AUTHENTICATION}
        kind = kinds.get(error.status_code, ErrorKind.INVALID_REQUEST)
        message = f"{request.method} {request.url.path}: {error.detail}"
        return error_response(request.url.path, GatewayError(kind, message, status=error.status_code))

    openapi_bodies.install(app)
    app.add_middleware(ErrorGuardMiddleware)  # innermost: unexpected errors and hang-ups end cleanly
    app.add_middleware(SlotReleaseMiddleware)  # a client key's concurrency slot outlives the whole response
    app.add_middleware(CORSMiddleware, allow_origins=["*"], allow_methods=["*"], allow_headers=["*"],
                       expose_headers=EXPOSED_HEADERS)  # browser clients may read the rate-limit headers too
    logs = settings.logging
    app.add_middleware(RequestLogMiddleware, debug_mode=logs.debug_mode, debug_dir=logs.debug_dir)
    return app
