"""SMTP reply codes (RFC 5321 §4.2.3) and enhanced status codes (RFC 3463), as named constants.

`SmtpReply` is raised anywhere in the server's policy code and rendered once, at the command
boundary, as `CODE X.Y.Z text` (RFC 2034 §3: every reply after EHLO carries an enhanced code).
"""

from __future__ import annotations

__all__ = ["ENHANCED_DEFAULTS", "SmtpReply", "with_enhanced"]

# Reply codes, RFC 5321 §4.2.3.
C211_SYSTEM_STATUS = 211
C214_HELP = 214
C220_READY = 220
C221_CLOSING = 221
C235_AUTH_OK = 235  # RFC 4954 §6
C250_OK = 250
C252_CANNOT_VRFY = 252
C334_CONTINUE = 334  # RFC 4954 §4
C354_START_DATA = 354
C421_SERVICE_UNAVAILABLE = 421
C450_MAILBOX_UNAVAILABLE = 450
C451_LOCAL_ERROR = 451
C452_STORAGE = 452
C454_TEMP_AUTH = 454  # RFC 4954 §6
C500_SYNTAX = 500
C501_PARAM_SYNTAX = 501
C502_NOT_IMPLEMENTED = 502
C503_BAD_SEQUENCE = 503
C504_PARAM_NOT_IMPLEMENTED = 504
C521_NO_MAIL = 521  # RFC 7504
C530_AUTH_REQUIRED = 530  # RFC 4954 §6
C534_AUTH_TOO_WEAK = 534  # RFC 4954 §6
C535_AUTH_INVALID = 535  # RFC 4954 §6
C538_ENCRYPTION_NEEDED = 538  # RFC 4954 §6
C550_MAILBOX_UNAVAILABLE = 550
C551_USER_NOT_LOCAL = 551
C552_EXCEEDED_STORAGE = 552
C553_BAD_MAILBOX_NAME = 553
C554_TRANSACTION_FAILED = 554
C555_PARAMS_UNKNOWN = 555

# Enhanced status codes, RFC 3463 §3 (subject.detail), and later RFCs where noted.
S_OTHER = "0.0"
S_ADDR_OTHER = "1.0"
S_BAD_DEST_MAILBOX = "1.1"  # RFC 3463 §3.2 X.1.1
S_BAD_DEST_SYNTAX = "1.3"
S_BAD_SENDER_SYNTAX = "1.7"
S_BAD_SENDER_SYSTEM = "1.8"
S_DEST_VALID = "1.5"
S_SENDER_VALID = "1.0"
S_MAILBOX_DISABLED = "2.1"
S_MAILBOX_FULL = "2.2"
S_MSG_TOO_BIG_MAILBOX = "2.3"
S_SYSTEM_FULL = "3.1"
S_SYSTEM_NOT_ACCEPTING = "3.2"
S_MSG_TOO_BIG_SYSTEM = "3.4"
S_NETWORK_OTHER = "4.0"
S_ROUTING_LOOP = "4.6"
S_DELIVERY_TIME = "4.7"
S_PROTO_OTHER = "5.0"
S_INVALID_CMD = "5.1"
S_SYNTAX = "5.2"
S_TOO_MANY_RCPTS = "5.3"
S_INVALID_ARGS = "5.4"
S_CONTENT_OTHER = "6.0"
S_SEC_OTHER = "7.0"
S_DELIVERY_NOT_AUTH = "7.1"
S_AUTH_REQUIRED = "7.0"  # RFC 4954 §6: 530 5.7.0
S_AUTH_INVALID = "7.8"  # RFC 4954 §6
S_AUTH_TOO_WEAK = "7.9"  # RFC 4954 §6
S_ENCRYPTION_NEEDED = "7.11"  # RFC 4954 §6
S_LOGIN_DISABLED = "7.13"  # "User Account Disabled", IANA registry of RFC 5248
S_REQUIRETLS = "7.30"  # RFC 8689 §5
S_NULL_MX = "7.27"  # RFC 7505 §4.2

# What to use when a reply line comes without an enhanced code (aiosmtpd's own replies).
ENHANCED_DEFAULTS = {
    211: "2.0.0",
    214: "2.0.0",
    221: "2.0.0",
    235: "2.7.0",
    250: "2.0.0",
    251: "2.1.5",
    252: "2.5.0",
    421: "4.3.2",
    450: "4.2.1",
    451: "4.3.0",
    452: "4.3.1",
    454: "4.7.0",
    500: "5.5.2",
    501: "5.5.4",
    502: "5.5.1",
    503: "5.5.1",
    504: "5.5.4",
    530: "5.7.0",
    534: "5.7.9",
    535: "5.7.8",
    538: "5.7.11",
    550: "5.0.0",
    552: "5.3.4",
    553: "5.1.3",
    554: "5.0.0",
    555: "5.5.4",
}


class SmtpReply(Exception):
    """A reply to send instead of going on: code, enhanced code (RFC 3463), text for the client.

    `enhanced` is the full code ("5.1.1"), or only its subject.detail ("1.1"), completed with the
    class digit of `code`. Only generic text goes to the client; details belong in the log.
    """

    def __init__(self, code: int, enhanced: str, text: str) -> None:
        if enhanced.count(".") == 1:
            enhanced = f"{code // 100}.{enhanced}"
        super().__init__(f"{code} {enhanced} {text}")
        self.code = code
        self.enhanced = enhanced
        self.text = text

    @property
    def permanent(self) -> bool:
        return self.code >= 500

    def line(self) -> str:
        return f"{self.code} {self.enhanced} {self.text}"


def with_enhanced(line: str) -> str:
    """Insert a default enhanced status code into a reply line that lacks one (RFC 2034 §3)."""
    if len(line) < 4 or not line[:3].isdigit():
        return line
    code = int(line[:3])
    sep = line[3]
    rest = line[4:]
    first = rest.split(" ", 1)[0]
    if first.count(".") == 2 and first.replace(".", "").isdigit():
        return line
    enhanced = ENHANCED_DEFAULTS.get(code)
    if enhanced is None or code in (220, 334, 354) or code < 200:
        return line
    return f"{code}{sep}{enhanced} {rest}"
