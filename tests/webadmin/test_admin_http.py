"""The admin pages over HTTP (httpx): sessions, CSRF, refused config edits, disabled admin,
dnscheck rendering, and `mox admin passwd`."""

from __future__ import annotations

import smtplib
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from mox import dmarcrpt, tlsrpt
from mox.auth.password import Credentials, verify_password
from mox.cli import app
from mox.reportdb import ReportDB
from tests.serverthread import PASSWORD
from tests.webadmin.setup import ADMIN_PASSWORD, WebServer, admin_login, start


@pytest.fixture
def web(tmp_path: Path) -> Iterator[WebServer]:
    server = start(tmp_path)
    yield server
    server.srv.stop()


def test_no_session_redirects_and_csrf_required(web: WebServer) -> None:
    with web.http() as client:
        for path in ("/admin/", "/admin/accounts", "/admin/queue"):
            resp = client.get(path)
            assert resp.status_code == 303
            assert resp.headers["location"] == "/admin/login"
        resp = client.post("/admin/accounts/add", data={"name": "x"})
        assert resp.status_code == 303  # no session: to the login page, nothing done
        assert client.post("/admin/login", data={"password": "wrong"}).status_code == 401
        csrf = admin_login(client)
        before = web.config.read_bytes()
        form = {"name": "dave", "address": "dave@example.test", "password": "dave-secret-1"}
        resp = client.post("/admin/accounts/add", data=form)
        assert resp.status_code == 403
        resp = client.post("/admin/accounts/add", data={**form, "csrf": "not-the-token"})
        assert resp.status_code == 403
        assert web.config.read_bytes() == before
        # With the token it works, and the page carries its own strict CSP.
        resp = client.post("/admin/accounts/add", data={**form, "csrf": csrf})
        assert resp.status_code == 303, resp.text
        page = client.get("/admin/accounts")
        assert "dave@example.test" in page.text
        csp = page.headers["content-security-policy"]
        assert "script-src 'self'" in csp
        assert "unsafe-inline" not in csp
        assert "frame-ancestors 'none'" in csp
        # A cross-site post is refused even with the token.
        resp = client.post(
            "/admin/accounts/remove",
            data={"name": "dave", "csrf": csrf},
            headers={"origin": "https://evil.example"},
        )
        assert resp.status_code == 403
        assert "dave" in web.config.read_text()


def test_invalid_edit_shows_problem_and_keeps_file(web: WebServer) -> None:
    with web.http() as client:
        csrf = admin_login(client)
        before = web.config.read_bytes()
        resp = client.post(
            "/admin/aliases/add",
            data={
                "domain": "example.test",
                "alias": "team",
                "members": "nobody@example.test",
                "csrf": csrf,
            },
        )
        assert resp.status_code == 400
        assert "is not an address of a local account" in resp.text
        assert web.config.read_bytes() == before
        # Removing a domain that still has accounts is refused, also without touching the file.
        resp = client.post("/admin/domains/remove", data={"domain": "other.test", "csrf": csrf})
        assert resp.status_code == 400
        assert "still used" in resp.text
        assert "bob" in resp.text
        # Removing the postmaster account: the config check refuses it.
        resp = client.post("/admin/accounts/remove", data={"name": "alice", "csrf": csrf})
        assert resp.status_code == 400
        assert "postmaster" in resp.text
        assert web.config.read_bytes() == before
        assert not list(web.config.parent.glob(".mox.toml.*"))  # no temporary files left


def test_dnscheck_renders_cleanly(web: WebServer) -> None:
    with web.http() as client:
        csrf = admin_login(client)
        t0 = time.monotonic()
        resp = client.post("/admin/domains/example.test/dnscheck", data={"csrf": csrf})
        took = time.monotonic() - t0
        print(f"dnscheck against the mock resolver took {took:.1f}s")
        assert resp.status_code == 200, resp.text
        assert "DNS check for example.test" in resp.text
        assert "status-error" in resp.text  # the mock world publishes none of our records
        assert "SPF" in resp.text
        assert "DKIM" in resp.text
        resp = client.post("/admin/domains/nosuch.test/dnscheck", data={"csrf": csrf})
        assert resp.status_code == 404


