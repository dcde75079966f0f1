"""The account page's suppression list (as mox's account page): the addresses this account's
messages are not delivered to (mox.queue.suppression, the same list as the web API's
Suppression* methods), with forms to add and remove them. Both forms carry the CSRF token.
"""

from __future__ import annotations

from collections.abc import Sequence

from mox.queue.suppression import Suppression
from mox.webaccount.html import Child, el, post_form, table

__all__ = ["section"]


def section(csrf: str, found: Sequence[Suppression] | None) -> list[Child]:
    """The section's HTML; found is None when the server has no outgoing queue (localserve)."""
    parts: list[Child] = [el("h2", "Suppression list")]
    if found is None:
        parts.append(el("p", "This server has no outgoing queue, so no suppression list."))
        return parts
    parts.append(
        el(
            "p",
            "Messages from this account are not delivered to these addresses: submissions to "
            "them are refused. Addresses that bounce hard are added automatically. An address "
            "matches by its base form: lower case, dots and anything after + or - in the local "
            "part left out.",
        )
    )
    rows = [
        [
            s.original_address,
            s.base_address,
            s.created,
            "manual" if s.manual else "automatic",
            s.reason,
            post_form(
                "/account/suppression/remove",
                csrf,
                el("input", type="hidden", name="address", value=s.original_address),
                submit="Remove",
                class_="inline",
            ),
        ]
        for s in found
    ]
    parts.append(
        table(
            ["Address", "Base address", "Added (UTC)", "How", "Reason", ""],
            rows,
            empty="No suppressed addresses.",
        )
    )
    parts.append(
        post_form(
            "/account/suppression/add",
            csrf,
            el(
                "label",
                "Address ",
                el("input", type="email", name="address", required=True, size=30),
            ),
            el("label", "Reason ", el("input", type="text", name="reason", size=30)),
            submit="Add to suppression list",
        )
    )
    return parts
