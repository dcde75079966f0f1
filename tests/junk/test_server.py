"""The junk filter in the real server: training through IMAP MOVE (imapclient), and the inbound
decision over real SMTP (smtplib): reputation, content, DNSBL, Rejects and X-Mox-Reason."""

from __future__ import annotations

import smtplib
import ssl
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import trustme
from imapclient import IMAPClient

from mox.config.model import JunkFilter
from mox.junk import analyze, dnsbl
from mox.junk.bayes import Filter
from mox.junk.train import filter_for, trainer_for
from mox.store import Account
from tests.junk import corpus
from tests.serverthread import PASSWORD, ServerThread, mock_world, start_server
from tests.smtpserver.raw import stored

Server = tuple[ServerThread, dict[str, int]]


def tweak(data: dict[str, Any]) -> None:
    data["accounts"]["alice"]["junk_filter"] = {}
    data["listeners"]["test"]["smtp"]["dnsbls"] = ["bl.test"]


@pytest.fixture(scope="module")
def ca() -> trustme.CA:
    return trustme.CA()


@pytest.fixture
def server(tmp_path: Path, ca: trustme.CA, monkeypatch: pytest.MonkeyPatch) -> Iterator[Server]:
    monkeypatch.setattr(analyze, "FIRST_TIME_SENDER_DELAY", 0.01)
    dnsbl._health.clear()
    resolver = mock_world()
    resolver.records.update(
        {
            ("2.0.0.127.in-addr.arpa", "PTR"): ["relay.example.test."],
            ("relay.example.test", "A"): ["127.0.0.2"],
            ("2.0.0.127.bl.test", "A"): ["127.0.0.2"],  # RFC 5782 §5 test entry, and our client
            ("2.0.0.127.bl.test", "TXT"): ["see https://bl.test/"],
        }
    )
    srv, ports = start_server(tmp_path, ca, tweak, resolver=resolver)
    yield srv, ports
    srv.stop()
    dnsbl._health.clear()


def account(srv: ServerThread, name: str = "alice") -> Account:
    assert srv.running is not None
    return srv.running.store.account(name)


def junk_filter(srv: ServerThread) -> Filter:
    return filter_for(account(srv), JunkFilter())


def settle(srv: ServerThread) -> None:
    """Wait until the trainer has handled every change so far."""
    trainer = trainer_for(account(srv))
    assert trainer is not None

    async def idle() -> None:
        await trainer.idle()

    srv.call(idle())


def pretrain(srv: ServerThread, hams: int = 60, spams: int = 30) -> None:
    async def train() -> None:
        f = junk_filter(srv)
        for m in corpus.ham(hams, seed=3):
            f.train(m, "ham")
        for m in corpus.spam(spams, seed=4):
            f.train(m, "spam")

    srv.call(train())


def send(
    port: int, data: bytes, mail_from: str = "promo@example.org", source: str = "127.0.0.1"
) -> None:
    with smtplib.SMTP("127.0.0.1", port, timeout=10, source_address=(source, 0)) as c:
        c.ehlo("relay.example.test")
        c.sendmail(mail_from, ["alice@example.test"], data)


def imap(ports: dict[str, int], ca: trustme.CA) -> IMAPClient:
    ctx = ssl.create_default_context()
    ca.configure_trust(ctx)
    c = IMAPClient("127.0.0.1", port=ports["imaps"], ssl=True, ssl_context=ctx, timeout=10)
    c.login("alice@example.test", PASSWORD)
    return c


def message(sender: str, body: str, subject: str = "hello") -> bytes:
    return (
        f"From: {sender}\r\nTo: alice@example.test\r\nSubject: {subject}\r\n"
        f"Message-Id: <{abs(hash((sender, body)))}@example.org>\r\n\r\n{body}\r\n"
    ).encode()


