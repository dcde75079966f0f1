"""SMTP paths and mailboxes: RFC 5321 §4.1.2, with internationalised addresses (RFC 6531 §3.3).

`parse_path("<alice@example.com> SIZE=10")` returns the address and the rest of the line (the
parameters). Domains are IDNA-encoded (RFC 5891) and lower-cased; the local part is kept as sent.
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass

__all__ = ["Address", "AddressError", "parse_mailbox", "parse_path"]

# RFC 5322 §3.2.3 atext, as RFC 5321 §4.1.2 uses it; RFC 6531 §3.3 adds UTF8-non-ascii.
_ATEXT = frozenset(
    "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789!#$%&'*+-/=?^_`{|}~"
)
_LDH = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-")
MAX_LOCALPART = 64  # RFC 5321 §4.5.3.1.1
MAX_DOMAIN = 255  # RFC 5321 §4.5.3.1.2
MAX_PATH = 256  # RFC 5321 §4.5.3.1.3


class AddressError(ValueError):
    """Malformed path or mailbox; the message says what is wrong."""


@dataclass(frozen=True, slots=True)
class Address:
    localpart: str
    domain: str  # IDNA A-labels, lower case; "[1.2.3.4]" style for address literals
    literal: bool = False

    def __str__(self) -> str:
        return f"{self.localpart_text()}@{self.domain}"

    def localpart_text(self) -> str:
        """The local part as it is written in a path: quoted when it needs to be."""
        if _is_dot_string(self.localpart, utf8=True):
            return self.localpart
        escaped = self.localpart.replace("\\", "\\\\").replace('"', '\\"')
        return f'"{escaped}"'

    @property
    def needs_smtputf8(self) -> bool:
        return not self.localpart.isascii()


def _is_atext(c: str, utf8: bool) -> bool:
    return c in _ATEXT or (utf8 and ord(c) > 127)


def _is_dot_string(text: str, utf8: bool) -> bool:
    # RFC 5321 §4.1.2: Dot-string = Atom *("." Atom)
    return bool(text) and all(
        atom and all(_is_atext(c, utf8) for c in atom) for atom in text.split(".")
    )


def _domain(text: str, utf8: bool) -> str:
    if len(text) > MAX_DOMAIN:
        raise AddressError("domain too long")
    if not text.isascii():
        if not utf8:
            raise AddressError("non-ASCII domain without SMTPUTF8")
        try:
            text = text.encode("idna").decode("ascii")  # RFC 5891 §4: U-labels to A-labels
        except UnicodeError:
            raise AddressError("invalid internationalised domain name") from None
    labels = text.lower().split(".")
    for label in labels:
        # RFC 5321 §4.1.2: sub-domain = Let-dig [Ldh-str]
        if not label or len(label) > 63 or set(label) - _LDH or label[0] == "-" or label[-1] == "-":
            raise AddressError("invalid domain")
    return ".".join(labels)


def _address_literal(text: str) -> str:
    inner = text[1:-1]
    try:
        if inner.lower().startswith("ipv6:"):
            ipaddress.IPv6Address(inner[5:])  # RFC 5321 §4.1.3
        else:
            ipaddress.IPv4Address(inner)
    except ValueError:
        raise AddressError("invalid address literal") from None
    return text.lower()


def parse_mailbox(text: str, *, utf8: bool = True) -> Address:
    """Parse `Local-part "@" (Domain / address-literal)` (RFC 5321 §4.1.2), nothing else."""
    if text.startswith('"'):
        # Quoted-string = DQUOTE *QcontentSMTP DQUOTE; quoted-pairSMTP = "\" %d32-126
        out = []
        i = 1
        while True:
            if i >= len(text):
                raise AddressError("unterminated quoted local part")
            c = text[i]
            if c == '"':
                break
            if c == "\\":
                if i + 1 >= len(text) or not (32 <= ord(text[i + 1]) <= 126):
                    raise AddressError("bad quoted-pair in local part")
                out.append(text[i + 1])
                i += 2
                continue
            if ord(c) < 32 or ord(c) == 127 or (ord(c) > 127 and not utf8):
                raise AddressError("bad character in quoted local part")
            out.append(c)
            i += 1
        localpart = "".join(out)
        rest = text[i + 1 :]
        if not rest.startswith("@"):
            raise AddressError("expected @ after local part")
        domain_text = rest[1:]
    else:
        localpart, at, domain_text = text.rpartition("@")
        if not at:
            raise AddressError("missing @")
        if not _is_dot_string(localpart, utf8):
            raise AddressError("invalid local part")
    if len(localpart.encode()) > MAX_LOCALPART * (2 if utf8 else 1):
        raise AddressError("local part too long")
    if domain_text.startswith("[") and domain_text.endswith("]"):
        return Address(localpart, _address_literal(domain_text), literal=True)
    return Address(localpart, _domain(domain_text, utf8))


def parse_path(
    text: str, *, utf8: bool = True, allow_null: bool = False
) -> tuple[Address | None, str]:
    """Parse `"<" [A-d-l ":"] Mailbox ">"` (RFC 5321 §4.1.2) and return (address, rest).

    The null path `<>` gives None when `allow_null` (reverse-path, RFC 5321 §4.5.5).
    """
    if not text.startswith("<"):
        raise AddressError("path must be in angle brackets")
    end = _closing_bracket(text)
    inner, rest = text[1:end], text[end + 1 :]
    if rest and not rest.startswith(" "):
        raise AddressError("expected space after path")
    if len(inner) > MAX_PATH:
        raise AddressError("path too long")
    if inner == "":
        if not allow_null:
            raise AddressError("empty path not allowed here")
        return None, rest.strip()
    if inner.startswith("@"):
        # RFC 5321 §4.1.2: source routes (A-d-l) MUST be accepted and SHOULD be ignored.
        _, colon, inner = inner.partition(":")
        if not colon:
            raise AddressError("malformed source route")
    return parse_mailbox(inner, utf8=utf8), rest.strip()


def _closing_bracket(text: str) -> int:
    quoted = False
    i = 1
    while i < len(text):
        c = text[i]
        if c == "\\" and quoted:
            i += 2
            continue
        if c == '"':
            quoted = not quoted
        elif c == ">" and not quoted:
            return i
        i += 1
    raise AddressError("missing closing angle bracket")
