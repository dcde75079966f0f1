"""/metrics scraped over HTTP from a running server: connections, SMTP transactions with their
latency histogram, auth failures and the queue size move as traffic happens."""

from __future__ import annotations

import imaplib
import smtplib
import ssl
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import trustme
from prometheus_client.parser import text_string_to_metric_families

from mox.queue.db import open_db as open_queue_db
from tests.conftest import free_port
from tests.serverthread import PASSWORD, ServerThread, start_server

Server = tuple[ServerThread, dict[str, int]]
HTTP_PORT = "http_port"


@pytest.fixture(scope="module")
def ca() -> trustme.CA:
    return trustme.CA()


@pytest.fixture
def server(tmp_path: Path, ca: trustme.CA) -> Iterator[Server]:
    http = free_port()

    def tweak(data: dict[str, Any]) -> None:
        data["listeners"]["test"]["http"] = {"enabled": True, "port": http}

    srv, ports = start_server(tmp_path, ca, tweak)
    ports[HTTP_PORT] = http
    yield srv, ports
    srv.stop()


def scrape(port: int) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    resp = httpx.get(f"http://127.0.0.1:{port}/metrics", timeout=10)
    assert resp.status_code == 200
    assert resp.headers["content-type"].startswith("text/plain; version=0.0.4")
    values = {}
    for family in text_string_to_metric_families(resp.text):
        for s in family.samples:
            values[(s.name, tuple(sorted(s.labels.items())))] = s.value
    return values


def value(
    m: dict[tuple[str, tuple[tuple[str, str], ...]], float], name: str, **labels: str
) -> float:
    return m.get((name, tuple(sorted(labels.items()))), 0.0)


def test_metrics_move_with_traffic(server: Server, ca: trustme.CA) -> None:
    srv, ports = server
    before = scrape(ports[HTTP_PORT])

    with smtplib.SMTP("127.0.0.1", ports["smtp"], timeout=10) as c:
        c.sendmail("someone@example.org", ["alice@example.test"], b"Subject: m\r\n\r\nhi\r\n")
        with pytest.raises(smtplib.SMTPRecipientsRefused):
            c.sendmail("someone@example.org", ["nobody@elsewhere.example"], b"Subject: x\r\n\r\n")
    ctx = ssl.create_default_context()
    ca.configure_trust(ctx)
    with smtplib.SMTP_SSL("127.0.0.1", ports["submissions"], timeout=30, context=ctx) as c:
        c.ehlo("laptop")
        c.user, c.password = "alice@example.test", "wrong"
        with pytest.raises(smtplib.SMTPAuthenticationError):
            c.auth("PLAIN", c.auth_plain)  # one mechanism: one failure
    imap = imaplib.IMAP4_SSL("127.0.0.1", ports["imaps"], ssl_context=ctx, timeout=10)
    imap.login("alice@example.test", PASSWORD)
    imap.logout()

    queue = srv.loaded.data_dir / "queue"
    conn = open_queue_db(queue / "index.db")
    conn.execute("INSERT INTO msgs(rcpt, hold) VALUES ('a@x.example', 0), ('b@x.example', 0)")
    conn.execute("INSERT INTO msgs(rcpt, hold) VALUES ('c@x.example', 1)")
    conn.close()

    after = scrape(ports[HTTP_PORT])

    def delta(name: str, **labels: str) -> float:
        return value(after, name, **labels) - value(before, name, **labels)

    assert delta("mox_connections_total", protocol="smtp", result="accepted") == 1
    assert delta("mox_connections_total", protocol="submissions", result="accepted") == 1
    assert delta("mox_connections_total", protocol="imaps", result="accepted") == 1
    assert delta("mox_smtp_transactions_total", kind="smtp", result="accepted") == 1
    assert delta("mox_smtp_data_duration_seconds_count", kind="smtp") == 1
    assert delta("mox_smtp_data_duration_seconds_bucket", kind="smtp", le="+Inf") == 1
    assert delta("mox_smtp_data_duration_seconds_sum", kind="smtp") > 0
    assert delta("mox_auth_failures_total", protocol="smtp") == 1
    assert delta("mox_auth_successes_total", protocol="imap") == 1
    assert value(after, "mox_queue_messages", state="queued") == 2
    assert value(after, "mox_queue_messages", state="held") == 1
    # Connections closed again: the open gauge is back where it was (bounded wait).
    for _ in range(50):
        now = scrape(ports[HTTP_PORT])
        if value(now, "mox_connections_open", protocol="imaps") == value(
            before, "mox_connections_open", protocol="imaps"
        ):
            break
        time.sleep(0.1)
    else:
        pytest.fail("mox_connections_open{protocol=imaps} did not go back down")


def test_metrics_only_for_loopback(server: Server) -> None:
    _, ports = server
    # The server listens on 127.0.0.1 only, so a non-loopback client cannot be made here; the
    # check itself is a pure function of the client address.
    from mox.web.app import _is_loopback

    assert _is_loopback("127.0.0.1")
    assert _is_loopback("::1")
    assert not _is_loopback("192.0.2.1")
    assert not _is_loopback("")
    resp = httpx.get(f"http://127.0.0.1:{ports[HTTP_PORT]}/metrics", timeout=10)
    assert b"mox_connections_total" in resp.content
