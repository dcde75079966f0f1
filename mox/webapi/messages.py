"""The web API's message methods (as mox's webapi Message*), on the authenticated account.

A message is named by `Mailbox` (its name) and `UID` (RFC 9051 §2.3.1.1), as the incoming
webhook reports it (`Meta.MailboxName`, `Meta.UID`); mox names it by a database `MsgID` instead.
Unknown mailboxes, messages and parts answer 404.

- `MessageGet` {Mailbox, UID}: headers, addresses, subject, text and HTML bodies, flags, and the
  MIME `Structure` (mox's webhook.Structure) whose part indexes `MessagePartGet` takes.
- `MessageRawGet` {Mailbox, UID}: the message exactly as stored, `message/rfc822` (RFC 2046
  §5.2.1), the same bytes IMAP FETCH BODY[] returns.
- `MessagePartGet` {Mailbox, UID, PartPath}: one part, its content-transfer-encoding undone (RFC
  2045 §6), served with its own content type. `PartPath` indexes the parts of multiparts from 0,
  as mox: [] is the message's own body, [1, 0] the first part inside the second part.
- `MessageDelete` {Mailbox, UID}: removed for good (as mox; IMAP sessions get EXPUNGE).
- `MessageFlagsAdd` / `MessageFlagsRemove` {Mailbox, UID, Flags}: system flags and keywords.
- `MessageMove` {Mailbox, UID, DestMailboxName}: to an existing mailbox, as IMAP MOVE (RFC
  6851) with the same automatic junk flags; answers the message's new `Mailbox` and `UID`.

Deleting and moving go through mox.webmail.ops, shared with the webmail.
"""

from __future__ import annotations

import asyncio
import email.policy
import email.utils
import re
from email.message import EmailMessage, Message
from typing import Any, Final

from starlette.responses import Response

from mox.store import Message as StoredMessage
from mox.store import Store, StoreError
from mox.store.models import MailboxNotFound
from mox.webapi.errors import bad, check_keys, not_found
from mox.webhook import addresses, body_text, header_text, parse_message
from mox.webmail import ops
from mox.webmail.parse import part_bytes

__all__ = ["MessageMethods", "find_part", "structure"]

# An IMAP keyword (RFC 9051 §9 flag-keyword = atom): no specials, controls, spaces or 8-bit.
_KEYWORD: Final = re.compile(r"""^[!#$&'+,\-./0-9:;<=>?@A-Z\[^_`a-z|}~]+$""")
# RFC 2045 §5.1 type "/" subtype, and a token for the charset parameter.
_TCHAR: Final = r"[!#$%&'*+\-.^_`|~0-9a-z]"  # RFC 9110 §5.6.2 tchar (lower case)
_TOKEN: Final = re.compile(rf"^{_TCHAR}{{1,100}}$", re.IGNORECASE)
_MEDIA_TYPE: Final = re.compile(rf"^{_TCHAR}{{1,100}}/{_TCHAR}{{1,100}}$")
MAX_PART_DEPTH: Final = 50
MAX_PARTS: Final = 1000  # parts described in a Structure
# Re-serializing an embedded message (message/rfc822): CRLF, headers as they came.
_EMBEDDED: Final = email.policy.SMTP.clone(refold_source="none", max_line_length=0)


def _mailbox_uid(req: dict[str, Any]) -> tuple[str, int]:
    mailbox = req.get("Mailbox")
    uid = req.get("UID")
    if not isinstance(mailbox, str) or not mailbox:
        raise bad("Mailbox must be a non-empty string")
    if not isinstance(uid, int) or isinstance(uid, bool) or uid < 1:
        raise bad("UID must be a positive integer")
    return mailbox, uid


def _flags(req: dict[str, Any]) -> list[str]:
    flags = req.get("Flags")
    if not isinstance(flags, list) or not flags:
        raise bad("Flags must be a non-empty list of strings")
    out = []
    for f in flags:
        if not isinstance(f, str) or not f:
            raise bad("Flags must be a non-empty list of strings")
        if f.startswith("\\"):
            if not _KEYWORD.match(f[1:]):
                raise bad(f"malformed flag {f!r}")
        elif not _KEYWORD.match(f):
            raise bad(f"malformed keyword {f!r}")
        out.append(f)
    return out


