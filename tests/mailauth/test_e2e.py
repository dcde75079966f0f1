"""End to end with real DNS: Knot (signing) behind a validating Unbound serves the senders' SPF,
DKIM and DMARC records; our server asks Unbound, as its config's `dns` section says.

- Inbound on port 25: SPF pass / fail / softfail, DKIM valid / broken / rsa-sha1, DMARC
  p=reject, null MX and DNS failures get the right Authentication-Results and the right
  accept/refuse decision.
- Submission on 465 is DKIM-signed (RSA and ed25519, keys from `mox dkim ensure-keys`, records
  from `mox dkim txt` published in Knot); the copy read back over IMAP is verified by
  `opendkim-testmsg`, which asks Unbound through the C resolver: it runs in its own mount
  namespace whose /etc/resolv.conf names a loopback forwarder on port 53 (root needed).
- A DMARC aggregate report sent to the report address is parsed, stored and listed by
  `mox dmarc reports`.
"""

from __future__ import annotations

import contextlib
import gzip
import imaplib
import os
import shutil
import smtplib
import socket
import ssl
import subprocess
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from email.message import EmailMessage
from pathlib import Path
from typing import Any

import dns.message
import dns.query
import pytest
import trustme
from typer.testing import CliRunner

from mox.auth.password import derive_credentials
from mox.cli import app
from mox.config.load import load_config
from mox.dkim.keys import generate_key, pem, public_record
from mox.dkim.sign import Signer, sign
from mox.reportdb import ReportDB
from mox.server.mailauth import resolver_from_config
from tests.dns.lab import Knot, Unbound
from tests.serverthread import PASSWORD, ServerThread, full_config
from tests.smtpserver.raw import stored, stored_meta

pytestmark = [pytest.mark.integration, pytest.mark.slow]

runner = CliRunner()
HEADERS = ("From", "To", "Subject", "Date", "Message-Id")
REVERSE = "0.0.127.in-addr.arpa"
FORWARDER_IP = "127.53.53.53"  # the namespace's resolv.conf names it; port 53 is libc's only


def zone(name: str, *lines: str) -> str:
    head = [
        "$TTL 300",
        f"{name}. SOA ns.{name}. hostmaster.{name}. 1 7200 3600 1209600 300",
        f"{name}. NS ns.{name}.",
        f"ns.{name}. A 127.0.0.1",
    ]
    if name.endswith(".arpa"):
        head[-2:] = [f"{name}. NS ns.example.test."]
    return "\n".join(head + list(lines)) + "\n"


def txt(value: str) -> str:
    return " ".join(f'"{value[i : i + 255]}"' for i in range(0, len(value), 255))


def need(binary: str, package: str) -> str:
    path = shutil.which(binary) or next(
        (p for p in (f"/usr/sbin/{binary}", f"/usr/bin/{binary}") if Path(p).exists()), None
    )
    if path is None:
        pytest.fail(
            f"{binary} is not installed: run `python3 scripts/system_deps.py --install` "
            f"as root (Debian package {package})"
        )
    return path


class Forwarder:
    """UDP on FORWARDER_IP:53 relaying to Unbound, for programs that use libc's resolver."""

    def __init__(self, upstream: int) -> None:
        if os.geteuid() != 0:
            pytest.fail(
                "the opendkim-testmsg check binds port 53 and mounts a namespace: run as root"
            )
        self.upstream = upstream
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.bind((FORWARDER_IP, 53))
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _run(self) -> None:
        while True:
            try:
                data, peer = self.sock.recvfrom(65535)
            except OSError:
                return
            query = dns.message.from_wire(data)
            answer = dns.query.udp(query, "127.0.0.1", timeout=5, port=self.upstream)
            self.sock.sendto(answer.to_wire(max_size=4096), peer)

    def close(self) -> None:
        self.sock.close()
        self.thread.join(5)


