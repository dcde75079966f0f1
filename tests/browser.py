"""A real headless Chromium (Debian's /usr/bin/chromium) driven by Playwright for the web pages.

`browser_page(artifacts_name)` gives a Playwright page whose requests may only go to loopback:
every other request is aborted and recorded in `Browser.blocked`, so a test can assert that a
hostile message fetched nothing remote (and a test never reaches the internet). HTTPS errors are
ignored because test servers use per-test CAs (trustme) that Chromium does not know.
Screenshots go to `test-artifacts/screenshots/` (kept by CI as artefacts; gitignored).
"""

from __future__ import annotations

import ipaddress
import os
import re
import shutil
import urllib.parse
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from playwright.sync_api import Page, Request, Route, sync_playwright

__all__ = ["Browser", "browser", "screenshot"]

CHROMIUM = os.environ.get("MOX_TEST_CHROMIUM", "/usr/bin/chromium")
ARTIFACTS = Path(
    os.environ.get("MOX_TEST_ARTIFACTS", Path(__file__).parent.parent / "test-artifacts")
)
# As the machine notes say: without the background-networking flags Chromium keeps trying to
# reach Google's hosts; --no-sandbox because CI runs as root.
ARGS = [
    "--headless=new",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-dev-shm-usage",
]


def _loopback(url: str) -> bool:
    parsed = urllib.parse.urlsplit(url)
    if parsed.scheme in ("data", "blob", "about"):
        return True
    host = parsed.hostname or ""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


@dataclass
class Browser:
    page: Page
    blocked: list[str] = field(default_factory=list)  # URLs the page tried to fetch elsewhere
    console: list[str] = field(default_factory=list)  # console messages and page errors


def screenshot(page: Page, name: str) -> Path:
    """Save a full-page screenshot as a test artefact; returns its path."""
    path = ARTIFACTS / "screenshots" / (re.sub(r"[^A-Za-z0-9_.-]+", "_", name) + ".png")
    path.parent.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(path), full_page=True)
    return path


@pytest.fixture
def browser() -> Iterator[Browser]:
    if not shutil.which(CHROMIUM):
        pytest.fail(f"{CHROMIUM} missing: run `python3 scripts/system_deps.py --install`")
    with sync_playwright() as pw:
        chromium = pw.chromium.launch(executable_path=CHROMIUM, args=ARGS, headless=True)
        context = chromium.new_context(
            ignore_https_errors=True, viewport={"width": 1280, "height": 900}
        )
        context.set_default_timeout(15_000)
        page = context.new_page()
        result = Browser(page)

        def guard(route: Route, request: Request) -> None:
            if _loopback(request.url):
                route.continue_()
            else:
                result.blocked.append(request.url)
                route.abort()

        context.route("**/*", guard)
        page.on("console", lambda msg: result.console.append(f"{msg.type}: {msg.text}"))
        page.on("pageerror", lambda exc: result.console.append(f"pageerror: {exc}"))
        try:
            yield result
        finally:
            context.close()
            chromium.close()
