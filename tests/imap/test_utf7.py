"""Modified UTF-7 mailbox names (RFC 3501 §5.1.3)."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from mox.imap import utf7


def test_rfc3501_example() -> None:
    assert utf7.decode("~peter/mail/&U,BTFw-/&ZeVnLIqe-") == "~peter/mail/台北/日本語"
    assert utf7.encode("~peter/mail/台北/日本語") == "~peter/mail/&U,BTFw-/&ZeVnLIqe-"


@pytest.mark.parametrize(
    ("text", "encoded"),
    [
        ("Inbox", "Inbox"),
        ("Tom & Jerry", "Tom &- Jerry"),
        ("Entwürfe", "Entw&APw-rfe"),
        ("☺", "&Jjo-"),
        ("𝄞", "&2DTdHg-"),  # outside the BMP: a UTF-16 surrogate pair
        ("a\tb", "a&AAk-b"),
    ],
)
def test_known_encodings(text: str, encoded: str) -> None:
    assert utf7.encode(text) == encoded
    assert utf7.decode(encoded) == text


@pytest.mark.parametrize(
    "bad",
    [
        "&Jjo",  # unterminated
        "&Jj!-",  # invalid base64 character
        "&AGE-",  # encodes printable "a"
        "&AAA",  # unterminated
        "&Jjp-",  # non-zero padding bits
        "&A-",  # truncated
        "&2DQ-",  # lone high surrogate
        "ä",  # 8-bit must be encoded
        "a\x01",  # control characters must be encoded
    ],
)
def test_invalid(bad: str) -> None:
    with pytest.raises(ValueError, match=r"."):
        utf7.decode(bad)


@given(st.text(max_size=40))
def test_round_trip(text: str) -> None:
    # Lone surrogates cannot be represented in UTF-16; hypothesis' text() avoids them by default.
    encoded = utf7.encode(text)
    assert encoded.isascii()
    assert utf7.decode(encoded) == text


@given(st.text(alphabet=st.characters(min_codepoint=0x20, max_codepoint=0x7E), max_size=30))
def test_decode_random_ascii_raises_only_value_error(text: str) -> None:
    try:
        decoded = utf7.decode(text)
    except ValueError:
        return
    assert utf7.encode(decoded) == text or "&" in text
