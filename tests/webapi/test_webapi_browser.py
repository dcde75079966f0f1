"""The web API's form pages in a real headless Chromium: the method list links to a method's
page, its form posts the example request edited by the user, and the browser shows the JSON
answer; the page's CSP lets its style sheet and form through (no violations in the console)."""

from __future__ import annotations

import base64
import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.browser import Browser, browser, screenshot  # noqa: F401
from tests.serverthread import PASSWORD
from tests.webadmin.setup import WebServer, start

ALICE = "alice@example.test"


@pytest.fixture
def web(tmp_path: Path) -> Iterator[WebServer]:
    server = start(tmp_path, admin=False)
    yield server
    server.srv.stop()


def test_method_form_in_browser(web: WebServer, browser: Browser) -> None:  # noqa: F811
    assert web.srv.running is not None
    queue = web.srv.running.queue
    assert queue is not None
    page = browser.page
    token = base64.b64encode(f"{ALICE}:{PASSWORD}".encode()).decode()
    page.context.set_extra_http_headers({"Authorization": f"Basic {token}"})

    page.goto(f"{web.base}/webapi/")  # redirects to the method list
    assert page.url.endswith("/webapi/v0/")
    page.click("a:has-text('SuppressionAdd')")
    page.wait_for_selector("h1:has-text('SuppressionAdd')")
    example = json.loads(page.input_value("textarea[name=request]"))
    assert set(example) == {"EmailAddress", "Manual", "Reason"}
    # The style sheet applies (its hash is in the CSP): textareas span the page.
    width = page.eval_on_selector("textarea", "e => e.getBoundingClientRect().width")
    assert width > 500
    screenshot(page, "webapi-method-form")

    request = {"EmailAddress": "dave@remote.test", "Manual": True, "Reason": "from the form"}
    page.fill("textarea[name=request]", json.dumps(request))
    with page.expect_navigation():
        page.click("button:has-text('Call')")
    assert json.loads(page.inner_text("body")) == {}
    (sup,) = web.srv.call(queue.suppression_list("alice"))
    assert (sup.base_address, sup.reason, sup.manual) == ("dave@remote.test", "from the form", True)

    assert not browser.blocked
    assert not [c for c in browser.console if "Refused" in c or c.startswith("pageerror")]
