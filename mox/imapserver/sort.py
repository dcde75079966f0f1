"""SORT and THREAD (RFC 5256), beyond the Go mox; DISPLAY sort key from RFC 5957.

Implementation notes:
- The messages are first selected with the SEARCH machinery (``mox.imapserver.search``), then
  their top-level headers are read (no MIME parse of bodies).
- Base subjects follow RFC 5256 §2.1 (encoded-words decoded, "Re:", "Fwd:", "[blob]" leaders and
  "(fwd)" trailers removed, "[fwd: ...]" unwrapped), compared case-insensitively. A missing or
  unparsable Date header sorts by the internal date (RFC 5256 §2.2). Ties go by sequence number.
- THREAD=REFERENCES is the algorithm of RFC 5256 §4 (after Jamie Zawinski): link by References
  (or In-Reply-To), prune empty containers, gather root threads by base subject, sort siblings by
  sent date. THREAD=ORDEREDSUBJECT groups by base subject, the first message the parent of the
  rest.
"""

from __future__ import annotations

import email.utils
import functools
import re
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, Final

from mox.imap import commands as c
from mox.imap.responses import SearchData, ThreadData
from mox.imapserver.message import (
    Address,
    decoded_header,
    parse_address_list,
    parse_part,
    raw_values,
    split_header,
)
from mox.imapserver.search import check_charset, run_search
from mox.store import Account, Message, StoreError

if TYPE_CHECKING:
    from mox.imapserver.common import Ok
    from mox.imapserver.session import Session

_WS_RE: Final = re.compile(r"\s+")
_TRAILER_RE: Final = re.compile(r"(\s*\(fwd\))+\s*$", re.IGNORECASE)
# subj-leader = (*subj-blob subj-refwd) / WSP; subj-refwd = ("re" / ("fw" ["d"])) *WSP
# [subj-blob] ":"; subj-blob = "[" *BLOBCHAR "]" *WSP  (RFC 5256 §5)
_LEADER_RE: Final = re.compile(r"^(\s*\[[^\[\]]*\])*\s*(re|fwd?)\s*(\[[^\[\]]*\])?\s*:\s*", re.I)
_BLOB_RE: Final = re.compile(r"^\s*\[[^\[\]]*\]\s*")
_FWD_WRAP_RE: Final = re.compile(r"^\[fwd:(.*)\]$", re.IGNORECASE)
_MSGID_RE: Final = re.compile(r"<[^<>]+>")


def base_subject(subject: str) -> str:
    """RFC 5256 §2.1 base subject, upper-cased for comparison."""
    s = _WS_RE.sub(" ", subject).strip()
    while True:
        before = s
        s = _TRAILER_RE.sub("", s)  # step 2
        while True:  # steps 3 and 4
            inner = s
            s = _LEADER_RE.sub("", s, count=1)
            stripped = _BLOB_RE.sub("", s, count=1)
            if stripped:
                s = stripped
            if s == inner:
                break
        m = _FWD_WRAP_RE.match(s)  # step 6
        if m:
            s = m.group(1).strip()
        if s == before:
            return s.upper()


@dataclass(slots=True)
class _Info:
    seq: int
    msg: Message
    date: datetime
    subject: str
    from_: list[Address]
    to: list[Address]
    cc: list[Address]
    message_id: str
    references: list[str]


def _addr_key(addrs: list[Address]) -> str:
    # RFC 5256 §3: the addr-mailbox of the first address, case-insensitively.
    for a in addrs:
        if a.host is not None:
            return (a.mailbox or "").lower()
    return ""


def _display_key(addrs: list[Address]) -> str:
    # RFC 5957 §3: the display name of the first address, else its addr-spec.
    for a in addrs:
        if a.host is not None:
            if a.name:
                return a.name.lower()
            return f"{a.mailbox or ''}@{a.host}".lower()
    return ""


