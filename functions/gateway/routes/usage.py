"""Credits and usage: `GET /v1/usage` (client key required) and the `/usage` page.

The page is one self-contained HTML file shipped in the package (no build step, no CDN): it loads without a key,
asks for it, keeps it in the tab's session storage and sends it as a header on its data calls. Its Content Security
Policy lets it talk to this gateway only.
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse

from gateway.client_keys import DEFAULT_KEY_NAME
from gateway.client_keys.gate import authenticated_key_name
from gateway.edge.deps import runtime_of

router = APIRouter()  # behind the client key
page_router = APIRouter()  # open: the page holds no data

PAGE = Path(__file__).resolve().parent.parent / "static" / "usage.html"
PAGE_HEADERS = {
    "Content-Security-Policy": ("default-src 'none'; script-src 'unsafe-inline'; style-src 'unsafe-inline'; "
                                "connect-src 'self'; img-src 'self' data:; base-uri 'none'; form-action 'none'; "
                                "frame-ancestors 'none'"),
    "Referrer-Policy": "no-referrer",
    "X-Content-Type-Options": "nosniff",
    "Cache-Control": "no-cache",
}


@lru_cache(maxsize=1)
def _page() -> str:
    return PAGE.read_text(encoding="utf-8")


@router.get("/v1/usage", response_model=None)  # no inferred model: keeps pydantic.v1 out of start-up
async def usage(request: Request) -> dict[str, Any]:
    """Kiro's plan, credits and reset date (GetUsageLimits, cached) and the gateway's own counters; a named client
    key sees only its own figures, the owner's key (`PROXY_API_KEY`, "default") everything."""
    name = authenticated_key_name(request)
    own = name if name is not None and name != DEFAULT_KEY_NAME else None
    return await (await runtime_of(request)).usage.report(own)


@page_router.get("/usage", response_class=HTMLResponse, include_in_schema=False, response_model=None)
async def usage_page() -> HTMLResponse:
    return HTMLResponse(_page(), headers=PAGE_HEADERS)