def test_admin_disabled_without_password_file(tmp_path: Path) -> None:
    web = start(tmp_path, admin=False)
    try:
        with web.http() as client:
            for path in ("/admin/", "/admin/login", "/admin/accounts"):
                resp = client.get(path)
                assert resp.status_code == 404
                assert "disabled" in resp.text
            resp = client.post("/admin/login", data={"password": ADMIN_PASSWORD})
            assert resp.status_code == 404
    finally:
        web.srv.stop()


def test_cli_admin_passwd(tmp_path: Path) -> None:
    config = tmp_path / "mox.toml"
    config.write_text(
        'hostname = "mail.example.test"\npostmaster = "alice"\nadmin_password_file = "adminpw"\n'
        '[listeners.internal]\nips = ["127.0.0.1"]\n[domains."example.test"]\n'
        '[accounts.alice]\ndomain = "example.test"\n'
        '[accounts.alice.destinations."alice@example.test"]\n'
    )
    result = CliRunner().invoke(
        app, ["admin", "passwd", "-c", str(config), "--password-stdin"], input="s3cret-admin\n"
    )
    assert result.exit_code == 0, result.output
    creds = Credentials.from_text((tmp_path / "adminpw").read_text())
    assert verify_password(creds, "s3cret-admin")
    assert (tmp_path / "adminpw").stat().st_mode & 0o077 == 0
    config.write_text(config.read_text().replace('admin_password_file = "adminpw"\n', ""))
    result = CliRunner().invoke(
        app, ["admin", "passwd", "-c", str(config), "--password-stdin"], input="x\n"
    )
    assert result.exit_code == 1
    assert "admin_password_file is not set" in result.output


def test_chart_counts_deliveries_and_junk(web: WebServer) -> None:
    for subject in ("one", "two", "three"):
        data = (
            "From: someone@example.org\r\nTo: alice@example.test\r\n"
            f"Subject: {subject}\r\n\r\nx\r\n"
        )
        with smtplib.SMTP("127.0.0.1", web.ports["smtp"], timeout=10) as s:
            s.sendmail("someone@example.org", ["alice@example.test"], data.encode())
    with web.imap("alice@example.test", PASSWORD) as imap:
        imap.select("Inbox")
        imap.store("1", "+FLAGS", "($Junk)")
    today = datetime.now(UTC).date().isoformat()
    with web.http() as client:
        admin_login(client)
        page = client.get("/admin/").text
    assert f'data-day="{today}" data-delivered="2" data-junk="1"' in page
    assert "delivered (2)" in page
    assert "junk (1)" in page


