"""DKIM signing and verification: the RFC 8463 example, our signatures, and every failure kind."""

from __future__ import annotations

import base64

import dkim as dkimpy
import pytest
from cryptography.hazmat.primitives.asymmetric import ed25519
from hypothesis import given, settings
from hypothesis import strategies as st

from mox.dkim import verify as verify_module
from mox.dkim.keys import DkimPrivateKey, generate_key, public_record
from mox.dkim.sign import Signer, sign
from mox.dkim.verify import verify
from mox.dns.resolver import MockResolver

# RFC 8463 Appendix A.3: the signed example message, both signatures (ed25519 and RSA).
RFC8463_MESSAGE = (
    "DKIM-Signature: v=1; a=ed25519-sha256; c=relaxed/relaxed;\n"
    " d=football.example.com; i=@football.example.com;\n"
    " q=dns/txt; s=brisbane; t=1528637909; h=from : to :\n"
    " subject : date : message-id : from : subject : date;\n"
    " bh=2jUSOH9NhtVGCQWNr9BrIAPreKQjO6Sn7XIkfJVOzv8=;\n"
    " b=/gCrinpcQOoIfuHNQIbq4pgh9kyIK3AQUdt9OdqQehSwhEIug4D11Bus\n"
    " Fa3bT3FY5OsU7ZbnKELq+eXdp1Q1Dw==\n"
    "DKIM-Signature: v=1; a=rsa-sha256; c=relaxed/relaxed;\n"
    " d=football.example.com; i=@football.example.com;\n"
    " q=dns/txt; s=test; t=1528637909; h=from : to : subject :\n"
    " date : message-id : from : subject : date;\n"
    " bh=2jUSOH9NhtVGCQWNr9BrIAPreKQjO6Sn7XIkfJVOzv8=;\n"
    " b=F45dVWDfMbQDGHJFlXUNB2HKfbCeLRyhDXgFpEL8GwpsRe0IeIixNTe3\n"
    " DhCVlUrSjV4BwcVcOF6+FF3Zo9Rpo1tFOeS9mPYQTnGdaSGsgeefOsk2Jz\n"
    " dA+L10TeYt9BgDfQNZtKdN1WO//KgIqXP7OdEFE4LjFYNcUxZQ4FADY+8=\n"
    "From: Joe SixPack <joe@football.example.com>\n"
    "To: Suzie Q <suzie@shopping.example.net>\n"
    "Subject: Is dinner ready?\n"
    "Date: Fri, 11 Jul 2003 21:00:37 -0700 (PDT)\n"
    "Message-ID: <20030712040037.46341.5F8J@football.example.com>\n"
    "\n"
    "Hi.\n"
    "\n"
    "We lost the game.  Are you hungry yet?\n"
    "\n"
    "Joe.\n"
).replace("\n", "\r\n")
# RFC 8463 Appendix A.2: the published keys.
RFC8463_KEYS = {
    ("brisbane._domainkey.football.example.com", "TXT"): [
        "v=DKIM1; k=ed25519; p=11qYAYKxCrfVS/7TyWQHOg7hcvPapiMlrwIaaPcHURo="
    ],
    ("test._domainkey.football.example.com", "TXT"): [
        "v=DKIM1; k=rsa; p=MIGfMA0GCSqGSIb3DQEBAQUAA4GNADCBiQKBgQDkHlOQoBTzWRiGs5V6NpP3idY6Wk08a5q"
        "hdR6wy5bdOKb2jLQiY/J16JYi0Qvx/byYzCNb3W91y3FutACDfzwQ/BC/e/8uBsCR+yz1Lxj+PL6lHvqMKrM3rG4"
        "hstT5QjvHO9PzoxZyVYLzBfO2EeC3Ip3G+2kryOTIKT+l/K4w3QIDAQAB"
    ],
}
# RFC 8463 Appendix A.1: the ed25519 private key (the RFC 8032 §7.1 test 1 secret).
RFC8463_SEED = base64.b64decode("nWGxne/9WmC6hEr0kuwsxERJxWl7MmkZcDusAxyuf2A=")

HEADERS = ("From", "To", "Cc", "Subject", "Date", "Message-Id", "Reply-To")
MESSAGE = (
    b"From: Alice <alice@example.test>\r\n"
    b"To: Bob <bob@example.net>\r\n"
    b"Subject: lunch\r\n"
    b"Date: Wed, 25 Nov 2026 08:00:00 +0000\r\n"
    b"Message-Id: <1@example.test>\r\n"
    b"\r\n"
    b"Shall we?\r\n"
)


