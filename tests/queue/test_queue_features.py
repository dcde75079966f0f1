"""Queue features beyond plain delivery, with real SMTP servers on loopback (aiosmtpd) and the
real `mox queue` CLI beside a running queue: hold rules, `mox queue show`, NOTIFY=SUCCESS DSNs,
the suppression list, SMTPUTF8 refusal, the implicit-TLS smarthost transport."""

from __future__ import annotations

import asyncio
import email
import email.policy
import ssl
import subprocess
from pathlib import Path
from typing import Any

import pytest
import tomlkit
import trustme

from mox.config.load import LoadedConfig, parse_config
from mox.dns.resolver import MockResolver
from mox.queue.queue import Queue, QueuedRecipient
from mox.store import Store
from tests.conftest import MOX, minimal_config
from tests.queue.helpers import add_for_bob, inbox, until_attempted, until_empty
from tests.queue.remote import Remote

MESSAGE = (
    b"From: alice@example.test\r\nTo: bob@remote.test\r\nSubject: queued\r\n"
    b"Message-Id: <f1@example.test>\r\n\r\nhello remote\r\n"
)
DNS = {
    ("remote.test", "MX"): ["10 mx.remote.test."],
    ("mx.remote.test", "A"): ["127.0.0.1"],
    ("smtp.relay.test", "A"): ["127.0.0.1"],
}


def config(tmp_path: Path, port: int, **extra: Any) -> LoadedConfig:
    """The config, also written to mox.toml so `mox queue` subprocesses can use it."""
    data = minimal_config()
    data["data_dir"] = str(tmp_path / "data")
    data["queue"] = {"direct_port": port, "first_retry_seconds": 0.2, **extra.pop("queue", {})}
    data.update(extra)
    path = tmp_path / "mox.toml"
    path.write_text(tomlkit.dumps(data))
    return parse_config(data, path)


async def mox_queue(tmp_path: Path, *args: str) -> subprocess.CompletedProcess[str]:
    """`mox queue ...` as a separate process, as an admin runs it beside the server."""
    return await asyncio.to_thread(
        subprocess.run,
        [*MOX, "queue", *args, "--config", str(tmp_path / "mox.toml")],
        capture_output=True,
        text=True,
        timeout=60,
    )


async def test_hold_rule_show_release_and_relayed_dsn(tmp_path: Path, store: Store) -> None:
    remote = Remote()
    cfg = config(tmp_path, remote.port, queue={"hold_rules": [{"recipient_domain": "remote.test"}]})
    q = Queue(cfg, store, MockResolver(DNS))
    await q.start(tls_reports=False)
    try:
        (qid,) = await q.add(
            account="alice",
            mail_from="alice@example.test",
            recipients=[
                QueuedRecipient("bob@remote.test", ["SUCCESS", "FAILURE"], "rfc822;bob@remote.test")
            ],
            data=MESSAGE,
            dsn_envid="env-9",
            dsn_ret="HDRS",
        )
        await asyncio.sleep(0.3)
        assert remote.handler.received == []  # the hold rule matched
        (m,) = await q.messages()
        assert m.hold

        res = await mox_queue(tmp_path, "show", str(qid))
        assert res.returncode == 0, res.stderr
        out = res.stdout
        print(out)
        assert f"id:           {qid}\n" in out
        assert "state:        held\n" in out
        assert "from:         <alice@example.test>" in out
        assert "recipient:    <bob@remote.test>" in out
        assert "transport:    direct" in out
        assert f"size:         {len(MESSAGE)} bytes" in out
        assert "attempts:     0 of 8" in out
        assert "dsn:          RET=HDRS ENVID=env-9 NOTIFY=SUCCESS,FAILURE " in out
        assert "  Subject: queued" in out

        res = await mox_queue(tmp_path, "show", "999999")
        assert res.returncode == 1
        assert "no queued or retired message with id 999999" in res.stderr

        res = await mox_queue(tmp_path, "release", str(qid))
        assert res.stdout.strip() == "release: 1 message(s)"
        await until_empty(q)  # the running queue noticed the other process's change
        (got,) = remote.handler.received
        assert "NOTIFY=SUCCESS,FAILURE" not in got.rcpt_options  # aiosmtpd has no DSN

        # RFC 3461 §5.2.2: the next hop has no DSN support, so we report "relayed".
        (dsn,) = inbox(store)
        text = dsn.decode()
        assert "Action: relayed" in text
        assert "Status: 2.0.0" in text
        assert "Original-Envelope-Id: env-9" in text
        assert "Remote-MTA: dns; remote.test" in text

        res = await mox_queue(tmp_path, "show", str(qid))
        assert "state:        retired (delivered at" in res.stdout
    finally:
        await q.stop()
        remote.stop()


