"""Webhooks, as mox's webhook package: JSON POSTs to URLs an account configures.

- Incoming: one POST per message the SMTP server stores into an account that has an
  `incoming_webhook` (sender, recipients, subject, text and HTML bodies, delivery metadata).
- Outgoing: one POST when the queue is done with a recipient of a message the account sent
  (`outgoing_webhook`): event `delivered`, `failed` (no more retries, or a permanent error), or
  `canceled` (dropped by an admin); and `delayed` after each temporary failure (as mox).

Implementation notes:
- The `Authorization` header is sent with the configured value when there is one, and, as
  mox, `X-Mox-Webhook-ID` (stable over retries) and `X-Mox-Webhook-Attempt` (1, 2, ...).
- Each attempt is a plain HTTP/1.1 POST of our own (httpx is a test dependency only), no
  redirects followed. A 2xx answer is success. Anything else, a connection error or no answer
  within 30 s is retried: the first attempt at once, then waits of 1 minute doubling (as mox),
  each wait capped at 1 hour, 8 attempts in all.
- Pending events are stored in the queue database (table `webhooks`) before the first attempt,
  with their attempt count and next attempt time; after a restart, `register()` resumes them
  where they were (waiting out what is left of their backoff). A delivered or abandoned event is
  removed. At most 1000 events are pending at once; more are dropped with a warning, so a dead
  receiver cannot make the server grow without bound; at most that many are resumed at start.
- The SMTP server finds the webhooks of its store through `incoming()`; `Webhooks.register()`
  links them, so the delivery code needs no reference to them.
"""

from __future__ import annotations

import asyncio
import contextlib
import email.policy
import email.utils
import json
import logging
import re
import sqlite3
import ssl
import urllib.parse
import weakref
from collections.abc import Awaitable, Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from email.message import EmailMessage
from email.parser import BytesParser
from pathlib import Path
from typing import Any, Literal

from mox.config.load import LoadedConfig
from mox.config.model import Webhook
from mox.queue.db import QueueMsg, open_db
from mox.store import Store

__all__ = [
    "Webhooks",
    "addresses",
    "body_text",
    "header_text",
    "incoming",
    "incoming_payload",
    "outgoing_payload",
    "parse_message",
]

log = logging.getLogger(__name__)

Kind = Literal["incoming", "outgoing"]
EVENTS = {
    "delivered": "delivered",
    "failed": "failed",
    "dropped": "canceled",
    "delayed": "delayed",
}
_REGISTRY: weakref.WeakKeyDictionary[Store, Webhooks] = weakref.WeakKeyDictionary()
_REPLY_RE = re.compile(r"^(\d{3})(?:[ -](\d\.\d{1,3}\.\d{1,3}))?")


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


def addresses(msg: EmailMessage, name: str) -> list[dict[str, str]]:
    values = [str(v) for v in msg.get_all(name, [])]
    return [{"Name": n, "Address": a} for n, a in email.utils.getaddresses(values) if a]


def body_text(msg: EmailMessage, subtype: str) -> str:
    try:
        part = msg.get_body(preferencelist=(subtype,))
        if part is None:
            return ""
        content = part.get_content()
    except (LookupError, ValueError, KeyError):
        return ""
    return content.replace("\r\n", "\n") if isinstance(content, str) else ""  # JSON: LF


def parse_message(data: bytes) -> EmailMessage:
    return BytesParser(policy=email.policy.default).parsebytes(data)


def header_text(msg: EmailMessage, name: str) -> str:
    value = msg.get(name)
    return "" if value is None else str(value)


