"""`/docs`: Swagger UI for `/openapi.json`, served entirely by the gateway (docs/serve.md "API docs").

FastAPI's default page loads Swagger UI from a public CDN without integrity checks, on the same origin as `/usage`,
whose tab keeps a client key in session storage. Here the page's script and style come from the `fastapi-offline`
package's copy of Swagger UI (a runtime dependency: 2.8 MB installed, read only when `/docs` is asked for), and a
Content Security Policy like `/usage`'s keeps the page from talking to any other host. The page is on by default
locally and off on Lambda (`API_DOCS=on|off`), where the Lambda layer does not carry the assets.
"""

from __future__ import annotations

import importlib.util
from functools import lru_cache
from pathlib import Path

from fastapi import APIRouter
from fastapi.responses import FileResponse, HTMLResponse

from kiro_core.errors import ErrorKind, GatewayError

router = APIRouter()

ASSETS = {"swagger-ui-bundle.js": "text/javascript", "swagger-ui.css": "text/css", "favicon.png": "image/png"}
DOCS_HEADERS = {
    "Content-Security-Policy": ("default-src 'none'; script-src 'self' 'unsafe-inline'; style-src 'self' "
                                "'unsafe-inline'; connect-src 'self'; img-src 'self' data:; base-uri 'none'; "
                                "form-action 'none'; frame-ancestors 'none'"),
    "Referrer-Policy": "no-referrer",
    "X-Content-Type-Options": "nosniff",
    "Cache-Control": "no-cache",
}
ASSET_HEADERS = {"X-Content-Type-Options": "nosniff", "Cache-Control": "public, max-age=86400"}


@lru_cache(maxsize=1)
def assets_dir() -> Path | None:
    """Where the installed `fastapi-offline` keeps Swagger UI's files (found without importing it), or None."""
    spec = importlib.util.find_spec("fastapi_offline")
    if spec is None or spec.origin is None:
        return None
    static = Path(spec.origin).parent / "static"
    return static if all((static / name).is_file() for name in ASSETS) else None


def _missing() -> GatewayError:
    return GatewayError(ErrorKind.NOT_FOUND, "API docs are not available: install `fastapi-offline` "
                        "(pip install fastapi-offline); /openapi.json describes the API meanwhile.")


PAGE = """<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>Kiro Gateway API</title>
<link rel="stylesheet" href="/docs/assets/swagger-ui.css">
<link rel="icon" href="/docs/assets/favicon.png">
</head>
<body>
<div id="swagger-ui"></div>
<script src="/docs/assets/swagger-ui-bundle.js"></script>
<script>
SwaggerUIBundle({url: "/openapi.json", dom_id: "#swagger-ui", layout: "BaseLayout", deepLinking: true,
                 validatorUrl: null,
                 presets: [SwaggerUIBundle.presets.apis, SwaggerUIBundle.SwaggerUIStandalonePreset]});
</script>
</body>
</html>
"""  # validatorUrl null: the public validator would be a third party


@router.get("/docs", include_in_schema=False, response_model=None)
async def docs_page() -> HTMLResponse:
    if assets_dir() is None:
        raise _missing()
    return HTMLResponse(PAGE, headers=DOCS_HEADERS)


def _asset_route(name: str) -> None:
    """One fixed route per asset: a path parameter would make FastAPI load pydantic.v1 at start-up (~16 ms)."""

    async def docs_asset() -> FileResponse:
        folder = assets_dir()
        if folder is None:
            raise _missing()
        return FileResponse(folder / name, media_type=ASSETS[name], headers=ASSET_HEADERS)

    router.add_api_route(f"/docs/assets/{name}", docs_asset, methods=["GET"], include_in_schema=False,
                         response_model=None, name=f"docs_asset_{name}")


for _name in ASSETS:
    _asset_route(_name)
