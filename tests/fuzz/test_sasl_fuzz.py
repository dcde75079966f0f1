"""SASL mechanisms (mox/auth/sasl.py, mox/auth/scram.py) fed random client messages: only SaslError,
never a success without the password, and exchanges end after a bounded number of steps."""

from __future__ import annotations

import base64

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from mox.auth.password import Credentials, derive_credentials
from mox.auth.sasl import MECHANISMS, SaslChallenge, SaslDone, SaslError, SaslVerified
from mox.auth.scram import SaslContext, new_mechanism

FUZZ = settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])

CREDS = derive_credentials("the right password")  # scrypt: derived once for the module


def lookup(username: str) -> Credentials | None:
    return CREDS if username == "alice@example.test" else None


# SCRAM-ish client messages, so the parser gets past its first checks.
scram_msg = st.lists(
    st.sampled_from(
        [
            "n,,",
            "y,,",
            "p=tls-exporter,,",
            "n=alice@example.test",
            "n=",
            "r=",
            "r=abc",
            "c=biws",
            "p=",
            "p=AAAA",
            "a=x",
            "m=x",
            ",",
            "=",
            "=2C",
            "=3D",
            "\x00",
            "é",
        ]
    )
    | st.text(max_size=12),
    max_size=8,
).map(lambda parts: ",".join(parts).encode("utf-8", "surrogatepass"))
message = st.binary(max_size=80) | scram_msg
MECHS = [*MECHANISMS, "SCRAM-SHA-256", "SCRAM-SHA-1", "SCRAM-SHA-256-PLUS", "CRAM-MD5"]


@FUZZ
@given(st.sampled_from(MECHS), st.one_of(st.none(), message), st.lists(message, max_size=4))
def test_mechanisms_raise_only_sasl_error(
    name: str, initial: bytes | None, steps: list[bytes]
) -> None:
    ctx = SaslContext(lookup, {"tls-exporter": b"x" * 32}, "mail.example.test", True)
    factory = MECHANISMS.get(name)
    mech = factory() if factory is not None else new_mechanism(name, ctx)
    assert mech is not None
    try:
        result = mech.start(initial)
        for data in steps:
            if not isinstance(result, SaslChallenge):
                break
            result = mech.step(data)
    except SaslError:
        return
    if isinstance(result, SaslVerified):
        assert not result.ok, "verified without knowing the password"
    if isinstance(result, SaslDone):
        assert result.password  # the password is checked by the caller


@FUZZ
@given(st.text(min_size=1, max_size=20), st.text(min_size=1, max_size=20))
def test_plain_round_trip(user: str, password: str) -> None:
    mech = MECHANISMS["PLAIN"]()
    data = b"\x00" + user.encode() + b"\x00" + password.encode()
    try:
        result = mech.start(data)
    except SaslError:
        assert "\x00" in user + password
        return
    assert result == SaslDone(user, password)
    assert base64.b64encode(data)  # what a client puts on the wire
