"""`mox dmarc reports`: the DMARC aggregate reports that arrived at the report addresses."""

from __future__ import annotations

import datetime
import json
from pathlib import Path
from typing import Annotated

import typer

from mox.cli.common import ConfigOption, load_or_exit
from mox.reportdb import ReportDB

__all__ = ["app"]

app = typer.Typer(help="DMARC aggregate reports (RFC 7489 §7.2).", no_args_is_help=True)


def _date(ts: int | str) -> str:
    if isinstance(ts, str):
        return ts
    return datetime.datetime.fromtimestamp(ts, datetime.UTC).strftime("%Y-%m-%d %H:%M")


@app.command("reports")
def reports(
    domain: Annotated[
        str | None, typer.Option("--domain", help="Only reports about this domain.")
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the reports as JSON.")] = False,
    config: ConfigOption = Path("mox.toml"),
) -> None:
    """List the incoming DMARC aggregate reports, oldest first."""
    loaded = load_or_exit(config)
    db_path = loaded.data_dir / "reports.db"
    found = ReportDB(db_path).dmarc_reports(domain.lower() if domain else None)
    if as_json:
        typer.echo(json.dumps([{"id": r.id, "received": r.received, **r.data} for r in found]))
        return
    if not found:
        typer.echo("no DMARC reports")
        return
    typer.echo(f"{'id':>4}  {'domain':<24} {'reporter':<24} {'period (UTC)':<35} messages  fail")
    for r in found:
        rows = r.data.get("rows", [])
        total = sum(int(row["count"]) for row in rows)
        failed = sum(
            int(row["count"]) for row in rows if row["dkim"] != "pass" and row["spf"] != "pass"
        )
        period = f"{_date(r.begin)} - {_date(r.end)}"
        typer.echo(
            f"{r.id:>4}  {r.domain:<24} {r.org_name:<24} {period:<35} {total:>8}  {failed:>4}"
        )
        typer.echo(f"      report id {r.report_id}, received {r.received[:19]}")