def _info(account: Account, seq: int, msg: Message) -> _Info:
    header, _ = split_header(account.read_message(msg))
    headers = parse_part(header).headers
    date = msg.internal_date
    dates = raw_values(headers, "Date")
    if dates:
        try:
            parsed = email.utils.parsedate_to_datetime(dates[0].strip())
            date = parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)
        except (TypeError, ValueError, IndexError):
            pass

    def addrs(name: str) -> list[Address]:
        return [a for v in raw_values(headers, name) for a in parse_address_list(v)]

    subjects = decoded_header(headers, "Subject")
    ids = _MSGID_RE.findall(" ".join(raw_values(headers, "Message-ID")))
    refs = _MSGID_RE.findall(" ".join(raw_values(headers, "References")))
    if not refs:
        refs = _MSGID_RE.findall(" ".join(raw_values(headers, "In-Reply-To")))[:1]
    return _Info(
        seq=seq,
        msg=msg,
        date=date,
        subject=subjects[0] if subjects else "",
        from_=addrs("From"),
        to=addrs("To"),
        cc=addrs("Cc"),
        message_id=ids[0] if ids else "",
        references=refs,
    )


async def _infos(s: Session, key: c.SearchKey, tag: str, charset: str) -> list[_Info]:
    sel = s.require_selected()
    account = s.require_account()
    check_charset(charset)
    uids = list(sel.uids)
    found = await run_search(s, account, sel.mailbox_id, uids, key, saved=sel.saved, tag=tag)
    position = {u: i + 1 for i, u in enumerate(uids)}
    out: list[_Info] = []
    for m in found:
        try:
            out.append(_info(account, position[m.uid], m))
        except StoreError:
            pass  # expunged meanwhile
    return out


def _sort_key(info: _Info, criterion: str) -> Any:
    if criterion == "ARRIVAL":
        return info.msg.internal_date
    if criterion == "DATE":
        return info.date
    if criterion == "SIZE":
        return info.msg.size
    if criterion == "SUBJECT":
        return base_subject(info.subject)
    if criterion == "FROM":
        return _addr_key(info.from_)
    if criterion == "TO":
        return _addr_key(info.to)
    if criterion == "CC":
        return _addr_key(info.cc)
    return _display_key(info.from_)  # DISPLAY


async def sort(s: Session, cmd: c.Sort) -> Ok | None:
    infos = await _infos(s, cmd.key, cmd.tag, cmd.charset)
    infos.sort(key=lambda i: i.seq)  # the final tie-breaker (RFC 5256 §3)
    for criterion, reverse in reversed(cmd.criteria):
        # Stable sorts, least significant criterion first.
        infos.sort(key=functools.partial(_sort_key, criterion=criterion), reverse=reverse)
    numbers = [i.msg.uid if cmd.uid else i.seq for i in infos]
    s.send(SearchData(tuple(numbers), name="SORT"))  # RFC 5256 §4
    return None


@dataclass(eq=False, slots=True)
class _Node:
    info: _Info | None = None
    parent: _Node | None = None
    children: list[_Node] = field(default_factory=list)

    def date(self) -> tuple[datetime, int]:
        if self.info is not None:
            return self.info.date, self.info.seq
        return self.children[0].date() if self.children else (datetime.min.replace(tzinfo=UTC), 0)

    def subject(self) -> str:
        if self.info is not None:
            return self.info.subject
        return self.children[0].subject() if self.children else ""

    def is_ancestor_of(self, other: _Node) -> bool:
        node: _Node | None = other
        for _ in range(10_000):
            if node is None:
                return False
            if node is self:
                return True
            node = node.parent
        return True


def _link(parent: _Node, child: _Node) -> None:
    if child.parent is not None:
        child.parent.children.remove(child)
    child.parent = parent
    parent.children.append(child)


def _references_threads(infos: list[_Info]) -> list[_Node]:
    nodes: dict[str, _Node] = {}
    for n, info in enumerate(infos):
        # RFC 5256 §4 step 1: a missing or duplicate Message-ID gets a unique one.
        mid = info.message_id
        if not mid or (mid in nodes and nodes[mid].info is not None):
            mid = f"<dup-{n}@mox>"
        node = nodes.setdefault(mid, _Node())
        node.info = info
        prev: _Node | None = None
        for ref in info.references:  # step 1A: link the references in order
            cur = nodes.setdefault(ref, _Node())
            if prev is not None and cur.parent is None and not cur.is_ancestor_of(prev):
                _link(prev, cur)
            prev = cur
        # step 1B: the message's parent is the last reference (none if that makes a loop)
        if prev is not None and (prev is node or node.is_ancestor_of(prev)):
            prev = None
        if node.parent is not None:
            node.parent.children.remove(node)
            node.parent = None
        if prev is not None:
            _link(prev, node)
    roots = [n for n in nodes.values() if n.parent is None]
    roots = _prune(roots, at_root=True)
    roots = _gather_by_subject(roots)
    _sort_tree(roots)
    return roots


