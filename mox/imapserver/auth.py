"""LOGIN and AUTHENTICATE (RFC 9051 §6.2.2, §6.2.3) with SASL-IR (RFC 4959).

Mechanisms: PLAIN (RFC 4616) checks the password through ``Authenticator.login``; SCRAM-SHA-1 and
SCRAM-SHA-256 (RFC 5802, RFC 7677), their -PLUS variants with TLS channel binding (tls-exporter,
RFC 9266, or tls-unique, RFC 5929) and CRAM-MD5 (RFC 2195) verify a proof against the stored
secrets (``mox.auth.scram``) and report through ``Authenticator.conclude``, which does the same
failure accounting, delay and throttling as ``login``.

Implementation notes:
- An IP over the failed-login limit (``Authenticator.throttled``) gets NO [UNAVAILABLE] without
  its credentials being checked (and BYE at connect, see the session).
- After ``MAX_FAILED_LOGINS`` failures on one connection we say BYE.
"""

from __future__ import annotations

import base64
import binascii
import ssl
from typing import TYPE_CHECKING, Final

from mox.auth.sasl import PlainServer, SaslChallenge, SaslDone, SaslError, SaslVerified
from mox.auth.scram import CramMD5Server, SaslContext, ScramServer, new_mechanism
from mox.imap import commands as c
from mox.imap.errors import ImapBad, ImapBye, ImapNo
from mox.imap.responses import Atom, Continuation, ResponseCode
from mox.imapserver.common import MAX_FAILED_LOGINS, Ok, code, log
from mox.tls.channelbinding import channel_bindings

if TYPE_CHECKING:
    from mox.imapserver.session import Session

MECHANISMS: Final = frozenset(
    {
        "PLAIN",
        "SCRAM-SHA-256-PLUS",
        "SCRAM-SHA-256",
        "SCRAM-SHA-1-PLUS",
        "SCRAM-SHA-1",
        "CRAM-MD5",
    }
)


def check_privacy(s: Session) -> None:
    if not s.tls and s.config.require_starttls:
        # RFC 9051 §6.2.3 LOGINDISABLED; RFC 5530 PRIVACYREQUIRED
        raise ImapNo("use STARTTLS first", code("PRIVACYREQUIRED"))
    if s.config.authenticator.throttled(s.io.remote_ip):
        raise ImapNo("too many authentication failures, try later", code("UNAVAILABLE"))


def _succeeded(s: Session, name: str, username: str) -> Ok:
    s.set_account(name, username)
    log.info("imap login", extra={"user": username, "account": name})
    # RFC 9051 §6.2.3: a CAPABILITY response code in the tagged OK saves a round trip. The state is
    # still "not authenticated" here, so compute the list as it will be after the OK.
    caps = tuple(Atom(x) for x in s.capabilities(authenticated=True))
    return Ok("authenticated", ResponseCode("CAPABILITY", caps))


def _failed(s: Session, username: str) -> None:
    s.failed_logins += 1
    log.info("imap login failed", extra={"user": username, "remote": s.io.remote_ip})
    if s.failed_logins >= MAX_FAILED_LOGINS:
        raise ImapBye("too many failed logins")
    raise ImapNo("invalid credentials", code("AUTHENTICATIONFAILED"))  # RFC 5530


async def password_login(s: Session, username: str, password: str) -> Ok:
    name = await s.config.authenticator.login(
        username, password, remote_ip=s.io.remote_ip, protocol="imap"
    )
    if name is None:
        _failed(s, username)
    assert name is not None  # noqa: S101 (_failed raised)
    return _succeeded(s, name, username)


async def login(s: Session, cmd: c.Login) -> Ok | None:
    check_privacy(s)
    return await password_login(s, cmd.username, cmd.password)


def _b64(data: bytes) -> bytes:
    try:
        return base64.b64decode(data, validate=True)
    except (binascii.Error, ValueError) as e:
        raise ImapBad("invalid base64") from e


def ssl_object(s: Session) -> ssl.SSLObject | None:
    transport = s.io.transport
    obj = transport.get_extra_info("ssl_object") if transport is not None else None
    return obj if isinstance(obj, ssl.SSLObject) else None


def sasl_context(s: Session) -> SaslContext:
    bindings = channel_bindings(ssl_object(s)) if s.tls else {}
    return SaslContext(
        lookup=s.config.authenticator.credentials,
        channel_bindings=bindings,
        hostname=s.config.hostname,
        plus_advertised=bool(bindings),
    )


async def authenticate(s: Session, cmd: c.Authenticate) -> Ok | None:
    # RFC 9051 §6.2.2, SASL-IR (RFC 4959).
    mech: PlainServer | ScramServer | CramMD5Server | None = None
    if cmd.mechanism == "PLAIN":
        mech = PlainServer()
    elif cmd.mechanism in MECHANISMS:
        mech = new_mechanism(cmd.mechanism, sasl_context(s))
    if mech is None:
        raise ImapNo("unsupported authentication mechanism", code("CANNOT"))
    check_privacy(s)
    try:
        initial = None if cmd.initial_response is None else _b64(cmd.initial_response)
        result = mech.start(initial)
        while isinstance(result, SaslChallenge):
            s.send(Continuation(data=result.data))
            line = await s.read_client_line()
            if line == b"*":
                raise ImapBad("authentication cancelled")  # RFC 9051 §6.2.2
            result = mech.step(_b64(line))
    except SaslError as e:
        await s.config.authenticator.conclude("", False, remote_ip=s.io.remote_ip, protocol="imap")
        raise ImapNo(f"authentication failed: {e}", code("AUTHENTICATIONFAILED")) from e
    if isinstance(result, SaslDone):
        return await password_login(s, result.username, result.password)
    assert isinstance(result, SaslVerified)  # noqa: S101 (the loop leaves no other)
    name = await s.config.authenticator.conclude(
        result.username, result.ok, remote_ip=s.io.remote_ip, protocol="imap"
    )
    if name is None:
        _failed(s, result.username)
    assert name is not None  # noqa: S101 (_failed raised)
    return _succeeded(s, name, result.username)
