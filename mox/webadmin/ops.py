"""Admin pages for the outgoing queue (list, hold, release, retry, drop) and the DMARC and TLS
reports received (RFC 7489 §7.2 aggregate reports, RFC 8460 §4 TLS reports)."""

from __future__ import annotations

import asyncio
import logging
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from starlette.requests import Request
from starlette.responses import Response

from mox.reportdb import ReportDB, StoredReport
from mox.web.session import Session
from mox.webaccount.html import Child, el, form_text, post_form, redirect, table

if TYPE_CHECKING:
    from mox.webadmin.site import AdminSite

__all__ = ["queue_action", "queue_page", "reports"]

log = logging.getLogger(__name__)

SHOW = 500  # rows per table; the rest is summarised
ACTIONS = ("hold", "release", "retry", "drop")


def _action_form(csrf: str, msg_id: int, action: str) -> Child:
    return post_form(
        "/admin/queue",
        csrf,
        el("input", type="hidden", name="id", value=str(msg_id)),
        el("input", type="hidden", name="action", value=action),
        submit=action.capitalize(),
        class_="inline",
        confirm=f"Drop message {msg_id}? It will not be delivered." if action == "drop" else None,
    )


async def queue_page(
    site: AdminSite, request: Request, session: Session, problems: list[str] | None = None
) -> Response:
    queue = site.env.queue
    if queue is None:
        note = el("p", "This server has no outgoing queue (localserve delivers locally).")
        return site.show(session, "Queue", note, problems=problems)
    msgs = await queue.messages()
    retired = await queue.retired()
    csrf = session.csrf
    rows: list[list[Child]] = []
    for m in msgs[:SHOW]:
        buttons = [
            _action_form(csrf, m.id, a)
            for a in ACTIONS
            if not (a == "hold" and m.hold) and not (a == "release" and not m.hold)
        ]
        rows.append(
            [
                str(m.id),
                m.account,
                m.mail_from,
                m.rcpt,
                "held" if m.hold else "queued",
                f"{m.attempts}/{m.max_attempts}",
                m.next_attempt[:19],
                str(m.size),
                m.last_error,
                buttons,
            ]
        )
    body: list[Child] = [
        el("p", f"{len(msgs)} recipients in the queue."),
        table(
            [
                "Id",
                "Account",
                "From",
                "To",
                "State",
                "Attempts",
                "Next attempt",
                "Size",
                "Last error",
                "",
            ],
            rows,
            empty="The queue is empty.",
        ),
    ]
    if len(msgs) > SHOW:
        body.append(el("p", f"… and {len(msgs) - SHOW} more (see `mox queue list`)."))
    body += [
        el("h2", "Recently finished"),
        table(
            ["Id", "From", "To", "Result", "Attempts", "Last error"],
            [
                [str(m.id), m.mail_from, m.rcpt, result, str(m.attempts), m.last_error]
                for m, result in reversed(retired[-50:])
            ],
            empty="Nothing finished yet.",
        ),
    ]
    return site.show(session, "Queue", body, problems=problems)


async def queue_action(site: AdminSite, request: Request, session: Session) -> Response:
    form = await request.form()
    action, id_text = form_text(form, "action"), form_text(form, "id", 20)
    queue = site.env.queue
    if queue is None or action not in ACTIONS or not id_text.isdigit():
        return await queue_page(site, request, session, ["Unknown queue action or message."])
    fn = {"hold": queue.hold, "release": queue.release, "retry": queue.retry, "drop": queue.drop}
    n = await fn[action]([int(id_text)])
    log.info("queue changed from the admin pages", extra={"action": action, "id": id_text, "n": n})
    site.notice(session, f"{action.capitalize()}: {n} message(s)." if n else "No such message.")
    return redirect("/admin/queue")


def _dmarc_row(r: StoredReport) -> list[Child]:
    data: dict[str, Any] = r.data
    rows = data.get("rows") or []
    total = sum(int(x.get("count", 0)) for x in rows)
    passed = sum(
        int(x.get("count", 0)) for x in rows if x.get("dkim") == "pass" or x.get("spf") == "pass"
    )
    disp = sorted({str(x.get("disposition", "")) for x in rows})
    return [
        r.received[:19],
        r.domain,
        r.org_name,
        r.report_id,
        _period(r.begin, r.end),
        str(total),
        str(passed),
        str(total - passed),
        ", ".join(disp),
    ]


def _period(begin: int | str, end: int | str) -> str:
    def fmt(v: int | str) -> str:
        if isinstance(v, int):
            return datetime.fromtimestamp(v, UTC).strftime("%Y-%m-%d %H:%M")
        return str(v)[:16].replace("T", " ")

    return f"{fmt(begin)} – {fmt(end)}"


def _tls_row(r: StoredReport) -> list[Child]:
    policies = r.data.get("policies") or []
    ok = sum(int(p.get("summary", {}).get("total-successful-session-count", 0)) for p in policies)
    bad = sum(int(p.get("summary", {}).get("total-failure-session-count", 0)) for p in policies)
    kinds = sorted({str(p.get("policy", {}).get("policy-type", "")) for p in policies})
    return [
        r.received[:19],
        r.domain,
        r.org_name,
        r.report_id,
        _period(r.begin, r.end),
        ", ".join(kinds),
        str(ok),
        str(bad),
    ]


async def reports(site: AdminSite, request: Request, session: Session) -> Response:
    db = ReportDB.in_data_dir(site.env.config.data_dir)
    dmarc, tls = await asyncio.gather(
        asyncio.to_thread(db.dmarc_reports), asyncio.to_thread(db.tlsrpt_reports)
    )
    body: list[Child] = [
        el("h2", "DMARC aggregate reports received"),
        el(
            "p",
            "What other mail servers saw of mail claiming to be from our domains "
            "(RFC 7489 §7.2). Most recent first.",
        ),
        table(
            [
                "Received",
                "Domain",
                "From",
                "Report",
                "Period",
                "Messages",
                "Passed",
                "Failed",
                "Disposition",
            ],
            [_dmarc_row(r) for r in reversed(dmarc[-SHOW:])],
            empty="No DMARC reports received.",
        ),
        el("h2", "TLS reports received"),
        el("p", "How other mail servers fared connecting to ours with TLS (RFC 8460)."),
        table(
            [
                "Received",
                "Domains",
                "From",
                "Report",
                "Period",
                "Policies",
                "Sessions ok",
                "Sessions failed",
            ],
            [_tls_row(r) for r in reversed(tls[-SHOW:])],
            empty="No TLS reports received.",
        ),
    ]
    return site.show(session, "Reports", body)
