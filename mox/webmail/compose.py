"""Composing (RFC 5322, MIME RFC 2045-2047/2231) and submitting webmail messages.

Submission takes the same path as the web API's `Send` (mox.webapi, which in turn is the SMTP
submission pipeline): `check_mail_from` (the From must belong to the account, sending limits),
`resolve_recipient` per recipient, then `deliver_message` (Message-Id/Date, Authentication-
Results, DKIM signature, local delivery now, other domains through the queue), with the web
API's submission context (`WebApi.smtp`). A copy goes to the account's Sent mailbox (RFC 6154
\\Sent), marked \\Seen; drafts are stored in Drafts with \\Draft, each save replacing the last.
"""

from __future__ import annotations

import email.policy
import email.utils
import logging
import secrets
from dataclasses import dataclass, field
from email.headerregistry import Address as HeaderAddress
from email.message import EmailMessage
from typing import TYPE_CHECKING, Final

from mox.smtp.address import Address, AddressError, parse_mailbox
from mox.smtp.codes import SmtpReply
from mox.smtpserver.delivery import deliver_message
from mox.smtpserver.pipeline import check_mail_from, resolve_recipient
from mox.smtpserver.state import Conn, Transaction
from mox.store import Account, MailboxExists, StoreError

if TYPE_CHECKING:
    from mox.webapi import WebApi  # not at run time: mox.webapi uses mox.webmail.ops

__all__ = ["ComposeError", "Draft", "compose", "save_draft", "submit"]

log = logging.getLogger(__name__)

MAX_ATTACHMENTS: Final = 50
MAX_TOTAL: Final = 50 * 1024 * 1024


class ComposeError(Exception):
    """Bad input from the compose form, or a refusal of the submission; shown to the user."""


@dataclass
class Draft:
    from_: str
    to: list[str] = field(default_factory=list)
    cc: list[str] = field(default_factory=list)
    bcc: list[str] = field(default_factory=list)
    subject: str = ""
    text: str = ""
    in_reply_to: str = ""
    references: list[str] = field(default_factory=list)
    attachments: list[tuple[str, str, bytes]] = field(default_factory=list)  # name, type, data


def _no_crlf(value: str, what: str) -> str:
    if "\r" in value or "\n" in value:
        raise ComposeError(f"{what} must not contain line breaks")  # header injection
    return value


def split_addresses(text: str) -> list[str]:
    """Addresses from a To/Cc/Bcc field ("Name <a@b>, c@d")."""
    _no_crlf(text, "address list")
    return [a for _, a in email.utils.getaddresses([text]) if a]


def _address(text: str, what: str) -> tuple[Address, HeaderAddress]:
    name, addr = email.utils.parseaddr(_no_crlf(text, what))
    try:
        parsed = parse_mailbox(addr)
    except AddressError as exc:
        raise ComposeError(f"{what}: {addr!r}: {exc}") from None
    if parsed.literal:
        raise ComposeError(f"{what}: address literals are not accepted")
    local, _, domain = str(parsed).rpartition("@")
    return parsed, HeaderAddress(display_name=name, username=local, domain=domain)


