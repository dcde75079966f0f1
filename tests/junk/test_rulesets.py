"""Rulesets, subjectpass, Introbox and partial refusals over real SMTP (smtplib against the real
server on loopback), with DNS from a mock resolver: mailing lists that bypass DMARC and the junk
filter, header routing, forwards that leave the forwarder's IP out of the reputation."""

from __future__ import annotations

import re
import smtplib
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import trustme

from mox.config.model import Account as AccountConfig
from mox.config.model import JunkFilter, Ruleset
from mox.dns.resolver import MockResolver
from mox.junk import analyze, dnsbl, rulesets
from mox.junk.train import filter_for, trainer_for
from mox.store import Account
from tests.junk import corpus
from tests.serverthread import ServerThread, mock_world, start_server
from tests.smtpserver.raw import stored, stored_meta

Tweak = Callable[[dict[str, Any]], None]

LIST_RULESET = {
    "verified_domain": "lists.example.org",
    "headers_regexp": {"^list-id$": r"<garden\.lists\.example\.org>"},
    "list_allow_domain": "lists.example.org",
    "mailbox": "Lists/Garden",
    "comment": "the garden club list",
}
HEADER_RULESET = {"headers_regexp": {"^x-project$": "^apollo$"}, "mailbox": "Projects/Apollo"}
FORWARD_RULESET = {
    "smtp_mail_from_regexp": r"^fwd\+.*@forwarder\.example$",
    "verified_domain": "forwarder.example",
    "is_forward": True,
    "mailbox": "Inbox",
}


def world() -> MockResolver:
    r = mock_world()
    r.records.update(
        {
            # A mailing list whose SPF verifies its bounce domain from 127.0.0.1.
            ("lists.example.org", "A"): ["127.0.0.1"],
            ("lists.example.org", "TXT"): ["v=spf1 ip4:127.0.0.1 -all"],
            # A From domain with a strict DMARC policy that list and forwarded mail fail.
            ("_dmarc.strict.example", "TXT"): ["v=DMARC1; p=reject"],
            ("strict.example", "A"): ["192.0.2.20"],
            # A forwarding service at 127.0.0.3 (no reverse DNS: iprev fails).
            ("forwarder.example", "A"): ["127.0.0.3"],
            ("forwarder.example", "TXT"): ["v=spf1 ip4:127.0.0.3 -all"],
            # example.org passes DMARC (SPF aligned) for subjectpass; 127.0.0.2 is blocklisted.
            ("example.org", "TXT"): ["v=spf1 ip4:127.0.0.1 ip4:127.0.0.2 -all"],
            ("_dmarc.example.org", "TXT"): ["v=DMARC1; p=none"],
            ("2.0.0.127.in-addr.arpa", "PTR"): ["relay.example.test."],
            ("relay.example.test", "A"): ["127.0.0.2"],
            ("2.0.0.127.bl.test", "A"): ["127.0.0.2"],  # RFC 5782 §5 test entry
        }
    )
    return r


def base(data: dict[str, Any]) -> None:
    alice = data["accounts"]["alice"]
    alice["junk_filter"] = {}
    alice["destinations"]["alice@example.test"] = {
        "rulesets": [LIST_RULESET, HEADER_RULESET, FORWARD_RULESET]
    }
    data["listeners"]["test"]["smtp"]["dnsbls"] = ["bl.test"]


@pytest.fixture(scope="module")
def ca() -> trustme.CA:
    return trustme.CA()


