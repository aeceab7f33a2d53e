"""Secrets out of reach (issue 17, finding 8): `repr(Settings)` / `str(Settings)` hold none, and DEBUG_MODE dumps
(whole prompts, the profile ARN) are readable by their owner only."""

from __future__ import annotations

import asyncio
import os
import stat
from pathlib import Path

import httpx

from gateway.edge.request_log import RequestLogMiddleware
from gateway.settings import Settings


def test_settings_repr_and_str_hold_no_secret() -> None:
    settings = Settings.from_env({"PROXY_API_KEY": "proxy-secret-0001", "REFRESH_TOKEN": "aorREFRESHsecret0002",
                                  "KIRO_API_KEY": "ksk_secret0003", "VPN_PROXY_URL": "http://user:pw-secret0004@h:1"},
                                 dotenv=None)
    for text in (repr(settings), str(settings), f"{settings}"):
        for secret in ("proxy-secret-0001", "aorREFRESHsecret0002", "ksk_secret0003", "pw-secret0004"):
            assert secret not in text
    assert settings.server.proxy_api_key == "proxy-secret-0001"  # still there to use
    assert "server_port=8000" in repr(settings)  # the rest is still shown


def test_debug_dumps_are_owner_only(tmp_path: Path) -> None:
    previous = os.umask(0o022)  # the usual umask, under which the dumps used to be 0755/0644
    dumps = tmp_path / "debug"

    async def app(scope, receive, send) -> None:
        await send({"type": "http.response.start", "status": 500, "headers": []})
        await send({"type": "http.response.body", "body": b"failed"})

    wrapped = RequestLogMiddleware(app, debug_mode="errors", debug_dir=str(dumps))

    async def scenario() -> None:
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=wrapped), base_url="http://t") as client:
            await client.post("/v1/chat/completions", content=b'{"messages":"a whole prompt"}')

    try:
        asyncio.run(scenario())
    finally:
        os.umask(previous)
    files = list(dumps.iterdir())
    assert files
    assert stat.S_IMODE(dumps.stat().st_mode) == 0o700
    assert all(stat.S_IMODE(path.stat().st_mode) == 0o600 for path in files)
