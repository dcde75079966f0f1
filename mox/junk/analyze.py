"""The junk decision for one incoming message and one account, in mox's order (reference
§1.2, smtpserver/analyze.go and reputation.go), as far as our data goes:

1. Reputation from this account's own history (only messages with $Junk or $NotJunk count):
   exact From address, addresses the account sent to, From domain and organisational domain,
   verified DKIM and SPF domains, IP ranges. Conclusive ham accepts, conclusive junk refuses.
2. Without reputation: SPF fail/softfail refuses (`spf-policy`); an iprev that did not pass
   together with a junk signal refuses (`iprev`).
3. A valid subjectpass token in the Subject (account `subject_pass`) accepts.
4. The Bayesian content score against the account's threshold, with a random jitter of up to
   ±0.05 (0.25 when iprev failed, the connection had no TLS, the recipient is not in To/Cc
   unless forwarded, or there is a junk signal). Not "significant" (fewer than 50 ham trained)
   is accepted unless iprev failed or there is a junk signal.
5. Content OK: DNS blocklists (RFC 5782), listed refuses (`dns-blocklisted`).
6. Refused, DMARC-verified, without reputation and only blocklisted or mildly spammy, with
   subjectpass on: a permanent refusal that gives the token (`give-subjectpass`).

Rulesets, the DMARC policy, Introbox and the first-time-sender delay are applied around this in
`mox.junk.smtp`. Refusals are temporary (451, never 5xx except the subjectpass challenge, so a
legitimate sender gets a DSN), and a copy goes to the account's Rejects mailbox, which keeps at
most 1000 messages for 14 days (one copy per Message-ID; removed when the message is accepted
later), as mox. Accepted messages from a sender without any reputation wait the
first-time-sender delay (15 s) unless the account sets `no_first_time_sender_delay`.

Deviation from mox: "we sent to this domain" is not a signal (the store keeps full addresses
only).
"""

from __future__ import annotations

import ipaddress
import logging
import random
import time
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from email.parser import BytesHeaderParser
from email.utils import getaddresses
from typing import Any

from mox.config.model import Account as AccountConfig
from mox.dns.resolver import Resolver
from mox.junk import dnsbl, subjectpass
from mox.junk.bayes import Filter
from mox.junk.train import SenderFacts, filter_for, sender_facts
from mox.store import Account, MailboxExists

__all__ = ["Reputation", "Verdict", "analyze", "jittered", "keep_reject", "reputation"]

log = logging.getLogger(__name__)

FIRST_TIME_SENDER_DELAY = 15.0  # as mox; tests shorten it
REJECTS_MAX_AGE = timedelta(days=14)
REJECTS_MAX = 1000
STRICT_THRESHOLD = 0.25
THRESHOLD_JITTER = 0.05  # reference §1.2 step 13: the threshold varies by up to this much
_random = random.SystemRandom()

DAY = 86400.0
YEAR = 365 * DAY


@dataclass(frozen=True, slots=True)
class Reputation:
    junk: bool | None  # None: nothing known
    conclusive: bool
    method: str  # mox's names: msgfromfull, msgtofull, msgfromdomain, ..., none


JUNK_REPLY = (451, "4.7.1", "message looks like junk, try again later")


@dataclass(frozen=True, slots=True)
class Verdict:
    accept: bool
    reason: str  # mox's reason codes
    detail: str  # for X-Mox-Reason and the log
    first_time: bool = False  # no reputation at all: the first-time-sender delay applies
    method: str = "none"  # the reputation method that decided, mox's names
    # Refused: the reply (temporary by default, as mox: a legitimate sender gets a DSN).
    code: int = JUNK_REPLY[0]
    enhanced: str = JUNK_REPLY[1]
    message: str = JUNK_REPLY[2]
    # Accepted: another mailbox than the destination's (ruleset, introbox, accepted reject),
    # and whether the copy is stored as seen (accepted rejects, as mox).
    mailbox: str | None = None
    seen: bool = False
    record: bool = True  # add X-Mox-Reason (not for accounts without a junk filter)

    def header(self) -> bytes:
        text = f"{self.reason}; {self.detail}" if self.detail else self.reason
        text = text.replace("\r", " ").replace("\n", " ")
        return f"X-Mox-Reason: {text}\r\n".encode()


