"""What the SMTP server knows about a connection and its current mail transaction."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Literal

from mox.dkim.sign import KeyCache
from mox.smtp.address import Address

if TYPE_CHECKING:
    from mox.auth.login import Authenticator
    from mox.config.load import LoadedConfig
    from mox.dns.resolver import Resolver
    from mox.queue.queue import Queue
    from mox.ratelimit import ConnectionLimiter
    from mox.reportdb import ReportDB
    from mox.store import Store

__all__ = ["Conn", "Recipient", "ServerContext", "SmtpKind", "Transaction"]

SmtpKind = Literal["smtp", "submission", "submissions"]


@dataclass
class ServerContext:
    """Shared by all connections of one listener."""

    kind: SmtpKind
    config: LoadedConfig
    store: Store
    authenticator: Authenticator
    hostname: str
    max_message_size: int
    limiter: ConnectionLimiter
    localserve: bool = False
    require_tls_for_auth: bool = True
    tls_available: bool = False
    # Delays, as mox; tests may shorten them.
    unknown_recipient_delay: float = 5.0
    transaction_timeout: float = 30 * 60  # mox: the whole transaction is capped at 30 minutes
    # Mail authentication: the resolver (None: no checks), where reports and evaluations go,
    # the DKIM signing keys, and a comment for Authentication-Results (localserve says so).
    resolver: Resolver | None = None
    reports: ReportDB | None = None
    dkim_keys: KeyCache = field(default_factory=KeyCache)
    dns_comment: str = ""
    # The outgoing queue, for submitted mail to other domains and held messages (None: none).
    queue: Queue | None = None
    # Graceful shutdown: transactions in DATA/BDAT now, and whether new ones are refused.
    inflight: int = 0
    shutting_down: bool = False

    @property
    def submission(self) -> bool:
        return self.kind != "smtp"

    @property
    def pedantic(self) -> bool:
        return self.config.config.pedantic


@dataclass
class Conn:
    """Per-connection facts the policy needs."""

    remote_ip: str
    ehlo: str = ""
    tls_version: str = ""
    tls_cipher: str = ""
    account: str | None = None  # after AUTH
    auth_failures: int = 0
    failed_transactions: int = 0
    good_transactions: int = 0

    @property
    def tls(self) -> bool:
        return bool(self.tls_version)


@dataclass
class Recipient:
    address: Address
    text: str  # as the client sent it, for headers and DSNs
    account: str | None  # None: unknown local address, refused after DATA (no address leak)
    mailbox: str = "Inbox"
    alias: str | None = None  # delivered because the address is this alias/list
    notify: list[str] | None = None  # RFC 3461 §4.1 NOTIFY
    orcpt: str | None = None  # RFC 3461 §4.2 ORCPT, "type;xtext-decoded address"
    localserve_code: int | None = None  # localserve: reply code to simulate at DATA
    report: Literal["dmarc", "tlsrpt"] | None = None  # a report address of a domain
    remote: bool = False  # another domain's address: the outgoing queue delivers it


@dataclass
class Transaction:
    mail_from: Address | None  # None: the null reverse-path <>
    mail_from_text: str = ""
    body: Literal["7BIT", "8BITMIME", "BINARYMIME"] = "7BIT"
    smtputf8: bool = False
    requiretls: bool = False
    declared_size: int | None = None
    ret: Literal["FULL", "HDRS"] | None = None  # RFC 3461 §4.3
    envid: str | None = None  # RFC 3461 §4.4
    hold_until: datetime | None = None  # FUTURERELEASE, RFC 4865
    recipients: list[Recipient] = field(default_factory=list)
    bdat: bytearray | None = None  # CHUNKING (RFC 3030) data so far
    bdat_too_big: bool = False
