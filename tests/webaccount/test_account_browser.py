"""The account pages in a real headless Chromium: log in, change the password (the old one stops
working over IMAP, the new one works), import an mbox through the upload form and find the
messages over IMAP."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.browser import Browser, browser, screenshot  # noqa: F401
from tests.serverthread import PASSWORD
from tests.webadmin.setup import WebServer, start

ALICE = "alice@example.test"
NEW_PASSWORD = "a-new-password-2"

MBOX = (
    b"From sender@example.org Mon Nov 23 10:00:00 2026\n"
    b"From: Sender <sender@example.org>\nTo: alice@example.test\nSubject: imported one\n"
    b"Status: RO\n\nFirst imported message.\n>From the archive, escaped.\n\n"
    b"From sender@example.org Tue Nov 24 11:00:00 2026\n"
    b"From: Sender <sender@example.org>\nTo: alice@example.test\nSubject: imported two\n\n"
    b"Second imported message.\n"
)


@pytest.fixture
def web(tmp_path: Path) -> Iterator[WebServer]:
    server = start(tmp_path, admin=False)
    yield server
    server.srv.stop()


def test_account_pages(web: WebServer, browser: Browser, tmp_path: Path) -> None:  # noqa: F811
    page = browser.page
    t0 = time.monotonic()
    page.goto(f"{web.base}/account/")
    assert page.url.endswith("/account/login")
    page.fill("input[name=username]", ALICE)
    page.fill("input[name=password]", PASSWORD)
    page.click("button[type=submit]")
    page.wait_for_selector("h1:has-text('Account alice')")
    assert page.locator("td:has-text('alice@example.test')").count() >= 1
    screenshot(page, "account-overview")

    # Change the password: the old one stops working over IMAP at once, the new one works.
    page.fill("input[name=current]", PASSWORD)
    page.fill("input[name=new]", NEW_PASSWORD)
    page.fill("input[name=repeat]", NEW_PASSWORD)
    page.click("button:has-text('Change password')")
    page.wait_for_selector(".notice:has-text('Password changed')")
    assert web.imap_login_fails(ALICE, PASSWORD)
    with web.imap(ALICE, NEW_PASSWORD) as imap:
        assert imap.select("Inbox")[0] == "OK"
    # This browser's session went on (a new one); the login history shows the login.
    assert page.locator("td:has-text('webaccount')").count() >= 1

    # Import an mbox through the upload form.
    mbox = tmp_path / "old-mail.mbox"
    mbox.write_bytes(MBOX)
    page.click("nav >> text=Import and export")
    page.set_input_files("input[name=file]", str(mbox))
    page.fill("input[name=mailbox]", "Imported")
    page.click("button:has-text('Import')")
    page.wait_for_selector("text=finished: 2 messages imported")
    screenshot(page, "account-import")
    with web.imap(ALICE, NEW_PASSWORD) as imap:
        typ, data = imap.select("Imported")
        assert typ == "OK"
        assert data[0] == b"2"
        typ, fetched = imap.fetch("1:2", "(FLAGS BODY.PEEK[HEADER.FIELDS (SUBJECT)])")
        text = b" ".join(b" ".join(p) if isinstance(p, tuple) else (p or b"") for p in fetched)
        assert b"imported one" in text
        assert b"imported two" in text
        assert b"\\Seen" in text  # from the Status: RO header

    assert not browser.blocked
    assert not [c for c in browser.console if c.startswith(("pageerror", "error"))]
    print(f"account browser test took {time.monotonic() - t0:.1f}s")