def test_imap_move_trains_and_moving_back_untrains(server: Server, ca: trustme.CA) -> None:
    srv, ports = server
    acc = account(srv)
    for m in corpus.spam(4, seed=7):
        srv.call(acc.deliver("Inbox", m))
    settle(srv)
    assert junk_filter(srv).counts() == (0, 0)  # no flags, no training
    c = imap(ports, ca)
    try:
        c.select_folder("Inbox")
        uids = c.search("ALL")
        c.move(uids, "Junk")
        settle(srv)
        f = junk_filter(srv)
        assert f.counts() == (0, 4)
        assert f.word_count("click") == (0, 1)  # in 2 messages: the second one counts, as mox
        c.select_folder("Junk")
        junk_uids = c.search("ALL")
        c.move(junk_uids[:1], "Archive")  # $NotJunk: untrained as spam, trained as ham
        settle(srv)
        assert f.counts() == (1, 3)
        c.select_folder("Archive")
        c.move(c.search("ALL"), "Inbox")  # neutral: no training at all
        settle(srv)
        assert f.counts() == (0, 3)
        c.select_folder("Junk")
        c.remove_flags(c.search("ALL")[:1], [b"$Junk"])  # STORE -FLAGS untrains too
        settle(srv)
        assert f.counts() == (0, 2)
        flagged = c.search(["KEYWORD", "$Junk"])
        assert len(flagged) == 2
        c.delete_messages(flagged[:1])
        c.expunge()  # the file is gone: untrained from the words kept at training time
        settle(srv)
        assert f.counts() == (0, 1)
        assert f.conn.execute("SELECT count(*) FROM trained").fetchone()[0] == 1
        c.create_folder("Spam/Old")
        c.move(c.search(["KEYWORD", "$Junk"]), "Spam/Old")
        settle(srv)
        assert f.counts() == (0, 1)  # still spam in its new place
        c.select_folder("Inbox")
        c.delete_folder("Spam/Old")  # messages of a deleted mailbox are untrained too
        settle(srv)
        assert f.counts() == (0, 0)
    finally:
        c.logout()


def test_content_junk_refused_451_and_kept_in_rejects(server: Server) -> None:
    srv, ports = server
    pretrain(srv)
    spammy = corpus.spam(1, seed=50)[0]
    with pytest.raises(smtplib.SMTPDataError) as info:
        send(ports["smtp"], spammy)
    assert info.value.smtp_code == 451
    err = info.value.smtp_error
    assert isinstance(err, bytes)
    assert err.startswith(b"4.7.1")
    assert stored(srv, "alice", "Inbox") == []
    rejects = stored(srv, "alice", "Rejects")
    assert len(rejects) == 1
    assert spammy.split(b"\r\n")[0] in rejects[0]
    with pytest.raises(smtplib.SMTPDataError):
        send(ports["smtp"], spammy)  # the sender retries: still refused, still one copy
    assert len(stored(srv, "alice", "Rejects")) == 1
    # Ham-like mail is accepted, with the reason recorded.
    send(ports["smtp"], corpus.ham(1, seed=51)[0], mail_from="friend@example.org")
    inbox = stored(srv, "alice", "Inbox")
    assert len(inbox) == 1
    assert b"X-Mox-Reason: no-bad-signals; junk probability 0.0" in inbox[0]


def test_known_correspondent_accepted_despite_spammy_words(server: Server) -> None:
    srv, ports = server
    pretrain(srv)
    spammy = corpus.spam(1, seed=60)[0]
    sender = spammy.split(b"\r\n")[0].split(b"<")[1].rstrip(b">").decode()
    srv.call(account(srv).record_outgoing([sender]))
    send(ports["smtp"], spammy)
    inbox = stored(srv, "alice", "Inbox")
    assert len(inbox) == 1
    assert b"X-Mox-Reason: msgtofull\r\n" in inbox[0]
    assert stored(srv, "alice", "Rejects") == []
    # bob has no junk filter: everything is accepted as before, without X-Mox-Reason.
    with smtplib.SMTP("127.0.0.1", ports["smtp"], timeout=10) as c:
        c.sendmail("promo@example.org", ["bob@other.test"], corpus.spam(1, seed=61)[0])
    bobs = stored(srv, "bob", "Lists/Bob")
    assert len(bobs) == 1
    assert b"X-Mox-Reason" not in bobs[0]


