"""MAIL and RCPT parameters (RFC 5321 §4.1.2 esmtp-param), with xtext values (RFC 3461 §4)."""

from __future__ import annotations

__all__ = ["ParamError", "parse_params", "xtext_decode", "xtext_encode"]


class ParamError(ValueError):
    """A malformed parameter list."""


def parse_params(text: str) -> list[tuple[str, str | None]]:
    """`KEY[=VALUE] ...` → [(KEY upper-cased, VALUE or None)], values kept as sent."""
    out: list[tuple[str, str | None]] = []
    for word in text.split():
        key, eq, value = word.partition("=")
        # RFC 5321 §4.1.2: esmtp-keyword = (ALPHA / DIGIT) *(ALPHA / DIGIT / "-")
        if (
            not key
            or not key.isascii()
            or not key[0].isalnum()
            or not key.replace("-", "").isalnum()
        ):
            raise ParamError(f"bad parameter name {key[:20]!r}")
        if eq and not value:
            raise ParamError(f"parameter {key} has an empty value")
        # esmtp-value = 1*(%d33-60 / %d62-126 / UTF8-non-ascii): no "=" or controls.
        if value and any(ord(c) < 33 or c == "=" or ord(c) == 127 for c in value):
            raise ParamError(f"bad value for {key}")
        out.append((key.upper(), value if eq else None))
    return out


def xtext_decode(text: str) -> str:
    """RFC 3461 §4: xtext = *( xchar / hexchar ), hexchar = "+" 2(HEXDIG upper case)."""
    out = bytearray()
    i = 0
    while i < len(text):
        c = text[i]
        if c == "+":
            code = text[i + 1 : i + 3]
            if len(code) != 2 or any(h not in "0123456789ABCDEF" for h in code):
                raise ParamError("bad xtext hex escape")
            out.append(int(code, 16))
            i += 3
            continue
        if not (33 <= ord(c) <= 126) or c == "=":
            raise ParamError("bad character in xtext")
        out += c.encode()
        i += 1
    try:
        return out.decode("utf-8")
    except UnicodeDecodeError:
        raise ParamError("xtext is not UTF-8") from None


def xtext_encode(text: str) -> str:
    out = []
    for b in text.encode("utf-8"):
        if 33 <= b <= 126 and b not in (ord("+"), ord("=")):
            out.append(chr(b))
        else:
            out.append(f"+{b:02X}")
    return "".join(out)
