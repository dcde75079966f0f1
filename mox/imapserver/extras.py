"""QUOTA (RFC 9208), METADATA (RFC 5464) and COMPRESS (RFC 4978).

Implementation notes:
- One quota root, "", for the whole account, with the STORAGE resource in units of 1024 octets
  (RFC 9208 §5.1) when the account has a quota (``Account.quota``); SETQUOTA is not for users.
- METADATA entries are stored per mailbox (0 for server entries, mailbox name "") by the store;
  names are case-insensitive (lower-cased, RFC 5464 §3.2). One user per account, so /private and
  /shared behave alike. Limits as below answer NO [METADATA MAXSIZE n] / [METADATA TOOMANY].
- COMPRESS DEFLATE switches the transport to DEFLATE once the tagged OK is out (RFC 4978 §3).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Final

from mox.imap import commands as c
from mox.imap.errors import ImapBad, ImapNo
from mox.imap.responses import NIL, Literal, Metadata, Quota, QuotaRoot, Str, Value
from mox.imapserver.common import Ok, code, get_mailbox
from mox.imapserver.mailboxes import canonical_name

if TYPE_CHECKING:
    from mox.imapserver.session import Session

MAX_METADATA_SIZE: Final = 64 * 1024
MAX_METADATA_ENTRIES: Final = 1000


async def getquotaroot(s: Session, cmd: c.GetQuotaRoot) -> Ok | None:
    account = s.require_account()
    mb = get_mailbox(account, canonical_name(cmd.mailbox))
    s.send(QuotaRoot(mb.name, ("",)))  # RFC 9208 §4.3.2
    if account.quota is not None:
        s.send(_quota(s))
    return None


def _quota(s: Session) -> Quota:
    account = s.require_account()
    resources: tuple[tuple[str, int, int], ...] = ()
    if account.quota is not None:
        # RFC 9208 §5.1: STORAGE usage and limit in units of 1024 octets, usage rounded up.
        resources = (("STORAGE", (account.disk_usage() + 1023) // 1024, account.quota // 1024),)
    return Quota("", resources)


async def getquota(s: Session, cmd: c.GetQuota) -> Ok | None:
    if cmd.root != "":
        raise ImapNo("no such quota root", code("NONEXISTENT"))  # RFC 9208 §4.3.1
    s.send(_quota(s))
    return None


async def setquota(s: Session, cmd: c.SetQuota) -> Ok | None:
    # RFC 9208 §4.3.3: quotas are set by the administrator in the configuration.
    raise ImapNo("quota is set by the administrator", code("NOPERM"))


def _mailbox_id(s: Session, name: str) -> tuple[int, str]:
    if name == "":
        return 0, ""  # RFC 5464 §3.2: the empty mailbox name means server annotations
    mb = get_mailbox(s.require_account(), canonical_name(name))
    return mb.id, mb.name


def _value(data: bytes, is_text: bool) -> Value:
    # RFC 5464 §5: value = nstring / literal8; binary data goes as literal8.
    if is_text:
        return Str(data)
    return Literal(data, binary=True)


async def getmetadata(s: Session, cmd: c.GetMetadata) -> Ok | None:
    account = s.require_account()
    mailbox_id, name = _mailbox_id(s, cmd.mailbox)
    stored = account.get_annotations(mailbox_id)
    found: list[tuple[str, Value]] = []
    longest = 0
    for key, (data, is_text) in stored.items():
        if not any(_below(key, entry, cmd.depth) for entry in cmd.entries):
            continue
        if cmd.maxsize is not None and len(data) > cmd.maxsize:
            longest = max(longest, len(data))  # RFC 5464 §4.2.1 MAXSIZE
            continue
        found.append((key, _value(data, is_text)))
    if found:
        s.send(Metadata(name, tuple(found)))
    if longest:
        return Ok("GETMETADATA completed", code("METADATA", "LONGENTRIES", longest))
    return None


def _below(key: str, entry: str, depth: str) -> bool:
    """Whether key is entry, or below it within depth (RFC 5464 §4.2.2 DEPTH)."""
    if key == entry:
        return True
    if depth == "0" or not key.startswith(entry + "/"):
        return False
    return depth == "infinity" or "/" not in key[len(entry) + 1 :]


async def setmetadata(s: Session, cmd: c.SetMetadata) -> Ok | None:
    account = s.require_account()
    mailbox_id, _ = _mailbox_id(s, cmd.mailbox)
    current = account.get_annotations(mailbox_id)
    entries: list[tuple[str, bytes | None, bool]] = []
    for name, value in cmd.entries:
        if value is not None and len(value) > MAX_METADATA_SIZE:
            # RFC 5464 §4.3: [METADATA MAXSIZE n] when a value is too large.
            raise ImapNo("value too large", code("METADATA", "MAXSIZE", MAX_METADATA_SIZE))
        is_text = value is None or _is_text(value)
        entries.append((name, value, is_text))
    added = {n for n, v, _ in entries if v is not None} - set(current)
    removed = {n for n, v, _ in entries if v is None} & set(current)
    if len(current) + len(added) - len(removed) > MAX_METADATA_ENTRIES:
        raise ImapNo("too many metadata entries", code("METADATA", "TOOMANY"))
    await account.set_annotations(mailbox_id, entries)
    return None


def _is_text(value: bytes) -> bool:
    if b"\x00" in value:
        return False
    try:
        value.decode("utf-8")
    except UnicodeDecodeError:
        return False
    return True


async def compress(s: Session, cmd: c.Compress) -> Ok | None:
    if s.io.compressed:
        raise ImapNo("compression already active", code("COMPRESSIONACTIVE"))  # RFC 4978 §3
    if cmd.mechanism != "DEFLATE":
        raise ImapBad("unknown compression mechanism")

    async def start() -> None:
        s.io.start_compress()

    s.after_response = start
    return Ok("DEFLATE active", None)


def metadata_for_list(s: Session, mailbox_id: int, name: str, entries: tuple[str, ...]) -> Metadata:
    """The METADATA response for LIST RETURN (METADATA ...) (RFC 9590 §3): every requested
    entry, NIL when absent."""
    stored = s.require_account().get_annotations(mailbox_id)
    out: list[tuple[str, Value]] = []
    for entry in entries:
        got = stored.get(entry)
        if got is None:
            out.append((entry, NIL))
        else:
            out.append((entry, _value(*got)))
    return Metadata(name, tuple(out))
