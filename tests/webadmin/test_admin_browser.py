"""The admin pages in a real headless Chromium: log in, add an account that can then log in over
IMAP at once, add an alias, add a domain and view its DNS records, hold a queued message."""

from __future__ import annotations

import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from mox.queue.queue import QueuedRecipient
from tests.browser import Browser, browser, screenshot  # noqa: F401
from tests.webadmin.setup import ADMIN_PASSWORD, WebServer, start


@pytest.fixture
def web(tmp_path: Path) -> Iterator[WebServer]:
    server = start(tmp_path)
    yield server
    server.srv.stop()


def test_admin_pages(web: WebServer, browser: Browser) -> None:  # noqa: F811
    page = browser.page
    page.on("dialog", lambda dialog: dialog.accept())
    t0 = time.monotonic()

    page.goto(f"{web.base}/admin/")
    assert page.url.endswith("/admin/login")
    page.fill("input[name=password]", ADMIN_PASSWORD)
    page.click("button[type=submit]")
    page.wait_for_selector("h1:has-text('Admin')")
    assert page.locator("svg.chart g").count() == 30  # one bar group per day
    screenshot(page, "admin-overview")

    # A new account, which can log in over IMAP right away (the config was reloaded).
    page.click("nav >> text=Accounts")
    add = "form[action='/admin/accounts/add']"
    page.fill(f"{add} input[name=name]", "carol")
    page.fill(f"{add} input[name=address]", "carol@example.test")
    page.fill(f"{add} input[name=password]", "carol-secret-1")
    page.click("button:has-text('Add account')")
    page.wait_for_selector(".notice:has-text('Account carol added')")
    screenshot(page, "admin-accounts")
    t_added = time.monotonic()
    with web.imap("carol@example.test", "carol-secret-1") as imap:
        typ, _ = imap.select("Inbox")
        assert typ == "OK"
    print(f"new account logged in over IMAP {time.monotonic() - t_added:.2f}s after adding")
    assert "carol" in web.config.read_text()

    # An alias of two accounts.
    page.goto(f"{web.base}/admin/domains/example.test")
    page.fill("form[action='/admin/aliases/add'] input[name=alias]", "team")
    page.fill("input[name=members]", "alice@example.test, carol@example.test")
    page.click("button:has-text('Add alias')")
    page.wait_for_selector(".notice:has-text('Alias team@example.test added')")
    assert page.locator("td:has-text('team@example.test')").count() == 1
    screenshot(page, "admin-domain-aliases")

    # A new domain with DKIM keys, and the DNS records it needs.
    page.click("nav >> text=Domains")
    page.fill("form[action='/admin/domains/add'] input[name=domain]", "new.test")
    page.click("button:has-text('Add domain')")
    page.wait_for_selector(".notice:has-text('Domain new.test added')")
    page.goto(f"{web.base}/admin/domains/new.test/dns")
    zone = page.inner_text("pre.zone")
    assert "new.test." in zone
    assert " MX 10 mail.example.test." in zone
    assert "._domainkey.new.test." in zone
    assert "v=DKIM1" in zone
    screenshot(page, "admin-dns-records")

    # The queue: a message held for later, then held by the admin.
    assert web.srv.running is not None
    assert web.srv.running.queue is not None
    queue = web.srv.running.queue
    later = datetime.now(UTC) + timedelta(hours=2)
    data = b"From: alice@example.test\r\nTo: x@remote.test\r\nSubject: later\r\n\r\nhi\r\n"
    (qid,) = web.srv.call(
        queue.add(
            account="alice",
            mail_from="alice@example.test",
            recipients=[QueuedRecipient("x@remote.test")],
            data=data,
            hold_until=later,
        )
    )
    page.click("nav >> text=Queue")
    page.wait_for_selector("td:has-text('x@remote.test')")
    page.click(f"form:has(input[name=id][value='{qid}']) button:has-text('Hold')")
    page.wait_for_selector(".notice:has-text('Hold: 1 message')")
    assert page.locator("td:text-is('held')").count() == 1
    screenshot(page, "admin-queue")
    page.click("nav >> text=Reports")
    page.wait_for_selector("text=No DMARC reports received.")

    assert not browser.blocked
    assert not [c for c in browser.console if c.startswith(("pageerror", "error"))]
    print(f"admin browser test took {time.monotonic() - t0:.1f}s")