def test_sender_reputation_from_junk_moves(server: Server, ca: trustme.CA) -> None:
    srv, ports = server
    sender = "Shop <deals@example.org>"
    for i in range(50):
        send(ports["smtp"], message(sender, f"weekly deals newsletter number {i} shopping"))
    assert len(stored(srv, "alice", "Inbox")) == 50
    c = imap(ports, ca)
    try:
        c.select_folder("Inbox")
        c.move(c.search("ALL"), "Junk")
        settle(srv)
        assert junk_filter(srv).counts() == (0, 50)
        with pytest.raises(smtplib.SMTPDataError) as info:
            send(ports["smtp"], message(sender, "weekly deals newsletter number 9 shopping"))
        assert info.value.smtp_code == 451
        assert len(stored(srv, "alice", "Rejects")) == 1
        # The user rescues one: the sender is accepted again.
        c.select_folder("Junk")
        c.move(c.search("ALL")[:1], "Archive")
        settle(srv)
        send(ports["smtp"], message(sender, "weekly deals newsletter number 10 shopping"))
        inbox = stored(srv, "alice", "Inbox")
        assert len(inbox) == 1
        assert b"X-Mox-Reason: msgfromfull" in inbox[0]
    finally:
        c.logout()


def test_dnsbl_listed_ip_refused_unless_known(server: Server) -> None:
    srv, ports = server
    text = message("Carol <carol@example.org>", "a plain note about the garden party")
    with pytest.raises(smtplib.SMTPDataError) as info:
        send(ports["smtp"], text, source="127.0.0.2")
    assert info.value.smtp_code == 451
    rejects = stored(srv, "alice", "Rejects")
    assert len(rejects) == 1
    assert b"garden party" in rejects[0]
    send(ports["smtp"], text, source="127.0.0.1")  # not listed
    assert stored(srv, "alice", "Rejects") == []  # delivered now: the Rejects copy goes
    inbox = stored(srv, "alice", "Inbox")
    assert len(inbox) == 1
    assert b"X-Mox-Reason: no-bad-signals" in inbox[0]
    srv.call(account(srv).record_outgoing(["carol@example.org"]))
    send(ports["smtp"], text, source="127.0.0.2")
    inbox = stored(srv, "alice", "Inbox")
    assert len(inbox) == 2
    assert b"X-Mox-Reason: msgtofull" in inbox[1]


def test_first_time_sender_delay(server: Server, monkeypatch: pytest.MonkeyPatch) -> None:
    srv, ports = server
    monkeypatch.setattr(analyze, "FIRST_TIME_SENDER_DELAY", 0.6)
    start = time.monotonic()
    send(ports["smtp"], message("Dave <dave@example.org>", "first contact about the garden"))
    assert time.monotonic() - start >= 0.6
    srv.call(account(srv).record_outgoing(["erin@example.org"]))
    start = time.monotonic()
    send(ports["smtp"], message("Erin <erin@example.org>", "we wrote before, no delay"))
    assert time.monotonic() - start < 0.6
    assert len(stored(srv, "alice", "Inbox")) == 2


def test_no_first_time_sender_delay_setting(
    tmp_path: Path, ca: trustme.CA, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(analyze, "FIRST_TIME_SENDER_DELAY", 5.0)

    def no_delay(data: dict[str, Any]) -> None:
        tweak(data)
        data["accounts"]["alice"]["no_first_time_sender_delay"] = True

    srv, ports = start_server(tmp_path, ca, no_delay)
    try:
        start = time.monotonic()
        send(ports["smtp"], message("Dave <dave@example.org>", "first contact about the garden"))
        assert time.monotonic() - start < 3
        assert b"X-Mox-Reason: no-bad-signals" in stored(srv, "alice", "Inbox")[0]
    finally:
        srv.stop()