async def test_success_dsn_for_local_delivery(tmp_path: Path, store: Store) -> None:
    q = Queue(config(tmp_path, 1), store, MockResolver(DNS))
    await q.start(tls_reports=False)
    try:
        await q.add(
            account="alice",
            mail_from="alice@example.test",
            recipients=[QueuedRecipient("alice@example.test", ["SUCCESS"])],
            data=MESSAGE,
        )
        await until_empty(q)
        msgs = inbox(store)
        assert len(msgs) == 2  # the message itself and the DSN
        (dsn,) = [m for m in msgs if b"multipart/report" in m]
        assert b"Action: delivered" in dsn  # RFC 3464 §2.3.3
        assert b"Final-Recipient: rfc822; alice@example.test" in dsn
    finally:
        await q.stop()


async def test_hard_bounce_suppresses_and_cli(tmp_path: Path, store: Store) -> None:
    remote = Remote(
        rcpt_replies={
            "nobody@remote.test": "550 5.1.1 no such user",
            "picky@remote.test": "554 5.6.0 content refused",
        }
    )
    q = Queue(config(tmp_path, remote.port), store, MockResolver(DNS))
    await q.start(tls_reports=False)
    try:
        await q.add(
            account="alice",
            mail_from="alice@example.test",
            recipients=[
                QueuedRecipient("nobody@remote.test"),
                QueuedRecipient("picky@remote.test"),
            ],
            data=MESSAGE,
        )
        await until_empty(q)
        (s,) = await q.suppression_list("alice")
        assert (s.base_address, s.original_address, s.manual) == (
            "nobody@remote.test",
            "nobody@remote.test",
            False,
        )
        assert "smtp code 550" in s.reason
        # The base address also covers tagged and dotted variants, as mox.
        assert await q.suppressed("alice", "No.Body+news@Remote.test")
        assert not await q.suppressed("alice", "picky@remote.test")  # one 554: not yet
        assert not await q.suppressed("other", "nobody@remote.test")  # per account

        res = await mox_queue(tmp_path, "suppress", "list", "alice")
        assert res.returncode == 0, res.stderr
        assert "alice\tnobody@remote.test\tnobody@remote.test\t" in res.stdout
        assert "automatic" in res.stdout
        res = await mox_queue(tmp_path, "suppress", "add", "alice", "Carol.X+1@remote.test")
        assert res.stdout.strip() == "added carolx@remote.test to the suppression list of alice"
        assert await q.suppressed("alice", "carolx@remote.test")
        res = await mox_queue(tmp_path, "suppress", "add", "alice", "carolx@remote.test")
        assert res.returncode == 1
        assert "already on the suppression list" in res.stderr
        res = await mox_queue(tmp_path, "suppress", "add", "alice", "not an address")
        assert res.returncode == 1
        assert "bad address" in res.stderr
        res = await mox_queue(tmp_path, "suppress", "add", "nosuch", "x@remote.test")
        assert res.returncode == 1
        assert "no account 'nosuch'" in res.stderr
        res = await mox_queue(tmp_path, "suppress", "rm", "alice", "nobody@remote.test")
        assert res.returncode == 0, res.stderr
        assert not await q.suppressed("alice", "nobody@remote.test")
        res = await mox_queue(tmp_path, "suppress", "rm", "alice", "nobody@remote.test")
        assert res.returncode == 1
    finally:
        await q.stop()
        remote.stop()


async def test_three_failures_in_a_row_suppress(tmp_path: Path, store: Store) -> None:
    remote = Remote(rcpt_replies={"picky@remote.test": "554 5.6.0 content refused"})
    q = Queue(config(tmp_path, remote.port), store, MockResolver(DNS))
    await q.start(tls_reports=False)
    try:
        for i in range(3):
            assert not await q.suppressed("alice", "picky@remote.test"), i
            await q.add(
                account="alice",
                mail_from="alice@example.test",
                recipients=[QueuedRecipient("picky@remote.test")],
                data=MESSAGE,
            )
            await until_empty(q)
        (s,) = await q.suppression_list()
        assert "three consecutive failures" in s.reason
    finally:
        await q.stop()
        remote.stop()


