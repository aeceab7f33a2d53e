"""`kiro-gateway`: run the gateway locally (`serve`), check the setup live (`doctor`), manage the deployed secret
(`secret push|show`), sign in without the IDE (`login --device`), manage several accounts (`accounts`), show
credits (`usage`) and manage the client keys (`keys create|list|revoke|set-limits`)."""

from __future__ import annotations

import argparse
import logging
import secrets
import sys
from dataclasses import replace

from gateway.settings import ConfigError, Settings

log = logging.getLogger("gateway.cli")


def package_version() -> str:
    """The installed distribution's version (the package metadata), or the source tree's when not installed."""
    from importlib.metadata import PackageNotFoundError, version  # lazily: only --version reads the metadata

    try:
        return version("kiro-serverless-gateway")
    except PackageNotFoundError:
        from gateway.app import VERSION  # lazily: a source checkout that was never installed

        return VERSION


class VersionAction(argparse.Action):
    """`-V`/`--version`: print `kiro-gateway <version>` and exit 0 (the metadata is read only when asked)."""

    def __init__(self, option_strings: list[str], dest: str, **kwargs: object) -> None:
        super().__init__(option_strings, dest, nargs=0, help="print the version and exit")

    def __call__(self, parser: argparse.ArgumentParser, *_args: object) -> None:
        print(f"{parser.prog} {package_version()}")
        parser.exit(0)


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

    from gateway.logging_setup import configure_logging

    configure_logging(settings.log_level, settings.log_format)
    import uvicorn

    from gateway.app import create_app
    from gateway.edge.bounded_http import ServeLimits, bounded_protocol
    from gateway.serve_banner import banner

    lines = banner(settings, f"http://{host}:{port}", settings.proxy_api_key if generated_key else None)
    print("\n".join(lines), file=sys.stderr, flush=True)
    limits = ServeLimits(header_timeout=settings.serve_header_timeout, body_timeout=settings.serve_body_timeout,
                         max_header_bytes=settings.serve_max_header_bytes, max_headers=settings.serve_max_headers)
    # proxy_headers off: the peer address is the truth unless TRUSTED_PROXY_IPS says otherwise (gateway.client_keys)
    uvicorn.run(create_app(settings), host=host, port=port, log_config=None, access_log=False,
                timeout_graceful_shutdown=5, proxy_headers=False, http=bounded_protocol(limits),
                limit_concurrency=settings.serve_limit_concurrency,
                timeout_keep_alive=settings.serve_keep_alive_timeout)
    return 0


def doctor(args: argparse.Namespace) -> int:
    """`kiro-gateway doctor` (imported on use: `serve` never loads it)."""
    from gateway.doctor import run

    return run(args)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="kiro-gateway", description="OpenAI/Anthropic API gateway for Kiro.")
    parser.add_argument("-V", "--version", action=VersionAction)
    commands = parser.add_subparsers(dest="command", required=True)
    serve_parser = commands.add_parser("serve", help="run the gateway locally")
    serve_parser.add_argument("--host", help="address to bind (default SERVER_HOST or 127.0.0.1)")
    serve_parser.add_argument("--port", type=int, help="port (default SERVER_PORT or 8000)")
    serve_parser.set_defaults(handler=serve)
    doctor_parser = commands.add_parser("doctor", help="check credentials, catalogue and a few live requests "
                                        "(asks first: costs a few credits)")
    doctor_parser.add_argument("--models", help="comma-separated model ids as /v1/models lists them "
                               "(default: one model per family in the catalogue)")
    doctor_parser.add_argument("--yes", action="store_true", help="do not ask before sending the paid requests")
    doctor_parser.add_argument("--json", action="store_true", help="print one JSON object instead of the table")
    doctor_parser.set_defaults(handler=doctor)
    from gateway import cli_accounts, cli_keys, cli_login, cli_secret, cli_usage

    cli_secret.register(commands)
    cli_login.register(commands)
    cli_accounts.register(commands)
    cli_usage.register(commands)
    cli_keys.register(commands)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    return int(args.handler(args) or 0)


if __name__ == "__main__":
    sys.exit(main())