def incoming_payload(mailbox: str, uid: int, data: bytes, meta: dict[str, Any]) -> dict[str, Any]:
    """mox's webhook.Incoming for a stored message (the parts we have)."""
    msg = parse_message(data)
    auth = meta.get("auth") or {}
    return {
        "Version": 0,
        "From": addresses(msg, "From"),
        "To": addresses(msg, "To"),
        "CC": addresses(msg, "Cc"),
        "BCC": addresses(msg, "Bcc"),
        "ReplyTo": addresses(msg, "Reply-To"),
        "Subject": header_text(msg, "Subject"),
        "MessageID": header_text(msg, "Message-Id").strip(),
        "InReplyTo": header_text(msg, "In-Reply-To").strip(),
        "References": header_text(msg, "References").split(),
        "Date": header_text(msg, "Date"),
        "Text": body_text(msg, "plain"),
        "HTML": body_text(msg, "html"),
        "Meta": {
            "MailFrom": meta.get("mail_from", ""),
            "RcptTo": meta.get("rcpt_to", ""),
            "RemoteIP": meta.get("remote_ip", ""),
            "Received": _now(),
            "MailboxName": mailbox,
            "UID": uid,
            "Authentication": auth if isinstance(auth, dict) else {},
        },
    }


def outgoing_payload(
    m: QueueMsg, result: str, last_error: str | None, header: bytes
) -> dict[str, Any]:
    """mox's webhook.Outgoing for a recipient the queue is done with."""
    msg = parse_message(header + b"\r\n")
    code, enhanced = 0, ""
    match = _REPLY_RE.match(last_error or "")
    if match:
        code, enhanced = int(match.group(1)), match.group(2) or ""
    return {
        "Version": 0,
        "Event": EVENTS.get(result, result),
        "DSN": False,
        "Suppressing": False,
        "QueueMsgID": m.id,
        "FromID": "",
        "MessageID": header_text(msg, "Message-Id").strip(),
        "Subject": header_text(msg, "Subject"),
        "Recipient": m.rcpt,
        "WebhookQueued": _now(),
        "SMTPCode": code,
        "SMTPEnhancedCode": enhanced,
        "Error": last_error or "",
        "Extra": {},
    }


def _read_header(path: Path) -> bytes:
    try:
        with path.open("rb") as f:
            head = f.read(256 * 1024)
    except OSError:
        return b""
    end = head.find(b"\r\n\r\n")
    return head[: end + 2] if end >= 0 else head


@dataclass
class _Event:
    account: str
    kind: Kind
    hook: Webhook
    payload: dict[str, Any]
    row_id: int | None = None  # in the `webhooks` table once stored
    attempts: int = 0  # attempts made so far
    wait: float = 0.0  # before the next attempt (left over from before a restart)


