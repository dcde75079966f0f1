"""Modified UTF-7 for mailbox names, RFC 3501 §5.1.3 (kept by RFC 9051 §5.1 for clients that did not
enable UTF8=ACCEPT or IMAP4rev2).

Printable US-ASCII (0x20-0x7e) except "&" stands for itself, "&" is "&-", and any other run of
characters is UTF-16BE in modified BASE64 (RFC 2152 with "," instead of "/", no padding) between "&"
and "-".
"""

from __future__ import annotations

import base64
import binascii
import re

_B64_CHARS = re.compile(r"[A-Za-z0-9+,]*")


def _is_direct(ch: str) -> bool:
    # RFC 3501 §5.1.3: printable US-ASCII 0x20-0x7e represent themselves, "&" excepted.
    return 0x20 <= ord(ch) <= 0x7E and ch != "&"


def encode(name: str) -> str:
    """Encode a Unicode mailbox name as modified UTF-7."""
    out: list[str] = []
    run: list[str] = []

    def flush() -> None:
        if run:
            raw = "".join(run).encode("utf-16-be")
            b64 = base64.b64encode(raw).rstrip(b"=").replace(b"/", b",")
            out.append("&" + b64.decode("ascii") + "-")
            run.clear()

    for ch in name:
        if _is_direct(ch):
            flush()
            out.append(ch)
        elif ch == "&":
            flush()
            out.append("&-")  # RFC 3501 §5.1.3: "&" is represented by "&-"
        else:
            run.append(ch)
    flush()
    return "".join(out)


def decode(name: str) -> str:
    """Decode a modified UTF-7 mailbox name; ValueError when it is not valid modified UTF-7."""
    out: list[str] = []
    i = 0
    n = len(name)
    while i < n:
        ch = name[i]
        if ch != "&":
            if not 0x20 <= ord(ch) <= 0x7E:
                raise ValueError(f"character {ch!r} must be encoded in modified UTF-7")
            out.append(ch)
            i += 1
            continue
        end = name.find("-", i + 1)
        if end < 0:
            raise ValueError("unterminated modified BASE64 section")
        b64 = name[i + 1 : end]
        i = end + 1
        if not b64:
            out.append("&")
            continue
        if not _B64_CHARS.fullmatch(b64):
            raise ValueError("invalid character in modified BASE64 section")
        if len(b64) % 4 == 1:
            raise ValueError("truncated modified BASE64 section")
        padded = b64.replace(",", "/") + "=" * (-len(b64) % 4)
        try:
            raw = base64.b64decode(padded, validate=True)
        except binascii.Error as e:
            raise ValueError("invalid modified BASE64 section") from e
        if len(raw) % 2:
            raise ValueError("modified BASE64 section is not UTF-16")
        # Non-zero leftover bits mean the encoder was not canonical.
        if base64.b64encode(raw).rstrip(b"=").replace(b"/", b",").decode("ascii") != b64:
            raise ValueError("non-canonical modified BASE64 section")
        try:
            text = raw.decode("utf-16-be")
        except UnicodeDecodeError as e:
            raise ValueError("invalid UTF-16 in modified BASE64 section") from e
        # RFC 3501 §5.1.3: BASE64 MUST NOT be used for characters that can represent themselves.
        if any(_is_direct(c) for c in text):
            raise ValueError("printable US-ASCII must not be BASE64 encoded")
        out.append(text)
    return "".join(out)