@pytest.fixture(autouse=True)
def short_delay(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    monkeypatch.setattr(analyze, "FIRST_TIME_SENDER_DELAY", 0.01)
    dnsbl._health.clear()
    yield
    dnsbl._health.clear()


@pytest.fixture
def make_server(
    tmp_path: Path, ca: trustme.CA
) -> Iterator[Callable[[Tweak], tuple[ServerThread, dict[str, int]]]]:
    started: list[ServerThread] = []

    def make(tweak: Tweak) -> tuple[ServerThread, dict[str, int]]:
        srv, ports = start_server(tmp_path, ca, tweak, resolver=world())
        started.append(srv)
        return srv, ports

    yield make
    for srv in started:
        srv.stop()


def account(srv: ServerThread, name: str = "alice") -> Account:
    assert srv.running is not None
    return srv.running.store.account(name)


def pretrain(srv: ServerThread) -> None:
    async def train() -> None:
        f = filter_for(account(srv), JunkFilter())
        for m in corpus.ham(60, seed=3):
            f.train(m, "ham")
        for m in corpus.spam(30, seed=4):
            f.train(m, "spam")

    srv.call(train())


def send(
    port: int,
    data: bytes,
    mail_from: str,
    rcpts: list[str] | None = None,
    source: str = "127.0.0.1",
) -> dict[str, tuple[int, bytes]]:
    with smtplib.SMTP("127.0.0.1", port, timeout=20, source_address=(source, 0)) as c:
        c.ehlo("relay.example.test")
        return c.sendmail(mail_from, rcpts or ["alice@example.test"], data)


def msg(sender: str, body: str, subject: str = "hello", extra: str = "") -> bytes:
    return (
        f"From: {sender}\r\nTo: alice@example.test\r\nSubject: {subject}\r\n{extra}"
        f"Message-Id: <{abs(hash((sender, body, subject, extra)))}@example.org>\r\n\r\n"
        f"{body}\r\n"
    ).encode()


def spam_body() -> str:
    return "congratulations winner claim your cash prize now click here casino bonus tonight"


def test_mailing_list_ruleset_bypasses_dmarc_and_junk_filter(
    make_server: Callable[[Tweak], tuple[ServerThread, dict[str, int]]],
) -> None:
    srv, ports = make_server(base)
    pretrain(srv)
    list_id = "List-Id: Garden club <garden.lists.example.org>\r\n"
    spammy = msg("Mallory <m@strict.example>", spam_body(), "WINNER!!! prize", list_id)
    send(ports["smtp"], spammy, "garden-bounces@lists.example.org")
    listed = stored(srv, "alice", "Lists/Garden")
    assert len(listed) == 1
    assert b"X-Mox-Reason: list-allow; lists.example.org\r\n" in listed[0]
    assert stored(srv, "alice", "Inbox") == []
    assert stored(srv, "alice", "Rejects") == []
    assert stored_meta(srv, "alice", "Lists/Garden")[0]["mailing_list"] is True
    # Without the List-Id the ruleset does not match: the From domain's DMARC policy refuses.
    plain = msg("Mallory <m@strict.example>", spam_body(), "WINNER!!! again")
    with pytest.raises(smtplib.SMTPDataError) as info:
        send(ports["smtp"], plain, "garden-bounces@lists.example.org")
    assert (info.value.smtp_code, info.value.smtp_error) == (
        550,
        b"5.7.26 DMARC policy rejects message",
    )
    # The list's domain must be verified: the same List-Id from elsewhere is not list mail
    # (SPF of lists.example.org fails from 127.0.0.2), so DMARC refuses it again.
    with pytest.raises(smtplib.SMTPDataError) as info:
        send(
            ports["smtp"],
            msg("Mallory <m@strict.example>", "hi", "forged list", list_id),
            "garden-bounces@lists.example.org",
            source="127.0.0.2",
        )
    assert info.value.smtp_code == 550
    assert len(stored(srv, "alice", "Lists/Garden")) == 1


def test_headers_regexp_routes_into_mailbox(
    make_server: Callable[[Tweak], tuple[ServerThread, dict[str, int]]],
) -> None:
    srv, ports = make_server(base)
    send(
        ports["smtp"],
        msg("Pat <pat@example.org>", "status of the launch", "weekly", "X-Project:  Apollo \r\n"),
        "pat@example.org",
    )
    send(
        ports["smtp"],
        msg(
            "Pat <pat@example.org>", "status of the other launch", "weekly", "X-Project: Gemini\r\n"
        ),
        "pat@example.org",
    )
    apollo = stored(srv, "alice", "Projects/Apollo")
    assert len(apollo) == 1
    assert b"X-Project:  Apollo" in apollo[0]
    assert b"X-Mox-Reason: no-bad-signals" in apollo[0]  # the junk filter still ran
    inbox = stored(srv, "alice", "Inbox")
    assert len(inbox) == 1
    assert b"Gemini" in inbox[0]


def _junk_from_ip(srv: ServerThread, ip: str, n: int) -> None:
    """Messages from `ip` that the user marked as junk: the IP gets a junk reputation."""
    acc = account(srv)

    async def deliver() -> None:
        for i in range(n):
            await acc.deliver(
                "Junk",
                msg(f"Spammer {i} <s{i}@spam{i}.example>", f"buy now offer {i}"),
                flags=["$Junk"],
                meta={"remote_ip": ip},
            )
        trainer = trainer_for(acc)
        assert trainer is not None
        await trainer.idle()

    srv.call(deliver())


def test_forward_ruleset_skips_forwarding_ip_reputation_and_dmarc(
    make_server: Callable[[Tweak], tuple[ServerThread, dict[str, int]]],
) -> None:
    srv, ports = make_server(base)
    _junk_from_ip(srv, "127.0.0.3", 3)
    note = msg("Friend <friend@strict.example>", "see you at the garden party on sunday")
    direct = msg("Friend <friend@example.org>", "see you at the garden party on sunday")
    # Directly from the forwarder's IP (not through the forward ruleset): bad IP reputation
    # and a failing iprev refuse it.
    with pytest.raises(smtplib.SMTPDataError) as info:
        send(ports["smtp"], direct, "someone@forwarder.example", source="127.0.0.3")
    assert info.value.smtp_code == 451
    rejected = stored(srv, "alice", "Rejects")
    assert len(rejected) == 1
    assert b"X-Mox-Reason" not in rejected[0]  # the reason is in the log for refusals
    # Forwarded (MAIL FROM matches the ruleset, SPF verifies forwarder.example): the IP and the
    # DMARC policy of strict.example are not held against it.
    send(ports["smtp"], note, "fwd+alice@forwarder.example", source="127.0.0.3")
    inbox = stored(srv, "alice", "Inbox")
    assert len(inbox) == 1
    assert b"X-Mox-Reason: no-bad-signals" in inbox[0]
    assert b"dmarc=fail" in inbox[0]  # still recorded in Authentication-Results
    meta = stored_meta(srv, "alice", "Inbox")[0]
    assert meta["forward"] == {"domain": "forwarder.example"}
    # Trained later, the forwarded message does not count for the forwarder's IP either.
    acc = account(srv)

    async def mark_junk() -> str:
        box = acc.get_mailbox("Inbox")
        assert box is not None
        uid = acc.list_messages(box.id)[0].uid
        await acc.store_flags(box.id, [uid], "add", ["$Junk"])
        trainer = trainer_for(acc)
        assert trainer is not None
        await trainer.idle()
        f = filter_for(acc, JunkFilter())
        row = f.conn.execute(
            "SELECT ip, spf FROM trained WHERE mailbox_id = ? AND uid = ?", (box.id, uid)
        ).fetchone()
        return f"{row[0]}|{row[1]}"

    assert srv.call(mark_junk()) == "|"


def test_accept_rejects_to_mailbox(
    make_server: Callable[[Tweak], tuple[ServerThread, dict[str, int]]],
) -> None:
    def tweak(data: dict[str, Any]) -> None:
        base(data)
        rulesets = data["accounts"]["alice"]["destinations"]["alice@example.test"]["rulesets"]
        rulesets.insert(
            0,
            {
                "msg_from_regexp": r"@strict\.example$",
                "accept_rejects_to_mailbox": "Maybe",
                "mailbox": "Inbox",
            },
        )

    srv, ports = make_server(tweak)
    send(ports["smtp"], msg("Mallory <m@strict.example>", "hello there"), "m@example.org")
    maybe = stored(srv, "alice", "Maybe")
    assert len(maybe) == 1
    assert b"X-Mox-Reason: dmarc-policy\r\n" in maybe[0]
    acc = account(srv)

    async def flags() -> list[str]:
        box = acc.get_mailbox("Maybe")
        assert box is not None
        return sorted(acc.list_messages(box.id)[0].flags)

    assert "\\Seen" in srv.call(flags())
    assert stored(srv, "alice", "Inbox") == []


def test_subjectpass_challenge_and_token(
    make_server: Callable[[Tweak], tuple[ServerThread, dict[str, int]]],
) -> None:
    def tweak(data: dict[str, Any]) -> None:
        base(data)
        data["accounts"]["alice"]["subject_pass"] = {"period": 3600}

    srv, ports = make_server(tweak)
    note = msg("Carol <carol@example.org>", "a plain note about the garden party", "party")
    with pytest.raises(smtplib.SMTPDataError) as info:
        send(ports["smtp"], note, "carol@example.org", source="127.0.0.2")  # blocklisted
    assert info.value.smtp_code == 550
    err = info.value.smtp_error
    assert isinstance(err, bytes)
    text = err.decode()
    assert text.startswith("5.7.1 Your message resembles spam.")
    m = re.search(r"\(pass:[A-Za-z0-9_-]+\)", text)
    assert m is not None
    token = m.group(0)
    assert len(stored(srv, "alice", "Rejects")) == 1
    # A wrong token does not help.
    bad = token[:-3] + ("AA)" if not token.endswith("AA)") else "BB)")
    with pytest.raises(smtplib.SMTPDataError) as info:
        send(
            ports["smtp"],
            msg("Carol <carol@example.org>", "again", f"party {bad}"),
            "carol@example.org",
            source="127.0.0.2",
        )
    assert info.value.smtp_code == 550
    # The token is bound to the From address.
    with pytest.raises(smtplib.SMTPDataError):
        send(
            ports["smtp"],
            msg("Dan <dan@example.org>", "other", f"party {token}"),
            "dan@example.org",
            source="127.0.0.2",
        )
    send(
        ports["smtp"],
        msg("Carol <carol@example.org>", "a plain note about the garden party", f"party {token}"),
        "carol@example.org",
        source="127.0.0.2",
    )
    inbox = stored(srv, "alice", "Inbox")
    assert len(inbox) == 1
    assert b"X-Mox-Reason: subjectpass\r\n" in inbox[0]


def test_partial_refusal_delivers_others_and_sends_dsn(
    make_server: Callable[[Tweak], tuple[ServerThread, dict[str, int]]],
) -> None:
    srv, ports = make_server(base)
    pretrain(srv)
    spammy = corpus.spam(1, seed=50)[0]
    refused = send(
        ports["smtp"], spammy, "bob@other.test", ["alice@example.test", "bob@other.test"]
    )
    assert refused == {}  # 250 for the transaction: bob got it
    assert len(stored(srv, "bob", "Lists/Bob")) >= 1
    assert len(stored(srv, "alice", "Rejects")) == 1
    # The DSN about alice goes to the sender through the queue.
    deadline = time.monotonic() + 15
    dsns: list[bytes] = []
    while time.monotonic() < deadline:
        dsns = [m for m in stored(srv, "bob", "Lists/Bob") if b"multipart/report" in m]
        if dsns:
            break
        time.sleep(0.1)
    assert len(dsns) == 1
    dsn = dsns[0]
    assert b"Final-Recipient: rfc822; alice@example.test" in dsn
    assert b"Status: 4.7.1" in dsn
    assert b"Action: failed" in dsn
    assert b"Content-Type: text/rfc822-headers" in dsn  # as mox: headers only
    assert b"bob@other.test" not in dsn.split(b"message/delivery-status")[1].split(b"--mox-")[0]
    # Every copy refused for the same reason: the reply is that refusal, no DSN.
    with pytest.raises(smtplib.SMTPDataError) as info:
        send(ports["smtp"], corpus.spam(1, seed=52)[0], "bob@other.test")
    assert info.value.smtp_code == 451


def test_introbox_for_senders_without_reputation(
    make_server: Callable[[Tweak], tuple[ServerThread, dict[str, int]]],
) -> None:
    def tweak(data: dict[str, Any]) -> None:
        base(data)
        data["accounts"]["alice"]["introbox"] = "Introbox"

    srv, ports = make_server(tweak)
    send(ports["smtp"], msg("Erin <erin@example.org>", "first contact"), "erin@example.org")
    assert len(stored(srv, "alice", "Introbox")) == 1
    assert stored(srv, "alice", "Inbox") == []
    srv.call(account(srv).record_outgoing(["erin@example.org"]))
    send(ports["smtp"], msg("Erin <erin@example.org>", "thanks for writing"), "erin@example.org")
    inbox = stored(srv, "alice", "Inbox")
    assert len(inbox) == 1
    assert b"X-Mox-Reason: msgtofull" in inbox[0]


def test_jittered_threshold_varies_within_bounds() -> None:
    values = [analyze.jittered(0.95) for _ in range(200)]
    assert all(0.9 <= v <= 0.999 for v in values)
    assert max(values) - min(values) > 0.02  # it does vary
    assert all(0.45 <= analyze.jittered(0.5) <= 0.55 for _ in range(50))


@pytest.mark.parametrize(
    ("rs", "err"),
    [
        ({"mailbox": "X"}, "at least one of"),
        ({"is_forward": True, "smtp_mail_from_regexp": "x", "mailbox": "X"}, "is_forward needs"),
        ({"msg_from_regexp": "(", "mailbox": "X"}, "not a valid regular expression"),
        ({"headers_regexp": {"^a$": "["}, "mailbox": "X"}, "not a valid regular expression"),
        ({"verified_domain": "not a domain!", "mailbox": "X"}, "expected a domain name"),
    ],
)
def test_ruleset_config_errors(rs: dict[str, Any], err: str) -> None:
    with pytest.raises(ValueError, match=err):
        Ruleset.model_validate(rs)


def test_mixed_refusals_give_one_multiple_errors_reply(
    make_server: Callable[[Tweak], tuple[ServerThread, dict[str, int]]],
) -> None:
    srv, ports = make_server(base)
    pretrain(srv)
    # Forwarded to alice (no DMARC refusal, but junk content: 451); bob has no ruleset, so
    # strict.example's DMARC policy refuses his copy (550): no copy delivered, one reply.
    spammy = re.sub(
        rb"From: Promo <[^>]*>", b"From: Promo <promo@strict.example>", corpus.spam(1, seed=70)[0]
    )
    with pytest.raises(smtplib.SMTPDataError) as info:
        send(
            ports["smtp"],
            spammy,
            "fwd+alice@forwarder.example",
            ["alice@example.test", "bob@other.test"],
            source="127.0.0.3",
        )
    assert (info.value.smtp_code, info.value.smtp_error) == (554, b"5.3.0 multiple errors")
    assert len(stored(srv, "alice", "Rejects")) == 1
    assert stored(srv, "bob", "Lists/Bob") == []


def _meta(spf: str = "", dkim: tuple[str, ...] = ()) -> dict[str, Any]:
    return {
        "auth": {
            "spf": {"status": "pass", "domain": spf, "identity": "mailfrom"} if spf else {},
            "dkim": [{"status": "pass", "domain": d} for d in dkim],
        }
    }


def test_ruleset_matching_rules() -> None:
    folded = b"From: A <a@Example.ORG>\r\nList-Id: Garden\r\n <garden.lists.example.org>\r\n"
    rs_list = Ruleset.model_validate(LIST_RULESET)
    assert rulesets.match([rs_list], "x@y", folded, _meta(dkim=("sub.lists.example.org",)))
    assert rulesets.match([rs_list], "x@y", folded, _meta(spf="lists.example.org"))
    assert rulesets.match([rs_list], "x@y", folded, _meta(spf="badlists.example.org")) is None
    # A subdomain verifies the ruleset's domain, but the list domain itself must be verified.
    assert not rulesets.is_list_domain("lists.example.org", _meta(dkim=("sub.lists.example.org",)))
    assert rulesets.is_list_domain("lists.example.org", _meta(dkim=("lists.example.org",)))
    by_from = Ruleset.model_validate({"msg_from_regexp": "^a@example\\.org$", "mailbox": "A"})
    assert rulesets.match([by_from], "", folded, {}) is by_from  # domain lower-cased
    two_froms = b"From: a@example.org, b@example.org\r\n"
    assert rulesets.match([by_from], "", two_froms, {}) is None  # only a single From matches
    first = Ruleset.model_validate({"smtp_mail_from_regexp": "@example", "mailbox": "First"})
    second = Ruleset.model_validate(
        {"smtp_mail_from_regexp": "", "msg_from_regexp": "a@", "mailbox": "2"}
    )
    assert rulesets.match([first, second], "m@example.net", folded, {}) is first
    assert rulesets.match([first, second], "m@other.net", folded, {}) is second


def test_subject_pass_and_introbox_need_junk_filter() -> None:
    extras: list[dict[str, Any]] = [{"introbox": "Introbox"}, {"subject_pass": {}}]
    for extra in extras:
        data: dict[str, Any] = {
            "domain": "example.test",
            "destinations": {"a@example.test": {}},
            **extra,
        }
        with pytest.raises(ValueError, match="need a junk_filter"):
            AccountConfig.model_validate(data)
        AccountConfig.model_validate({**data, "junk_filter": {}})
