"""`kiro-gateway serve`: run the gateway on this machine (uvicorn), with the settings and credentials it finds."""

from __future__ import annotations

import argparse
import secrets
import sys
from typing import Any

import uvicorn

from gateway.app import create_app
from gateway.cli.serve_banner import banner
from gateway.edge.bounded_http import ServeLimits, bounded_protocol
from gateway.logging_setup import configure_logging
from gateway.settings import ConfigError, Settings


def register(subparsers: Any) -> None:
    serve_parser = subparsers.add_parser("serve", help="run the gateway locally")
    serve_parser.add_argument("--host", help="address to bind (default SERVER_HOST or 127.0.0.1)")
    serve_parser.add_argument("--port", type=int, help="port (default SERVER_PORT or 8000)")
    serve_parser.set_defaults(handler=serve)


def serve(args: argparse.Namespace) -> int:
    try:
        settings = Settings.from_env()
    except ConfigError as error:
        print(f"kiro-gateway: configuration error: {error}", file=sys.stderr)
        return 2
    host = args.host or settings.server.server_host
    port = args.port or settings.server.server_port
    generated_key = not settings.server.proxy_api_key and not settings.aws.kiro_secret_id  # the secret may hold the key
    if generated_key:
        settings = settings.replace(proxy_api_key=secrets.token_urlsafe(24))
    settings = settings.replace(server_host=host, server_port=port)

    configure_logging(settings.logging.log_level, settings.logging.log_format)
    lines = banner(settings, f"http://{host}:{port}", settings.server.proxy_api_key if generated_key else None)
    print("\n".join(lines), file=sys.stderr, flush=True)
    server = settings.server
    limits = ServeLimits(header_timeout=server.serve_header_timeout, body_timeout=server.serve_body_timeout,
                         max_header_bytes=server.serve_max_header_bytes, max_headers=server.serve_max_headers)
    # proxy_headers off: the peer address is the truth unless TRUSTED_PROXY_IPS says otherwise (gateway.client_keys)
    uvicorn.run(create_app(settings), host=host, port=port, log_config=None, access_log=False,
                timeout_graceful_shutdown=5, proxy_headers=False, http=bounded_protocol(limits),
                limit_concurrency=settings.server.serve_limit_concurrency,
                timeout_keep_alive=settings.server.serve_keep_alive_timeout)
    return 0
