"""The webmail at `/webmail/`: login page, the single-page app, its JSON API and message views.

As mox's webmail (reference §1.9), without a build step: plain ES modules under `static/`.
Pages carry a strict CSP (scripts and styles only from our own files, nothing inline); the API
lives under `/webmail/api/` and needs the session cookie plus, for anything but GET, the CSRF
token (mox.web.session). HTML mail is served by `/webmail/msg/<mailbox>/<uid>/html` to an
`<iframe sandbox>` with its own CSP (mox.webmail.sanitize). Live updates: server-sent events
(https://html.spec.whatwg.org/multipage/server-sent-events.html) from the account's change feed,
the same one IMAP IDLE (RFC 2177) listens to.
"""

from __future__ import annotations

import asyncio
import html
import json
import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final

from starlette.datastructures import UploadFile
from starlette.requests import Request
from starlette.responses import (
    HTMLResponse,
    JSONResponse,
    PlainTextResponse,
    RedirectResponse,
    Response,
    StreamingResponse,
)
from starlette.routing import BaseRoute, Mount, Route
from starlette.staticfiles import StaticFiles

from mox.store import Account, Change, Expunged, FlagsChanged, MailboxesChanged, MessageAdded
from mox.store import Message as StoredMessage
from mox.store.fulltext import extract_text
from mox.store.junkflags import JUNK, NOTJUNK
from mox.store.models import StoreError
from mox.web.session import Session, Sessions, authenticated, client_ip, same_origin
from mox.webmail import compose, ops, parse, sanitize

if TYPE_CHECKING:
    from mox.web.sites import SiteEnv

__all__ = ["routes"]

log = logging.getLogger(__name__)

STATIC: Final = Path(__file__).parent / "static"
TEMPLATES: Final = Path(__file__).parent / "templates"
PAGE_CSP: Final = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "connect-src 'self'; frame-src 'self'; form-action 'self'; frame-ancestors 'none'; "
    "base-uri 'none'"
)
MAX_PAGE: Final = 200
MAX_THREADED: Final = 5000  # newest messages considered when threading
MAX_UNINDEXED_SCAN: Final = 2000  # unindexed messages read for a search
MAX_UPLOAD: Final = 60 * 1024 * 1024
MAX_UIDS: Final = 10_000
SSE_LIFETIME: Final = 1800.0  # seconds; EventSource reconnects by itself
SSE_KEEPALIVE: Final = 20.0
MAX_STREAMS: Final = 50  # open event streams per account (tabs, devices)
# Mailboxes by RFC 6154 special use, for delete (Trash) and junk (Junk).
SPECIAL: Final = {"trash": "\\Trash", "junk": "\\Junk", "sent": "\\Sent", "drafts": "\\Drafts"}


class BadRequest(Exception):
    def __init__(self, message: str, status: int = 400) -> None:
        super().__init__(message)
        self.status = status


def _json_error(message: str, status: int) -> JSONResponse:
    return JSONResponse({"error": message}, status)


def _template(name: str, **values: str) -> str:
    text = (TEMPLATES / name).read_text()
    for k, v in values.items():
        text = text.replace("{{" + k + "}}", html.escape(v, quote=True))
    return text


def _page(body: str, status: int = 200) -> HTMLResponse:
    return HTMLResponse(
        body,
        status,
        headers={
            "content-security-policy": PAGE_CSP,
            "cache-control": "no-store",
            # Not the default no-referrer: with it, browsers send "Origin: null" on our own form
            # posts (login, logout), which the origin check must refuse. Other sites still get
            # no referrer.
            "referrer-policy": "same-origin",
        },
    )


def _int(value: Any, what: str, minimum: int = 0) -> int:
    try:
        n = int(value)
    except (TypeError, ValueError):
        raise BadRequest(f"{what} must be a number") from None
    if n < minimum:
        raise BadRequest(f"{what} must be at least {minimum}")
    return n


