"""Storage for reports: incoming DMARC and TLS reports, DMARC evaluations, outgoing DMARC reports.

One SQLite database (`reports.db` in the data directory, WAL), apart from the account stores, as
mox keeps `dmarcrpt.db`, `dmarceval.db` and `tlsrpt.db` apart from accounts. Rows hold the parsed
report as JSON plus the columns the command line lists by. Writes are small and rare, so every
call opens its own connection: the server and `mox dmarc reports` can use it at the same time.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from mox.sqlitefile import SqliteFile

__all__ = ["ReportDB", "StoredReport"]

_SCHEMA = """
CREATE TABLE IF NOT EXISTS dmarc_reports (
  id INTEGER PRIMARY KEY,
  received TEXT NOT NULL,
  domain TEXT NOT NULL,
  org_name TEXT NOT NULL,
  report_id TEXT NOT NULL,
  begin INTEGER NOT NULL,
  end INTEGER NOT NULL,
  data TEXT NOT NULL,
  UNIQUE (org_name, report_id, domain)
);
CREATE TABLE IF NOT EXISTS tlsrpt_reports (
  id INTEGER PRIMARY KEY,
  received TEXT NOT NULL,
  domain TEXT NOT NULL,
  org_name TEXT NOT NULL,
  report_id TEXT NOT NULL,
  begin TEXT NOT NULL,
  end TEXT NOT NULL,
  data TEXT NOT NULL,
  UNIQUE (org_name, report_id)
);
CREATE TABLE IF NOT EXISTS dmarc_evaluations (
  id INTEGER PRIMARY KEY,
  policy_domain TEXT NOT NULL,
  evaluated INTEGER NOT NULL,
  data TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS dmarc_evaluations_domain ON dmarc_evaluations (policy_domain);
CREATE TABLE IF NOT EXISTS dmarc_outgoing (
  id INTEGER PRIMARY KEY,
  created TEXT NOT NULL,
  policy_domain TEXT NOT NULL,
  report_id TEXT NOT NULL UNIQUE,
  begin INTEGER NOT NULL,
  end INTEGER NOT NULL,
  recipients TEXT NOT NULL,
  message BLOB NOT NULL,
  status TEXT NOT NULL
);
"""


@dataclass(frozen=True, slots=True)
class StoredReport:
    id: int
    received: str
    domain: str
    org_name: str
    report_id: str
    begin: int | str
    end: int | str
    data: dict[str, Any]


class ReportDB(SqliteFile):
    SCHEMA = _SCHEMA

    @classmethod
    def in_data_dir(cls, data_dir: Path) -> ReportDB:
        return cls(data_dir / "reports.db")

    # --- incoming reports ---

    def add_dmarc_report(
        self,
        received: str,
        domain: str,
        org_name: str,
        report_id: str,
        begin: int,
        end: int,
        data: dict[str, Any],
    ) -> int | None:
        """Store a parsed aggregate report; None when the same report was stored before."""
        with self._conn() as conn:
            cur = conn.execute(
                "INSERT OR IGNORE INTO dmarc_reports"
                " (received, domain, org_name, report_id, begin, end, data)"
                " VALUES (?, ?, ?, ?, ?, ?, ?)",
                (received, domain, org_name, report_id, begin, end, json.dumps(data)),
            )
            return cur.lastrowid if cur.rowcount else None

    def dmarc_reports(self, domain: str | None = None) -> list[StoredReport]:
        return self._reports("dmarc_reports", domain)

    def add_tlsrpt_report(
        self,
        received: str,
        domain: str,
        org_name: str,
        report_id: str,
        begin: str,
        end: str,
        data: dict[str, Any],
    ) -> int | None:
        with self._conn() as conn:
            cur = conn.execute(
                "INSERT OR IGNORE INTO tlsrpt_reports"
                " (received, domain, org_name, report_id, begin, end, data)"
                " VALUES (?, ?, ?, ?, ?, ?, ?)",
                (received, domain, org_name, report_id, begin, end, json.dumps(data)),
            )
            return cur.lastrowid if cur.rowcount else None

    def tlsrpt_reports(self, domain: str | None = None) -> list[StoredReport]:
        return self._reports("tlsrpt_reports", domain)

    def _reports(self, table: str, domain: str | None) -> list[StoredReport]:
        query = f"SELECT id, received, domain, org_name, report_id, begin, end, data FROM {table}"  # noqa: S608 (table is ours)
        args: tuple[str, ...] = ()
        if domain is not None:
            query += " WHERE domain = ?"
            args = (domain,)
        with self._conn() as conn:
            rows = conn.execute(query + " ORDER BY id", args).fetchall()
        return [
            StoredReport(r[0], r[1], r[2], r[3], r[4], r[5], r[6], json.loads(r[7])) for r in rows
        ]

    # --- evaluations and outgoing DMARC reports ---

    def add_evaluation(self, policy_domain: str, evaluated: int, data: dict[str, Any]) -> None:
        with self._conn() as conn:
            conn.execute(
                "INSERT INTO dmarc_evaluations (policy_domain, evaluated, data) VALUES (?, ?, ?)",
                (policy_domain, evaluated, json.dumps(data)),
            )

    def evaluations(self) -> list[tuple[int, str, int, dict[str, Any]]]:
        with self._conn() as conn:
            rows = conn.execute(
                "SELECT id, policy_domain, evaluated, data FROM dmarc_evaluations ORDER BY id"
            ).fetchall()
        return [(r[0], r[1], r[2], json.loads(r[3])) for r in rows]

    def add_outgoing(
        self,
        created: str,
        policy_domain: str,
        report_id: str,
        begin: int,
        end: int,
        recipients: list[str],
        message: bytes,
        status: str,
        evaluation_ids: list[int],
    ) -> None:
        """Store a built report and drop the evaluations it covers, in one transaction."""
        with self._conn() as conn:
            conn.execute(
                "INSERT INTO dmarc_outgoing (created, policy_domain, report_id, begin, end,"
                " recipients, message, status) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                (
                    created,
                    policy_domain,
                    report_id,
                    begin,
                    end,
                    json.dumps(recipients),
                    message,
                    status,
                ),
            )
            conn.executemany(
                "DELETE FROM dmarc_evaluations WHERE id = ?", [(i,) for i in evaluation_ids]
            )

    def set_outgoing_status(self, report_id: int, status: str) -> None:
        with self._conn() as conn:
            conn.execute("UPDATE dmarc_outgoing SET status = ? WHERE id = ?", (status, report_id))

    def outgoing(self) -> list[dict[str, Any]]:
        with self._conn() as conn:
            rows = conn.execute(
                "SELECT id, created, policy_domain, report_id, begin, end, recipients, message,"
                " status FROM dmarc_outgoing ORDER BY id"
            ).fetchall()
        keys = (
            "id",
            "created",
            "policy_domain",
            "report_id",
            "begin",
            "end",
            "recipients",
            "message",
            "status",
        )
        out = []
        for row in rows:
            item = dict(zip(keys, row, strict=True))
            item["recipients"] = json.loads(item["recipients"])
            out.append(item)
        return out
