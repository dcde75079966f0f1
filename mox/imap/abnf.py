"""Character classes and small grammar pieces of IMAP, RFC 9051 §9 (formal syntax).

Each class quotes the grammar rule it implements. Everything here works on bytes: the receiver and
the parser see the wire form, and only strings (quoted or literal) may carry 8-bit data.

Deliberate deviations, all on the lenient side and listed in the parser where they are used:
- a bare LF is accepted as line end besides CRLF (the receiver strips an optional CR);
- ``date-day-fixed`` in APPEND's date-time also accepts a single digit without the leading space.
"""

from __future__ import annotations

import re
from typing import Final


def _bytes_class(chars: bytes | set[int]) -> bytes:
    """Escape a set of bytes for use inside a regex character class."""
    return b"".join(re.escape(bytes([c])) for c in sorted(set(chars)))


# CHAR = %x01-7F  (RFC 5234 B.1)
CHAR: Final = frozenset(range(0x01, 0x80))
# CTL = %x00-1F / %x7F  (RFC 5234 B.1)
CTL: Final = frozenset([*range(0x20), 0x7F])
# list-wildcards = "%" / "*"
LIST_WILDCARDS: Final = frozenset(b"%*")
# quoted-specials = DQUOTE / "\"
QUOTED_SPECIALS: Final = frozenset(b'"\\')
# resp-specials = "]"
RESP_SPECIALS: Final = frozenset(b"]")
# atom-specials = "(" / ")" / "{" / SP / CTL / list-wildcards / quoted-specials / resp-specials
ATOM_SPECIALS: Final = frozenset(b"(){ ") | CTL | LIST_WILDCARDS | QUOTED_SPECIALS | RESP_SPECIALS
# ATOM-CHAR = <any CHAR except atom-specials>
ATOM_CHAR: Final = CHAR - ATOM_SPECIALS
# ASTRING-CHAR = ATOM-CHAR / resp-specials
ASTRING_CHAR: Final = ATOM_CHAR | RESP_SPECIALS
# tag = 1*<any ASTRING-CHAR except "+">
TAG_CHAR: Final = ASTRING_CHAR - frozenset(b"+")
# list-char = ATOM-CHAR / list-wildcards / resp-specials
LIST_CHAR: Final = ATOM_CHAR | LIST_WILDCARDS | RESP_SPECIALS
# TEXT-CHAR = <any CHAR except CR and LF>
TEXT_CHAR: Final = CHAR - frozenset(b"\r\n")
# QUOTED-CHAR = <any TEXT-CHAR except quoted-specials> / "\" quoted-specials /
#               UTF8-2 / UTF8-3 / UTF8-4
QUOTED_CHAR_PLAIN: Final = TEXT_CHAR - QUOTED_SPECIALS

ATOM_RE: Final = re.compile(b"[" + _bytes_class(set(ATOM_CHAR)) + b"]+")
ASTRING_ATOM_RE: Final = re.compile(b"[" + _bytes_class(set(ASTRING_CHAR)) + b"]+")
TAG_RE: Final = re.compile(b"[" + _bytes_class(set(TAG_CHAR)) + b"]+")
LIST_MAILBOX_RE: Final = re.compile(b"[" + _bytes_class(set(LIST_CHAR)) + b"]+")

# literal = "{" number64 ["+"] "}" CRLF *CHAR8   (RFC 9051 §9; "+" is LITERAL+, RFC 7888 §3)
# Only recognised at the very end of a line; the receiver checks that it is outside a quoted string.
LITERAL_MARKER_RE: Final = re.compile(rb"\{([0-9]{1,19})(\+?)\}\Z")

# number = 1*DIGIT ; unsigned 32-bit integer;  nz-number = digit-nz *DIGIT
NUMBER_RE: Final = re.compile(rb"[0-9]+")
MAX_NUMBER: Final = 0xFFFFFFFF
# number64 = 1*DIGIT ; unsigned 63-bit integer
MAX_NUMBER64: Final = 0x7FFFFFFFFFFFFFFF

# sequence-set = (seq-number / seq-range) ["," sequence-set]; seq-range = seq-number ":" seq-number;
# seq-number = nz-number / "*"
SEQUENCE_SET_RE: Final = re.compile(
    rb"(?:[0-9]+|\*)(?::(?:[0-9]+|\*))?(?:,(?:[0-9]+|\*)(?::(?:[0-9]+|\*))?)*"
)

# date-month = "Jan" / "Feb" / "Mar" / "Apr" / "May" / "Jun" /
#              "Jul" / "Aug" / "Sep" / "Oct" / "Nov" / "Dec"
MONTHS: Final = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")
MONTH_NUMBER: Final = {m.lower(): i + 1 for i, m in enumerate(MONTHS)}
# date-text = date-day "-" date-month "-" date-year; date-day = 1*2DIGIT; date-year = 4DIGIT
DATE_TEXT_RE: Final = re.compile(rb"([0-9]{1,2})-([A-Za-z]{3})-([0-9]{4})")
# date-time = DQUOTE date-day-fixed "-" date-month "-" date-year SP time SP zone DQUOTE
# date-day-fixed = (SP DIGIT) / 2DIGIT; time = 2DIGIT ":" 2DIGIT ":" 2DIGIT
# zone = ("+" / "-") 4DIGIT
DATE_TIME_RE: Final = re.compile(
    rb"( ?[0-9]{1,2})-([A-Za-z]{3})-([0-9]{4}) "
    rb"([0-9]{2}):([0-9]{2}):([0-9]{2}) ([+-])([0-9]{2})([0-9]{2})"
)

# flag = "\Answered" / "\Flagged" / "\Deleted" / "\Seen" / "\Draft" / flag-keyword / flag-extension
SYSTEM_FLAGS: Final = ("\\Answered", "\\Flagged", "\\Deleted", "\\Seen", "\\Draft")
SYSTEM_FLAG_CANONICAL: Final = {f.lower(): f for f in SYSTEM_FLAGS}


def is_atom(data: bytes) -> bool:
    """True if data is a non-empty ``atom``."""
    return ATOM_RE.fullmatch(data) is not None


def is_tag(data: bytes) -> bool:
    """True if data is a valid ``tag``."""
    return TAG_RE.fullmatch(data) is not None


def can_quote(data: bytes, *, utf8: bool) -> bool:
    """True if data can be sent as a ``quoted`` string.

    7-bit TEXT-CHARs always can; 8-bit only as valid UTF-8 (UTF8-2/3/4) and only when the client
    accepts
    UTF-8 (RFC 9051 §9 QUOTED-CHAR; RFC 3501 quoted strings are 7-bit, RFC 6855 §3).
    """
    if b"\r" in data or b"\n" in data or b"\x00" in data:
        return False
    if data.isascii():
        return True
    if not utf8:
        return False
    try:
        data.decode("utf-8")
    except UnicodeDecodeError:
        return False
    return True