def compose(d: Draft, hostname: str, *, keep_bcc: bool = False) -> tuple[bytes, str, bool]:
    """(message bytes, Message-ID, SMTPUTF8 needed). Bcc is written only into drafts (RFC 5322
    §3.6.3: a sent message shows no Bcc to its recipients)."""
    sender, sender_h = _address(d.from_, "From")
    to = [_address(a, "To") for a in d.to]
    cc = [_address(a, "Cc") for a in d.cc]
    bcc = [_address(a, "Bcc") for a in d.bcc]
    utf8 = any(not str(a).isascii() for a, _ in [(sender, sender_h), *to, *cc, *bcc])
    message_id = f"<{secrets.token_hex(16)}@{hostname}>"
    msg = EmailMessage(policy=email.policy.SMTPUTF8 if utf8 else email.policy.SMTP)
    total = 0
    try:
        msg["From"] = sender_h
        if to:
            msg["To"] = [h for _, h in to]
        if cc:
            msg["Cc"] = [h for _, h in cc]
        if bcc and keep_bcc:
            msg["Bcc"] = [h for _, h in bcc]
        msg["Subject"] = _no_crlf(d.subject, "Subject")
        msg["Message-ID"] = message_id
        msg["Date"] = email.utils.formatdate(localtime=True)
        # RFC 5322 §3.6.4: a reply names its parent and the thread.
        if d.in_reply_to:
            msg["In-Reply-To"] = _no_crlf(d.in_reply_to, "In-Reply-To")
        if d.references:
            msg["References"] = " ".join(_no_crlf(r, "References") for r in d.references)
        msg["User-Agent"] = "mox webmail"
        msg.set_content(d.text.replace("\r\n", "\n"))
        if len(d.attachments) > MAX_ATTACHMENTS:
            raise ComposeError(f"at most {MAX_ATTACHMENTS} attachments")
        for name, ctype, data in d.attachments:
            total += len(data)
            if total > MAX_TOTAL:
                raise ComposeError("attachments too large")
            maintype, _, subtype = (ctype or "application/octet-stream").partition("/")
            if not subtype or maintype in ("multipart", "message"):
                maintype, subtype = "application", "octet-stream"
            msg.add_attachment(data, maintype=maintype, subtype=subtype, filename=name)
        data = msg.as_bytes()
    except (ValueError, TypeError, IndexError) as exc:
        raise ComposeError(f"cannot compose message: {exc}") from None
    return data, message_id, utf8


async def _store_copy(acc: Account, mailbox: str, data: bytes, flags: list[str]) -> int:
    if acc.get_mailbox(mailbox) is None:
        try:
            await acc.create_mailbox(mailbox)
        except MailboxExists:
            pass
    msg = await acc.deliver(mailbox, data, flags=flags)
    return msg.uid


async def submit(webapi: WebApi, acc: Account, remote_ip: str, d: Draft) -> tuple[str, int]:
    """Send through the submission pipeline; returns (Message-ID, uid of the Sent copy)."""
    data, message_id, utf8 = compose(d, webapi.loaded.config.hostname)
    sender, _ = _address(d.from_, "From")
    rcpts = [_address(a, "recipient")[0] for a in (*d.to, *d.cc, *d.bcc)]
    if not rcpts:
        raise ComposeError("no recipients")
    conn = Conn(remote_ip=remote_ip, account=acc.name)
    txn = Transaction(
        mail_from=sender,
        mail_from_text=str(sender),
        smtputf8=utf8,
        body="8BITMIME" if any(b > 127 for b in data) else "7BIT",
    )
    try:
        await check_mail_from(webapi.smtp, conn, txn)
        seen: set[str] = set()
        for r in rcpts:
            key = str(r).lower()
            if key in seen:
                continue
            seen.add(key)
            txn.recipients.append(await resolve_recipient(webapi.smtp, conn, txn, r, str(r)))
        await deliver_message(webapi.smtp, conn, txn, data)
    except SmtpReply as reply:
        raise ComposeError(f"{reply.code} {reply.enhanced} {reply.text}") from None
    log.info("webmail send", extra={"account": acc.name, "msgid": message_id, "rcpts": len(seen)})
    try:
        uid = await _store_copy(acc, "Sent", data, ["\\Seen"])
    except StoreError:
        log.exception("webmail: storing the Sent copy failed, account %s", acc.name)
        uid = 0
    return message_id, uid


async def save_draft(acc: Account, d: Draft, hostname: str, replace_uid: int | None) -> int:
    """Store a draft in Drafts (\\Draft, \\Seen, RFC 9051 §2.3.2), replacing the previous one
    (RFC 8508 REPLACE semantics: new message in, old out, atomically)."""
    if not d.from_:
        raise ComposeError("From is required")
    data, _, _ = compose(d, hostname, keep_bcc=True)
    if acc.get_mailbox("Drafts") is None:
        try:
            await acc.create_mailbox("Drafts")
        except MailboxExists:
            pass
    drafts = acc.get_mailbox("Drafts")
    if drafts is None:
        raise ComposeError("no Drafts mailbox")
    replace = None
    if replace_uid and acc.get_messages(drafts.id, [replace_uid]):
        replace = (drafts.id, replace_uid)
    msg = await acc.deliver("Drafts", data, flags=["\\Draft", "\\Seen"], replace=replace)
    return msg.uid
