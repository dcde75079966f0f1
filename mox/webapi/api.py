"""The web API: `POST /webapi/v0/<Method>` with a JSON request, as mox's webapi.

The request is the body as JSON (`application/json`), or, as mox's clients send it, the form
field `request` of an `application/x-www-form-urlencoded` body. Authentication is HTTP Basic
(RFC 7617) with the account's email address and password; failures count in the same per-IP
login throttle as SMTP and IMAP. Errors are JSON `{"Code": ..., "Message": ...}`
(mox.webapi.errors). A POST that a browser says comes from another site (Sec-Fetch-Site, Origin)
is refused: a browser that logged in on our form pages would otherwise send its basic
credentials along with another site's form posts (CSRF).

`GET /webapi/v0/` lists the methods and `GET /webapi/v0/<Method>` shows a form with an example
request (mox.webapi.docs); both need the same authentication, so the browser has the credentials
when the form posts. `GET /webapi/` redirects to `/webapi/v0/`.

Methods:
- `Send`: compose a message (RFC 5322) from `Message` {From, To, CC, BCC, ReplyTo, Subject, Text,
  HTML, InReplyTo, References} and optional `Headers` [[name, value], ...], then hand it to the
  SMTP submission path (`deliver_message`): same sender checks, Message-Id/Date,
  Authentication-Results, DKIM signature, local delivery now, other domains through the queue.
  Returns `MessageID` and per recipient its `QueueMsgID` (null: delivered locally at once).
- `MessageGet`, `MessageRawGet`, `MessagePartGet`, `MessageDelete`, `MessageFlagsAdd`,
  `MessageFlagsRemove`, `MessageMove`: mox.webapi.messages.
- `SuppressionList` {}: the account's suppression list, `Suppressions` [{ID, Created, Account,
  BaseAddress, OriginalAddress, Manual, Reason}]. `SuppressionAdd` {EmailAddress, Manual,
  Reason}, `SuppressionRemove` {EmailAddress}, `SuppressionPresent` {EmailAddress} → `Present`.
  `Send` to a suppressed recipient fails with code `badAddress`.

No header value may contain CR or LF (header injection); such requests get 400.
"""

from __future__ import annotations

import base64
import binascii
import email.policy
import email.utils
import json
import logging
import re
import secrets
import urllib.parse
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from email.headerregistry import Address as HeaderAddress
from email.message import EmailMessage
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, RedirectResponse, Response
from starlette.routing import Route

from mox.config.load import LoadedConfig
from mox.queue.queue import Queue
from mox.queue.suppression import SuppressionError
from mox.ratelimit import ConnectionLimiter
from mox.server.authenticator import ConfigAuthenticator
from mox.smtp.address import Address, AddressError, parse_mailbox
from mox.smtp.codes import SmtpReply
from mox.smtpserver.delivery import deliver_message
from mox.smtpserver.pipeline import check_mail_from, resolve_recipient
from mox.smtpserver.state import Conn, ServerContext, Transaction
from mox.store import Store
from mox.web.session import same_origin
from mox.webapi import docs
from mox.webapi.errors import ApiError, bad, check_keys, error_response, not_found
from mox.webapi.messages import MessageMethods

__all__ = ["ApiError", "WebApi"]

log = logging.getLogger(__name__)

MAX_REQUEST = 64 * 1024 * 1024
# RFC 5322 §3.6.8 field names; the ones the API sets itself may not come in `Headers`.
_FIELD_NAME = re.compile(r"^[!-9;-~]+$")
_RESERVED = {
    "from",
    "to",
    "cc",
    "bcc",
    "reply-to",
    "subject",
    "message-id",
    "date",
    "in-reply-to",
    "references",
    "sender",
    "mime-version",
    "content-type",
    "content-transfer-encoding",
    "return-path",
    "received",
    "dkim-signature",
    "authentication-results",
}


def _header_value(value: Any, what: str) -> str:
    if not isinstance(value, str):
        raise bad(f"{what} must be a string")
    if "\r" in value or "\n" in value:
        raise bad(f"{what} must not contain CR or LF", "headerInjection")
    return value


def _field(obj: dict[str, Any], key: str, what: str) -> str:
    return _header_value(obj.get(key, ""), what)


@dataclass(frozen=True)
class NameAddress:
    name: str
    address: Address

    def header(self) -> HeaderAddress:
        local, _, domain = str(self.address).rpartition("@")
        return HeaderAddress(display_name=self.name, username=local, domain=domain)


