"""The `/usage` page in a real headless browser (Debian's Chromium driven by Playwright; `make browser` installs
both): it loads without a key, asks for one, refuses a wrong one, draws the fake's numbers, and talks to no host
but the gateway. A screenshot of each theme is saved under tests/artifacts/ (gitignored)."""

from __future__ import annotations

import json
import os
import shutil
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlsplit

import anthropic
import httpx
import pytest

from tests.integration.conftest import API_KEY, gateway_env
from tests.support.fake_kiro import FakeKiro, text_stream
from tests.support.gateway_process import GatewayProcess

CHROMIUM = os.environ.get("CHROMIUM_PATH", "/usr/bin/chromium")
ARTIFACTS = Path(__file__).resolve().parents[1] / "artifacts"
SPENT = {"claude-sonnet-4-5": (0.25, 0.125), "claude-haiku-4-5": (0.5,)}


def _browser_ready() -> None:
    try:
        import playwright  # noqa: F401
    except ImportError:
        pytest.fail("Playwright for Python is not installed: run `make browser` (pip install playwright)")
    if not shutil.which(CHROMIUM) and not Path(CHROMIUM).exists():
        pytest.fail(f"Chromium not found at {CHROMIUM}: run `make browser` (apt-get install -y chromium)")


@pytest.fixture(scope="module")
def spent_gateway(tmp_path_factory: pytest.TempPathFactory) -> Iterator[GatewayProcess]:
    home = tmp_path_factory.mktemp("page-home")
    with FakeKiro() as fake, GatewayProcess(gateway_env(fake, home), home) as gateway:
        client = anthropic.Anthropic(base_url=gateway.url, api_key=API_KEY, max_retries=0)
        for model, amounts in SPENT.items():
            for credits in amounts:
                fake.enqueue_chat(text_stream("ok", credits=credits))
                client.messages.create(model=model, max_tokens=20, messages=[{"role": "user", "content": "hi"}])
        fake.fail_next("chat", 400, {"message": "Improperly formed request.", "reason": None})
        with pytest.raises(anthropic.BadRequestError):
            client.messages.create(model="claude-sonnet-4-5", max_tokens=20,
                                   messages=[{"role": "user", "content": "hi"}])
        yield gateway


@pytest.fixture(scope="module")
def browser() -> Iterator[object]:
    _browser_ready()
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        instance = playwright.chromium.launch(executable_path=CHROMIUM, headless=True,
                                              args=["--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage"])
        yield instance
        instance.close()


def test_the_page_loads_without_a_key_and_holds_no_data(spent_gateway: GatewayProcess) -> None:
    page = httpx.get(f"{spent_gateway.url}/usage", timeout=10)
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
    assert "connect-src 'self'" in page.headers["content-security-policy"]
    assert "KIRO PRO" not in page.text and API_KEY not in page.text
    assert "http://" not in page.text.replace("http://www.w3.org/2000/svg", "")  # nothing fetched from elsewhere
    assert "https://" not in page.text


