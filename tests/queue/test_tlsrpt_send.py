"""Daily TLS reports (RFC 8460) with real DNS: Knot signs remote.test, Unbound validates.

A delivery to remote.test fails DANE (the TLSA record does not match the remote's key); the
result is recorded for the policy domain mx.remote.test, which publishes
`_smtp._tls.mx.remote.test`. The daily job then queues a DKIM-signed report with the right JSON,
the queue delivers it (with `TLS-Required: No`, so DANE does not hold it up) to the remote MTA,
and that delivery is not itself recorded for reporting.
"""

from __future__ import annotations

import gzip
import hashlib
import json
import sqlite3
from datetime import UTC, datetime, timedelta
from email import message_from_bytes
from email import policy as email_policy
from pathlib import Path

import dkim
import pytest
import trustme

from mox.config.load import parse_config
from mox.dkim.keys import generate_key, public_record, write_key
from mox.queue.queue import Queue
from mox.queue.tlsrptsend import send_daily_reports
from mox.store import Store
from mox.tlsrpt import parse_message
from tests.conftest import minimal_config
from tests.queue.helpers import add_for_bob, until_attempted, wait_until
from tests.queue.remote import Remote
from tests.queue.test_queue_dns import Lab, tls_server

pytestmark = pytest.mark.integration

MESSAGE = b"From: alice@example.test\r\nSubject: secure\r\n\r\nover TLS only\r\n"


async def test_daily_tls_report_queued_signed_and_delivered(tmp_path: Path, store: Store) -> None:
    ca = trustme.CA()
    ctx, _ = tls_server(ca, "mx.remote.test")
    remote = Remote(tls=ctx)
    wrong = hashlib.sha256(b"another key").hexdigest()
    lab = Lab(
        tmp_path,
        f"_{remote.port}._tcp.mx IN TLSA 3 1 1 {wrong}\n"
        '_smtp._tls.mx IN TXT "v=TLSRPTv1; rua=mailto:tlsrpt@remote.test"\n',
    )
    key = generate_key("ed25519")
    write_key(tmp_path / "dkim.pem", key)
    data = minimal_config()
    data["data_dir"] = str(tmp_path / "data")
    data["domains"]["example.test"]["dkim"] = {
        "selectors": {"sel1": {"private_key_file": str(tmp_path / "dkim.pem")}},
        "sign": ["sel1"],
    }
    data["queue"] = {"direct_port": remote.port, "first_retry_seconds": 60}
    q = Queue(parse_config(data, tmp_path / "mox.toml"), store, lab.resolver())
    await q.start(tls_reports=False)  # the job is called directly below, for today
    today = datetime.now(UTC).date()
    try:
        await add_for_bob(q, MESSAGE)

        await until_attempted(q)
        assert remote.handler.received == []  # DANE: never sent without a matching key

        def results(conn: sqlite3.Connection) -> list[tuple[str, str, str, int]]:
            return conn.execute(
                "SELECT policy_domain, policy_type, result, count FROM tls_results ORDER BY 1"
            ).fetchall()

        assert await q.db_call(results) == [("mx.remote.test", "tlsa", "tlsa-invalid", 1)]
        # A failure of our own domain is never reported (to ourselves).
        await q.db_call(
            lambda c: c.execute(
                "INSERT INTO tls_results VALUES "
                "(?, 'example.test', 'sts', 'validation-failure', 2)",
                (today.isoformat(),),
            )
        )

        assert await send_daily_reports(q, today) == 1
        assert await send_daily_reports(q, today) == 0  # once per domain and day

        async def report_arrived() -> bool:
            return bool(remote.handler.received)

        await wait_until(report_arrived)
        (got,) = remote.handler.received
        assert got.rcpts == ["tlsrpt@remote.test"]
        assert got.mail_from == "postmaster@mail.example.test"
        msg = message_from_bytes(got.data, policy=email_policy.default)
        assert msg["TLS-Report-Domain"] == "mx.remote.test"  # RFC 8460 §5.3
        assert msg["TLS-Report-Submitter"] == "mail.example.test"
        assert msg["TLS-Required"] == "No"
        assert msg.get_content_type() == "multipart/report"
        assert msg.get_param("report-type") == "tlsrpt"
        (part,) = [p for p in msg.walk() if p.get_content_type() == "application/tlsrpt+gzip"]
        filename = part.get_filename() or ""
        assert filename.startswith("mail.example.test!mx.remote.test!")  # RFC 8460 §5.1
        assert filename.endswith(".json.gz")
        body = part.get_payload(decode=True)
        assert isinstance(body, bytes)
        report_json = json.loads(gzip.decompress(body))
        print(json.dumps(report_json, indent=1))
        assert report_json["organization-name"] == "mail.example.test"
        assert report_json["contact-info"] == "postmaster@mail.example.test"
        assert report_json["date-range"] == {
            "start-datetime": f"{today.isoformat()}T00:00:00Z",
            "end-datetime": f"{(today + timedelta(days=1)).isoformat()}T00:00:00Z",
        }
        assert report_json["policies"] == [
            {
                "policy": {"policy-type": "tlsa", "policy-domain": "mx.remote.test"},
                "summary": {
                    "total-successful-session-count": 0,
                    "total-failure-session-count": 1,
                },
                "failure-details": [{"result-type": "tlsa-invalid", "failed-session-count": 1}],
            }
        ]
        report = parse_message(got.data)  # our own parser of incoming reports agrees
        assert report.domains == ["mx.remote.test"]
        # DKIM-signed for the host name's domain, checked by an independent verifier.
        txt = public_record(key).to_text().encode()
        assert dkim.verify(got.data, dnsfunc=lambda name, timeout=5: txt)
        # RFC 8460 §3: the report's own delivery is not recorded.
        rows = await q.db_call(results)
        assert [r for r in rows if r[0] == "remote.test"] == []
    finally:
        await q.stop()
        remote.stop()
        lab.stop()
