"""The state table (RFC 9051 §3)."""

from __future__ import annotations

import pytest

from mox.imap import state as st
from mox.imap.state import State


def test_any_state_commands_allowed_everywhere_but_logout() -> None:
    for s in (State.NOT_AUTHENTICATED, State.AUTHENTICATED, State.SELECTED):
        assert st.ALLOWED[s] >= st.ANY_STATE
    assert st.ALLOWED[State.LOGOUT] == frozenset()


@pytest.mark.parametrize(
    ("state", "command", "allowed"),
    [
        (State.NOT_AUTHENTICATED, "LOGIN", True),
        (State.NOT_AUTHENTICATED, "SELECT", False),
        (State.NOT_AUTHENTICATED, "FETCH", False),
        (State.AUTHENTICATED, "LOGIN", False),  # RFC 9051 §6.2: only before authentication
        (State.AUTHENTICATED, "STARTTLS", False),
        (State.AUTHENTICATED, "ENABLE", True),
        (State.SELECTED, "ENABLE", False),  # RFC 9051 §6.3.1: authenticated state only
        (State.AUTHENTICATED, "FETCH", False),
        (State.AUTHENTICATED, "UID FETCH", False),
        (State.SELECTED, "UID FETCH", True),
        (State.SELECTED, "APPEND", True),
        (State.SELECTED, "IDLE", True),
        (State.AUTHENTICATED, "CLOSE", False),
    ],
)
def test_allowed(state: State, command: str, allowed: bool) -> None:
    assert st.is_allowed(state, command) is allowed


def test_transitions() -> None:
    assert st.after_ok(State.NOT_AUTHENTICATED, "LOGIN") is State.AUTHENTICATED
    assert st.after_ok(State.NOT_AUTHENTICATED, "AUTHENTICATE") is State.AUTHENTICATED
    assert st.after_failure(State.NOT_AUTHENTICATED, "LOGIN") is State.NOT_AUTHENTICATED
    assert st.after_ok(State.AUTHENTICATED, "EXAMINE") is State.SELECTED
    assert st.after_ok(State.SELECTED, "CLOSE") is State.AUTHENTICATED
    assert st.after_ok(State.SELECTED, "UNSELECT") is State.AUTHENTICATED
    assert st.after_ok(State.SELECTED, "FETCH") is State.SELECTED
    # RFC 9051 §6.3.2: a failed SELECT leaves the selected state.
    assert st.after_failure(State.SELECTED, "SELECT") is State.AUTHENTICATED
    assert st.after_failure(State.AUTHENTICATED, "SELECT") is State.AUTHENTICATED
    for s in (State.NOT_AUTHENTICATED, State.AUTHENTICATED, State.SELECTED):
        assert st.after_ok(s, "LOGOUT") is State.LOGOUT


def test_transitions_only_name_allowed_commands() -> None:
    for (s, cmd), _ in (st.ON_OK | st.ON_FAILURE).items():
        assert st.is_allowed(s, cmd), (s, cmd)
