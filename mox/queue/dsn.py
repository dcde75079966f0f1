"""Delivery Status Notifications: RFC 3464 (format), RFC 3461 (when), RFC 6522 (multipart/report).

A DSN is a multipart/report with report-type=delivery-status: a human-readable part, a
message/delivery-status part with per-message and per-recipient fields, and the original message
(RET=FULL) or only its header (RET=HDRS, text/rfc822-headers).
"""

from __future__ import annotations

import email.utils
import secrets
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Literal

__all__ = ["DsnRecipient", "compose_dsn"]

Action = Literal["failed", "delayed", "delivered", "relayed", "expanded"]


@dataclass(frozen=True, slots=True)
class DsnRecipient:
    rcpt: str
    action: Action
    status: str  # RFC 3463 enhanced code, e.g. "5.1.1"
    diagnostic: str = ""  # the remote's reply, e.g. "550 5.1.1 no such user"
    remote_mta: str = ""
    orcpt: str | None = None  # "type;address" as given with ORCPT (RFC 3461 §4.2)


def _header_section(message: bytes) -> bytes:
    end = message.find(b"\r\n\r\n")
    return message if end < 0 else message[: end + 2]


def compose_dsn(
    *,
    reporting_mta: str,
    postmaster: str,
    to: str,
    recipients: list[DsnRecipient],
    original: bytes,
    ret: str | None,
    envid: str | None,
    arrival: datetime | None = None,
) -> bytes:
    """The DSN message bytes (CRLF line endings)."""
    boundary = "mox-" + secrets.token_hex(12)
    action = recipients[0].action
    subject = {
        "failed": "mail delivery failed",
        "delayed": "mail delivery delayed",
        "delivered": "mail delivered",
        "relayed": "mail relayed",
        "expanded": "mail delivered to a list",
    }[action]
    now = email.utils.format_datetime(datetime.now(UTC))
    lines = [
        f"From: Mail Delivery Subsystem <{postmaster}>",
        f"To: <{to}>",
        f"Subject: {subject}",
        f"Message-Id: <{secrets.token_urlsafe(18)}@{reporting_mta}>",
        f"Date: {now}",
        "MIME-Version: 1.0",
        # RFC 6522 §3: multipart/report; report-type=delivery-status (RFC 3464 §2).
        f'Content-Type: multipart/report; report-type=delivery-status; boundary="{boundary}"',
        "Auto-Submitted: auto-replied",  # RFC 3834 §5
        "",
        "This is a delivery status notification in MIME format.",
        "",
        f"--{boundary}",
        "Content-Type: text/plain; charset=utf-8",
        "",
    ]
    if action == "failed":
        lines.append("Your message could not be delivered to the following recipients:")
    elif action == "delayed":
        lines.append("Delivery of your message is delayed; we keep trying for these recipients:")
    else:
        lines.append(f"Your message was {action} for these recipients:")
    lines.append("")
    for r in recipients:
        lines.append(f"  {r.rcpt}: {r.diagnostic or r.status}")
    lines += ["", f"--{boundary}", "Content-Type: message/delivery-status", ""]
    # RFC 3464 §2.2: per-message fields.
    if envid:
        lines.append(f"Original-Envelope-Id: {envid}")
    lines.append(f"Reporting-MTA: dns; {reporting_mta}")
    if arrival is not None:
        lines.append(f"Arrival-Date: {email.utils.format_datetime(arrival)}")
    for r in recipients:
        lines.append("")
        # RFC 3464 §2.3: per-recipient fields.
        if r.orcpt:
            lines.append(f"Original-Recipient: {r.orcpt}")
        lines.append(f"Final-Recipient: rfc822; {r.rcpt}")
        lines.append(f"Action: {r.action}")
        lines.append(f"Status: {r.status}")
        if r.remote_mta:
            lines.append(f"Remote-MTA: dns; {r.remote_mta}")
        if r.diagnostic:
            lines.append(f"Diagnostic-Code: smtp; {r.diagnostic}")
        lines.append(f"Last-Attempt-Date: {now}")
    lines += [""]
    head = "\r\n".join(lines).encode() + b"\r\n"
    if ret == "FULL":  # RFC 3461 §4.3
        part = b"Content-Type: message/rfc822\r\n\r\n" + original
    else:
        part = b"Content-Type: text/rfc822-headers\r\n\r\n" + _header_section(original)
    if not part.endswith(b"\r\n"):
        part += b"\r\n"
    return head + f"--{boundary}\r\n".encode() + part + f"--{boundary}--\r\n".encode()
