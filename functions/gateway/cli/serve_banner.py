"""What `kiro-gateway serve` says before its first request: one line per fact, each warning once, short, with the
command that fixes it. Never a secret, except the generated client key, shown once because it is the only way to
learn it."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

from gateway.settings import Settings


def credentials_line(settings: Settings) -> tuple[str, bool]:
    """Which Kiro credentials `serve` will use (their kind and where from, never a token), and whether any."""
    import httpx  # lazy: only the banner and the runtime need it

    from gateway.accounts.setup import build_accounts, told_no_credentials

    async def summary() -> tuple[str, bool]:
        async with httpx.AsyncClient() as http:
            built = await build_accounts(settings, http, warn=False)
        if built.pool is None:
            told_no_credentials()  # this banner said it: the first request's build does not say it again
            return ("Kiro credentials: none found. Fix: `kiro-gateway login --device`, or set KIRO_API_KEY, "
                    "KIRO_CREDS_FILE or REFRESH_TOKEN (`kiro-gateway doctor` explains)", False)
        if built.pool.single:
            account = built.pool.first()
            if account.config.kind == "api_key":
                return f"Kiro credentials: Kiro API key from {account.source}", True
            creds = await account.store.load() if account.store is not None else None
            kind = "AWS SSO OIDC" if creds is not None and creds.auth_type == "aws_sso_oidc" else "Kiro desktop"
            return f"Kiro credentials: {kind} refresh token from {account.source}", True
        return (f"Kiro credentials: {len(built.pool.accounts)} accounts, {settings.accounts.account_selection}: "
                f"{built.pool.describe()}"), True

    return asyncio.run(summary())


def _named_keys(path: Path | None) -> int:
    """How many named client keys the local keys file holds (0 when there is none or it cannot be read)."""
    if path is None or not path.is_file():
        return 0
    try:
        document = json.loads(path.read_text(encoding="utf-8"))
        return len(document.get("keys") or []) if isinstance(document, dict) else 0
    except (OSError, ValueError):
        return 0


def client_key_line(settings: Settings, generated: str | None) -> str:
    """Where the accepted client keys come from; the generated key itself, once."""
    named = _named_keys(settings.client_keys_path)
    also = f"; {named} named key(s) from {settings.client_keys_path}" if named else ""
    if generated:
        return (f"Client key: none set, so this run accepts a generated key (keep one: set PROXY_API_KEY or run "
                f"`kiro-gateway keys create`){also}; generated key: {generated}")
    if settings.aws.kiro_secret_id:
        return f"Client keys: from the secret {settings.aws.kiro_secret_id} (proxyApiKey and clientKeys)"
    return f"Client key: PROXY_API_KEY{also}" if settings.server.proxy_api_key else f"Client keys: {named} named{also}"


def catalogue_line(settings: Settings, has_credentials: bool) -> str:
    if not has_credentials:
        return "Models: the built-in list (no credentials to ask Kiro for its catalogue)"
    return (f"Models: Kiro's catalogue (ListAvailableModels), fetched on first use and kept "
            f"{settings.models.model_cache_ttl} s; the built-in list when it cannot be fetched")


def banner(settings: Settings, url: str, generated: str | None) -> list[str]:
    credentials, has_credentials = credentials_line(settings)
    docs = f", docs: {url}/docs" if settings.server.api_docs != "off" else ""
    return [
        f"Kiro Gateway listening on {url}  (OpenAI: {url}/v1, Anthropic: {url}, usage: {url}/usage{docs})",
        credentials,
        client_key_line(settings, generated),
        catalogue_line(settings, has_credentials),
    ]