def _mailbox_named(acc: Account, special: str) -> str:
    use = SPECIAL[special]
    for mb in acc.list_mailboxes():
        if mb.special_use == use:
            return mb.name
    return special.capitalize()


def _row(m: StoredMessage, s: parse.Summary | None, depth: int = 0) -> dict[str, Any]:
    return {
        "mailbox": m.mailbox_id,
        "uid": m.uid,
        "flags": sorted(m.flags),
        "size": m.size,
        "received": m.internal_date.isoformat(),
        "from": s.from_ if s else [],
        "to": s.to if s else [],
        "subject": s.subject if s else "",
        "date": s.date if s else "",
        "attachments": s.attachments if s else False,
        "depth": depth,
    }


class Webmail:
    def __init__(self, env: SiteEnv) -> None:
        self.env = env
        self.sessions: Sessions = env.sessions
        self.streams: dict[str, int] = {}  # open event streams per account

    def account(self, session: Session) -> Account:
        return self.env.store.account(session.account)

    # --- pages ---

    async def index(self, request: Request) -> Response:
        session = self.sessions.get(request, "webmail")
        if session is None:
            return _page(_template("login.html", error=""))
        return _page(_template("index.html", csrf=session.csrf, login=session.login))

    async def login(self, request: Request) -> Response:
        if not same_origin(request):
            return PlainTextResponse("cross-origin login refused\n", 403)
        form = await request.form()
        username, password = form.get("username"), form.get("password")
        if not isinstance(username, str) or not isinstance(password, str):
            return _page(_template("login.html", error="username and password required"), 400)
        account = await self.env.authenticator.login(
            username.strip(), password, remote_ip=client_ip(request), protocol="webmail"
        )
        if account is None:
            return _page(_template("login.html", error="login failed"), 401)
        self.sessions.end(request, "webmail")  # no session fixation: always a new token
        token, _ = self.sessions.create("webmail", account, username.strip())
        response = RedirectResponse("/webmail/", 303)
        self.sessions.set_cookie(response, request, "webmail", token)
        return response

    async def logout(self, request: Request, session: Session) -> Response:
        self.sessions.end(request, "webmail")
        response = RedirectResponse("/webmail/", 303)
        self.sessions.clear_cookie(response, "webmail")
        return response

    # --- API: reading ---

    async def mailboxes(self, request: Request, session: Session) -> Response:
        acc = self.account(session)
        out = []
        for mb in acc.list_mailboxes():
            st = acc.mailbox_status(mb.id)
            out.append(
                {
                    "id": mb.id,
                    "name": mb.name,
                    "special_use": mb.special_use,
                    "messages": st.messages,
                    "unseen": st.unseen,
                }
            )
        cfg = self.env.config.config.accounts.get(session.account)
        return JSONResponse(
            {
                "login": session.login,
                "full_name": cfg.full_name if cfg is not None else "",
                "addresses": self.env.config.account_addresses(session.account),
                "mailboxes": out,
            }
        )

    async def _search(
        self, acc: Account, mailbox_id: int, msgs: list[StoredMessage], q: str
    ) -> list[StoredMessage]:
        """The messages containing q (RFC 9051 §6.4.4 TEXT semantics) from the full-text index;
        messages stored before the index existed are read (a bounded number of them)."""
        # The index queries use the account's read connection: on the event loop, not a thread.
        found = acc.fts_search(mailbox_id, q, text=True)
        if found is None:
            return msgs
        unindexed = acc.unindexed_uids(mailbox_id)
        needle = q.casefold()

        def scan(candidates: list[StoredMessage]) -> set[int]:
            hits = set()
            for m in candidates:
                try:
                    headers, body = extract_text(acc.read_message(m))
                except StoreError:
                    continue
                if needle in headers or needle in body:
                    hits.add(m.uid)
            return hits

        todo = [m for m in msgs if m.uid in unindexed][:MAX_UNINDEXED_SCAN]
        if todo:
            found = found | await asyncio.to_thread(scan, todo)
        return [m for m in msgs if m.uid in found]

    async def messages(self, request: Request, session: Session) -> Response:
        acc = self.account(session)
        p = request.query_params
        mailbox_id = _int(p.get("mailbox"), "mailbox", 1)
        offset = _int(p.get("offset", "0"), "offset")
        limit = min(_int(p.get("limit", "50"), "limit", 1), MAX_PAGE)
        q = p.get("q", "").strip()[:500]
        threaded = p.get("threads") == "1"
        if acc.get_mailbox_by_id(mailbox_id) is None:
            raise BadRequest("no such mailbox", 404)
        msgs = acc.list_messages(mailbox_id)
        if q:
            msgs = await self._search(acc, mailbox_id, msgs, q)
        msgs.sort(key=lambda m: (m.internal_date, m.uid), reverse=True)
        rows: list[dict[str, Any]] = []
        if threaded:
            considered = msgs[:MAX_THREADED]
            sums = await asyncio.to_thread(parse.summaries, acc, considered)
            groups = parse.threads(considered, sums)
            total = len(groups)
            for g in groups[offset : offset + limit]:
                for i, m in enumerate(g):
                    rows.append(_row(m, sums.get(m.id), 0 if i == 0 else 1))
        else:
            total = len(msgs)
            page = msgs[offset : offset + limit]
            sums = await asyncio.to_thread(parse.summaries, acc, page)
            rows = [_row(m, sums.get(m.id)) for m in page]
        return JSONResponse({"total": total, "offset": offset, "messages": rows})

    def _message(self, acc: Account, mailbox_id: int, uid: int) -> StoredMessage:
        found = acc.get_messages(mailbox_id, [uid])
        if not found:
            raise BadRequest("no such message", 404)
        return found[0]

    async def _parsed(self, acc: Account, m: StoredMessage) -> Any:
        try:
            data = await asyncio.to_thread(acc.read_message, m)
        except StoreError:
            raise BadRequest("message is gone", 404) from None
        return await asyncio.to_thread(parse.parse_full, data)

    async def message(self, request: Request, session: Session) -> Response:
        acc = self.account(session)
        p = request.query_params
        mailbox_id = _int(p.get("mailbox"), "mailbox", 1)
        m = self._message(acc, mailbox_id, _int(p.get("uid"), "uid", 1))
        msg = await self._parsed(acc, m)
        v = await asyncio.to_thread(parse.view, msg)
        return JSONResponse(
            {
                "mailbox": mailbox_id,
                "uid": m.uid,
                "flags": sorted(m.flags),
                "received": m.internal_date.isoformat(),
                "size": m.size,
                "headers": v.headers,
                "text": v.text,
                "html": v.html,
                "attachments": [
                    {
                        "part": a.part,
                        "filename": a.filename,
                        "content_type": a.content_type,
                        "size": a.size,
                    }
                    for a in v.attachments
                ],
            }
        )

    async def html(self, request: Request, session: Session) -> Response:
        acc = self.account(session)
        mailbox_id = _int(request.path_params["mailbox"], "mailbox", 1)
        m = self._message(acc, mailbox_id, _int(request.path_params["uid"], "uid", 1))
        remote = request.query_params.get("remote") == "1"
        msg = await self._parsed(acc, m)

        def render() -> str:
            _, html_part = parse.body_parts(msg)
            if html_part is None:
                return sanitize.document("")
            by_cid: dict[str, Any] = {}
            for _, part in parse.parts(msg):
                content_id = str(part.get("Content-ID", "")).strip().strip("<>")
                if content_id:
                    by_cid.setdefault(content_id, part)

            def cid(name: str) -> tuple[str, bytes] | None:
                part = by_cid.get(name)
                if part is None:
                    return None
                return part.get_content_type(), parse.part_bytes(part)

            body, _ = sanitize.sanitize(parse.part_text(html_part), cid, remote=remote)
            return sanitize.document(body)

        doc = await asyncio.to_thread(render)
        return HTMLResponse(
            doc,
            headers={
                "content-security-policy": sanitize.html_csp(remote),
                "x-frame-options": "SAMEORIGIN",
                "cache-control": "no-store",
            },
        )

    async def part(self, request: Request, session: Session) -> Response:
        acc = self.account(session)
        mailbox_id = _int(request.path_params["mailbox"], "mailbox", 1)
        m = self._message(acc, mailbox_id, _int(request.path_params["uid"], "uid", 1))
        msg = await self._parsed(acc, m)
        part = parse.find_part(msg, request.path_params["part"])
        if part is None:
            raise BadRequest("no such part", 404)
        data = await asyncio.to_thread(parse.part_bytes, part)
        filename = parse.filename(part) or f"part-{request.path_params['part']}"
        safe = "".join(c if c.isalnum() or c in "._- " else "_" for c in filename)[:100]
        # Downloaded, never rendered by us: attachment disposition, no sniffing, and a sandbox
        # CSP in case a browser shows it anyway.
        return Response(
            data,
            media_type="application/octet-stream",
            headers={
                "content-disposition": f'attachment; filename="{safe}"',
                "content-security-policy": "sandbox; default-src 'none'",
                "cache-control": "no-store",
            },
        )

    async def raw(self, request: Request, session: Session) -> Response:
        acc = self.account(session)
        mailbox_id = _int(request.path_params["mailbox"], "mailbox", 1)
        m = self._message(acc, mailbox_id, _int(request.path_params["uid"], "uid", 1))
        try:
            data = await asyncio.to_thread(acc.read_message, m)
        except StoreError:
            raise BadRequest("message is gone", 404) from None
        return Response(
            data,
            media_type="text/plain; charset=utf-8",
            headers={"content-security-policy": "sandbox; default-src 'none'"},
        )

    # --- API: changing ---

    async def _body(self, request: Request) -> dict[str, Any]:
        try:
            body = await request.json()
        except (ValueError, UnicodeDecodeError):
            raise BadRequest("request body is not JSON") from None
        if not isinstance(body, dict):
            raise BadRequest("request body must be a JSON object")
        return body

    def _uids(self, body: dict[str, Any]) -> tuple[int, list[int]]:
        mailbox_id = _int(body.get("mailbox"), "mailbox", 1)
        uids = body.get("uids")
        if not isinstance(uids, list) or not uids or len(uids) > MAX_UIDS:
            raise BadRequest(f"uids must be a list of 1 to {MAX_UIDS} numbers")
        return mailbox_id, [_int(u, "uid", 1) for u in uids]

    async def flags(self, request: Request, session: Session) -> Response:
        acc = self.account(session)
        body = await self._body(request)
        mailbox_id, uids = self._uids(body)
        add, remove = body.get("add", []), body.get("remove", [])
        for value in (add, remove):
            if not isinstance(value, list) or not all(isinstance(f, str) and f for f in value):
                raise BadRequest("add and remove must be lists of flags")
        try:
            if add:
                await acc.store_flags(mailbox_id, uids, "add", add)
            if remove:
                await acc.store_flags(mailbox_id, uids, "remove", remove)
        except StoreError as exc:
            raise BadRequest(str(exc)) from None
        return JSONResponse({"ok": True})

    async def move(self, request: Request, session: Session) -> Response:
        return await self._move_or_copy(request, session, copy=False)

    async def copy(self, request: Request, session: Session) -> Response:
        return await self._move_or_copy(request, session, copy=True)

    async def _move_or_copy(self, request: Request, session: Session, *, copy: bool) -> Response:
        acc = self.account(session)
        body = await self._body(request)
        mailbox_id, uids = self._uids(body)
        dest = acc.get_mailbox_by_id(_int(body.get("to"), "to", 1))
        if dest is None:
            raise BadRequest("no such destination mailbox", 404)
        try:
            pairs = await ops.move_messages(acc, mailbox_id, uids, dest.name, copy=copy)
        except StoreError as exc:
            raise BadRequest(str(exc)) from None
        return JSONResponse({"ok": True, "uids": [new for _, new in pairs]})

    async def delete(self, request: Request, session: Session) -> Response:
        """Move to Trash; in Trash itself, remove for good (\\Deleted + expunge, RFC 9051
        §6.4.3)."""
        acc = self.account(session)
        body = await self._body(request)
        mailbox_id, uids = self._uids(body)
        mb = acc.get_mailbox_by_id(mailbox_id)
        if mb is None:
            raise BadRequest("no such mailbox", 404)
        try:
            if mb.special_use == "\\Trash" or mb.name == _mailbox_named(acc, "trash"):
                await ops.expunge_messages(acc, mailbox_id, uids)
                return JSONResponse({"ok": True, "expunged": True})
            trash = _mailbox_named(acc, "trash")
            if acc.get_mailbox(trash) is None:
                await acc.create_mailbox(trash, "\\Trash")
            await acc.move_messages(mailbox_id, uids, trash, junk_flags=None)
        except StoreError as exc:
            raise BadRequest(str(exc)) from None
        return JSONResponse({"ok": True, "expunged": False})

    async def junk(self, request: Request, session: Session) -> Response:
        """Mark as junk (to Junk, $Junk) or not junk (to Inbox, $NotJunk); the account's junk
        filter trains from the flags (mox.junk.train)."""
        acc = self.account(session)
        body = await self._body(request)
        mailbox_id, uids = self._uids(body)
        is_junk = body.get("junk") is True
        mb = acc.get_mailbox_by_id(mailbox_id)
        if mb is None:
            raise BadRequest("no such mailbox", 404)
        dest = _mailbox_named(acc, "junk") if is_junk else "Inbox"
        add, remove = (JUNK, NOTJUNK) if is_junk else (NOTJUNK, JUNK)
        try:
            if acc.get_mailbox(dest) is None:
                await acc.create_mailbox(dest, "\\Junk" if is_junk else None)
            await acc.store_flags(mailbox_id, uids, "add", [add])
            await acc.store_flags(mailbox_id, uids, "remove", [remove])
            target = acc.get_mailbox(dest)
            if target is not None and target.id != mb.id:
                # No automatic rules here: the flags just set say what the user meant.
                pairs = await acc.move_messages(mailbox_id, uids, dest, junk_flags=None)
            else:
                pairs = [(u, u) for u in uids]
        except StoreError as exc:
            raise BadRequest(str(exc)) from None
        return JSONResponse({"ok": True, "mailbox": dest, "uids": [n for _, n in pairs]})

    async def _draft_form(
        self, request: Request, session: Session
    ) -> tuple[compose.Draft, dict[str, str]]:
        form = await request.form()
        try:
            return await self._draft_fields(form.multi_items(), session)
        finally:
            await form.close()  # uploads are spooled to temporary files

    async def _draft_fields(
        self, items: list[tuple[str, UploadFile | str]], session: Session
    ) -> tuple[compose.Draft, dict[str, str]]:
        fields: dict[str, str] = {}
        attachments: list[tuple[str, str, bytes]] = []
        total = 0
        for key, value in items:
            if isinstance(value, UploadFile):
                if key != "attachment" or not value.filename:
                    continue
                data = await value.read(MAX_UPLOAD + 1)
                total += len(data)
                if total > compose.MAX_TOTAL:
                    raise BadRequest("attachments too large", 413)
                attachments.append(
                    (value.filename, value.content_type or "application/octet-stream", data)
                )
            else:
                fields[key] = value
        try:
            d = compose.Draft(
                from_=fields.get("from", "") or session.login,
                to=compose.split_addresses(fields.get("to", "")),
                cc=compose.split_addresses(fields.get("cc", "")),
                bcc=compose.split_addresses(fields.get("bcc", "")),
                subject=fields.get("subject", ""),
                text=fields.get("text", ""),
                in_reply_to=fields.get("in_reply_to", "").strip(),
                references=fields.get("references", "").split(),
                attachments=attachments,
            )
        except compose.ComposeError as exc:
            raise BadRequest(str(exc)) from None
        # Forwarding: the original's attachments come along.
        fwd = fields.get("forward_attachments", "")
        if fwd:
            mb_text, _, uid_text = fwd.partition(":")
            acc = self.account(session)
            m = self._message(acc, _int(mb_text, "mailbox", 1), _int(uid_text, "uid", 1))
            msg = await self._parsed(acc, m)
            v = parse.view(msg)
            for a in v.attachments:
                part = parse.find_part(msg, a.part)
                if part is not None:
                    name = a.filename or f"part-{a.part}"
                    d.attachments.append((name, a.content_type, parse.part_bytes(part)))
        return d, fields

    async def send(self, request: Request, session: Session) -> Response:
        acc = self.account(session)
        d, fields = await self._draft_form(request, session)
        try:
            message_id, sent_uid = await compose.submit(self.env.webapi, acc, client_ip(request), d)
        except compose.ComposeError as exc:
            raise BadRequest(str(exc)) from None
        # The draft this came from is done; a replied-to message gets \Answered (RFC 9051 §2.3.2).
        draft_uid = fields.get("draft_uid", "")
        drafts = acc.get_mailbox(_mailbox_named(acc, "drafts"))
        try:
            if draft_uid.isdigit() and drafts is not None:
                await ops.expunge_messages(acc, drafts.id, [int(draft_uid)])
            reply_to = fields.get("reply_to_message", "")
            if reply_to:
                mb_text, _, uid_text = reply_to.partition(":")
                if mb_text.isdigit() and uid_text.isdigit():
                    await acc.store_flags(int(mb_text), [int(uid_text)], "add", ["\\Answered"])
        except StoreError:
            log.info("webmail: draft cleanup or answered flag failed", exc_info=True)
        return JSONResponse({"ok": True, "message_id": message_id, "sent_uid": sent_uid})

    async def draft(self, request: Request, session: Session) -> Response:
        acc = self.account(session)
        d, fields = await self._draft_form(request, session)
        replace = fields.get("draft_uid", "")
        try:
            uid = await compose.save_draft(
                acc,
                d,
                self.env.config.config.hostname,
                int(replace) if replace.isdigit() else None,
            )
        except (compose.ComposeError, StoreError) as exc:
            raise BadRequest(str(exc)) from None
        drafts = acc.get_mailbox("Drafts")
        return JSONResponse({"ok": True, "uid": uid, "mailbox": drafts.id if drafts else 0})

    # --- live updates ---

    async def events(self, request: Request, session: Session) -> Response:
        acc = self.account(session)
        if self.streams.get(session.account, 0) >= MAX_STREAMS:
            raise BadRequest("too many open event streams", 429)
        queue: asyncio.Queue[list[Change]] = asyncio.Queue(maxsize=100)

        def listener(changes: list[Change]) -> None:
            try:
                queue.put_nowait(changes)
            except asyncio.QueueFull:
                pass  # the client is behind; the next event makes it reload anyway

        async def stream() -> AsyncIterator[str]:
            acc.add_listener(listener)
            self.streams[session.account] = self.streams.get(session.account, 0) + 1
            try:
                yield "retry: 2000\n\n"
                yield "event: hello\ndata: {}\n\n"
                loop = asyncio.get_running_loop()
                end = loop.time() + SSE_LIFETIME
                while loop.time() < end:
                    try:
                        changes = await asyncio.wait_for(queue.get(), SSE_KEEPALIVE)
                    except TimeoutError:
                        if self.sessions.get(request, "webmail") is not session:
                            return  # logged out (or password changed) meanwhile
                        yield ": keepalive\n\n"
                        continue
                    while not queue.empty():
                        changes = changes + queue.get_nowait()
                    yield "event: change\ndata: " + json.dumps(_describe(changes)) + "\n\n"
            finally:
                acc.remove_listener(listener)
                left = self.streams.get(session.account, 1) - 1
                if left > 0:
                    self.streams[session.account] = left
                else:
                    self.streams.pop(session.account, None)

        return StreamingResponse(
            stream(),
            media_type="text/event-stream",
            headers={"cache-control": "no-store", "x-accel-buffering": "no"},
        )