@dataclass
class Lab:
    server: ServerThread
    ports: dict[str, int]
    config: Path
    ca: trustme.CA
    sender_key: Any  # the RSA key sender.test publishes as s1
    unbound: Unbound
    base: Path

    def deliver(
        self, mail_from: str, message: bytes, rcpt: str = "alice@example.test"
    ) -> tuple[int, str]:
        """One transaction on port 25; the reply to the end of data (or the first refusal)."""
        with smtplib.SMTP("127.0.0.1", self.ports["smtp"], timeout=30) as c:
            c.ehlo("mail.sender.test")
            code, text = c.mail(mail_from)
            if code != 250:
                return code, text.decode()
            code, text = c.rcpt(rcpt)
            assert code == 250, text
            code, text = c.data(message)
            return code, text.decode()

    def opendkim_verify(self, message: bytes) -> subprocess.CompletedProcess[str]:
        testmsg = need("opendkim-testmsg", "opendkim-tools")
        resolv = self.base / "resolv.conf"
        resolv.write_text(f"nameserver {FORWARDER_IP}\noptions edns0 attempts:1 timeout:5\n")
        script = f'mount --bind "{resolv}" /etc/resolv.conf && exec "{testmsg}"'
        return subprocess.run(
            ["unshare", "--mount", "sh", "-c", script],
            input=message.decode(),
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )


def message(
    from_addr: str, subject: str, body: str = "Hello.\r\n", signer: Signer | None = None
) -> bytes:
    msg = (
        f"From: {from_addr}\r\nTo: alice@example.test\r\nSubject: {subject}\r\n"
        f"Date: Wed, 25 Nov 2026 08:00:00 +0000\r\nMessage-Id: <{subject.replace(' ', '-')}@x>\r\n"
        f"\r\n{body}"
    ).encode()
    return (sign(msg, [signer]) if signer else b"") + msg


@contextlib.contextmanager
def running_lab(base: Path) -> Iterator[Lab]:
    ca = trustme.CA()
    knot = Knot(base / "knot", {}, {"example.test", "sender.test", "broken.test", REVERSE})
    unbound = Unbound(base / "unbound", knot, [])

    def tweak(data: dict[str, Any]) -> None:
        keys = base / "dkim"
        data["domains"]["example.test"]["dkim"] = {
            "selectors": {
                "2025a": {"private_key_file": str(keys / "2025a.rsa2048.privatekey.pkcs8.pem")},
                "2025e": {"private_key_file": str(keys / "2025e.ed25519.privatekey.pkcs8.pem")},
            },
            "sign": ["2025a", "2025e"],
        }
        data["domains"]["example.test"]["dmarc"] = {
            "localpart": "dmarcreports",
            "account": "alice",
            "mailbox": "DMARC",
        }
        data["dns"] = {"nameservers": [unbound.address]}

    config, ports = full_config(base, ca, tweak)
    made = runner.invoke(app, ["dkim", "ensure-keys", "--config", str(config)])
    assert made.exit_code == 0, made.output
    assert made.output.count("created") == 2
    again = runner.invoke(app, ["dkim", "ensure-keys", "--config", str(config)])
    assert again.output == "all DKIM keys exist\n"  # idempotent
    records = []
    for selector in ("2025a", "2025e"):
        out = runner.invoke(app, ["dkim", "txt", selector, "--config", str(config)])
        assert out.exit_code == 0, out.output
        records.append(out.output.strip())
    sender_key = generate_key("rsa2048")
    (base / "sender-s1.pem").write_bytes(pem(sender_key))
    knot.zones = {
        "example.test": zone(
            "example.test",
            "example.test. MX 10 mail.example.test.",
            "mail.example.test. A 127.0.0.1",
            *records,
        ),
        "sender.test": zone(
            "sender.test",
            "sender.test. MX 10 mail.sender.test.",
            "mail.sender.test. A 127.0.0.1",
            'sender.test. TXT "v=spf1 ip4:127.0.0.1 -all"',
            f"s1._domainkey.sender.test. TXT {txt(public_record(sender_key).to_text())}",
            '_dmarc.sender.test. TXT "v=DMARC1;p=reject;rua=mailto:dmarc-rua@sender.test"',
        ),
        "fail.test": zone(
            "fail.test", "fail.test. A 192.0.2.1", 'fail.test. TXT "v=spf1 ip4:192.0.2.1 -all"'
        ),
        "soft.test": zone(
            "soft.test", "soft.test. A 192.0.2.1", 'soft.test. TXT "v=spf1 ip4:192.0.2.1 ~all"'
        ),
        "nullmx.test": zone("nullmx.test", "nullmx.test. MX 0 ."),
        "broken.test": zone("broken.test", "broken.test. A 127.0.0.1"),
        REVERSE: zone(REVERSE, f"1.{REVERSE}. PTR mail.sender.test."),
    }
    stack = contextlib.ExitStack()
    with stack:
        knot.start()
        stack.callback(knot.stop)
        anchors = [a for a in knot.trust_anchors() if not a.startswith("broken.test.")]
        # broken.test gets another zone's key as its anchor: validation fails, Unbound SERVFAILs.
        wrong = next(a for a in anchors if a.startswith("sender.test."))
        anchors.append(wrong.replace("sender.test.", "broken.test.", 1))
        unbound.anchors = anchors
        unbound.start()
        stack.callback(unbound.stop)
        loaded = load_config(config)
        server = ServerThread(loaded, resolver=resolver_from_config(loaded)).start()
        stack.callback(server.stop)
        assert server.running is not None
        for account in ("alice", "bob"):
            creds = derive_credentials(PASSWORD)
            server.call(server.running.store.account(account).set_credentials(creds))
        yield Lab(server, ports, config, ca, sender_key, unbound, base)