@pytest.mark.parametrize("theme", ["light", "dark"])
def test_the_page_shows_the_fake_numbers_refuses_a_wrong_key_and_calls_only_the_gateway(
        spent_gateway: GatewayProcess, browser: object, theme: str) -> None:
    gateway_host = urlsplit(spent_gateway.url).netloc
    context = browser.new_context(viewport={"width": 390, "height": 844}, color_scheme=theme)  # a phone
    page = context.new_page()
    hosts: list[str] = []
    key_headers: list[str] = []

    def on_request(request: object) -> None:
        hosts.append(urlsplit(request.url).netloc)
        if request.url.endswith("/v1/usage"):
            key_headers.append(request.headers.get("x-api-key", ""))

    page.on("request", on_request)
    page.goto(f"{spent_gateway.url}/usage")
    page.wait_for_selector("#key-form")
    assert page.is_hidden("#dashboard")

    page.fill("#key", "not-the-key")
    page.click("#key-form button[type=submit]")
    # A locator wait, not wait_for_function: the page's CSP (rightly) forbids the eval that polling a string needs.
    page.locator("#key-error", has_text="refused").wait_for()
    assert page.is_hidden("#dashboard")
    assert page.evaluate("sessionStorage.getItem('kiroGatewayKey')") is None

    page.fill("#key", API_KEY)
    page.click("#key-form button[type=submit]")
    page.wait_for_selector("#dashboard:not(.hidden)")
    page.wait_for_selector("#daily-chart svg rect.bar", state="attached")

    # Kiro's plan figures (the fake's GetUsageLimits) and the gateway's own counters.
    assert page.inner_text("#plan") == "KIRO PRO"
    assert page.inner_text("#credits-limit") == "1,000"
    assert page.inner_text("#credits-remaining") == "876.55"
    assert "Resets on" in page.inner_text("#reset") and "in 12 days" in page.inner_text("#reset")
    assert page.inner_text("#month-requests") == "4"
    assert page.inner_text("#today-errors") == "1"
    total = sum(sum(v) for v in SPENT.values())
    assert float(page.inner_text("#month-credits")) == pytest.approx(total)
    today_bar = page.locator("#daily-chart rect.bar").last
    assert float(today_bar.get_attribute("data-credits")) == pytest.approx(total)
    assert page.locator("#daily-chart rect.bar").count() == 31
    # The plan (1,000) is far off the running total's scale (under one credit): a labelled figure, not a line.
    assert page.locator("#daily-chart line.limit").count() == 0
    assert float(page.get_attribute("#daily-chart text.limit-figure", "data-limit")) == 1000
    assert "plan limit 1,000" in page.text_content("#daily-chart text.limit-figure")
    models = {bar.get_attribute("data-name"): float(bar.get_attribute("data-credits"))
              for bar in page.locator("#models-chart rect.bar").all()}
    assert models == {"claude-sonnet-4.5": pytest.approx(0.375), "claude-haiku-4.5": pytest.approx(0.5)}
    keys = {bar.get_attribute("data-name"): float(bar.get_attribute("data-credits"))
            for bar in page.locator("#keys-chart rect.bar").all()}
    assert keys == {"default": pytest.approx(total)}
    assert page.inner_text("#ttft-p50").startswith("≤ ")
    assert page.locator("#errors tbody tr[data-kind='INVALID_REQUEST']").count() == 1

    # The key lives in this tab's session storage only, and went out as a header, never in a URL or cookie.
    assert page.evaluate("sessionStorage.getItem('kiroGatewayKey')") == API_KEY
    assert page.evaluate("localStorage.length") == 0
    assert context.cookies() == []
    assert key_headers[-1] == API_KEY
    assert all(API_KEY not in url for url in page.evaluate("performance.getEntries().map(e => e.name)"))
    background = page.evaluate("getComputedStyle(document.body).backgroundColor")
    assert (background == "rgb(18, 21, 28)") == (theme == "dark")

    ARTIFACTS.mkdir(exist_ok=True)
    shot = ARTIFACTS / f"usage-page-{theme}.png"
    page.screenshot(path=str(shot), full_page=True)
    print(f"screenshot: {shot}")
    assert shot.stat().st_size > 10_000

    assert hosts and set(hosts) == {gateway_host}, hosts
    context.close()


def test_a_page_reload_keeps_the_key_for_the_tab_and_forget_clears_it(spent_gateway: GatewayProcess,
                                                                       browser: object) -> None:
    context = browser.new_context()
    page = context.new_page()
    page.goto(f"{spent_gateway.url}/usage")
    page.fill("#key", API_KEY)
    page.click("#key-form button[type=submit]")
    page.wait_for_selector("#dashboard:not(.hidden)")
    page.reload()
    page.wait_for_selector("#dashboard:not(.hidden)")
    page.click("#forget")
    assert page.is_visible("#key-form")
    assert page.evaluate("sessionStorage.length") == 0
    fresh = context.new_page()  # another tab starts without the key
    fresh.goto(f"{spent_gateway.url}/usage")
    fresh.wait_for_selector("#key-form")
    assert fresh.is_hidden("#dashboard")
    assert json.loads(fresh.evaluate("JSON.stringify(Object.keys(sessionStorage))")) == []
    context.close()