def test_reports_accounts_and_alias_members(web: WebServer) -> None:
    data_dir = web.config.parent / "data"
    db = ReportDB.in_data_dir(data_dir)
    feedback = dmarcrpt.Feedback(
        org_name="google.com",
        email="noreply-dmarc@google.com",
        report_id="r-1",
        begin=1_700_000_000,
        end=1_700_086_400,
        domain="example.test",
        p="reject",
        rows=(
            dmarcrpt.Row("192.0.2.1", 7, "none", "pass", "pass", "example.test"),
            dmarcrpt.Row("198.51.100.9", 2, "reject", "fail", "fail", "example.test"),
        ),
    )
    db.add_dmarc_report(
        "2026-11-24T10:00:00+00:00",
        "example.test",
        "google.com",
        "r-1",
        feedback.begin,
        feedback.end,
        feedback.to_dict(),
    )
    tls = tlsrpt.Report(
        organization_name="microsoft.com",
        start="2026-11-23T00:00:00Z",
        end="2026-11-24T00:00:00Z",
        contact_info="tlsrpt@microsoft.com",
        report_id="t-1",
        policies=(tlsrpt.PolicyResult("sts", "example.test", 40, 1),),
    )
    db.add_tlsrpt_report(
        "2026-11-24T10:00:00+00:00",
        "example.test",
        "microsoft.com",
        "t-1",
        tls.start,
        tls.end,
        tls.to_json(),
    )
    with web.http() as client:
        csrf = admin_login(client)
        page = client.get("/admin/reports").text
        assert "<td>google.com</td><td>r-1</td>" in page
        assert "<td>9</td><td>7</td><td>2</td><td>none, reject</td>" in page
        assert "<td>microsoft.com</td><td>t-1</td>" in page
        assert "<td>sts</td><td>40</td><td>1</td>" in page

        # An account's addresses and password.
        resp = client.post(
            "/admin/accounts/bob/address",
            data={"op": "add", "address": "robert@other.test", "csrf": csrf},
        )
        assert resp.status_code == 303, resp.text
        resp = client.post(
            "/admin/accounts/bob/address",
            data={"op": "add", "address": "x@unknown.test", "csrf": csrf},
        )
        assert resp.status_code == 400
        assert "not in `domains`" in resp.text
        resp = client.post(
            "/admin/accounts/bob/password", data={"password": "bobs-new-pw", "csrf": csrf}
        )
        assert resp.status_code == 303
        with web.imap("robert@other.test", "bobs-new-pw") as imap:
            assert imap.select("Inbox")[0] == "OK"
        resp = client.post(
            "/admin/accounts/bob/address",
            data={"op": "remove", "address": "bob@other.test", "csrf": csrf},
        )
        assert resp.status_code == 303
        resp = client.post(
            "/admin/accounts/bob/address",
            data={"op": "remove", "address": "robert@other.test", "csrf": csrf},
        )
        assert resp.status_code == 400
        assert "at least one address" in resp.text

        # An alias, then its members.
        alias = {"domain": "example.test", "alias": "Team", "csrf": csrf}
        resp = client.post("/admin/aliases/add", data={**alias, "members": "alice@example.test"})
        assert resp.status_code == 303, resp.text
        member = {**alias, "member": "robert@other.test"}
        resp = client.post("/admin/aliases/member", data={**member, "op": "add"})
        assert resp.status_code == 303, resp.text
        page = client.get("/admin/domains/example.test").text
        assert "Team@example.test" in page
        assert "robert@other.test" in page
        resp = client.post(
            "/admin/aliases/member", data={**alias, "member": "alice@example.test", "op": "remove"}
        )
        assert resp.status_code == 303
        resp = client.post("/admin/aliases/member", data={**member, "op": "remove"})
        assert resp.status_code == 400  # an alias keeps at least one member
        resp = client.post("/admin/aliases/remove", data=alias)
        assert resp.status_code == 303
        assert "Team" not in web.config.read_text()


def test_domain_and_account_settings(web: WebServer) -> None:
    with web.http() as client:
        csrf = admin_login(client)
        resp = client.post(
            "/admin/domains/other.test/settings",
            data={"description": "Bob's <domain>", "csrf": csrf},
        )
        assert resp.status_code == 303, resp.text
        page = client.get("/admin/domains").text
        assert "Bob&#x27;s &lt;domain&gt;" in page  # escaped, never markup
        resp = client.post(
            "/admin/accounts/bob/settings",
            data={"full_name": "Bob B.", "login_disabled": "account suspended", "csrf": csrf},
        )
        assert resp.status_code == 303, resp.text
        assert web.imap_login_fails("bob@other.test", PASSWORD)
        resp = client.post(
            "/admin/accounts/bob/settings", data={"full_name": "Bob B.", "csrf": csrf}
        )
        assert resp.status_code == 303
        assert "login_disabled" not in web.config.read_text()
        with web.imap("bob@other.test", PASSWORD) as imap:
            assert imap.select("Inbox")[0] == "OK"


def test_admin_login_shares_the_ip_throttle(tmp_path: Path) -> None:
    def strict(data: dict[str, Any]) -> None:
        data["limits"] = {"auth_failures_per_minute": 1}

    web = start(tmp_path, tweak=strict)
    try:
        with web.http() as client:
            assert client.post("/admin/login", data={"password": "wrong"}).status_code == 401
            # Now this IP is over its limit: the right password is refused too, and so is IMAP.
            resp = client.post("/admin/login", data={"password": ADMIN_PASSWORD})
            assert resp.status_code == 401
            assert web.imap_login_fails("alice@example.test", PASSWORD)
            page = client.get("/admin/login")
            assert page.status_code == 200
    finally:
        web.srv.stop()