NONE = Reputation(None, False, "none")


def _ratio(rows: list[tuple[str]]) -> float:
    return sum(1 for r in rows if r[0] == "spam") / len(rows)


def reputation(
    account: Account, filt: Filter, f: SenderFacts, now: float | None = None
) -> Reputation:
    """The account's opinion of the sender, first hit wins (mox's reputation())."""
    now = time.time() if now is None else now
    db = filt.conn
    if f.from_addr:
        # Exact From address with the same validation level, last 2 messages, 3 years.
        rows = db.execute(
            "SELECT kind FROM trained WHERE from_addr = ? AND from_validated = ? AND changed > ? "
            "ORDER BY changed DESC LIMIT 2",
            (f.from_addr, int(f.from_validated), now - 3 * YEAR),
        ).fetchall()
        if rows:
            if rows[0][0] == "ham":
                return Reputation(False, f.from_validated, "msgfromfull")
            if all(r[0] == "spam" for r in rows):
                return Reputation(True, f.from_validated, "msgfromfull")
        if not f.from_validated:
            # Unvalidated From while validated history exists: someone pretends to be them.
            row = db.execute(
                "SELECT kind FROM trained WHERE from_addr = ? AND from_validated = 1 "
                "AND changed > ? ORDER BY changed DESC LIMIT 1",
                (f.from_addr, now - 3 * YEAR),
            ).fetchone()
            if row is not None:
                return Reputation(True, row[0] == "spam", "msgfromfull")
        if account.has_sent_to(f.from_addr):
            return Reputation(False, True, "msgtofull")
    for col, value, method in (
        ("from_domain", f.from_domain, "msgfromdomain"),
        ("from_org", f.from_org, "msgfromorgdomain"),
    ):
        if not value:
            continue
        # Same validation level as the exact-address check: a forged From of a good domain
        # gets no credit from the real domain's history.
        rows = db.execute(
            f"SELECT kind, from_addr FROM trained WHERE {col} = ? AND from_validated = ? "  # noqa: S608
            "AND changed > ? ORDER BY changed DESC LIMIT 20",
            (value, int(f.from_validated), now - 2 * YEAR),
        ).fetchall()
        if not rows:
            continue
        ham = sum(1 for r in rows if r[0] == "ham")
        if ham > 0.8 * len(rows):
            return Reputation(False, True, method)
        localparts = {r[1].partition("@")[0] for r in rows}
        if ham == 0 and len(localparts) >= 3:
            return Reputation(True, True, method)
    # Verified DKIM domains and SPF domain: per signal spam ratio, 6 months, 50 messages.
    signals: list[float] = []
    for d in f.dkim:
        rows = db.execute(
            "SELECT kind FROM trained WHERE (' ' || dkim || ' ') LIKE ? AND changed > ? "
            "ORDER BY changed DESC LIMIT 50",
            (f"% {d} %", now - 182 * DAY),
        ).fetchall()
        if rows:
            signals.append(_ratio(rows))
    if f.spf:
        rows = db.execute(
            "SELECT kind FROM trained WHERE spf = ? AND changed > ? ORDER BY changed DESC LIMIT 50",
            (f.spf, now - 182 * DAY),
        ).fetchall()
        if rows:
            signals.append(_ratio(rows))
    if signals:
        if all(s < 0.1 for s in signals):
            return Reputation(False, False, "dkimspf")
        if all(s > 0.9 for s in signals):
            return Reputation(True, False, "dkimspf")
    return _ip_reputation(db, f.ip, now)


