"""Credentials: RFC 5802 §5 / RFC 7677 §3 SCRAM vectors, CRAM-MD5 (RFC 2195) from HMAC states."""

from __future__ import annotations

import base64
import hashlib
import hmac
import unicodedata

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mox.auth.password import (
    CramMD5Secret,
    Credentials,
    derive_credentials,
    md5_state_after_block,
    scram_secret,
    verify_password,
)


def _xor(a: bytes, b: bytes) -> bytes:
    return bytes(x ^ y for x, y in zip(a, b, strict=True))


def _check_scram_exchange(
    hash_name: str,
    salt_b64: str,
    iterations: int,
    client_first_bare: str,
    server_first: str,
    client_final: str,
    server_final: str,
) -> None:
    """Verify a client's proof and produce the server signature from StoredKey/ServerKey only."""
    secret = scram_secret(hash_name, "pencil", base64.b64decode(salt_b64), iterations)
    without_proof, proof_b64 = client_final.rsplit(",p=", 1)
    # RFC 5802 §3: AuthMessage := client-first-message-bare + "," + server-first-message + "," +
    # client-final-message-without-proof.
    auth_message = f"{client_first_bare},{server_first},{without_proof}".encode()
    client_signature = hmac.digest(secret.stored_key, auth_message, hash_name)
    client_key = _xor(base64.b64decode(proof_b64), client_signature)
    assert hashlib.new(hash_name, client_key).digest() == secret.stored_key
    server_signature = hmac.digest(secret.server_key, auth_message, hash_name)
    assert "v=" + base64.b64encode(server_signature).decode() == server_final


def test_scram_sha1_rfc5802_example() -> None:
    # RFC 5802 §5.
    _check_scram_exchange(
        "sha1",
        "QSXCR+Q6sek8bf92",
        4096,
        "n=user,r=fyko+d2lbbFgONRv9qkxdawL",
        "r=fyko+d2lbbFgONRv9qkxdawL3rfcNHYJY1ZVvWVs7j,s=QSXCR+Q6sek8bf92,i=4096",
        "c=biws,r=fyko+d2lbbFgONRv9qkxdawL3rfcNHYJY1ZVvWVs7j,p=v0X8v3Bz2T0CJGbJQyF0X+HI4Ts=",
        "v=rmF9pqV8S7suAoZWja4dJRkFsKQ=",
    )


def test_scram_sha256_rfc7677_example() -> None:
    # RFC 7677 §3.
    _check_scram_exchange(
        "sha256",
        "W22ZaJ0SNY7soEsUEjb6gQ==",
        4096,
        "n=user,r=rOprNGfwEbeRWgbNEkqO",
        "r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096",
        "c=biws,r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,"
        "p=dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ=",
        "v=6rriTRBi23WpRR/wtup+mMhUZUn/dB5nLTJRsjl95G4=",
    )


def test_cram_md5_rfc2195_example() -> None:
    # RFC 2195 §2.
    secret = CramMD5Secret.derive("tanstaaftanstaaf")
    digest = secret.hmac(b"<1896.697170952@postoffice.reston.mci.net>")
    assert digest.hex() == "b913a602c7eda7a495b4e6e7334d3890"


@pytest.mark.parametrize("pwlen", [0, 1, 55, 56, 63, 64, 65, 200])
@pytest.mark.parametrize("chlen", [0, 1, 55, 56, 63, 64, 65, 119, 120, 1000])
def test_cram_md5_from_states_equals_hmac(pwlen: int, chlen: int) -> None:
    pw = "p" * pwlen
    challenge = bytes(range(256))[:chlen] * 4
    assert (
        CramMD5Secret.derive(pw).hmac(challenge) == hmac.new(pw.encode(), challenge, "md5").digest()
    )


@settings(max_examples=200, deadline=None)
@given(st.text(max_size=100), st.binary(max_size=300))
def test_cram_md5_hypothesis(pw: str, challenge: bytes) -> None:
    key = unicodedata.normalize("NFC", pw).encode()
    assert CramMD5Secret.derive(pw).hmac(challenge) == hmac.new(key, challenge, "md5").digest()


def test_md5_block_state() -> None:
    with pytest.raises(ValueError, match="64 bytes"):
        md5_state_after_block(b"short")


def test_derive_and_verify() -> None:
    creds = derive_credentials("correct horse")
    assert verify_password(creds, "correct horse")
    assert not verify_password(creds, "correct horsE")
    assert not verify_password(creds, "")
    assert len(creds.scrypt_salt) == 16
    assert (creds.scrypt_n, creds.scrypt_r, creds.scrypt_p) == (2**14, 8, 1)
    assert creds.scram_sha1.iterations == 4096
    assert creds.scram_sha256.iterations >= 4096
    assert creds.scram_sha1 == scram_secret(
        "sha1", "correct horse", creds.scram_sha1.salt, creds.scram_sha1.iterations
    )
    # Fresh salts each time.
    other = derive_credentials("correct horse")
    assert other.scrypt_salt != creds.scrypt_salt
    assert other.scram_sha256.salt != creds.scram_sha256.salt