def _part_path(req: dict[str, Any]) -> list[int]:
    path = req.get("PartPath", [])
    if path is None:
        return []
    if not isinstance(path, list) or len(path) > MAX_PART_DEPTH:
        raise bad(f"PartPath must be a list of at most {MAX_PART_DEPTH} numbers")
    for i in path:
        if not isinstance(i, int) or isinstance(i, bool) or i < 0:
            raise bad("PartPath must hold part indexes: numbers from 0")
    return path


def _subparts(part: Message) -> list[Message] | None:
    """The parts of a multipart (RFC 2046 §5.1); None for anything else, also for an embedded
    message/rfc822, which mox does not descend into either."""
    if part.get_content_maintype() != "multipart" or not part.is_multipart():
        return None
    payload = part.get_payload()
    if not isinstance(payload, list):
        return None
    return [p for p in payload if isinstance(p, Message)]


def find_part(msg: Message, path: list[int]) -> Message:
    """The part at path (indexes from 0 into successive multiparts); ApiError 404 if absent."""
    part = msg
    for depth, index in enumerate(path):
        subs = _subparts(part)
        if subs is None or index >= len(subs):
            raise not_found(f"part {index} at index {depth} not found", "partNotFound")
        part = subs[index]
    return part


def _content(part: Message) -> bytes:
    if part.get_content_maintype() == "multipart":
        raise bad("that part is a multipart: add the index of one of its parts to PartPath")
    if part.is_multipart():  # message/rfc822 or message/global: the embedded message
        payload = part.get_payload()
        if isinstance(payload, list) and payload and isinstance(payload[0], Message):
            return payload[0].as_bytes(policy=_EMBEDDED)
        return b""
    return part_bytes(part)


def structure(part: Message, budget: list[int] | None = None, depth: int = 0) -> dict[str, Any]:
    """mox's webhook.Structure: content type, its parameters, Content-ID, decoded size, parts
    (at most MAX_PARTS parts, MAX_PART_DEPTH deep)."""
    budget = budget if budget is not None else [MAX_PARTS]
    budget[0] -= 1
    params = {
        k.lower(): email.utils.collapse_rfc2231_value(v)  # RFC 2231 §4 encoded values
        for k, v in (part.get_params() or [])[1:]
    }
    subs = _subparts(part) or []
    size = 0 if subs or part.is_multipart() else len(part_bytes(part))
    parts = []
    for sub in subs:
        if budget[0] <= 0 or depth >= MAX_PART_DEPTH:
            break
        parts.append(structure(sub, budget, depth + 1))
    return {
        "ContentType": part.get_content_type(),
        "ContentTypeParams": params,
        "ContentID": str(part.get("Content-ID", "")).strip(),
        "DecodedSize": size,
        "Parts": parts,
    }