async def test_smtputf8_needed_but_not_offered(tmp_path: Path, store: Store) -> None:
    remote = Remote(smtputf8=False)
    q = Queue(config(tmp_path, remote.port), store, MockResolver(DNS))
    await q.start(tls_reports=False)
    utf8 = "From: alice@example.test\r\nSubject: grüße\r\n\r\nhallo\r\n".encode()
    try:
        await q.add(
            account="alice",
            mail_from="alice@example.test",
            recipients=[QueuedRecipient("bob@remote.test")],
            data=utf8,
            smtputf8=True,
        )
        await until_empty(q)
        assert remote.handler.received == []  # RFC 6531 §3.4: not sent at all
        (dsn,) = inbox(store)
        assert b"Action: failed" in dsn
        assert b"Status: 5.6.7" in dsn
        assert not await q.suppressed("alice", "bob@remote.test")  # not the recipient's fault

        # Flagged SMTPUTF8 but nothing in it needs it: sent without the parameter.
        await q.add(
            account="alice",
            mail_from="alice@example.test",
            recipients=[QueuedRecipient("bob@remote.test")],
            data=MESSAGE,
            smtputf8=True,
        )
        await until_empty(q)
        (got,) = remote.handler.received
        assert "SMTPUTF8" not in got.mail_options
    finally:
        await q.stop()
        remote.stop()


def implicit_tls_remote(ca: trustme.CA, name: str) -> Remote:
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ca.issue_cert(name).configure_cert(ctx)
    return Remote(implicit_tls=ctx, login=("relayuser", "relay secret"))


@pytest.mark.parametrize(
    "cert_name",
    [
        "smtp.relay.test",
        pytest.param(
            "wrong.relay.test",
            # aiosmtpd's server side sometimes leaves the transport of the handshake we refuse
            # unclosed (our client side closes its own; checked with gc in isolation).
            marks=pytest.mark.filterwarnings("ignore::pytest.PytestUnraisableExceptionWarning"),
        ),
    ],
)
async def test_submissions_smarthost(tmp_path: Path, store: Store, cert_name: str) -> None:
    ca = trustme.CA()
    remote = implicit_tls_remote(ca, cert_name)
    ca_file = tmp_path / "ca.pem"
    ca.cert_pem.write_to_path(str(ca_file))
    (tmp_path / "relay.pass").write_text("relay secret\n")
    cfg = config(
        tmp_path,
        1,  # direct delivery would fail: everything must go through the smarthost
        transports={
            "relay": {
                "kind": "submissions",
                "host": "smtp.relay.test",
                "port": remote.port,
                "username": "relayuser",
                "password_file": str(tmp_path / "relay.pass"),
            }
        },
        routes=[{"transport": "relay"}],
        tls_ca_files=[str(ca_file)],
    )
    q = Queue(cfg, store, MockResolver(DNS))
    await q.start(tls_reports=False)
    try:
        await add_for_bob(q, MESSAGE)
        if cert_name == "smtp.relay.test":
            await until_empty(q)
            (got,) = remote.handler.received
            assert got.tls  # implicit TLS from the first byte (RFC 8314 §3.3)
            assert got.login == "relayuser"
            assert got.data == MESSAGE
            assert [r for _, r in await q.retired()] == ["delivered"]
        else:
            await until_attempted(q)
            (m,) = await q.messages()
            assert "TLS with smtp.relay.test" in m.last_error
            assert remote.handler.received == []
            assert remote.handler.logins == []  # no password to an unverified host
    finally:
        await q.stop()
        remote.stop()


async def test_delayed_hook_called_on_temporary_failure(tmp_path: Path, store: Store) -> None:
    remote = Remote(replies=["451 4.3.0 try again"])
    q = Queue(config(tmp_path, remote.port), store, MockResolver(DNS))
    events: list[tuple[int, str, str | None]] = []

    async def hook(m: Any, result: str, err: str | None) -> None:
        events.append((m.id, result, err))

    q.retire_hooks.append(hook)
    await q.start(tls_reports=False)
    try:
        (qid,) = await add_for_bob(q, MESSAGE)
        await until_empty(q)
        assert events == [(qid, "delayed", "451 4.3.0 try again"), (qid, "delivered", None)]
    finally:
        await q.stop()
        remote.stop()


def test_dsn_of_relayed_message_parses() -> None:
    from mox.queue.dsn import DsnRecipient, compose_dsn

    raw = compose_dsn(
        reporting_mta="mail.example.test",
        postmaster="postmaster@mail.example.test",
        to="alice@example.test",
        recipients=[DsnRecipient("bob@remote.test", "relayed", "2.0.0", "250 ok", "mx")],
        original=MESSAGE,
        ret=None,
        envid=None,
    )
    msg = email.message_from_bytes(raw, policy=email.policy.default)
    assert msg["Subject"] == "mail relayed"
    assert msg.get_content_type() == "multipart/report"