def test_password_nfc() -> None:
    creds = derive_credentials("caf\u00e9")
    assert verify_password(creds, "cafe\u0301")
    assert creds.cram_md5 == CramMD5Secret.derive("cafe\u0301")


def test_text_roundtrip_and_redaction() -> None:
    creds = derive_credentials("pencil")
    text = creds.to_text()
    assert "\n" not in text
    assert text.startswith("mox-cred1 ")
    assert Credentials.from_text(text) == creds
    assert Credentials.from_text(text + "\n") == creds
    assert "pencil" not in text
    for shown in (repr(creds), str(creds), repr(creds.scram_sha1), repr(creds.cram_md5)):
        assert "redacted" in shown
        assert base64.b64encode(creds.scrypt_hash).decode() not in shown
        assert creds.scram_sha1.stored_key.hex() not in shown


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("", "start with"),
        ("bcrypt$2a$10$xyz", "start with"),
        ("mox-cred1", "4 sections"),
        ("mox-cred1 a b c d e", "4 sections"),
    ],
)
def test_from_text_errors(text: str, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        Credentials.from_text(text)


def test_from_text_field_errors() -> None:
    good = derive_credentials("x").to_text().split(" ")

    def bad(i: int, word: str, message: str) -> None:
        words = list(good)
        words[i] = word
        with pytest.raises(ValueError, match=message):
            Credentials.from_text(" ".join(words))

    sc = good[1].split("$")
    bad(1, "$".join([*sc[:1], "1000", *sc[2:]]), "power of two")
    bad(1, "$".join([*sc[:1], "\u0663", *sc[2:]]), "not a number")
    bad(1, "$".join([*sc[:5], "!!"]), "bad base64")
    bad(1, "$".join([*sc[:5], "AAAA"]), "expected 32 bytes")
    bad(1, "$".join(sc[:5]), "needs 5 fields")
    sha1 = good[2].split("$")
    bad(2, "$".join([sha1[0], "10", *sha1[2:]]), "iterations out of range")
    bad(2, "x" + good[2], "expected section")
    bad(4, good[4] + "$", "needs 2 fields")


@settings(max_examples=300, deadline=None)
@given(st.text())
def test_from_text_never_crashes(text: str) -> None:
    try:
        Credentials.from_text(text)
    except ValueError:
        pass


_GOOD = derive_credentials("hypothesis").to_text()


@settings(max_examples=300, deadline=None)
@given(st.integers(0, len(_GOOD)), st.integers(0, 20), st.text(max_size=20))
def test_from_text_mutated_never_crashes(pos: int, cut: int, insert: str) -> None:
    text = _GOOD[:pos] + insert + _GOOD[pos + cut :]
    try:
        Credentials.from_text(text)
    except ValueError:
        pass


def test_verified_cache_skips_scrypt_only_for_the_right_password() -> None:
    from mox.auth import password as pwmod

    cache = pwmod._VerifiedCache(size=2, ttl=60)
    creds = derive_credentials("correct horse")
    pw = pwmod.normalize_password("correct horse")
    assert not cache.hit(creds, pw)
    cache.add(creds, pw)
    assert cache.hit(creds, pw)
    assert not cache.hit(creds, pwmod.normalize_password("correct horsE"))
    # A new password means new credentials: the old entry never matches them.
    changed = derive_credentials("correct horse")
    assert not cache.hit(changed, pw)
    # Bounded: the least recently used entry goes.
    others = [derive_credentials(f"pw{i}") for i in range(2)]
    for i, c in enumerate(others):
        cache.add(c, pwmod.normalize_password(f"pw{i}"))
    assert len(cache) == 2
    assert not cache.hit(creds, pw)
    cache.clear()
    assert len(cache) == 0
    expired = pwmod._VerifiedCache(ttl=0.0001)
    expired.add(creds, pw)
    import time

    time.sleep(0.01)
    assert not expired.hit(creds, pw)


def test_verify_password_uses_the_cache() -> None:
    import time

    from mox.auth.password import forget_verified_passwords

    creds = derive_credentials("battery staple")
    forget_verified_passwords()
    t0 = time.perf_counter()
    assert verify_password(creds, "battery staple")
    first = time.perf_counter() - t0
    t0 = time.perf_counter()
    for _ in range(20):
        assert verify_password(creds, "battery staple")
    again = (time.perf_counter() - t0) / 20
    assert again < first / 5, (first, again)
    # A wrong password is never served from the cache.
    assert not verify_password(creds, "battery stapler")
    forget_verified_passwords()
    assert verify_password(creds, "battery staple", use_cache=False)