def _ip_reputation(db: Any, ip: str, now: float) -> Reputation:
    try:
        addr = ipaddress.ip_address(ip)
    except ValueError:
        return NONE
    rows = db.execute(
        "SELECT kind, ip FROM trained WHERE ip != '' AND changed > ? "
        "ORDER BY changed DESC LIMIT 1000",
        (now - 90 * DAY,),
    ).fetchall()
    levels = ((32, 64, 2, "ip1"), (26, 48, 5, "ip2"), (21, 32, 10, "ip3"))
    for v4, v6, need, method in levels:
        net = ipaddress.ip_network(f"{addr}/{v4 if addr.version == 4 else v6}", strict=False)
        kinds: list[tuple[str]] = []
        for kind, other in rows:
            try:
                if ipaddress.ip_address(other) in net:
                    kinds.append((kind,))
            except ValueError:
                continue
        kinds = kinds[:50]
        if len(kinds) < need:
            continue
        ratio = _ratio(kinds)
        if ratio > 0.9:  # a strong signal is required
            return Reputation(True, False, method)
        if ratio < 0.1:
            return Reputation(False, False, method)
    return NONE


def jittered(threshold: float) -> float:
    """The threshold with mox's small random jitter, so a spammer cannot probe it exactly."""
    value = threshold + _random.uniform(-THRESHOLD_JITTER, THRESHOLD_JITTER)
    return min(max(value, 0.01), 0.999)


async def analyze(
    *,
    account: Account,
    config: AccountConfig,
    header: bytes,
    data: bytes,
    meta: dict[str, Any],
    rcpt: str,
    tls: bool,
    resolver: Resolver | None,
    dnsbls: list[str],
    forward: bool = False,
) -> Verdict:
    """The verdict for delivering `data` to `account` (config with `junk_filter` set).
    `forward`: a forward ruleset matched (its sender facts are already left out of `meta`)."""
    params = config.junk_filter
    if params is None:
        return Verdict(True, "no-junk-filter", "")
    filt = filter_for(account, params)
    facts = sender_facts(header, meta)
    rep = reputation(account, filt, facts)
    if rep.conclusive:
        if rep.junk:
            return Verdict(False, "reputation", rep.method, method=rep.method)
        return Verdict(True, rep.method, "", method=rep.method)
    auth = meta.get("auth") or {}
    spf_status = (auth.get("spf") or {}).get("status", "")
    iprev_status = (auth.get("iprev") or {}).get("status", "pass")
    dmarc_pass = (auth.get("dmarc") or {}).get("status") == "pass"
    if forward:
        spf_status = iprev_status = ""  # signals of the forwarding server, not the sender
    if rep.junk is None and spf_status in ("fail", "softfail"):
        return Verdict(False, "spf-policy", f"spf {spf_status}")
    suspicious_iprev = iprev_status not in ("pass", "")
    if suspicious_iprev and rep.junk:
        return Verdict(False, "iprev", f"iprev {iprev_status} and {rep.method} junk")
    iprev_fail = iprev_status == "fail"
    sp = config.subject_pass
    if sp is not None and facts.from_addr:
        token = subjectpass.token_in_subject(subjectpass.subject_of(header))
        if token is not None:
            key = subjectpass.key_for(account.dir)
            if subjectpass.verify(key, facts.from_addr, token, sp.period):
                return Verdict(True, "subjectpass", "", method=rep.method)
            log.info("invalid subjectpass token", extra={"from": facts.from_addr})
    in_to_cc = forward or _rcpt_in_to_cc(header, rcpt)
    base = jittered(params.threshold)
    threshold = base
    reason = "junk-content"
    if iprev_fail or not tls or not in_to_cc or rep.junk:
        threshold = min(threshold, STRICT_THRESHOLD)
        reason = "junk-content-strict"
    result = filt.classify(data)
    content_ok = result.probability <= threshold or (
        not result.significant and not iprev_fail and not rep.junk
    )
    detail = result.describe()

    def refuse(reason: str, why: str, mild: bool) -> Verdict:
        # mox: a DMARC-verified sender without reputation that is only blocklisted or mildly
        # spammy gets a token to put in the subject (permanent: resending is the remedy).
        if sp is not None and dmarc_pass and rep.junk is None and mild and facts.from_addr:
            token = subjectpass.generate(subjectpass.key_for(account.dir), facts.from_addr)
            return Verdict(
                False,
                "give-subjectpass",
                f"{reason}: {why}",
                code=550,
                enhanced="5.7.1",
                message=subjectpass.EXPLANATION + token,
            )
        return Verdict(False, reason, why, method=rep.method)

    if not content_ok:
        mild = result.probability < params.threshold - 0.2  # mox's junkSubjectpass
        return refuse(reason, f"{detail}, threshold {threshold:.2f}", mild)
    if dnsbls and resolver is not None and facts.ip:
        hit = await dnsbl.check(resolver, dnsbls, facts.ip)
        if hit is not None:
            zone, listing = hit
            why = f"{facts.ip} listed in {zone}" + (
                f": {listing.explanation}" if listing.explanation else ""
            )
            return refuse("dns-blocklisted", why, True)
    if rep.junk is False:
        return Verdict(True, rep.method, detail, method=rep.method)
    return Verdict(True, "no-bad-signals", detail, first_time=rep.method == "none")


