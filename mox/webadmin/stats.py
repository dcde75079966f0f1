"""Deliveries and junk decisions per day, from the account stores, and an inline SVG bar chart.

There is no separate per-day history: the stores already hold what is needed. Every message that
arrived over SMTP has delivery metadata (`meta.remote_ip`) and its arrival time
(`internal_date`); it counts as junk when it sits in the account's Rejects mailbox (refused by the
junk filter and kept), in the Junk mailbox, or carries the `$Junk` flag. Expunged rows that are
still in the table keep counting. Messages whose rows are gone (Rejects are cleaned up after 14
days) no longer count, so older days can show fewer junk decisions than were made: the chart is
a picture of the last 30 days of mail that is still (or recently) there. Each account is one
grouped SQL query over a read-only connection, so the work is bounded by the database, and the
result by the number of days.
"""

from __future__ import annotations

import sqlite3
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta

from mox.config.load import LoadedConfig
from mox.webaccount.html import Safe, el

__all__ = ["DayCount", "daily_counts", "svg_chart"]

DAYS = 30


@dataclass(slots=True)
class DayCount:
    day: date
    delivered: int = 0
    junk: int = 0


_QUERY = """
SELECT substr(m.internal_date, 1, 10) AS day,
       SUM(CASE WHEN mb.name IN (?, 'Junk') OR mb.special_use = '\\Junk'
                 OR m.flags LIKE '%"$junk"%' THEN 1 ELSE 0 END),
       COUNT(*)
FROM messages m JOIN mailboxes mb ON mb.id = m.mailbox_id
WHERE m.internal_date >= ? AND m.meta IS NOT NULL
  AND json_extract(m.meta, '$.remote_ip') IS NOT NULL
GROUP BY day
"""


def daily_counts(loaded: LoadedConfig, today: date | None = None) -> list[DayCount]:
    """The last DAYS days (UTC), oldest first, summed over all accounts."""
    today = today or datetime.now(UTC).date()
    days = [today - timedelta(days=DAYS - 1 - i) for i in range(DAYS)]
    by_day = {d.isoformat(): DayCount(d) for d in days}
    since = days[0].isoformat()
    for name, acc in loaded.config.accounts.items():
        path = loaded.data_dir / "accounts" / name / "index.db"
        if not path.is_file():
            continue
        try:
            conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=5)
        except sqlite3.Error:
            continue
        try:
            rows = conn.execute(_QUERY, (acc.rejects_mailbox, since)).fetchall()
        except sqlite3.Error:
            rows = []  # an account store from an older schema: nothing to count
        finally:
            conn.close()
        for day, junk, total in rows:
            count = by_day.get(day)
            if count is not None:
                count.junk += int(junk or 0)
                count.delivered += int(total or 0) - int(junk or 0)
    return [by_day[d.isoformat()] for d in days]


def svg_chart(counts: list[DayCount], width: int = 720, height: int = 220) -> Safe:
    """Stacked bars per day: delivered (bottom) and junk (top), with a y-axis maximum label and
    a date under every 5th day; every bar has a <title> with its numbers."""
    left, bottom, top = 40, 30, 10
    plot_h = height - bottom - top
    peak = max((c.delivered + c.junk for c in counts), default=0) or 1
    bar_w = (width - left - 10) / max(len(counts), 1)
    shapes: list[Safe] = [
        el("line", x1=str(left), y1=str(top), x2=str(left), y2=str(top + plot_h)),
        el("line", x1=str(left), y1=str(top + plot_h), x2=str(width - 10), y2=str(top + plot_h)),
        el("text", str(peak), x="4", y=str(top + 10)),
        el("text", "0", x="4", y=str(top + plot_h)),
    ]
    for i, c in enumerate(counts):
        x = left + i * bar_w + 1
        h_del = plot_h * c.delivered / peak
        h_junk = plot_h * c.junk / peak
        label = f"{c.day.isoformat()}: {c.delivered} delivered, {c.junk} junk"
        shapes.append(
            el(
                "g",
                el("title", label),
                el(
                    "rect",
                    class_="delivered",
                    x=f"{x:.1f}",
                    y=f"{top + plot_h - h_del:.1f}",
                    width=f"{bar_w - 2:.1f}",
                    height=f"{h_del:.1f}",
                ),
                el(
                    "rect",
                    class_="junk",
                    x=f"{x:.1f}",
                    y=f"{top + plot_h - h_del - h_junk:.1f}",
                    width=f"{bar_w - 2:.1f}",
                    height=f"{h_junk:.1f}",
                ),
                data_day=c.day.isoformat(),
                data_delivered=str(c.delivered),
                data_junk=str(c.junk),
            )
        )
        if i % 5 == 0:
            shapes.append(el("text", c.day.strftime("%m-%d"), x=f"{x:.1f}", y=str(height - 12)))
    return el(
        "svg",
        *shapes,
        xmlns="http://www.w3.org/2000/svg",
        class_="chart",
        width=str(width),
        height=str(height),
        viewBox=f"0 0 {width} {height}",
        role="img",
        aria_label="Deliveries and junk per day, last 30 days",
    )