def _describe(changes: list[Change]) -> dict[str, Any]:
    mailboxes: set[int] = set()
    structure = False
    for c in changes:
        if isinstance(c, MessageAdded | FlagsChanged | Expunged):
            mailboxes.add(c.mailbox_id)
        elif isinstance(c, MailboxesChanged):
            structure = True
    return {"mailboxes": sorted(mailboxes), "structure": structure}


Handler = Callable[[Request, Session], Awaitable[Response]]


def routes(env: SiteEnv) -> list[BaseRoute]:
    wm = Webmail(env)

    def api_missing(request: Request) -> Response:
        return _json_error("not logged in", 401)

    def page_missing(request: Request) -> Response:
        return RedirectResponse("/webmail/", 303)

    api = authenticated(env.sessions, "webmail", api_missing)
    page = authenticated(env.sessions, "webmail", page_missing)

    def guarded(handler: Handler) -> Handler:
        async def run(request: Request, session: Session) -> Response:
            try:
                return await handler(request, session)
            except BadRequest as exc:
                return _json_error(str(exc), exc.status)

        return run

    def limited(
        endpoint: Callable[[Request], Awaitable[Response]],
    ) -> Callable[[Request], Awaitable[Response]]:
        async def run(request: Request) -> Response:
            length = request.headers.get("content-length", "")
            if not length.isdigit() or int(length) > MAX_UPLOAD:
                return _json_error("request too large or without length", 413)
            return await endpoint(request)

        return run

    async def redirect(request: Request) -> Response:
        return RedirectResponse("/webmail/", 308)

    def a(h: Handler) -> Callable[[Request], Awaitable[Response]]:
        return api(guarded(h))

    return [
        Route("/webmail", redirect),
        Route("/webmail/", wm.index),
        Route("/webmail/login", wm.login, methods=["POST"]),
        Route("/webmail/logout", page(wm.logout), methods=["POST"]),
        Mount("/webmail/static", StaticFiles(directory=STATIC, follow_symlink=False)),
        Route("/webmail/api/mailboxes", a(wm.mailboxes)),
        Route("/webmail/api/messages", a(wm.messages)),
        Route("/webmail/api/message", a(wm.message)),
        Route("/webmail/api/events", a(wm.events)),
        Route("/webmail/api/flags", a(wm.flags), methods=["POST"]),
        Route("/webmail/api/move", a(wm.move), methods=["POST"]),
        Route("/webmail/api/copy", a(wm.copy), methods=["POST"]),
        Route("/webmail/api/delete", a(wm.delete), methods=["POST"]),
        Route("/webmail/api/junk", a(wm.junk), methods=["POST"]),
        Route("/webmail/api/send", limited(a(wm.send)), methods=["POST"]),
        Route("/webmail/api/draft", limited(a(wm.draft)), methods=["POST"]),
        Route("/webmail/msg/{mailbox:int}/{uid:int}/html", a(wm.html)),
        Route("/webmail/msg/{mailbox:int}/{uid:int}/raw", a(wm.raw)),
        Route("/webmail/msg/{mailbox:int}/{uid:int}/part/{part}", a(wm.part)),
    ]