def _rcpt_in_to_cc(header: bytes, rcpt: str) -> bool:
    msg = BytesHeaderParser().parsebytes(header, headersonly=True)
    values = [str(v) for v in msg.get_all("To", []) + msg.get_all("Cc", [])]
    return rcpt.lower() in {a.lower() for _, a in getaddresses(values)}


def message_id(header: bytes) -> str:
    msg = BytesHeaderParser().parsebytes(header, headersonly=True)
    return str(msg.get("Message-ID") or "").strip()


def _rejects_with_id(account: Account, mailbox: str, msgid: str) -> tuple[int, list[int]]:
    box = account.get_mailbox(mailbox)
    if box is None or not msgid:
        return 0, []
    uids = [
        m.uid
        for m in account.list_messages(box.id)
        if account.message_meta(m).get("message_id") == msgid
    ]
    return box.id, uids


async def keep_reject(
    account: Account, mailbox: str, header: bytes, data: bytes, meta: dict[str, Any]
) -> int | None:
    """Store a refused message in the Rejects mailbox (seen, so it does not nag; once per
    Message-ID), then tidy it: older than 14 days or beyond the newest 1000 is removed, as mox.
    Returns the new UID, or None when the message was already there."""
    msgid = message_id(header)
    if _rejects_with_id(account, mailbox, msgid)[1]:
        return None  # a retry of a refused message: one copy is enough
    if account.get_mailbox(mailbox) is None:
        try:
            await account.create_mailbox(mailbox)
        except MailboxExists:
            pass
    meta = {**meta, "message_id": msgid, "rejected": True}
    msg = await account.deliver(mailbox, data, flags=["\\Seen"], meta=meta)
    box = account.get_mailbox(mailbox)
    if box is not None:
        msgs = account.list_messages(box.id)
        cutoff = datetime.now(UTC) - REJECTS_MAX_AGE
        old = {m.uid for m in msgs if m.internal_date < cutoff}
        old |= {m.uid for m in msgs[: max(0, len(msgs) - REJECTS_MAX)]}
        if old:
            await _remove(account, box.id, sorted(old))
    return msg.uid


async def forget_reject(account: Account, mailbox: str, header: bytes) -> int:
    """A message that is now accepted no longer needs its Rejects copy (as mox)."""
    box_id, uids = _rejects_with_id(account, mailbox, message_id(header))
    if uids:
        await _remove(account, box_id, uids)
    return len(uids)


async def _remove(account: Account, mailbox_id: int, uids: list[int]) -> None:
    await account.store_flags(mailbox_id, uids, "add", ["\\Deleted"])
    await account.expunge(mailbox_id, uids)
