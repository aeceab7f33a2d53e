"""`/docs` in the real headless browser the usage-page tests use (Playwright + Debian's Chromium): Swagger UI loads
from the gateway itself, draws the API, and the browser asks no other host for anything (issue 20)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlsplit

import httpx
import pytest

from tests.integration.conftest import API_KEY
from tests.integration.test_usage_page import ARTIFACTS, CHROMIUM, _browser_ready
from tests.support.gateway_process import GatewayProcess


@pytest.fixture(scope="module")
def docs_gateway(tmp_path_factory: pytest.TempPathFactory) -> Iterator[GatewayProcess]:
    home = tmp_path_factory.mktemp("docs-home")
    with GatewayProcess({"PROXY_API_KEY": API_KEY, "HOME": str(home)}, home) as gateway:
        yield gateway


def test_the_docs_page_names_only_its_own_assets_under_a_strict_policy(docs_gateway: GatewayProcess) -> None:
    page = httpx.get(f"{docs_gateway.url}/docs", timeout=10)
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
    policy = page.headers["content-security-policy"]
    assert "default-src 'none'" in policy and "connect-src 'self'" in policy and "script-src 'self'" in policy
    assert "http://" not in page.text and "https://" not in page.text  # nothing fetched from elsewhere
    for asset, kind in (("swagger-ui-bundle.js", "javascript"), ("swagger-ui.css", "text/css")):
        answer = httpx.get(f"{docs_gateway.url}/docs/assets/{asset}", timeout=10)
        assert answer.status_code == 200 and kind in answer.headers["content-type"] and len(answer.content) > 10_000
    assert httpx.get(f"{docs_gateway.url}/docs/assets/..%2Fcore.py", timeout=10).status_code == 404


def test_the_docs_page_loads_in_a_browser_with_no_request_to_another_host(docs_gateway: GatewayProcess) -> None:
    _browser_ready()
    from playwright.sync_api import sync_playwright

    gateway_host = urlsplit(docs_gateway.url).netloc
    hosts: list[str] = []
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, headless=True,
                                             args=["--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage"])
        try:
            page = browser.new_context(viewport={"width": 1200, "height": 900}).new_page()
            page.on("request", lambda request: hosts.append(urlsplit(request.url).netloc))
            console_errors: list[str] = []
            page.on("console", lambda message: console_errors.append(message.text)
                    if message.type == "error" else None)
            page.goto(f"{docs_gateway.url}/docs")
            page.locator(".swagger-ui .info .title", has_text="Kiro Gateway").wait_for()
            page.locator(".opblock-summary-path", has_text="/v1/chat/completions").first.wait_for()
            ARTIFACTS.mkdir(exist_ok=True)
            shot = Path(ARTIFACTS) / "api-docs.png"
            page.screenshot(path=str(shot))
        finally:
            browser.close()
    assert hosts and set(hosts) == {gateway_host}, hosts
    assert not [error for error in console_errors if "Content Security Policy" in error], console_errors
    assert shot.stat().st_size > 10_000
