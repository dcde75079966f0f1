"""The reputation checks of mox's decision order, on a history written into the junk DB, and
the whole decision (`analyze`) on top of it."""

from __future__ import annotations

import itertools
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from mox.config.model import Account as AccountConfig
from mox.config.model import JunkFilter
from mox.junk.analyze import Reputation, analyze, reputation
from mox.junk.bayes import Filter
from mox.junk.train import SenderFacts, close_filter, filter_for
from mox.store import Account, Store
from tests.junk import corpus

NOW = time.time()
_keys = itertools.count()


@pytest.fixture
async def acc(tmp_path: Path) -> AsyncIterator[Account]:
    async with Store(tmp_path) as store:
        account = store.account("alice")
        yield account
        close_filter(account)


def history(filt: Filter, *rows: tuple[str, str, dict[str, Any]]) -> None:
    for i, (kind, addr, extra) in enumerate(rows):
        domain = addr.rpartition("@")[2]
        filt.conn.execute(
            "INSERT INTO trained (key, kind, changed, from_addr, from_domain, from_org, "
            "from_validated, dkim, spf, ip) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (
                f"msg/{next(_keys)}",
                kind,
                extra.get("changed", NOW - 1000 + i),
                addr,
                domain,
                extra.get("org", domain),
                int(extra.get("validated", False)),
                extra.get("dkim", ""),
                extra.get("spf", ""),
                extra.get("ip", ""),
            ),
        )


def facts(addr: str, **kw: Any) -> SenderFacts:
    domain = addr.rpartition("@")[2]
    return SenderFacts(from_addr=addr, from_domain=domain, from_org=kw.pop("org", domain), **kw)


async def test_exact_address_latest_wins(acc: Account) -> None:
    f = filter_for(acc, JunkFilter())
    history(f, ("spam", "a@x.test", {}), ("spam", "a@x.test", {}))
    assert reputation(acc, f, facts("a@x.test")) == Reputation(True, False, "msgfromfull")
    # History counts only at the same validation level (as mox).
    assert reputation(acc, f, facts("a@x.test", from_validated=True)).method == "none"
    history(f, ("ham", "a@x.test", {"changed": NOW}))
    assert reputation(acc, f, facts("a@x.test")) == Reputation(False, False, "msgfromfull")


async def test_validated_history_unvalidated_claim(acc: Account) -> None:
    f = filter_for(acc, JunkFilter())
    history(f, ("ham", "boss@corp.test", {"validated": True}))
    assert reputation(acc, f, facts("boss@corp.test", from_validated=True)) == Reputation(
        False, True, "msgfromfull"
    )
    # Someone without DMARC pass claims to be them: junk, but not conclusive (history is ham).
    assert reputation(acc, f, facts("boss@corp.test")) == Reputation(True, False, "msgfromfull")


async def test_sent_to_and_domains(acc: Account) -> None:
    f = filter_for(acc, JunkFilter())
    await acc.record_outgoing(["Friend@Pals.test"])
    assert reputation(acc, f, facts("friend@pals.test")) == Reputation(False, True, "msgtofull")
    history(f, *[("ham", f"u{i}@good.test", {}) for i in range(5)])
    assert reputation(acc, f, facts("new@good.test")).method == "msgfromdomain"
    assert reputation(acc, f, facts("new@good.test")).junk is False
    history(f, *[("ham", f"v{i}@signed.test", {"validated": True}) for i in range(5)])
    assert reputation(acc, f, facts("new@signed.test", from_validated=True)).junk is False
    assert reputation(acc, f, facts("new@signed.test")).junk is None  # forged From: no credit
    history(f, *[("spam", f"s{i}@sub.bad.test", {"org": "bad.test"}) for i in range(3)])
    assert reputation(acc, f, facts("x@other.bad.test", org="bad.test")) == Reputation(
        True, True, "msgfromorgdomain"
    )
    history(f, ("spam", "a@mixed.test", {}), ("spam", "b@mixed.test", {}))
    assert reputation(acc, f, facts("c@mixed.test")).junk is None  # 2 localparts: not enough


async def test_dkim_spf_and_ip(acc: Account) -> None:
    f = filter_for(acc, JunkFilter())
    history(f, *[("spam", f"r{i}@r{i}.test", {"dkim": "esp.test other.test"}) for i in range(4)])
    got = reputation(acc, f, facts("n@n.test", dkim=("esp.test",)))
    assert got == Reputation(True, False, "dkimspf")
    history(f, *[("ham", f"h{i}@h{i}.test", {"spf": "list.test"}) for i in range(4)])
    assert reputation(acc, f, facts("n@n2.test", spf="list.test")).junk is False
    history(f, *[("spam", f"i{i}@i{i}.test", {"ip": f"198.51.100.{i}"}) for i in range(5)])
    assert reputation(acc, f, facts("n@n3.test", ip="198.51.100.9")) == Reputation(
        True, False, "ip2"
    )
    assert reputation(acc, f, facts("n@n3.test", ip="203.0.113.1")).junk is None


async def test_analyze_order(acc: Account) -> None:
    cfg = AccountConfig.model_validate(
        {"domain": "example.test", "destinations": {"alice@example.test": {}}, "junk_filter": {}}
    )
    f = filter_for(acc, JunkFilter())
    for m in corpus.ham(55, seed=70):
        f.train(m, "ham")
    for m in corpus.spam(30, seed=71):
        f.train(m, "spam")
    spam = corpus.spam(1, seed=72)[0]
    header = spam.split(b"\r\n\r\n")[0] + b"\r\n"
    meta: dict[str, Any] = {"remote_ip": "192.0.2.1", "auth": {"iprev": {"status": "pass"}}}

    async def run(data: bytes, m: dict[str, Any], tls: bool = True) -> Any:
        return await analyze(
            account=acc,
            config=cfg,
            header=header,
            data=data,
            meta=m,
            rcpt="alice@example.test",
            tls=tls,
            resolver=None,
            dnsbls=[],
        )

    v = await run(spam, meta)
    assert (v.accept, v.reason) == (False, "junk-content")
    softfail = {**meta, "auth": {**meta["auth"], "spf": {"status": "softfail"}}}
    v = await run(corpus.ham(1, seed=73)[0], softfail)
    assert (v.accept, v.reason) == (False, "spf-policy")  # no reputation + SPF fail
    ham = corpus.ham(1, seed=74)[0]
    v = await run(ham, meta, tls=False)
    assert v.accept
    assert v.first_time
    assert v.header().startswith(b"X-Mox-Reason: no-bad-signals; junk probability 0.0")