async def test_rfc8463_example_verifies() -> None:
    results = await verify(MockResolver(RFC8463_KEYS), RFC8463_MESSAGE.encode())
    assert [(r.status, r.algorithm, r.selector, r.key_bits) for r in results] == [
        ("pass", "ed25519-sha256", "brisbane", 256),
        ("pass", "rsa-sha256", "test", 1024),
    ]
    assert all(r.domain == "football.example.com" for r in results)


async def test_rfc8463_example_broken_by_a_changed_subject() -> None:
    changed = RFC8463_MESSAGE.replace("Is dinner ready?", "Is lunch ready?").encode()
    results = await verify(MockResolver(RFC8463_KEYS), changed)
    assert [r.status for r in results] == ["fail", "fail"]


async def test_our_signature_with_the_rfc8463_key_matches_its_public_key() -> None:
    key = ed25519.Ed25519PrivateKey.from_private_bytes(RFC8463_SEED)
    assert public_record(key).to_text().endswith("p=11qYAYKxCrfVS/7TyWQHOg7hcvPapiMlrwIaaPcHURo=")
    msg = RFC8463_MESSAGE.split("From:", 1)[1]
    message = ("From:" + msg).encode()
    header = sign(message, [Signer("football.example.com", "brisbane", key, HEADERS)])
    (res,) = await verify(MockResolver(RFC8463_KEYS), header + message)
    assert res.status == "pass"


def _resolver(keys: dict[str, DkimPrivateKey], authentic: bool = False) -> MockResolver:
    return MockResolver(
        {
            (f"{s}._domainkey.example.test", "TXT"): [public_record(k).to_text()]
            for s, k in keys.items()
        },
        authentic=authentic,
    )


@pytest.fixture(scope="module")
def keys() -> dict[str, DkimPrivateKey]:
    return {"rsa": generate_key("rsa2048"), "ed": generate_key("ed25519")}


async def test_sign_both_algorithms_relaxed_and_oversigned(keys: dict[str, DkimPrivateKey]) -> None:
    signers = [Signer("example.test", s, k, HEADERS) for s, k in keys.items()]
    header = sign(MESSAGE, signers)
    text = header.decode()
    assert text.count("DKIM-Signature:") == 2
    assert "a=rsa-sha256; c=relaxed/relaxed; d=example.test" in text
    assert "a=ed25519-sha256; c=relaxed/relaxed; d=example.test" in text
    unfolded = text.replace("\r\n ", " ")
    # Each present field once per occurrence plus once more; absent ones once (RFC 6376 §5.4.2).
    assert "h=from : from : to : to : cc : subject : subject : date : date" in unfolded
    results = await verify(_resolver(keys, authentic=True), header + MESSAGE)
    assert [(r.status, r.key_type, r.authentic) for r in results] == [
        ("pass", "rsa", True),
        ("pass", "ed25519", True),
    ]
    assert results[0].key_bits == 2048


@pytest.mark.parametrize(
    ("change", "reason"),
    [
        (lambda m: m.replace(b"Shall we?", b"Shall we not?"), "body hash mismatch"),
        (lambda m: b"To: Mallory <m@example.org>\r\n" + m, "did not verify"),  # oversigned
        (lambda m: b"Cc: Mallory <m@example.org>\r\n" + m, "did not verify"),  # absent, sealed
        (lambda m: m.replace(b"Subject: lunch", b"Subject: dinner"), "did not verify"),
    ],
)
async def test_changes_break_the_signature(
    keys: dict[str, DkimPrivateKey], change: object, reason: str
) -> None:
    header = sign(MESSAGE, [Signer("example.test", "ed", keys["ed"], HEADERS)])
    assert callable(change)
    (res,) = await verify(_resolver(keys), change(header + MESSAGE))
    assert res.status == "fail"
    assert reason in res.reason


async def test_relaxed_canonicalization_survives_whitespace(
    keys: dict[str, DkimPrivateKey],
) -> None:
    header = sign(MESSAGE, [Signer("example.test", "rsa", keys["rsa"], HEADERS)])
    rewrapped = (header + MESSAGE).replace(b"Subject: lunch", b"Subject:   lunch ")
    (res,) = await verify(_resolver(keys), rewrapped)
    assert res.status == "pass"