@pytest.fixture(scope="module")
def lab(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Lab]:
    with running_lab(tmp_path_factory.mktemp("mailauth")) as running:
        yield running


def results_of(msg: bytes) -> str:
    """The Authentication-Results field of a stored message, unfolded."""
    head = msg.split(b"\r\n\r\n", 1)[0].decode()
    start = head.index("Authentication-Results: mail.example.test;")
    end = head.index("\r\nReceived-SPF:", start)
    return head[start:end].replace("\r\n\t", " ")


def test_inbound_matrix(lab: Lab) -> None:
    s1 = Signer("sender.test", "s1", lab.sender_key, HEADERS)
    broken = message("a@sender.test", "broken", signer=s1).replace(b"Hello.", b"Hullo.")
    cases = [
        ("a@sender.test", message("a@sender.test", "valid", signer=s1)),
        ("a@sender.test", broken),
        ("x@fail.test", message("x@fail.test", "spf fail")),
        ("x@soft.test", message("x@soft.test", "spf softfail")),
    ]
    for mail_from, msg in cases:
        code, text = lab.deliver(mail_from, msg)
        assert code == 250, (mail_from, text)
    got = {
        m.split(b"\r\nSubject: ", 1)[1].split(b"\r\n", 1)[0]: m
        for m in stored(lab.server, "alice", "Inbox")
    }
    valid = results_of(got[b"valid"])
    assert "iprev=pass (with dnssec) policy.iprev=127.0.0.1 (mail.sender.test);" in valid
    assert (
        "dkim=pass (2048 bit rsa, with dnssec) header.d=sender.test header.a=rsa-sha256 "
        "header.s=s1 header.b="
    ) in valid
    assert "spf=pass (with dnssec) smtp.mailfrom=sender.test;" in valid
    assert "dmarc=pass (with dnssec) header.from=sender.test policy.dmarc=reject" in valid
    assert "arc=none" in valid
    assert (
        b"\r\nReceived-SPF: pass (mail.example.test: domain of sender.test designates 127.0.0.1"
        in got[b"valid"]
    )
    bad = results_of(got[b"broken"])
    assert 'dkim=fail (2048 bit rsa, with dnssec) reason="body hash mismatch' in bad
    assert "dmarc=pass (with dnssec)" in bad  # aligned SPF pass carries it
    spf_fail = results_of(got[b"spf fail"])
    assert "spf=fail (without dnssec) smtp.mailfrom=fail.test;" in spf_fail
    assert "dkim=none;" in spf_fail
    assert "dmarc=none (without dnssec) header.from=fail.test" in spf_fail
    assert "spf=softfail (without dnssec) smtp.mailfrom=soft.test;" in results_of(
        got[b"spf softfail"]
    )
    metas = stored_meta(lab.server, "alice", "Inbox")
    assert {m["auth"]["spf"]["status"] for m in metas} == {"pass", "fail", "softfail"}
    assert all(m["auth"]["dmarc"]["reject"] is False for m in metas)