class Webhooks:
    """Sends the webhook events of one server; `stop()` cancels what is still pending."""

    def __init__(
        self,
        loaded: LoadedConfig,
        store: Store,
        *,
        first_retry: float = 60.0,
        max_wait: float = 3600.0,
        max_attempts: int = 8,
        max_pending: int = 1000,
        timeout: float = 30.0,
    ) -> None:
        self.loaded = loaded
        self.store = store
        self.first_retry = first_retry
        self.max_wait = max_wait
        self.max_attempts = max_attempts
        self.max_pending = max_pending
        self.timeout = timeout
        self.queue_dir = loaded.data_dir / "queue"
        self._tasks: set[asyncio.Task[None]] = set()
        self._tls: ssl.SSLContext | None = None
        self.sleep: Callable[[float], Awaitable[None]] = asyncio.sleep  # tests observe waits
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="mox-webhook")
        self._conn: sqlite3.Connection | None = None
        self._resume_task: asyncio.Task[int] | None = None
        self._stopped = False

    def register(self) -> None:
        """Link to the store's delivery path, and resume events stored before a restart (in
        the running event loop, when there is one)."""
        _REGISTRY[self.store] = self
        try:
            asyncio.get_running_loop()
        except RuntimeError:
            return
        if self._resume_task is None:
            self._resume_task = asyncio.create_task(self.resume(), name="webhook-resume")

    async def stop(self) -> None:
        """Cancel pending attempts; stored events stay for the next start."""
        if _REGISTRY.get(self.store) is self:
            del _REGISTRY[self.store]
        self._stopped = True
        if self._resume_task is not None:
            self._resume_task.cancel()
            await asyncio.gather(self._resume_task, return_exceptions=True)
        for task in list(self._tasks):
            task.cancel()
        if self._tasks:
            await asyncio.gather(*self._tasks, return_exceptions=True)
        if self._conn is not None:
            conn, self._conn = self._conn, None
            await self._db(lambda _: conn.close())
        self._executor.shutdown(wait=True)

    # --- the durable part: the queue database's `webhooks` table ---

    async def _db(self, fn: Callable[[sqlite3.Connection], Any]) -> Any:
        def run() -> Any:
            if self._conn is None:
                self._conn = open_db(self.queue_dir / "index.db")
            return fn(self._conn)

        return await asyncio.get_running_loop().run_in_executor(self._executor, run)

    async def _store(self, event: _Event) -> None:
        now = datetime.now(UTC)

        def run(conn: sqlite3.Connection) -> int:
            cur = conn.execute(
                "INSERT INTO webhooks(account, kind, payload, attempts, next_attempt, "
                "last_error, queued) VALUES (?,?,?,0,?,'',?)",
                (
                    event.account,
                    event.kind,
                    json.dumps(event.payload),
                    now.isoformat(),
                    now.isoformat(),
                ),
            )
            return int(cur.lastrowid or 0)

        event.row_id = await self._db(run)

    async def _update(self, event: _Event, wait: float, err: str) -> None:
        nxt = (datetime.now(UTC) + timedelta(seconds=wait)).isoformat()
        await self._db(
            lambda c: c.execute(
                "UPDATE webhooks SET attempts = ?, next_attempt = ?, last_error = ? WHERE id = ?",
                (event.attempts, nxt, err, event.row_id),
            )
        )

    async def _forget(self, row_id: int | None) -> None:
        await self._db(lambda c: c.execute("DELETE FROM webhooks WHERE id = ?", (row_id,)))

    async def resume(self) -> int:
        """Start again the events stored by an earlier run; how many."""

        def read(conn: sqlite3.Connection) -> list[tuple[Any, ...]]:
            return conn.execute(
                "SELECT id, account, kind, payload, attempts, next_attempt FROM webhooks "
                "ORDER BY id LIMIT ?",
                (self.max_pending,),
            ).fetchall()

        rows = await self._db(read)
        now = datetime.now(UTC)
        n = 0
        for row_id, account, kind, payload, attempts, next_attempt in rows:
            hook = self._hook(account, kind) if kind in ("incoming", "outgoing") else None
            try:
                data = json.loads(payload)
                due = datetime.fromisoformat(next_attempt)
            except ValueError:
                data, due = None, now
            if hook is None or not isinstance(data, dict):
                # The account or its webhook is gone from the config, or the row is damaged.
                log.info("stored webhook dropped", extra={"account": account, "id": row_id})
                await self._forget(row_id)
                continue
            wait = min(max(0.0, (due - now).total_seconds()), self.max_wait)
            event = _Event(account, kind, hook, data, row_id, int(attempts), wait)
            self._spawn(account, self._send(event))
            n += 1
        if n:
            log.info("webhooks resumed", extra={"n": n})
        return n

    @property
    def pending(self) -> int:
        return len(self._tasks)

    def _hook(self, account: str, kind: Kind) -> Webhook | None:
        acc = self.loaded.config.accounts.get(account)
        if acc is None:
            return None
        return acc.incoming_webhook if kind == "incoming" else acc.outgoing_webhook

    def _spawn(self, account: str, work: Any) -> None:
        if self._stopped:
            work.close()
            return
        if len(self._tasks) >= self.max_pending:
            work.close()
            log.warning("too many pending webhooks, event dropped", extra={"account": account})
            return
        task = asyncio.create_task(work, name="webhook")
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    def incoming_delivered(
        self, account: str, mailbox: str, uid: int, data: bytes, meta: dict[str, Any]
    ) -> None:
        hook = self._hook(account, "incoming")
        if hook is None:
            return

        async def work() -> None:
            payload = await asyncio.to_thread(incoming_payload, mailbox, uid, data, meta)
            await self._send(_Event(account, "incoming", hook, payload))

        self._spawn(account, work())

    async def outgoing(self, m: QueueMsg, result: str, last_error: str | None) -> None:
        """A `Queue.retire_hooks` entry."""
        hook = self._hook(m.account, "outgoing")
        if hook is None:
            return
        header = await asyncio.to_thread(_read_header, self.queue_dir / m.path)
        payload = outgoing_payload(m, result, last_error, header)
        self._spawn(m.account, self._send(_Event(m.account, "outgoing", hook, payload)))

    def _tls_context(self) -> ssl.SSLContext:
        if self._tls is None:
            ctx = ssl.create_default_context()
            for path in self.loaded.config.tls_ca_files:  # as the queue: extra trusted CAs
                ctx.load_verify_locations(cafile=str(self.loaded.resolve(path)))
            self._tls = ctx
        return self._tls

    async def _post(self, event: _Event) -> str | None:
        """One attempt, a plain HTTP/1.1 POST (RFC 9112); None on success, else what went
        wrong. Redirects are not followed."""
        url = urllib.parse.urlsplit(event.hook.url)
        tls = url.scheme == "https"
        host = url.hostname or ""
        try:
            port = url.port or (443 if tls else 80)
        except ValueError:
            return "bad port in URL"
        target = (url.path or "/") + (f"?{url.query}" if url.query else "")
        body = json.dumps(event.payload).encode()
        lines = [
            f"POST {target} HTTP/1.1",
            f"Host: {url.netloc.rpartition('@')[2]}",
            "User-Agent: mox-webhook/0",
            f"X-Mox-Webhook-Type: {event.kind}",
            f"X-Mox-Webhook-ID: {event.row_id or 0}",
            f"X-Mox-Webhook-Attempt: {event.attempts + 1}",
            "Content-Type: application/json",
            f"Content-Length: {len(body)}",
            "Connection: close",
        ]
        if event.hook.authorization:  # the config refuses CR and LF in it
            lines.append(f"Authorization: {event.hook.authorization}")
        request = ("\r\n".join(lines) + "\r\n\r\n").encode() + body
        writer: asyncio.StreamWriter | None = None
        try:
            async with asyncio.timeout(self.timeout):
                reader, writer = await asyncio.open_connection(
                    host,
                    port,
                    ssl=self._tls_context() if tls else None,
                    server_hostname=host if tls else None,
                )
                writer.write(request)
                await writer.drain()
                status_line = (await reader.readline()).decode("latin-1").strip()
        except (OSError, ssl.SSLError, TimeoutError) as exc:
            return f"{type(exc).__name__}: {exc}"
        finally:
            if writer is not None:
                writer.close()
                try:
                    await writer.wait_closed()
                except (OSError, ssl.SSLError):
                    pass
        parts = status_line.split(" ", 2)
        if len(parts) < 2 or not parts[0].startswith("HTTP/") or not parts[1].isdigit():
            return f"not an HTTP response: {status_line[:80]!r}"
        status = int(parts[1])
        if 200 <= status < 300:
            return None
        return f"HTTP status {status}"

    async def _send(self, event: _Event) -> None:
        if event.row_id is None:
            await self._store(event)
        if event.wait > 0:
            await self.sleep(event.wait)
        while event.attempts < self.max_attempts:
            err = await self._post(event)
            event.attempts += 1
            attempt = event.attempts
            if err is None:
                log.info(
                    "webhook delivered",
                    extra={"account": event.account, "kind": event.kind, "attempt": attempt},
                )
                break
            if attempt >= self.max_attempts:
                log.warning(
                    "webhook failed, giving up",
                    extra={"account": event.account, "kind": event.kind, "err": err},
                )
                break
            wait = min(self.first_retry * 2 ** (attempt - 1), self.max_wait)
            log.info(
                "webhook failed, will retry",
                extra={"account": event.account, "kind": event.kind, "err": err, "wait": wait},
            )
            await self._update(event, wait, err)
            await self.sleep(wait)
        with contextlib.suppress(sqlite3.Error):
            await self._forget(event.row_id)


def incoming(
    store: Store, account: str, mailbox: str, uid: int, data: bytes, meta: dict[str, Any]
) -> None:
    """The SMTP server stored a message: call the account's incoming webhook, if any."""
    hooks = _REGISTRY.get(store)
    if hooks is not None:
        hooks.incoming_delivered(account, mailbox, uid, data, meta)
