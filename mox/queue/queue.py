"""The persistent outgoing queue (as mox's queue package).

Implementation notes:
- `add()` writes the message file (fsynced) and commits one row per recipient before it returns,
  so a 250 to the submitting client means the message survives a crash.
- One database connection, used from one worker thread (single-threaded executor); the delivery
  loop runs on the event loop and hands database work to that thread.
- Retries as mox: first attempt at once, then 7.5 minutes doubling (±5 s jitter), 8 attempts; a
  delayed-delivery DSN after the 5th failure, a failure DSN after the last one or on a permanent
  error (RFC 3464), each honouring NOTIFY (RFC 3461 §4.1). DSNs go straight into the sender
  account's Inbox, as mox does.
- Recipients of one message and one domain go in one SMTP transaction.
- Config hold rules (as mox's HoldRule) hold matching messages when they are added.
- A hard bounce can put the recipient on the sending account's suppression list
  (mox/queue/suppression.py); submissions to listed addresses are refused at RCPT.
- NOTIFY=SUCCESS (RFC 3461 §4.1): a "delivered" DSN after local delivery, a "relayed" one
  when the next hop does not support DSN (RFC 3461 §5.2.2); a next hop that does gets the
  NOTIFY parameters and reports success itself.
- A message that needs SMTPUTF8 is not sent to a hop that does not announce it (RFC 6531
  §3.4): permanent failure and DSN, with 5.6.7 (RFC 6531 §3.5, RFC 3463 §3.7).
- The daily TLS report job (RFC 8460, mox/queue/tlsrptsend.py) runs beside the delivery loop.
- Direct delivery alternates IPv4/IPv6 between attempts (mox/queue/dialed.py).
- localserve: every delivery goes to localserve's own SMTP listener through the `localserve`
  transport (as mox's queue/localserve.go), never to an MX; no DNS is needed.
"""

from __future__ import annotations

import asyncio
import ipaddress
import logging
import random
import secrets
import sqlite3
from collections.abc import Awaitable, Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, TypeVar

from mox.config.load import LoadedConfig
from mox.config.model import Transport
from mox.dns.resolver import DnsError, Resolver, lookup_ips
from mox.queue import dialed, suppression, tlsrptsend
from mox.queue.db import COLUMNS, QueueMsg, msg_from_row, open_db, write_file
from mox.queue.direct import DeliveryAttempt, HopFailure, MtaStsCache, deliver_direct
from mox.queue.dsn import Action, DsnRecipient, compose_dsn
from mox.queue.suppression import Suppression
from mox.smtpclient.client import RcptResult, SmtpClientError, TlsPolicy, send
from mox.store import MailboxExists, Store

__all__ = ["MessageDetails", "Queue", "QueuedRecipient"]

log = logging.getLogger(__name__)

T = TypeVar("T")
POLL_SECONDS = 5.0
LOCALSERVE = "localserve"  # transport name shown for localserve's deliveries


@dataclass(frozen=True, slots=True)
class QueuedRecipient:
    address: str
    notify: list[str] | None = None
    orcpt: str | None = None


@dataclass(frozen=True, slots=True)
class MessageDetails:
    """Everything `mox queue show` prints about one recipient's message."""

    msg: QueueMsg
    result: str | None  # None: still queued; else delivered, failed, dropped
    retired_at: str | None
    transport: str  # route transport name, "local" or "direct"
    header_lines: list[str]
    siblings: list[tuple[int, str, str]]  # (id, rcpt, state) of the other recipients


def _now() -> datetime:
    return datetime.now(UTC)


def _is_ip(text: str) -> bool:
    try:
        ipaddress.ip_address(text)
    except ValueError:
        return False
    return True


def _needs_smtputf8(m: QueueMsg, data: bytes) -> bool:
    """RFC 6531 §3.4: whether the message cannot go without SMTPUTF8: a non-ASCII address
    in the envelope, or non-ASCII in the header section."""
    if not (m.mail_from.isascii() and m.rcpt.isascii()):
        return True
    end = data.find(b"\r\n\r\n")
    head = data if end < 0 else data[:end]
    return any(b > 127 for b in head)