def test_dmarc_reject_refused(lab: Lab) -> None:
    before = len(stored(lab.server, "alice", "Inbox"))
    s1 = Signer("sender.test", "s1", lab.sender_key, HEADERS)
    forged = message("ceo@sender.test", "forged", signer=s1).replace(b"Hello.", b"Pay now.")
    assert lab.deliver("x@fail.test", forged) == (550, "5.7.26 DMARC policy rejects message")
    unsigned = message("ceo@sender.test", "unsigned")
    assert lab.deliver("x@soft.test", unsigned) == (550, "5.7.26 DMARC policy rejects message")
    assert len(stored(lab.server, "alice", "Inbox")) == before
    db = ReportDB(load_config(lab.config).data_dir / "reports.db")
    evaluations = [d for _, dom, _, d in db.evaluations() if dom == "sender.test"]
    assert {e["disposition"] for e in evaluations} >= {"reject", "none"}  # kept for reports


def test_rsa_sha1_signature_from_opendkim_is_policy(lab: Lab) -> None:
    testmsg = need("opendkim-testmsg", "opendkim-tools")
    raw = message("a@sender.test", "opendkim signed")
    signed = subprocess.run(
        [testmsg, "-C", "-d", "sender.test", "-s", "s1", "-k", str(lab.base / "sender-s1.pem")],
        input=raw,
        capture_output=True,
        timeout=30,
        check=True,
    ).stdout
    assert signed.startswith(b"DKIM-Signature: v=1; a=rsa-sha1;")  # opendkim-testmsg's only choice
    assert lab.deliver("a@sender.test", signed)[0] == 250
    (msg,) = [m for m in stored(lab.server, "alice", "Inbox") if b"Subject: opendkim signed" in m]
    res = results_of(msg)
    assert 'dkim=policy (with dnssec) reason="rsa-sha1 is not accepted (RFC 8301' in res
    assert "dmarc=pass" in res


def test_mail_from_domain_checks(lab: Lab) -> None:
    def mail(addr: str) -> tuple[int, bytes]:
        with smtplib.SMTP("127.0.0.1", lab.ports["smtp"], timeout=30) as c:
            c.ehlo("mail.sender.test")
            return c.mail(addr)

    assert mail("x@nullmx.test") == (550, b"5.7.27 sender domain does not accept mail (null MX)")
    assert mail("x@nothing.sender.test") == (
        550,
        b"5.1.8 sender domain has no MX or address records",
    )
    assert mail("x@broken.test") == (451, b"4.4.3 temporary DNS error looking up sender domain")
    assert mail("<>")[0] == 250  # bounces have no domain to check
    assert mail("x@fail.test")[0] == 250  # an A record is enough (RFC 5321 §5.1)


def test_submission_signed_and_verified_by_opendkim(lab: Lab) -> None:
    ctx = ssl.create_default_context()
    lab.ca.configure_trust(ctx)
    body = (
        b"From: Alice <alice@example.test>\r\nTo: Bob <bob@other.test>\r\nSubject: signed\r\n"
        b"Date: Wed, 25 Nov 2026 08:00:00 +0000\r\nMessage-Id: <signed@example.test>\r\n"
        b"\r\nThis message is DKIM-signed by mox.\r\n"
    )
    with smtplib.SMTP_SSL("127.0.0.1", lab.ports["submissions"], context=ctx, timeout=30) as c:
        c.login("alice@example.test", PASSWORD)
        assert c.sendmail("alice@example.test", ["bob@other.test"], body) == {}
    with imaplib.IMAP4_SSL("127.0.0.1", lab.ports["imaps"], ssl_context=ctx) as imap:
        imap.login("bob@other.test", PASSWORD)
        imap.select('"Lists/Bob"')
        typ, data = imap.fetch("1:*", "(BODY.PEEK[])")
        assert typ == "OK"
    msgs = [part[1] for part in data if isinstance(part, tuple)]
    (got,) = [m for m in msgs if b"Subject: signed" in m]
    head = got.split(b"\r\n\r\n", 1)[0].decode().replace("\r\n ", " ")
    assert "DKIM-Signature: v=1; a=rsa-sha256; c=relaxed/relaxed; d=example.test;" in head
    assert "DKIM-Signature: v=1; a=ed25519-sha256; c=relaxed/relaxed; d=example.test;" in head
    assert "s=2025a;" in head
    assert "s=2025e;" in head
    forwarder = Forwarder(lab.unbound.port)
    try:
        for algorithm in (b"a=rsa-sha256", b"a=ed25519-sha256"):
            # Each signature on its own, so neither can hide the other's failure.
            only = without_signatures(got, keep=algorithm)
            assert only.count(b"DKIM-Signature:") == 1
            ok = lab.opendkim_verify(only)
            assert (ok.returncode, ok.stdout, ok.stderr) == (0, "", ""), algorithm
            tampered = lab.opendkim_verify(only.replace(b"signed by mox", b"signed by someone"))
            assert tampered.returncode != 0
            assert "Bad signature" in tampered.stderr
    finally:
        forwarder.close()


