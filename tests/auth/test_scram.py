"""SCRAM-SHA-1/256(-PLUS) and CRAM-MD5 server mechanisms against an independent client (scramp)."""

from __future__ import annotations

import hmac

import pytest
import scramp

from mox.auth.password import Credentials, derive_credentials
from mox.auth.sasl import SaslChallenge, SaslError, SaslVerified
from mox.auth.scram import SaslContext, new_mechanism

CREDS = {"alice@example.test": derive_credentials("pencil é")}


def lookup(username: str) -> Credentials | None:
    return CREDS.get(username)


def run_scram(
    mech_name: str,
    username: str,
    password: str,
    ctx: SaslContext,
    binding: tuple[str, bytes] | None = None,
) -> SaslVerified:
    client = scramp.ScramClient([mech_name], username, password, channel_binding=binding)
    mech = new_mechanism(mech_name, ctx)
    assert mech is not None
    first = mech.start(client.get_client_first().encode())
    assert isinstance(first, SaslChallenge)
    client.set_server_first(first.data.decode())
    result = mech.step(client.get_client_final().encode())
    if isinstance(result, SaslVerified):
        return result
    client.set_server_final(result.data.decode())  # raises if the server signature is wrong
    done = mech.step(b"")
    assert isinstance(done, SaslVerified)
    return done


@pytest.mark.parametrize("mech_name", ["SCRAM-SHA-1", "SCRAM-SHA-256"])
def test_scram_login_with_scramp(mech_name: str) -> None:
    ctx = SaslContext(lookup)
    assert run_scram(mech_name, "alice@example.test", "pencil é", ctx) == SaslVerified(
        "alice@example.test", True
    )
    assert not run_scram(mech_name, "alice@example.test", "wrong", ctx).ok
    assert not run_scram(mech_name, "nobody@example.test", "pencil é", ctx).ok


@pytest.mark.parametrize("mech_name", ["SCRAM-SHA-1-PLUS", "SCRAM-SHA-256-PLUS"])
def test_scram_plus_channel_binding(mech_name: str) -> None:
    # scramp knows tls-unique and tls-server-end-point (not yet tls-exporter); the server takes
    # whichever bindings the TLS layer of the connection provides.
    ctx = SaslContext(lookup, channel_bindings={"tls-unique": b"u" * 12}, plus_advertised=True)
    good = ("tls-unique", b"u" * 12)
    assert run_scram(mech_name, "alice@example.test", "pencil é", ctx, good).ok
    with pytest.raises(SaslError, match="channel binding mismatch"):
        run_scram(mech_name, "alice@example.test", "pencil é", ctx, ("tls-unique", b"x" * 12))
    with pytest.raises(SaslError, match="not supported"):
        run_scram(
            mech_name, "alice@example.test", "pencil é", ctx, ("tls-server-end-point", b"h" * 32)
        )


def test_plus_needs_bindings_and_downgrade_is_detected() -> None:
    assert new_mechanism("SCRAM-SHA-256-PLUS", SaslContext(lookup)) is None
    ctx = SaslContext(lookup, channel_bindings={"tls-exporter": b"e"}, plus_advertised=True)
    mech = new_mechanism("SCRAM-SHA-256", ctx)
    assert mech is not None
    with pytest.raises(SaslError, match="downgrade"):  # RFC 5802 §6
        mech.start(b"y,,n=alice@example.test,r=abcdef")


@pytest.mark.parametrize(
    "first",
    [
        b"",
        b"x",
        b"n,,",
        b"n,,n=,r=x",
        b"n,,r=x,n=a",
        b"q,,n=a,r=b",
        b"n,,n=a=zz,r=b",
        b"n,,m=ext,n=a,r=b",
        b"\xff\xfe",
    ],
)
def test_scram_garbage_is_a_sasl_error(first: bytes) -> None:
    mech = new_mechanism("SCRAM-SHA-256", SaslContext(lookup))
    assert mech is not None
    with pytest.raises(SaslError):
        mech.start(first)


def test_cram_md5() -> None:
    ctx = SaslContext(lookup, hostname="mail.example.test")
    mech = new_mechanism("CRAM-MD5", ctx)
    assert mech is not None
    challenge = mech.start(None)
    assert isinstance(challenge, SaslChallenge)
    assert challenge.data.startswith(b"<")
    assert challenge.data.endswith(b"@mail.example.test>")
    digest = hmac.new("pencil é".encode(), challenge.data, "md5").hexdigest()
    assert mech.step(f"alice@example.test {digest}".encode()) == SaslVerified(
        "alice@example.test", True
    )
    mech2 = new_mechanism("CRAM-MD5", ctx)
    assert mech2 is not None
    mech2.start(None)
    again = mech2.step(f"alice@example.test {digest}".encode())
    assert isinstance(again, SaslVerified)
    assert not again.ok  # a new challenge each time
    with pytest.raises(SaslError):
        new_mechanism("CRAM-MD5", ctx).start(b"initial")  # type: ignore[union-attr]