class Queue:
    def __init__(
        self,
        config: LoadedConfig,
        store: Store,
        resolver: Resolver | None,
        *,
        clock: Callable[[], datetime] = _now,
        localserve: Transport | None = None,
    ) -> None:
        self.config = config
        self.localserve = localserve  # localserve: the transport to its own SMTP port
        self.store = store
        self.resolver = resolver
        self.clock = clock
        self.dir = config.data_dir / "queue"
        self.dir.mkdir(parents=True, exist_ok=True)
        self._conn = open_db(self.dir / "index.db")
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="mox-queue")
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._busy: set[int] = set()
        self._running: set[asyncio.Task[None]] = set()
        self._tlsrpt_task: asyncio.Task[None] | None = None
        self._stopping = False
        # Called when a recipient leaves the queue: (msg, "delivered"|"failed"|"dropped",
        # last error), before the message file goes (the outgoing webhooks read its header);
        # also after each temporary failure, with "delayed" (the message stays queued).
        self.retire_hooks: list[Callable[[QueueMsg, str, str | None], Awaitable[None]]] = []
        q = config.config.queue
        ca = tuple(str(config.resolve(p)) for p in config.config.tls_ca_files)
        self._ca_files = ca
        self.mtasts = MtaStsCache(resolver, q.mtasts_port, ca) if resolver is not None else None

    # --- database, on the queue's thread ---

    async def _db(self, fn: Callable[[sqlite3.Connection], T]) -> T:
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._executor, fn, self._conn)

    async def db_call(self, fn: Callable[[sqlite3.Connection], T]) -> T:
        """Run `fn` with the queue database on the queue's thread (for the report job)."""
        return await self._db(fn)

    # --- API ---

    async def add(
        self,
        *,
        account: str,
        mail_from: str,
        recipients: list[QueuedRecipient],
        data: bytes,
        smtputf8: bool = False,
        requiretls: bool | None = None,
        dsn_ret: str | None = None,
        dsn_envid: str | None = None,
        hold_until: datetime | None = None,
    ) -> list[int]:
        """Queue a message for recipients; durable when this returns."""
        base_id = secrets.token_hex(12)
        rel = f"msg/{base_id[:2]}/{base_id}"
        await asyncio.to_thread(write_file, self.dir / rel, data)
        now = self.clock()
        first = hold_until if hold_until and hold_until > now else now
        has_8bit = any(b > 127 for b in data)
        max_attempts = self.config.config.queue.max_attempts
        held = [self._hold_rule_matches(account, mail_from, r.address) for r in recipients]

        def insert(conn: sqlite3.Connection) -> list[int]:
            ids = []
            conn.execute("BEGIN IMMEDIATE")
            try:
                # Ids are never reused, also not once the queue is empty: retired rows keep
                # theirs (for `mox queue show` and DSN matching).
                (last_id,) = conn.execute(
                    "SELECT max(coalesce((SELECT max(id) FROM msgs), 0), "
                    "coalesce((SELECT max(id) FROM retired), 0))"
                ).fetchone()
                for i, (r, hold) in enumerate(zip(recipients, held, strict=True)):
                    cur = conn.execute(
                        f"INSERT INTO msgs({COLUMNS}) VALUES "  # noqa: S608
                        "(?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,0,?,'',?,0,NULL,'')",
                        (
                            int(last_id) + 1 + i,
                            base_id,
                            account,
                            mail_from,
                            r.address,
                            r.address.rpartition("@")[2].lower(),
                            rel,
                            len(data),
                            int(smtputf8),
                            int(has_8bit),
                            None if requiretls is None else int(requiretls),
                            dsn_ret,
                            dsn_envid,
                            ",".join(r.notify) if r.notify else None,
                            r.orcpt,
                            now.isoformat(),
                            first.isoformat(),
                            max_attempts,
                            int(hold),
                        ),
                    )
                    ids.append(int(cur.lastrowid or 0))
                conn.execute("COMMIT")
            except BaseException:
                conn.execute("ROLLBACK")
                raise
            return ids

        ids = await self._db(insert)
        log.info(
            "queued",
            extra={"ids": ids, "mailfrom": mail_from, "rcpts": [r.address for r in recipients]},
        )
        if any(held):
            log.info(
                "held by hold rule", extra={"ids": [i for i, h in zip(ids, held, strict=True) if h]}
            )
        self._wake.set()
        return ids

    def _hold_rule_matches(self, account: str, mail_from: str, rcpt: str) -> bool:
        """As mox's HoldRule: every non-empty field must match; all empty holds everything."""
        sender_domain = mail_from.rpartition("@")[2].lower()
        rcpt_domain = rcpt.rpartition("@")[2].lower()
        for rule in self.config.config.queue.hold_rules:
            if rule.account and rule.account != account:
                continue
            if rule.sender_domain and rule.sender_domain.lower() != sender_domain:
                continue
            if rule.recipient_domain and rule.recipient_domain.lower() != rcpt_domain:
                continue
            return True
        return False

    async def details(self, msg_id: int, header_lines: int = 20) -> MessageDetails | None:
        """One message, queued or retired, with the start of its header (`mox queue show`)."""

        def read(conn: sqlite3.Connection) -> tuple[Any, ...] | None:
            row = conn.execute(
                f"SELECT {COLUMNS}, NULL, NULL FROM msgs WHERE id = ?",  # noqa: S608
                (msg_id,),
            ).fetchone()
            if row is None:
                row = conn.execute(
                    f"SELECT {COLUMNS}, result, retired_at FROM retired WHERE id = ?",  # noqa: S608
                    (msg_id,),
                ).fetchone()
            if row is None:
                return None
            base = row[1]
            sib = conn.execute(
                "SELECT id, rcpt, CASE WHEN hold THEN 'held' ELSE 'queued' END FROM msgs "
                "WHERE base_id = ? AND id != ? UNION ALL SELECT id, rcpt, result FROM retired "
                "WHERE base_id = ? AND id != ? ORDER BY 1",
                (base, msg_id, base, msg_id),
            ).fetchall()
            return (row, sib)

        found = await self._db(read)
        if found is None:
            return None
        row, sib = found
        m = msg_from_row(row[:-2])
        lines: list[str] = []
        try:
            with (self.dir / m.path).open("rb") as f:
                head = f.read(64 * 1024)
            end = head.find(b"\r\n\r\n")
            text = (head if end < 0 else head[:end]).decode("utf-8", "replace")
            lines = text.split("\r\n")[:header_lines]
        except OSError:
            lines = []  # a retired message's file is gone once all its recipients are done
        transport = self._transport_for(m)
        if transport is None:
            transport = "local" if m.rcpt_domain in self.config.config.domains else "direct"
        return MessageDetails(
            msg=m,
            result=row[-2],
            retired_at=row[-1],
            transport=m.transport or transport,
            header_lines=lines,
            siblings=[(int(i), str(r), str(st)) for i, r, st in sib],
        )

    # --- suppression list (mox/queue/suppression.py) ---

    async def suppressed(self, account: str, address: str) -> bool:
        """Whether submissions from `account` to `address` are refused."""
        try:
            found = await self._db(lambda c: suppression.lookup(c, account, address))
        except suppression.SuppressionError:
            return False
        return found is not None

    async def suppression_lookup(self, account: str, address: str) -> Suppression | None:
        return await self._db(lambda c: suppression.lookup(c, account, address))

    async def suppression_list(self, account: str | None = None) -> list[Suppression]:
        return await self._db(lambda c: suppression.list_suppressions(c, account))

    async def suppression_add(
        self, account: str, address: str, *, manual: bool = True, reason: str = ""
    ) -> Suppression:
        now = self.clock()
        return await self._db(
            lambda c: suppression.add(c, account, address, manual=manual, reason=reason, now=now)
        )

    async def suppression_remove(self, account: str, address: str) -> bool:
        return await self._db(lambda c: suppression.remove(c, account, address))

    async def messages(self) -> list[QueueMsg]:
        def read(conn: sqlite3.Connection) -> list[QueueMsg]:
            rows = conn.execute(f"SELECT {COLUMNS} FROM msgs ORDER BY id").fetchall()  # noqa: S608
            return [msg_from_row(r) for r in rows]

        return await self._db(read)

    async def retired(self) -> list[tuple[QueueMsg, str]]:
        def read(conn: sqlite3.Connection) -> list[tuple[QueueMsg, str]]:
            rows = conn.execute(
                f"SELECT {COLUMNS}, result FROM retired ORDER BY id"  # noqa: S608
            ).fetchall()
            return [(msg_from_row(r[:-1]), r[-1]) for r in rows]

        return await self._db(read)

    async def _update(self, sql: str, ids: Iterable[int], *args: Any) -> int:
        idlist = list(ids)

        def run(conn: sqlite3.Connection) -> int:
            marks = ",".join("?" * len(idlist))
            cur = conn.execute(sql.format(marks=marks), (*args, *idlist))
            return cur.rowcount

        n = await self._db(run)
        self._wake.set()
        return n

    async def hold(self, ids: Iterable[int]) -> int:
        return await self._update("UPDATE msgs SET hold = 1 WHERE id IN ({marks})", ids)

    async def release(self, ids: Iterable[int]) -> int:
        return await self._update("UPDATE msgs SET hold = 0 WHERE id IN ({marks})", ids)

    async def retry(self, ids: Iterable[int]) -> int:
        now = self.clock().isoformat()
        return await self._update(
            "UPDATE msgs SET next_attempt = ?, hold = 0 WHERE id IN ({marks})", ids, now
        )

    async def drop(self, ids: Iterable[int]) -> int:
        dropped = [m for m in await self.messages() if m.id in set(ids)]
        for m in dropped:
            await self._retire(m, "dropped")
        return len(dropped)

    # --- delivery loop ---

    async def start(self, *, tls_reports: bool = True) -> None:
        """Start the delivery loop, and the daily TLS report job (RFC 8460) when the queue
        has a resolver and `tls_reports` (tests start the loop alone)."""
        if self._task is None:
            self._task = asyncio.create_task(self._loop(), name="mox-queue")
        if tls_reports and self.resolver is not None and self._tlsrpt_task is None:
            self._tlsrpt_task = asyncio.create_task(tlsrptsend.worker(self), name="tls-reports")

    async def stop(self) -> None:
        self._stopping = True
        for task in (self._task, self._tlsrpt_task):
            if task is not None:
                task.cancel()
                try:
                    await task
                except asyncio.CancelledError:
                    pass
        self._task = self._tlsrpt_task = None
        for t in list(self._running):
            t.cancel()
        if self._running:
            # Bounded: a delivery stuck in a remote's TLS handshake must not hold up shutdown.
            await asyncio.wait(self._running, timeout=10)
        await self._db(lambda conn: conn.close())
        self._executor.shutdown(wait=True)

    async def _loop(self) -> None:
        # `stop()` also sets `_stopping`: on Python 3.11, asyncio.wait_for can swallow a
        # cancellation that arrives as its inner wait finishes, and the loop would go on.
        while not self._stopping:
            self._wake.clear()
            try:
                delay = await self._dispatch()
            except Exception:
                log.exception("queue loop")
                delay = 10.0
            try:
                async with asyncio.timeout(delay):
                    await self._wake.wait()
            except TimeoutError:
                pass

    async def _dispatch(self) -> float:
        """Start deliveries that are due; seconds until the next one is."""
        now = self.clock()
        msgs = [m for m in await self.messages() if not m.hold and m.id not in self._busy]
        due = [m for m in msgs if datetime.fromisoformat(m.next_attempt) <= now]
        groups: dict[tuple[str, str], list[QueueMsg]] = {}
        for m in due:
            groups.setdefault((m.base_id, m.rcpt_domain), []).append(m)
        for group in groups.values():
            self._busy.update(m.id for m in group)
            task = asyncio.create_task(self._deliver(group))
            self._running.add(task)
            task.add_done_callback(self._running.discard)
        waiting = [datetime.fromisoformat(m.next_attempt) for m in msgs if m not in due]
        # Look again at least every few seconds: `mox queue` commands change the database
        # from another process.
        if not waiting:
            return POLL_SECONDS
        return max(0.05, min(POLL_SECONDS, *((w - now).total_seconds() for w in waiting)))

    async def _deliver(self, group: list[QueueMsg]) -> None:
        try:
            await self._deliver_group(group)
        except Exception:
            log.exception("delivery failed unexpectedly")
            for m in group:
                await self._failed_attempt(m, 451, "4.3.0 internal error, will retry", False, "")
        finally:
            self._busy.difference_update(m.id for m in group)
            self._wake.set()

    def _transport_for(self, m: QueueMsg) -> str | None:
        if self.localserve is not None:
            return LOCALSERVE  # as mox: localserve's queue only delivers to itself
        from_domain = m.mail_from.rpartition("@")[2].lower()
        for route in self.config.config.routes:
            if route.to_domains and m.rcpt_domain not in [d.lower() for d in route.to_domains]:
                continue
            if route.from_domains and from_domain not in [d.lower() for d in route.from_domains]:
                continue
            return route.transport
        return None

    async def _deliver_group(self, group: list[QueueMsg]) -> None:
        first = group[0]
        data = await asyncio.to_thread((self.dir / first.path).read_bytes)
        mail_options = [f"SIZE={len(data)}"]
        if first.has_8bit:
            mail_options.append("BODY=8BITMIME")
        smtputf8_required = any(_needs_smtputf8(m, data) for m in group)
        if first.smtputf8 or smtputf8_required:
            mail_options.append("SMTPUTF8")
        if first.dsn_ret:
            mail_options.append(f"RET={first.dsn_ret}")
        rcpts = []
        for m in group:
            opts = []
            if m.notify:
                opts.append(f"NOTIFY={m.notify}")
            if m.orcpt:
                opts.append(f"ORCPT={m.orcpt}")
            rcpts.append((m.rcpt, opts))
        transport = self._transport_for(first)
        tls_results: list[tuple[str, str, str]] = []
        remote = first.rcpt_domain
        local = transport is None and first.rcpt_domain in self.config.config.domains
        softened: set[str] = set()  # rcpts whose 5.7.x reply counts as temporary (dialed.py)
        try:
            if local:
                results = await self._deliver_local(group, data)
            elif transport is not None:
                results, remote = await self._via_transport(
                    transport, first, rcpts, data, mail_options, smtputf8_required
                )
            else:
                if self.resolver is None or self.mtasts is None:
                    raise HopFailure(451, "4.4.3 no DNS resolver configured", False)
                attempt = DeliveryAttempt(
                    domain=first.rcpt_domain,
                    mail_from=first.mail_from,
                    rcpts=rcpts,
                    data=data,
                    mail_options=mail_options,
                    requiretls=first.requiretls,
                    ehlo_name=self.config.config.hostname,
                    port=self.config.config.queue.direct_port,
                    ca_files=self._ca_files,
                    tls_results=tls_results,
                    smtputf8_required=smtputf8_required,
                    first_attempt=first.attempts == 0,
                    dialed=dialed.loads(first.dialed_ips),
                    softened=softened,
                )
                try:
                    results = await deliver_direct(self.resolver, self.mtasts, attempt)
                finally:
                    ids = [m.id for m in group]
                    await self._db(lambda c: dialed.save(c, ids, attempt.dialed))
        except HopFailure as e:
            for m in group:
                await self._failed_attempt(m, e.code, e.text, e.permanent, remote)
            return
        finally:
            # RFC 8460 §3: no reporting about the delivery of reports.
            if tls_results and not tlsrptsend.is_tls_report(data):
                await self._record_tls(tls_results)
        by_rcpt = {r.rcpt: r for r in results}
        for m in group:
            r = by_rcpt.get(m.rcpt) or RcptResult(m.rcpt, 451, "no result")
            if 200 <= r.code < 300:
                log.info("delivered", extra={"id": m.id, "rcpt": m.rcpt, "reply": r.text})
                if m.notify and "SUCCESS" in m.notify.split(","):
                    if local:
                        await self._dsn(m, "delivered", "2.0.0", "", "")  # RFC 3464 §2.3.3
                    elif not r.dsn:
                        # RFC 3461 §5.2.2: the next hop cannot report success, so we say it
                        # was relayed.
                        await self._dsn(m, "relayed", "2.0.0", f"{r.code} {r.text}", remote)
                await self._retire(m, "delivered")
            else:
                permanent = r.code >= 500 and r.rcpt not in softened
                await self._failed_attempt(
                    m, r.code, f"{r.code} {r.text}", permanent, remote, from_rcpt_reply=True
                )

    async def _deliver_local(self, group: list[QueueMsg], data: bytes) -> list[RcptResult]:
        """Our own domains: straight into the store (held or delayed submissions end here)."""
        out = []
        for m in group:
            target = self.config.lookup(m.rcpt)
            if target is None:
                out.append(RcptResult(m.rcpt, 550, "5.1.1 no such user"))
                continue
            acc = self.store.account(target.account)
            mailbox = target.destination.mailbox
            if acc.get_mailbox(mailbox) is None:
                try:
                    await acc.create_mailbox(mailbox)
                except MailboxExists:
                    pass
            # RFC 5321 §4.4 Return-Path at final delivery; RFC 9228 Delivered-To.
            head = f"Return-Path: <{m.mail_from}>\r\nDelivered-To: {m.rcpt}\r\n".encode()
            await acc.deliver(
                mailbox,
                head + data,
                meta={"mail_from": m.mail_from, "rcpt_to": m.rcpt, "queue_id": m.id},
            )
            out.append(RcptResult(m.rcpt, 250, "2.0.0 delivered locally"))
        return out

    async def _via_transport(
        self,
        name: str,
        m: QueueMsg,
        rcpts: list[tuple[str, list[str]]],
        data: bytes,
        mail_options: list[str],
        smtputf8_required: bool,
    ) -> tuple[list[RcptResult], str]:
        t = self.localserve or self.config.config.transports[name]
        if t.kind == "fail":
            raise HopFailure(t.fail_code, t.fail_message, t.fail_code >= 500)
        port = t.port or {"submissions": 465, "submission": 587, "smtp": 25}[t.kind]
        # submissions: implicit TLS (RFC 8314 §3.3); submission: STARTTLS; both verified.
        tls = (
            TlsPolicy("pkix", ca_files=self._ca_files)
            if t.kind in ("submission", "submissions")
            else TlsPolicy("opportunistic")
        )
        auth = None
        if t.username and t.password_file is not None:
            try:
                path = self.config.resolve(t.password_file)
                password = (await asyncio.to_thread(path.read_text)).strip()
            except OSError as e:
                msg = f"4.3.5 reading password of transport {name}: {e}"
                raise HopFailure(451, msg, False) from None
            auth = (t.username, password)
        ip = t.host
        if self.resolver is not None and not _is_ip(t.host):
            # Our resolver, as for direct delivery (never the system's).
            try:
                ips, _ = await lookup_ips(self.resolver, t.host)
            except DnsError as e:
                raise HopFailure(451, f"4.4.3 resolving {t.host}: {e}", False) from None
            if not ips:
                raise HopFailure(451, f"4.4.3 no address for smarthost {t.host}", False)
            ip = ips[0]
        try:
            result = await send(
                ip=ip,
                port=port,
                host=t.host,
                ehlo_name=self.config.config.hostname,
                policy=tls,
                mail_from=m.mail_from,
                rcpts=rcpts,
                data=data,
                mail_options=mail_options,
                requiretls=bool(m.requiretls),
                smtputf8_required=smtputf8_required,
                implicit_tls=t.kind == "submissions",
                auth=auth,
            )
        except SmtpClientError as e:
            raise HopFailure(e.code, e.text, e.permanent) from None
        return result.rcpts, t.host

    async def _record_tls(self, results: list[tuple[str, str, str]]) -> None:
        day = self.clock().date().isoformat()

        def run(conn: sqlite3.Connection) -> None:
            for domain, ptype, result in results:
                conn.execute(
                    "INSERT INTO tls_results(day, policy_domain, policy_type, result, count) "
                    "VALUES (?,?,?,?,1) ON CONFLICT(day, policy_domain, policy_type, result) "
                    "DO UPDATE SET count = count + 1",
                    (day, domain, ptype, result),
                )

        await self._db(run)

    async def _failed_attempt(
        self,
        m: QueueMsg,
        code: int,
        text: str,
        permanent: bool,
        remote: str,
        *,
        from_rcpt_reply: bool = False,
    ) -> None:
        attempts = m.attempts + 1
        status = _status(code, text)
        if permanent or attempts >= m.max_attempts:
            log.info("delivery failed", extra={"id": m.id, "rcpt": m.rcpt, "err": text})
            # Not in localserve: its magic failing addresses are meant to be used again.
            if permanent and from_rcpt_reply and self.localserve is None:
                await self._maybe_suppress(m, code, status, remote)
            await self._dsn(m, "failed", status, text, remote)
            await self._retire(m, "failed", last_error=text)
            return
        q = self.config.config.queue
        # As mox: 7.5 minutes doubling, ±5 seconds of jitter.
        backoff = q.first_retry_seconds * 2 ** (attempts - 1) + random.uniform(-5, 5)
        if q.first_retry_seconds < 10:
            backoff = q.first_retry_seconds * 2 ** (attempts - 1)  # tests: no jitter
        next_attempt = (self.clock() + timedelta(seconds=max(0.0, backoff))).isoformat()
        send_delay = attempts >= q.delay_dsn_after and not m.delay_dsn_sent
        log.info(
            "delivery deferred",
            extra={
                "id": m.id,
                "rcpt": m.rcpt,
                "err": text,
                "attempts": attempts,
                "next": next_attempt,
            },
        )

        def run(conn: sqlite3.Connection) -> None:
            conn.execute(
                "UPDATE msgs SET attempts = ?, next_attempt = ?, last_error = ?, "
                "delay_dsn_sent = delay_dsn_sent OR ? WHERE id = ?",
                (attempts, next_attempt, text, int(send_delay), m.id),
            )

        await self._db(run)
        if send_delay:
            await self._dsn(m, "delayed", status, text, remote)
        await self._run_hooks(m, "delayed", text)  # mox's webhook event "delayed"

    async def _maybe_suppress(self, m: QueueMsg, code: int, status: str, remote: str) -> None:
        """A remote refused this recipient permanently: maybe list it (as mox)."""
        now = self.clock()

        def run(conn: sqlite3.Connection) -> bool:
            return suppression.process_failure(
                conn,
                account=m.account,
                msg_id=m.id,
                rcpt=m.rcpt,
                code=code,
                enhanced=status,
                source=remote or m.rcpt_domain,
                now=now,
            )

        if await self._db(run):
            log.info("added to suppression list", extra={"account": m.account, "rcpt": m.rcpt})

    async def _run_hooks(self, m: QueueMsg, result: str, last_error: str | None) -> None:
        for hook in self.retire_hooks:
            try:
                await hook(m, result, last_error)
            except Exception:
                log.exception("queue hook failed", extra={"id": m.id, "event": result})

    async def _retire(self, m: QueueMsg, result: str, last_error: str | None = None) -> None:
        now = self.clock().isoformat()

        def run(conn: sqlite3.Connection) -> bool:
            conn.execute("BEGIN IMMEDIATE")
            try:
                conn.execute(
                    f"INSERT INTO retired({COLUMNS}, result, retired_at) "  # noqa: S608
                    f"SELECT {COLUMNS}, ?, ? FROM msgs WHERE id = ?",
                    (result, now, m.id),
                )
                if last_error is not None:
                    conn.execute(
                        "UPDATE retired SET last_error = ? WHERE id = ?", (last_error, m.id)
                    )
                conn.execute("DELETE FROM msgs WHERE id = ?", (m.id,))
                left = conn.execute(
                    "SELECT count(*) FROM msgs WHERE base_id = ?", (m.base_id,)
                ).fetchone()[0]
                conn.execute("COMMIT")
            except BaseException:
                conn.execute("ROLLBACK")
                raise
            return int(left) == 0

        last = await self._db(run)
        await self._run_hooks(m, result, last_error)
        if last:
            (self.dir / m.path).unlink(missing_ok=True)

    async def _dsn(self, m: QueueMsg, action: Action, status: str, text: str, remote: str) -> None:
        notify = (m.notify or "").split(",") if m.notify else None
        wanted = {
            "failed": "FAILURE",
            "delayed": "DELAY",
            "delivered": "SUCCESS",
            "relayed": "SUCCESS",
            "expanded": "SUCCESS",
        }[action]
        if notify is not None and (notify == ["NEVER"] or wanted not in notify):
            return  # RFC 3461 §4.1
        if not m.mail_from:
            return  # never a DSN about a DSN (RFC 3461 §6.2)
        account = m.account or self.config.config.postmaster
        original = await asyncio.to_thread((self.dir / m.path).read_bytes)
        dsn = compose_dsn(
            reporting_mta=self.config.config.hostname,
            postmaster=f"postmaster@{self.config.config.hostname}",
            to=m.mail_from,
            recipients=[
                DsnRecipient(
                    m.rcpt,
                    action,
                    status,
                    text,
                    remote_mta=remote,
                    orcpt=m.orcpt,
                )
            ],
            original=original,
            ret=m.dsn_ret,
            envid=m.dsn_envid,
            arrival=datetime.fromisoformat(m.queued),
        )
        acc = self.store.account(account)
        if acc.get_mailbox("Inbox") is None:
            try:
                await acc.create_mailbox("Inbox")
            except MailboxExists:
                pass
        await acc.deliver("Inbox", dsn, meta={"dsn_for": m.id, "action": action})
        log.info("dsn delivered", extra={"id": m.id, "account": account, "action": action})


def _status(code: int, text: str) -> str:
    first = text.split(" ", 2)
    for word in first[:2]:
        parts = word.split(".")
        if len(parts) == 3 and all(p.isdigit() for p in parts):
            return word
    return f"{code // 100}.0.0" if code >= 400 else "4.0.0"


def queue_dir(data_dir: Path) -> Path:
    return data_dir / "queue"
