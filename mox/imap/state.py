"""The IMAP connection state machine, RFC 9051 §3 (state and flow diagram).

Rule 1: everything that affects which commands are allowed, or which state a command leads to, lives
in this file as data. The connection (``mox.imap.connection``) consults these tables when a command
arrives and when its tagged response is sent; the server never sets the state itself.

Theory of operation: a command name (upper case, "UID FETCH" for UID commands) is allowed in a state
when it is in ``ALLOWED[state]``. When its tagged OK is sent, ``ON_OK`` gives the new state; when
its tagged NO or BAD is sent, ``ON_FAILURE`` does (a failed SELECT leaves the selected state,
RFC 9051 §6.3.2). Sending an untagged BYE moves to LOGOUT from anywhere.
"""

from __future__ import annotations

import enum
from typing import Final


class State(enum.Enum):
    """RFC 9051 §3.1-3.4."""

    NOT_AUTHENTICATED = "not authenticated"
    AUTHENTICATED = "authenticated"
    SELECTED = "selected"
    LOGOUT = "logout"


# RFC 9051 §6.1: valid in any state.
ANY_STATE: Final = frozenset({"CAPABILITY", "NOOP", "LOGOUT", "ID"})
# RFC 9051 §6.2: valid in the not authenticated state.
NOT_AUTHENTICATED_ONLY: Final = frozenset({"STARTTLS", "AUTHENTICATE", "LOGIN"})
# RFC 9051 §6.3.1: ENABLE is only valid in the authenticated state, not in selected.
AUTHENTICATED_ONLY: Final = frozenset({"ENABLE"})
# RFC 9051 §6.3: valid in the authenticated and the selected state.
AUTHENTICATED_AND_SELECTED: Final = frozenset(
    {
        "SELECT",
        "EXAMINE",
        "CREATE",
        "DELETE",
        "RENAME",
        "SUBSCRIBE",
        "UNSUBSCRIBE",
        "LIST",
        "LSUB",  # RFC 3501 §6.3.9
        "NAMESPACE",
        "STATUS",
        "APPEND",
        "IDLE",
        "GETQUOTAROOT",  # RFC 9208 §4.3
        "GETQUOTA",
        "SETQUOTA",
        "GETMETADATA",  # RFC 5464 §4
        "SETMETADATA",
        "COMPRESS",  # RFC 4978 §3
        "ESEARCH",  # RFC 7377 §2
        "NOTIFY",  # RFC 5465 §3
    }
)
# RFC 9051 §6.4: valid in the selected state only.
SELECTED_ONLY: Final = frozenset(
    {
        "CHECK",  # RFC 3501 §6.4.1
        "CLOSE",
        "UNSELECT",
        "EXPUNGE",
        "UID EXPUNGE",
        "SEARCH",
        "UID SEARCH",
        "FETCH",
        "UID FETCH",
        "STORE",
        "UID STORE",
        "COPY",
        "UID COPY",
        "MOVE",  # RFC 6851 §3
        "UID MOVE",
        "REPLACE",  # RFC 8508 §3
        "UID REPLACE",
        "SORT",  # RFC 5256 §3
        "UID SORT",
        "THREAD",
        "UID THREAD",
    }
)

ALLOWED: Final[dict[State, frozenset[str]]] = {
    State.NOT_AUTHENTICATED: ANY_STATE | NOT_AUTHENTICATED_ONLY,
    State.AUTHENTICATED: ANY_STATE | AUTHENTICATED_ONLY | AUTHENTICATED_AND_SELECTED,
    State.SELECTED: ANY_STATE | AUTHENTICATED_AND_SELECTED | SELECTED_ONLY,
    State.LOGOUT: frozenset(),
}

ALL_COMMANDS: Final = frozenset().union(*ALLOWED.values())

# Transitions when the command's tagged OK is sent.
ON_OK: Final[dict[tuple[State, str], State]] = {
    (State.NOT_AUTHENTICATED, "LOGIN"): State.AUTHENTICATED,  # RFC 9051 §6.2.3
    (State.NOT_AUTHENTICATED, "AUTHENTICATE"): State.AUTHENTICATED,  # RFC 9051 §6.2.2
    (State.AUTHENTICATED, "SELECT"): State.SELECTED,  # RFC 9051 §6.3.2
    (State.AUTHENTICATED, "EXAMINE"): State.SELECTED,  # RFC 9051 §6.3.3
    (State.SELECTED, "SELECT"): State.SELECTED,
    (State.SELECTED, "EXAMINE"): State.SELECTED,
    (State.SELECTED, "CLOSE"): State.AUTHENTICATED,  # RFC 9051 §6.4.1
    (State.SELECTED, "UNSELECT"): State.AUTHENTICATED,  # RFC 9051 §6.4.2
    (State.NOT_AUTHENTICATED, "LOGOUT"): State.LOGOUT,  # RFC 9051 §6.1.3
    (State.AUTHENTICATED, "LOGOUT"): State.LOGOUT,
    (State.SELECTED, "LOGOUT"): State.LOGOUT,
}

# Transitions when the command's tagged NO or BAD is sent.
ON_FAILURE: Final[dict[tuple[State, str], State]] = {
    # RFC 9051 §6.3.2: a failed SELECT (or EXAMINE) attempt closes the selected mailbox.
    (State.SELECTED, "SELECT"): State.AUTHENTICATED,
    (State.SELECTED, "EXAMINE"): State.AUTHENTICATED,
}


def is_allowed(state: State, command: str) -> bool:
    """Whether command may be issued in state."""
    return command in ALLOWED[state]


def after_ok(state: State, command: str) -> State:
    """The state after the tagged OK of command."""
    return ON_OK.get((state, command), state)


def after_failure(state: State, command: str) -> State:
    """The state after a tagged NO or BAD of command."""
    return ON_FAILURE.get((state, command), state)
