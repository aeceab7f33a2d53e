"""`kiro-gateway serve`: run the gateway on this machine (uvicorn), with the settings and credentials it finds."""

from __future__ import annotations

import argparse
import asyncio
import secrets
import sys
from dataclasses import replace
from typing import Any

import httpx
import uvicorn

from gateway.accounts.setup import build_accounts
from gateway.app import create_app
from gateway.logging_setup import configure_logging
from gateway.settings import ConfigError, Settings


def register(subparsers: Any) -> None:
    serve_parser = subparsers.add_parser("serve", help="run the gateway locally")
    serve_parser.add_argument("--host", help="address to bind (default SERVER_HOST or 127.0.0.1)")
    serve_parser.add_argument("--port", type=int, help="port (default SERVER_PORT or 8000)")
    serve_parser.set_defaults(handler=serve)


def _credentials_summary(settings: Settings) -> str:
    """Which accounts `serve` will use (never a token), or what is missing."""

    async def summary() -> str:
        async with httpx.AsyncClient() as http:
            built = await build_accounts(settings, http)
        if built.pool is None:
            return f"NONE FOUND. {built.problem}"
        if built.pool.single:
            account = built.pool.first()
            if account.config.kind == "api_key":
                return f"{account.source} (Kiro API key, no refresh)"
            creds = await account.store.load() if account.store is not None else None
            kind = "AWS SSO OIDC" if creds is not None and creds.auth_type == "aws_sso_oidc" else "Kiro desktop"
            return f"{account.source} ({kind} refresh)"
        return f"{len(built.pool.accounts)} accounts, {settings.account_selection}: {built.pool.describe()}"

    return asyncio.run(summary())


def serve(args: argparse.Namespace) -> int:
    try:
        settings = Settings.from_env()
    except ConfigError as error:
        print(f"kiro-gateway: configuration error: {error}", file=sys.stderr)
        return 2
    host = args.host or settings.server_host
    port = args.port or settings.server_port
    generated_key = not settings.proxy_api_key and not settings.kiro_secret_id  # the secret may hold the key
    if generated_key:
        settings = replace(settings, proxy_api_key=secrets.token_urlsafe(24))
    settings = replace(settings, server_host=host, server_port=port)

    configure_logging(settings.log_level)
    url = f"http://{host}:{port}"
    print(f"Kiro Gateway listening on {url}  (OpenAI: {url}/v1, Anthropic: {url})", file=sys.stderr)
    print(f"Kiro credentials: {_credentials_summary(settings)}", file=sys.stderr)
    if generated_key:
        print(f"PROXY_API_KEY is not set; this run accepts the generated key: {settings.proxy_api_key}",
              file=sys.stderr)
    sys.stderr.flush()
    # proxy_headers off: the peer address is the truth unless TRUSTED_PROXY_IPS says otherwise (gateway.client_keys)
    uvicorn.run(create_app(settings), host=host, port=port, log_config=None, access_log=False,
                timeout_graceful_shutdown=5, proxy_headers=False)
    return 0
