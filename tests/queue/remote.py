"""A remote MTA for queue tests: aiosmtpd's Controller (a real SMTP server) on loopback, with a
scripted reply per DATA and optional STARTTLS, recording what it received. Also a smarthost:
implicit TLS (the submissions port) and AUTH with one username and password. `host` can be
"::1", and `port` a given one, for a dual-stack remote (two Remotes on one port)."""

from __future__ import annotations

import ssl
import warnings
from dataclasses import dataclass, field
from typing import Any

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, LoginPassword

from tests.conftest import free_port


@dataclass
class Received:
    mail_from: str
    rcpts: list[str]
    data: bytes
    tls: bool
    mail_options: list[str]
    rcpt_options: list[str]
    login: str = ""


@dataclass
class Handler:
    replies: list[str] = field(default_factory=list)  # reply per DATA; "250 OK" once empty
    rcpt_replies: dict[str, str] = field(default_factory=dict)
    received: list[Received] = field(default_factory=list)
    logins: list[str] = field(default_factory=list)
    mail_reply: str = ""  # refuse MAIL FROM with this reply, when set

    async def handle_MAIL(
        self, server: Any, session: Any, envelope: Any, address: str, options: list[str]
    ) -> str:
        if self.mail_reply:
            return self.mail_reply
        envelope.mail_from = address
        envelope.mail_options.extend(options)
        return "250 OK"

    async def handle_RCPT(
        self, server: Any, session: Any, envelope: Any, address: str, options: list[str]
    ) -> str:
        if address in self.rcpt_replies:
            return self.rcpt_replies[address]
        envelope.rcpt_tos.append(address)
        envelope.rcpt_options.extend(options)
        return "250 OK"

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        reply = self.replies.pop(0) if self.replies else "250 OK queued"
        if reply.startswith("250"):
            self.received.append(
                Received(
                    envelope.mail_from,
                    list(envelope.rcpt_tos),
                    envelope.original_content,
                    session.ssl is not None
                    or server.transport.get_extra_info("ssl_object") is not None,
                    list(envelope.mail_options),
                    list(envelope.rcpt_options),
                    session.auth_data.login.decode() if session.authenticated else "",
                )
            )
        return reply


class Remote:
    def __init__(
        self,
        tls: ssl.SSLContext | None = None,
        *,
        implicit_tls: ssl.SSLContext | None = None,
        smtputf8: bool = True,
        login: tuple[str, str] | None = None,
        host: str = "127.0.0.1",
        port: int | None = None,
        **handler: Any,
    ) -> None:
        self.handler = Handler(**handler)
        self.port = port or free_port()
        extra: dict[str, Any] = {}
        if login is not None:

            def authenticator(
                server: Any, session: Any, envelope: Any, mechanism: str, data: Any
            ) -> AuthResult:
                ok = (
                    isinstance(data, LoginPassword)
                    and (
                        data.login.decode(),
                        data.password.decode(),
                    )
                    == login
                )
                if ok:
                    self.handler.logins.append(login[0])
                return AuthResult(success=ok, auth_data=data)

            extra["authenticator"] = authenticator
            extra["auth_require_tls"] = False  # implicit TLS: aiosmtpd does not see it as TLS
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            self.controller = Controller(
                self.handler,
                hostname=host,
                port=self.port,
                tls_context=tls,
                ssl_context=implicit_tls,
                decode_data=False,
                enable_SMTPUTF8=smtputf8,
                server_hostname="mx.remote.test",
                **extra,
            )
        self.controller.start()

    def stop(self) -> None:
        self.controller.stop()