class MessageMethods:
    def __init__(self, store: Store) -> None:
        self.store = store

    async def _message(self, account: str, req: dict[str, Any]) -> tuple[int, StoredMessage]:
        mailbox, uid = _mailbox_uid(req)
        acc = self.store.account(account)
        mb = acc.get_mailbox(mailbox)
        if mb is None:
            raise not_found("no such mailbox")
        found = acc.get_messages(mb.id, [uid])
        if not found:
            raise not_found("no such message")
        return mb.id, found[0]

    async def _data(self, account: str, message: StoredMessage) -> bytes:
        try:
            return await asyncio.to_thread(self.store.account(account).read_message, message)
        except StoreError:
            raise not_found("message was removed meanwhile") from None

    async def _parsed(self, account: str, message: StoredMessage) -> EmailMessage:
        return await asyncio.to_thread(parse_message, await self._data(account, message))

    async def get(self, account: str, remote_ip: str, req: dict[str, Any]) -> dict[str, Any]:
        req = check_keys(req, {"Mailbox", "UID"}, "request")
        _, message = await self._message(account, req)
        msg = await self._parsed(account, message)
        return {
            "Mailbox": req["Mailbox"],
            "UID": message.uid,
            "Flags": sorted(message.flags),
            "Size": message.size,
            "Received": message.internal_date.isoformat(),
            "Headers": [[k, str(v)] for k, v in msg.items()],
            "From": addresses(msg, "From"),
            "To": addresses(msg, "To"),
            "CC": addresses(msg, "Cc"),
            "Subject": header_text(msg, "Subject"),
            "MessageID": header_text(msg, "Message-Id").strip(),
            "Text": body_text(msg, "plain"),
            "HTML": body_text(msg, "html"),
            "Structure": await asyncio.to_thread(structure, msg),
        }

    async def raw_get(self, account: str, remote_ip: str, req: dict[str, Any]) -> Response:
        req = check_keys(req, {"Mailbox", "UID"}, "request")
        _, message = await self._message(account, req)
        data = await self._data(account, message)
        # mox answers text/plain; message/rfc822 (RFC 2046 §5.2.1) says what it is, and the
        # sandbox CSP and nosniff keep a browser from running anything in it.
        return Response(
            data,
            media_type="message/rfc822",
            headers={"content-security-policy": "sandbox; default-src 'none'"},
        )

    async def part_get(self, account: str, remote_ip: str, req: dict[str, Any]) -> Response:
        req = check_keys(req, {"Mailbox", "UID", "PartPath"}, "request")
        path = _part_path(req)
        _, message = await self._message(account, req)
        msg = await self._parsed(account, message)
        part = find_part(msg, path)
        data = await asyncio.to_thread(_content, part)
        ctype = part.get_content_type()
        if not _MEDIA_TYPE.match(ctype):
            ctype = "application/octet-stream"
        charset = part.get_content_charset()
        if charset and ctype.startswith("text/") and _TOKEN.match(charset):
            ctype += f"; charset={charset}"
        # The part is the sender's content: served as data, never as a page of ours.
        return Response(
            data,
            media_type=ctype,
            headers={
                "content-security-policy": "sandbox; default-src 'none'",
                "content-disposition": "attachment",
            },
        )

    async def delete(self, account: str, remote_ip: str, req: dict[str, Any]) -> dict[str, Any]:
        req = check_keys(req, {"Mailbox", "UID"}, "request")
        mailbox_id, message = await self._message(account, req)
        acc = self.store.account(account)
        try:
            gone = await ops.expunge_messages(acc, mailbox_id, [message.uid])
        except StoreError as exc:
            raise bad(str(exc), "user") from None
        if not gone:  # moved or removed by someone else meanwhile
            raise not_found("no such message")
        return {}

    async def _set_flags(self, account: str, req: dict[str, Any], add: bool) -> dict[str, Any]:
        req = check_keys(req, {"Mailbox", "UID", "Flags"}, "request")
        flags = _flags(req)
        mailbox_id, message = await self._message(account, req)
        acc = self.store.account(account)
        try:
            await acc.store_flags(mailbox_id, [message.uid], "add" if add else "remove", flags)
        except StoreError as exc:
            raise bad(str(exc)) from None
        (now,) = acc.get_messages(mailbox_id, [message.uid]) or (message,)
        return {"Mailbox": req["Mailbox"], "UID": message.uid, "Flags": sorted(now.flags)}

    async def flags_add(self, account: str, remote_ip: str, req: dict[str, Any]) -> Any:
        return await self._set_flags(account, req, True)

    async def flags_remove(self, account: str, remote_ip: str, req: dict[str, Any]) -> Any:
        return await self._set_flags(account, req, False)

    async def move(self, account: str, remote_ip: str, req: dict[str, Any]) -> dict[str, Any]:
        req = check_keys(req, {"Mailbox", "UID", "DestMailboxName"}, "request")
        dest_name = req.get("DestMailboxName")
        if not isinstance(dest_name, str) or not dest_name:
            raise bad("DestMailboxName must be a non-empty string")
        mailbox_id, message = await self._message(account, req)
        acc = self.store.account(account)
        dest = acc.get_mailbox(dest_name)
        if dest is None:  # as mox: the destination must exist
            raise not_found("no such destination mailbox")
        if dest.id == mailbox_id:
            # As mox ("already in destination mailbox"), and IMAP MOVE's [CANNOT].
            raise bad("message is already in the destination mailbox", "user")
        try:
            pairs = await ops.move_messages(acc, mailbox_id, [message.uid], dest.name)
        except MailboxNotFound:
            raise not_found("no such destination mailbox") from None
        except StoreError as exc:
            raise bad(str(exc), "user") from None
        if not pairs:
            raise not_found("no such message")
        return {"Mailbox": dest.name, "UID": pairs[0][1]}