def _name_address(obj: Any, what: str) -> NameAddress:
    obj = check_keys(obj, {"Name", "Address"}, what)
    name = _field(obj, "Name", f"{what}.Name")
    text = _field(obj, "Address", f"{what}.Address")
    if not text:
        raise bad(f"{what}.Address is required", "badAddress")
    try:
        addr = parse_mailbox(text)
    except AddressError as exc:
        raise bad(f"{what}.Address: {exc}", "badAddress") from None
    if addr.literal:
        raise bad(f"{what}.Address: address literals are not accepted", "badAddress")
    return NameAddress(name, addr)


def _name_addresses(obj: dict[str, Any], key: str) -> list[NameAddress]:
    value = obj.get(key, [])
    if value is None:
        return []
    if not isinstance(value, list):
        raise bad(f"Message.{key} must be a list")
    return [_name_address(v, f"Message.{key}[{i}]") for i, v in enumerate(value)]


Method = Callable[[str, str, dict[str, Any]], Awaitable[Any]]  # (account, remote IP, request)


def _remote_ip(request: Request) -> str:
    return request.client.host if request.client is not None else ""


class WebApi:
    """What the API needs from the running server; one per server, shared by its listeners."""

    def __init__(
        self,
        loaded: LoadedConfig,
        store: Store,
        authenticator: ConfigAuthenticator,
        queue: Queue | None,
        *,
        localserve: bool = False,
        unknown_recipient_delay: float = 5.0,
    ) -> None:
        self.loaded = loaded
        self.store = store
        self.authenticator = authenticator
        cfg = loaded.config
        # The submission path's context: the API submits as an SMTP client would.
        self.smtp = ServerContext(
            kind="submission",
            config=loaded,
            store=store,
            authenticator=authenticator,
            hostname=cfg.hostname,
            max_message_size=MAX_REQUEST,
            limiter=ConnectionLimiter(),
            localserve=localserve,
            unknown_recipient_delay=unknown_recipient_delay,
            queue=queue,
        )
        messages = MessageMethods(store)
        # In the order of mox's webapi.Methods, which the index page follows.
        self.methods: dict[str, Method] = {
            "Send": self.send,
            "SuppressionList": self.suppression_list,
            "SuppressionAdd": self.suppression_add,
            "SuppressionRemove": self.suppression_remove,
            "SuppressionPresent": self.suppression_present,
            "MessageGet": messages.get,
            "MessageRawGet": messages.raw_get,
            "MessagePartGet": messages.part_get,
            "MessageDelete": messages.delete,
            "MessageFlagsAdd": messages.flags_add,
            "MessageFlagsRemove": messages.flags_remove,
            "MessageMove": messages.move,
        }
        self.queue = queue

    # --- HTTP ---

    def routes(self) -> list[Route]:
        return [
            Route("/webapi", self.to_index, methods=["GET"]),
            Route("/webapi/", self.to_index, methods=["GET"]),
            Route("/webapi/v0/", self.index, methods=["GET"]),
            Route("/webapi/v0/{method}", self.handle, methods=["GET", "POST"]),
        ]

    async def to_index(self, request: Request) -> Response:
        return RedirectResponse("/webapi/v0/", 303)

    async def index(self, request: Request) -> Response:
        try:
            await self._authenticate(request, _remote_ip(request))
        except ApiError as err:
            return error_response(err)
        return docs.index_page(list(self.methods))

    async def handle(self, request: Request) -> Response:
        remote_ip = _remote_ip(request)
        name = request.path_params["method"]
        try:
            method = self.methods.get(name)
            if method is None:
                raise not_found("unknown method")
            if request.method == "POST" and not same_origin(request):
                raise ApiError(403, "crossSite", "cross-site request refused")
            account = await self._authenticate(request, remote_ip)
            if request.method in ("GET", "HEAD"):
                return docs.method_page(name)
            req = await self._request(request)
            result = await method(account, remote_ip, req)
        except ApiError as err:
            return error_response(err)
        if isinstance(result, Response):  # MessageRawGet, MessagePartGet: not JSON
            return result
        return JSONResponse(result)

    async def _authenticate(self, request: Request, remote_ip: str) -> str:
        header = request.headers.get("authorization", "")
        scheme, _, token = header.partition(" ")
        if scheme.lower() != "basic" or not token:
            raise ApiError(401, "unauthorized", "HTTP basic authentication required")
        try:
            decoded = base64.b64decode(token.strip(), validate=True).decode("utf-8")
        except (binascii.Error, UnicodeDecodeError):
            raise ApiError(401, "unauthorized", "malformed credentials") from None
        username, sep, password = decoded.partition(":")  # RFC 7617 §2: user-id ":" password
        if not sep:
            raise ApiError(401, "unauthorized", "malformed credentials")
        account = await self.authenticator.login(
            username, password, remote_ip=remote_ip, protocol="webapi"
        )
        if account is None:
            raise ApiError(401, "unauthorized", "bad credentials")
        return account

    async def _request(self, request: Request) -> dict[str, Any]:
        length = request.headers.get("content-length")
        if length is not None and length.isdigit() and int(length) > MAX_REQUEST:
            raise ApiError(413, "tooLarge", "request too large")
        body = bytearray()
        async for chunk in request.stream():
            body += chunk
            if len(body) > MAX_REQUEST:
                raise ApiError(413, "tooLarge", "request too large")
        ctype = request.headers.get("content-type", "").split(";")[0].strip().lower()
        text: str | bytes = bytes(body)
        if ctype == "application/x-www-form-urlencoded":
            try:
                form = urllib.parse.parse_qs(body.decode("utf-8"), strict_parsing=False)
            except UnicodeDecodeError:
                raise bad("request is not UTF-8") from None
            values = form.get("request")
            if not values:
                raise bad("missing form field request")
            text = values[0]
        elif ctype not in ("application/json", ""):
            raise bad("send application/json or a form with field request")
        try:
            req = json.loads(text)
        except (ValueError, UnicodeDecodeError):
            raise bad("request is not valid JSON") from None
        if not isinstance(req, dict):
            raise bad("request must be a JSON object")
        return req

    # --- methods ---

    async def send(self, account: str, remote_ip: str, req: dict[str, Any]) -> dict[str, Any]:
        req = check_keys(req, {"Message", "Headers"}, "request")
        m = check_keys(
            req.get("Message"),
            {
                "From",
                "To",
                "CC",
                "BCC",
                "ReplyTo",
                "Subject",
                "Text",
                "HTML",
                "InReplyTo",
                "References",
            },
            "Message",
        )
        sender = _name_address(m.get("From"), "Message.From")
        to, cc, bcc = (_name_addresses(m, k) for k in ("To", "CC", "BCC"))
        reply_to = _name_addresses(m, "ReplyTo")
        subject = _field(m, "Subject", "Message.Subject")
        in_reply_to = _field(m, "InReplyTo", "Message.InReplyTo")
        refs = m.get("References", [])
        if not isinstance(refs, list):
            raise bad("Message.References must be a list")
        references = [_header_value(r, "Message.References") for r in refs]
        text, html = m.get("Text", ""), m.get("HTML", "")
        if not isinstance(text, str) or not isinstance(html, str):
            raise bad("Message.Text and Message.HTML must be strings")
        extra = req.get("Headers", [])
        if not isinstance(extra, list):
            raise bad("Headers must be a list of [name, value] pairs")
        headers: list[tuple[str, str]] = []
        for pair in extra:
            if not (isinstance(pair, list) and len(pair) == 2):
                raise bad("Headers must be a list of [name, value] pairs")
            name = _header_value(pair[0], "header name")
            value = _header_value(pair[1], f"header {name}")
            if not _FIELD_NAME.match(name):
                raise bad(f"malformed header name {name!r}")
            if name.lower() in _RESERVED:
                raise bad(f"header {name} is set by the API, use the Message fields")
            headers.append((name, value))
        rcpts = to + cc + bcc
        if not rcpts:
            raise bad("no recipients in To, CC or BCC", "badAddress")

        everyone = [sender, *rcpts, *reply_to]
        utf8 = any(not str(a.address).isascii() for a in everyone)
        hostname = self.loaded.config.hostname
        message_id = f"<{secrets.token_hex(16)}@{hostname}>"
        msg = EmailMessage(policy=email.policy.SMTPUTF8 if utf8 else email.policy.SMTP)
        try:
            msg["From"] = sender.header()
            if to:
                msg["To"] = [a.header() for a in to]
            if cc:
                msg["Cc"] = [a.header() for a in cc]
            if reply_to:
                msg["Reply-To"] = [a.header() for a in reply_to]
            msg["Subject"] = subject
            msg["Message-Id"] = message_id
            msg["Date"] = email.utils.formatdate(localtime=True)
            if in_reply_to:
                msg["In-Reply-To"] = in_reply_to
            if references:
                msg["References"] = " ".join(references)
            for name, value in headers:
                msg[name] = value
            msg.set_content(text)
            if html:
                msg.add_alternative(html, subtype="html")
            data = msg.as_bytes()
        except (ValueError, TypeError, IndexError) as exc:
            raise bad(f"cannot compose message: {exc}") from None

        conn = Conn(remote_ip=remote_ip, account=account)
        txn = Transaction(
            mail_from=sender.address,
            mail_from_text=str(sender.address),
            smtputf8=utf8,
            body="8BITMIME" if any(b > 127 for b in data) else "7BIT",
        )
        queue_ids: list[int] = []
        try:
            await check_mail_from(self.smtp, conn, txn)
            seen: set[str] = set()
            for r in rcpts:
                key = str(r.address).lower()
                if key in seen:
                    continue
                seen.add(key)
                rcpt = await resolve_recipient(self.smtp, conn, txn, r.address, str(r.address))
                txn.recipients.append(rcpt)
            await deliver_message(self.smtp, conn, txn, data, queue_ids=queue_ids)
        except SmtpReply as reply:
            code = "badAddress" if reply.enhanced.startswith(("5.1.", "4.1.")) else "user"
            if reply.code < 500:
                code = "temporary"
            raise bad(f"{reply.code} {reply.enhanced} {reply.text}", code) from None
        by_rcpt = dict(zip((id(r) for r in txn.recipients if r.remote), queue_ids, strict=False))
        log.info(
            "webapi send",
            extra={"account": account, "msgid": message_id, "rcpts": len(txn.recipients)},
        )
        return {
            "MessageID": message_id,
            "Submissions": [
                {"Address": r.text, "QueueMsgID": by_rcpt.get(id(r))} for r in txn.recipients
            ],
        }

    # --- suppression list (as mox's webapi; stored in the queue database) ---

    def _queue(self) -> Queue:
        if self.queue is None:
            raise ApiError(400, "server", "this server has no outgoing queue")
        return self.queue

    def _email_address(self, req: dict[str, Any], allowed: set[str]) -> str:
        req = check_keys(req, allowed, "request")
        address = req.get("EmailAddress")
        if not isinstance(address, str) or not address:
            raise bad("EmailAddress must be a non-empty string", "badAddress")
        return address

    async def suppression_list(
        self, account: str, remote_ip: str, req: dict[str, Any]
    ) -> dict[str, Any]:
        check_keys(req, set(), "request")
        found = await self._queue().suppression_list(account)
        return {"Suppressions": [s.to_json() for s in found]}

    async def suppression_add(
        self, account: str, remote_ip: str, req: dict[str, Any]
    ) -> dict[str, Any]:
        address = self._email_address(req, {"EmailAddress", "Manual", "Reason"})
        manual, reason = req.get("Manual", True), req.get("Reason", "")
        if not isinstance(manual, bool) or not isinstance(reason, str):
            raise bad("Manual must be a boolean and Reason a string")
        try:
            await self._queue().suppression_add(account, address, manual=manual, reason=reason)
        except SuppressionError as exc:
            code = "badAddress" if "bad address" in str(exc) else "user"
            raise bad(str(exc), code) from None
        return {}

    async def suppression_remove(
        self, account: str, remote_ip: str, req: dict[str, Any]
    ) -> dict[str, Any]:
        address = self._email_address(req, {"EmailAddress"})
        try:
            removed = await self._queue().suppression_remove(account, address)
        except SuppressionError as exc:
            raise bad(str(exc), "badAddress") from None
        if not removed:
            raise ApiError(404, "notFound", "address is not on the suppression list")
        return {}

    async def suppression_present(
        self, account: str, remote_ip: str, req: dict[str, Any]
    ) -> dict[str, Any]:
        address = self._email_address(req, {"EmailAddress"})
        try:
            found = await self._queue().suppression_lookup(account, address)
        except SuppressionError as exc:
            raise bad(str(exc), "badAddress") from None
        return {"Present": found is not None}
