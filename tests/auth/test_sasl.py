"""SASL PLAIN (RFC 4616) and LOGIN (draft-murchison-sasl-login) server mechanisms, sans IO."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from mox.auth.sasl import (
    MECHANISMS,
    LoginServer,
    PlainServer,
    SaslChallenge,
    SaslDone,
    SaslError,
)


def test_registry() -> None:
    assert MECHANISMS["PLAIN"] is PlainServer
    assert MECHANISMS["LOGIN"] is LoginServer


def test_plain_initial_response() -> None:
    # RFC 4616 §4 example: "\0tim\0tanstaaftanstaaf".
    assert PlainServer().start(b"\x00tim\x00tanstaaftanstaaf") == SaslDone(
        "tim", "tanstaaftanstaaf"
    )


def test_plain_authzid_equal_authcid() -> None:
    assert PlainServer().start(b"tim\x00tim\x00pw") == SaslDone("tim", "pw")


def test_plain_without_initial_response() -> None:
    mech = PlainServer()
    assert mech.start(None) == SaslChallenge(b"")
    assert mech.step("\x00m\u00e9l@example.org\x00p\u00e4ss".encode()) == SaslDone(
        "m\u00e9l@example.org", "p\u00e4ss"
    )
    with pytest.raises(SaslError):
        mech.step(b"\x00a\x00b")


@pytest.mark.parametrize(
    "message",
    [
        b"",
        b"tim",
        b"\x00tim",
        b"\x00tim\x00pw\x00",
        b"\x00\x00pw",
        b"\x00tim\x00",
        b"other\x00tim\x00pw",  # RFC 4616 §2: we do not allow acting as someone else
        b"\x00tim\xff\x00pw",
    ],
)
def test_plain_bad(message: bytes) -> None:
    with pytest.raises(SaslError):
        PlainServer().start(message)


def test_plain_order() -> None:
    mech = PlainServer()
    with pytest.raises(SaslError):
        mech.step(b"\x00a\x00b")
    mech = PlainServer()
    mech.start(b"\x00a\x00b")
    with pytest.raises(SaslError):
        mech.start(None)


def test_login_flow() -> None:
    mech = LoginServer()
    assert mech.start(None) == SaslChallenge(b"Username:")
    assert mech.step(b"mjl@example.org") == SaslChallenge(b"Password:")
    done = mech.step(b"secret")
    assert done == SaslDone("mjl@example.org", "secret")
    assert "secret" not in repr(done)
    with pytest.raises(SaslError):
        mech.step(b"more")


def test_login_initial_response_is_username() -> None:
    mech = LoginServer()
    assert mech.start(b"mjl") == SaslChallenge(b"Password:")
    assert mech.step(b"pw") == SaslDone("mjl", "pw")


@pytest.mark.parametrize("username", [b"", b"\xff", b"a\x00b"])
def test_login_bad_username(username: bytes) -> None:
    mech = LoginServer()
    mech.start(None)
    with pytest.raises(SaslError):
        mech.step(username)


@pytest.mark.parametrize("password", [b"", b"\xc3"])
def test_login_bad_password(password: bytes) -> None:
    mech = LoginServer()
    mech.start(None)
    mech.step(b"u")
    with pytest.raises(SaslError):
        mech.step(password)


def test_login_order() -> None:
    with pytest.raises(SaslError):
        LoginServer().step(b"x")
    mech = LoginServer()
    mech.start(None)
    with pytest.raises(SaslError):
        mech.start(None)


@given(st.binary(max_size=64))
def test_plain_any_input(data: bytes) -> None:
    try:
        result = PlainServer().start(data)
    except SaslError:
        return
    assert isinstance(result, SaslDone)
    assert result.username
    assert result.password


@given(st.lists(st.binary(max_size=16), max_size=4))
def test_login_any_input(steps: list[bytes]) -> None:
    mech = LoginServer()
    mech.start(None)
    try:
        for s in steps:
            mech.step(s)
    except SaslError:
        pass
