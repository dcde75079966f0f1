"""Test messages: deterministic text of a given size, CRLF lines, searchable words."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime

__all__ = ["RARE_WORD", "make_message", "smtp_payload"]

# A word in one message out of RARE_EVERY of a big mailbox, for the full-text SEARCH figure.
RARE_WORD = "quuxbenchword"
RARE_EVERY = 1000

_WORDS_RNG = random.Random(7)
_LETTERS = "abcdefghijklmnopqrstuvwxyz"
WORDS = [
    "".join(_WORDS_RNG.choice(_LETTERS) for _ in range(_WORDS_RNG.randint(3, 10)))
    for _ in range(2000)
]
_EPOCH = datetime(2026, 1, 1, tzinfo=UTC)


def make_message(i: int, size: int, to: str = "user@bench.test", *, rare: bool = False) -> bytes:
    """Message number i of about `size` bytes (at least the headers), CRLF line endings, no line
    starting with "." (so SMTP needs no dot-stuffing)."""
    rng = random.Random(i)
    date = _EPOCH + timedelta(seconds=i * 37)
    subject = " ".join(rng.choice(WORDS) for _ in range(5))
    head = (
        f"From: Sender {i % 97} <sender{i % 97}@example.org>\r\n"
        f"To: <{to}>\r\n"
        f"Subject: {subject}\r\n"
        f"Date: {format_datetime(date)}\r\n"
        f"Message-ID: <bench.{i}@example.org>\r\n"
        "MIME-Version: 1.0\r\n"
        "Content-Type: text/plain; charset=us-ascii\r\n"
        "\r\n"
    ).encode()
    lines: list[str] = []
    total = len(head)
    if rare:
        lines.append(f"This one carries {RARE_WORD} for search.")
        total += len(lines[-1]) + 2
    while total < size:
        line = " ".join(rng.choice(WORDS) for _ in range(10))
        lines.append(line)
        total += len(line) + 2
    return head + "".join(f"{line}\r\n" for line in lines).encode()


def smtp_payload(message: bytes) -> bytes:
    """The DATA payload with its terminating line (make_message needs no dot-stuffing)."""
    return message + b".\r\n"
