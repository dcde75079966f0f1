"""A small labelled corpus written for the junk tests: varied ham and spam with headers and MIME
parts, generated from templates so every run sees the same messages."""

from __future__ import annotations

import base64
import random

HAM_TOPICS = [
    ("Meeting notes", "the agenda for thursday: budget review, hiring plan and the roadmap"),
    ("Lunch", "shall we try the new noodle place near the office tomorrow around noon"),
    ("Code review", "please look at the pull request for the parser refactoring before friday"),
    ("Holiday photos", "here are the pictures from our trip to the mountains, the lake was cold"),
    ("Invoice 2231", "attached the invoice for the consulting hours in october, thanks again"),
    ("Book club", "next month we read the novel about the lighthouse keeper, bring snacks"),
    ("Server upgrade", "the database migration is scheduled for sunday night, expect downtime"),
    ("Birthday", "grandma turns ninety on saturday, the family dinner starts at six"),
]

SPAM_TOPICS = [
    ("WINNER!!! Claim your prize", "congratulations winner claim your cash prize now click here"),
    ("Cheap pills online", "buy cheap viagra pills online pharmacy discount no prescription"),
    ("Urgent wire transfer", "urgent business proposal transfer million dollars bank account"),
    ("Hot singles", "hot singles waiting click here free dating casino bonus tonight"),
    ("Crypto profit", "guaranteed crypto profit investment double your bitcoin click now"),
    ("Lottery payout", "lottery winner payout claim million dollars urgent reply now"),
]

FILLER = [
    "alpha",
    "bravo",
    "charlie",
    "delta",
    "echo",
    "foxtrot",
    "golf",
    "hotel",
    "india",
    "juliet",
    "kilo",
    "lima",
]


def _message(
    sender: str, to: str, subject: str, body: str, rng: random.Random, *, html: bool
) -> bytes:
    extra = " ".join(rng.sample(FILLER, 3)) + f" ref{rng.randrange(10**6)}"
    text = f"{body}\r\n{extra}\r\n"
    head = (
        f"From: {sender}\r\nTo: {to}\r\nSubject: {subject}\r\n"
        f"Message-Id: <{rng.randrange(10**12)}@corpus.test>\r\n"
        "Date: Wed, 25 Nov 2026 08:00:00 +0000\r\nMIME-Version: 1.0\r\n"
    )
    if not html:
        return (head + "Content-Type: text/plain; charset=utf-8\r\n\r\n" + text).encode()
    encoded = base64.encodebytes(f"<html><body><p>{text}</p></body></html>".encode()).decode()
    return (
        head + 'Content-Type: multipart/alternative; boundary="b1"\r\n\r\n'
        "--b1\r\nContent-Type: text/plain; charset=utf-8\r\n\r\n" + text + "\r\n"
        "--b1\r\nContent-Type: text/html; charset=utf-8\r\nContent-Transfer-Encoding: base64\r\n"
        "\r\n" + encoded.replace("\n", "\r\n") + "--b1--\r\n"
    ).encode()


def ham(n: int, seed: int = 1, to: str = "alice@example.test") -> list[bytes]:
    rng = random.Random(seed)
    out = []
    for i in range(n):
        subject, body = HAM_TOPICS[i % len(HAM_TOPICS)]
        sender = f"Friend {i % 5} <friend{i % 5}@friends.test>"
        out.append(_message(sender, to, subject, body, rng, html=i % 3 == 0))
    return out


def spam(n: int, seed: int = 2, to: str = "alice@example.test") -> list[bytes]:
    rng = random.Random(seed)
    out = []
    for i in range(n):
        subject, body = SPAM_TOPICS[i % len(SPAM_TOPICS)]
        sender = f"Promo <offer{i}@spam{i % 7}.test>"
        out.append(_message(sender, to, subject, body, rng, html=i % 2 == 0))
    return out