async def test_key_lookup_outcomes(keys: dict[str, DkimPrivateKey]) -> None:
    message = sign(MESSAGE, [Signer("example.test", "rsa", keys["rsa"], HEADERS)]) + MESSAGE
    (missing,) = await verify(MockResolver({}), message)
    assert (missing.status, missing.reason) == ("permerror", "no key record")
    (temp,) = await verify(MockResolver({}, fail=[("rsa._domainkey.example.test", "TXT")]), message)
    assert temp.status == "temperror"
    revoked = MockResolver({("rsa._domainkey.example.test", "TXT"): ["v=DKIM1; p="]})
    (res,) = await verify(revoked, message)
    assert (res.status, res.reason) == ("permerror", "key revoked")
    other = _resolver({"rsa": generate_key("rsa2048")})
    (wrong,) = await verify(other, message)
    assert wrong.status == "fail"


async def test_policy_refuses_length_limit_sha1_and_unsigned_subject(
    keys: dict[str, DkimPrivateKey],
) -> None:
    no_subject = sign(MESSAGE, [Signer("example.test", "ed", keys["ed"], ("From", "To"))])
    (res,) = await verify(_resolver(keys), no_subject + MESSAGE)
    assert (res.status, res.reason) == ("policy", "Subject is not signed")
    with_l = sign(MESSAGE, [Signer("example.test", "ed", keys["ed"], HEADERS)]).replace(
        b"q=dns/txt;", b"l=5; q=dns/txt;"
    )
    (res,) = await verify(_resolver(keys), with_l + MESSAGE)
    assert res.status == "policy"
    assert "l=" in res.reason
    sha1 = sign(MESSAGE, [Signer("example.test", "rsa", keys["rsa"], HEADERS)]).replace(
        b"a=rsa-sha256", b"a=rsa-sha1"
    )
    (res,) = await verify(_resolver(keys), sha1 + MESSAGE)
    assert res.status == "policy"
    assert "RFC 8301" in res.reason


async def test_small_rsa_keys_and_tlsrpt_only_keys_are_permerror(
    keys: dict[str, DkimPrivateKey], monkeypatch: pytest.MonkeyPatch
) -> None:
    # cryptography will not make keys under 1024 bits; raise the floor instead (RFC 8301 §3.2).
    monkeypatch.setattr(verify_module, "MIN_RSA_BITS", 4096)
    message = sign(MESSAGE, [Signer("example.test", "rsa", keys["rsa"], HEADERS)]) + MESSAGE
    (res,) = await verify(_resolver(keys), message)
    assert res.status == "permerror"
    assert "RSA key of 2048 bits is too small" in res.reason
    monkeypatch.undo()
    key = generate_key("ed25519")
    record = public_record(key).to_text().replace("v=DKIM1;", "v=DKIM1;s=tlsrpt;")
    signed = sign(MESSAGE, [Signer("example.test", "t", key, HEADERS)]) + MESSAGE
    resolver = MockResolver({("t._domainkey.example.test", "TXT"): [record]})
    (res,) = await verify(resolver, signed)
    assert res.status == "permerror"
    assert "not for email" in res.reason


async def test_unsigned_and_malformed() -> None:
    assert await verify(MockResolver({}), MESSAGE) == []
    (res,) = await verify(MockResolver({}), b"DKIM-Signature: v=1; a\r\n" + MESSAGE)
    assert res.status == "permerror"


def test_sign_needs_one_from(keys: dict[str, DkimPrivateKey]) -> None:
    with pytest.raises(ValueError, match="exactly one From"):
        sign(b"From: a@x.test\r\n" + MESSAGE, [Signer("example.test", "ed", keys["ed"], HEADERS)])


_PIECES = [b"\r\n", b"\n", b"\r", b"DKIM-Signature:", b"dkim-signature: v=1", b"ARC-Seal:", b"x"]
_PIECES += [b" ", b"\t", b":", b"From ", b"Subject: hi", b"\r\n\r\n", b"\n\n", b"\xff"]


@given(st.lists(st.sampled_from(_PIECES), max_size=40))
@settings(max_examples=500)
def test_signature_headers_same_as_whole_message_parse(parts: list[bytes]) -> None:
    # signature_headers parses only the header section (speed); what it finds, and the errors
    # of malformed header fields, must be what dkimpy finds parsing the whole message.
    message = b"".join(parts)
    for name in (b"dkim-signature", b"arc-seal"):
        try:
            whole = [v for k, v in dkimpy.rfc822_parse(message)[0] if k.lower() == name]
        except Exception as e:  # the same type must come out of both
            with pytest.raises(type(e)):
                verify_module.signature_headers(message, name)
        else:
            assert verify_module.signature_headers(message, name) == whole