def without_signatures(msg: bytes, keep: bytes) -> bytes:
    """The message with only the DKIM-Signature whose first line holds `keep`."""
    head, sep, body = msg.partition(b"\r\n\r\n")
    fields: list[bytes] = []
    for line in head.split(b"\r\n"):
        if line[:1] in (b" ", b"\t") and fields:
            fields[-1] += b"\r\n" + line
        else:
            fields.append(line)
    kept = [f for f in fields if not f.startswith(b"DKIM-Signature:") or keep in f]
    return b"\r\n".join(kept) + sep + body


def test_dmarc_report_arrives_and_is_listed(lab: Lab) -> None:
    xml = (
        b'<?xml version="1.0"?><feedback><report_metadata><org_name>sender.test</org_name>'
        b"<email>dmarc-rua@sender.test</email><report_id>r-2026-11-25</report_id>"
        b"<date_range><begin>1764028800</begin><end>1764115199</end></date_range>"
        b"</report_metadata><policy_published><domain>example.test</domain><p>reject</p>"
        b"<pct>100</pct></policy_published><record><row><source_ip>127.0.0.1</source_ip>"
        b"<count>7</count><policy_evaluated><disposition>none</disposition><dkim>pass</dkim>"
        b"<spf>pass</spf></policy_evaluated></row><identifiers><header_from>example.test"
        b"</header_from></identifiers><auth_results><spf><domain>example.test</domain>"
        b"<result>pass</result></spf></auth_results></record></feedback>"
    )
    msg = EmailMessage()
    msg["From"] = "dmarc-rua@sender.test"
    msg["To"] = "dmarcreports@example.test"
    msg["Subject"] = "Report Domain: example.test Submitter: sender.test Report-ID: r-2026-11-25"
    msg["Date"] = "Wed, 25 Nov 2026 09:00:00 +0000"
    msg["Message-Id"] = "<report@sender.test>"
    msg.set_content("A DMARC aggregate report.")
    msg.add_attachment(
        gzip.compress(xml),
        maintype="application",
        subtype="gzip",
        filename="sender.test!example.test!1764028800!1764115199.xml.gz",
    )
    raw = msg.as_bytes(policy=msg.policy.clone(linesep="\r\n"))
    signed = sign(raw, [Signer("sender.test", "s1", lab.sender_key, HEADERS)]) + raw
    code, text = lab.deliver("dmarc-rua@sender.test", signed, rcpt="dmarcreports@example.test")
    assert code == 250, text
    (copy,) = stored(lab.server, "alice", "DMARC")
    assert b"X-Mox-DMARCReport-Error" not in copy
    out = runner.invoke(app, ["dmarc", "reports", "--config", str(lab.config)])
    assert out.exit_code == 0, out.output
    lines = out.output.splitlines()
    assert lines[1].split() == [
        "1",
        "example.test",
        "sender.test",
        "2025-11-25",
        "00:00",
        "-",
        "2025-11-25",
        "23:59",
        "7",
        "0",
    ]
    assert "report id r-2026-11-25" in lines[2]
    as_json = runner.invoke(app, ["dmarc", "reports", "--json", "--config", str(lab.config)])
    assert '"org_name": "sender.test"' in as_json.output