def _prune(nodes: list[_Node], *, at_root: bool) -> list[_Node]:
    # RFC 5256 §4 step 3: drop empty containers without children; promote the children of other
    # empty containers, except several children to the root level.
    out: list[_Node] = []
    for node in nodes:
        node.children = _prune(node.children, at_root=False)
        for ch in node.children:
            ch.parent = node
        if node.info is None:
            if not node.children:
                continue
            if not at_root or len(node.children) == 1:
                for ch in node.children:
                    ch.parent = node.parent
                out.extend(node.children)
                continue
        out.append(node)
    return out


def _is_reply(subject: str) -> bool:
    return base_subject(subject) != _WS_RE.sub(" ", subject).strip().upper()


def _gather_by_subject(roots: list[_Node]) -> list[_Node]:
    # RFC 5256 §4 step 5: merge root threads with the same base subject.
    table: dict[str, _Node] = {}
    for node in roots:
        subj = base_subject(node.subject())
        if not subj:
            continue
        old = table.get(subj)
        if (
            old is None
            or (node.info is None and old.info is not None)
            or (old.info is not None and _is_reply(old.subject()) and not _is_reply(node.subject()))
        ):
            table[subj] = node
    out: list[_Node] = []
    for node in roots:
        subj = base_subject(node.subject())
        target = table.get(subj) if subj else None
        if target is None or target is node:
            out.append(node)
            continue
        if target.info is None and node.info is None:
            for ch in list(node.children):
                _link(target, ch)
        elif target.info is None:
            _link(target, node)
        elif node.info is None:
            for ch in list(node.children):
                _link(target, ch)
        elif not _is_reply(target.subject()) and _is_reply(node.subject()):
            _link(target, node)
        else:
            dummy = _Node()
            idx = out.index(target) if target in out else None
            _link(dummy, target)
            _link(dummy, node)
            table[subj] = dummy
            if idx is not None:
                out[idx] = dummy
            else:
                roots[roots.index(target)] = dummy
    return [n for n in out if n.parent is None]


def _sort_tree(nodes: list[_Node]) -> None:
    # RFC 5256 §4 step 4 and 6: siblings by sent date (a dummy by its first child).
    for n in nodes:
        _sort_tree(n.children)
    nodes.sort(key=lambda n: n.date())


def _render(node: _Node, uid: bool) -> str:
    parts: list[str] = []
    if node.info is not None:
        parts.append(str(node.info.msg.uid if uid else node.info.seq))
    if len(node.children) == 1 and node.info is not None:
        parts.append(_render(node.children[0], uid))
    elif node.children:
        parts.append("".join("(" + _render(ch, uid) + ")" for ch in node.children))
    return " ".join(parts)


def _ordered_subject(infos: list[_Info]) -> list[_Node]:
    # RFC 5256 §4 ORDEREDSUBJECT: by base subject, then sent date; the first is the parent.
    groups: dict[str, list[_Info]] = {}
    for info in sorted(infos, key=lambda i: (i.date, i.seq)):
        groups.setdefault(base_subject(info.subject), []).append(info)
    roots: list[_Node] = []
    for members in groups.values():
        root = _Node(members[0])
        for other in members[1:]:
            _link(root, _Node(other))
        roots.append(root)
    roots.sort(key=lambda n: n.date())
    return roots


async def thread(s: Session, cmd: c.Thread) -> Ok | None:
    infos = await _infos(s, cmd.key, cmd.tag, cmd.charset)
    if cmd.algorithm == "ORDEREDSUBJECT":
        roots = _ordered_subject(infos)
    else:
        roots = _references_threads(infos)
    text = "".join("(" + _render(r, cmd.uid) + ")" for r in roots)
    s.send(ThreadData(text))  # RFC 5256 §4
    return None
