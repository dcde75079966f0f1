"""`mox dns zone` (the records the config implies, as a zone file) and `mox dnscheck`."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Annotated, Literal

import typer

from mox.cli.common import ConfigOption
from mox.config.load import ConfigError, load_config
from mox.dns.check import (
    CannotCheck,
    CheckOptions,
    Report,
    changes,
    render_changes,
    render_text,
    run_checks,
)
from mox.dns.expected import ExpectError, Facts, build_records, gather_facts
from mox.dns.resolver import DnsPythonResolver, parse_nameserver
from mox.dns.zone import render_zone

__all__ = ["app", "dnscheck"]

app = typer.Typer(help="DNS records for the config.", no_args_is_help=True)

Domains = Annotated[
    list[str] | None, typer.Argument(help="Mail domains (default: all in the config).")
]
CaaIssuer = Annotated[
    list[str] | None,
    typer.Option(
        "--caa-issuer",
        help="CA domain allowed to issue certificates (CAA, RFC 8659), e.g. letsencrypt.org. "
        "Default: the issuer_domain_name of the ACME providers the listeners use.",
    ),
]


def _facts(
    config: Path,
    domains: list[str] | None,
    *,
    dnssec: bool = False,
    caa_issuers: list[str] | None = None,
    acme_account_uri: str | None = None,
    fail_code: int = 1,
) -> Facts:
    try:
        loaded = load_config(config)
        return gather_facts(
            loaded,
            domains or (),
            dnssec=dnssec,
            caa_issuers=caa_issuers or (),
            acme_account_uri=acme_account_uri,
        )
    except ConfigError as exc:
        for line in exc.problems:
            typer.echo(line, err=True)
        raise typer.Exit(fail_code) from None
    except ExpectError as exc:
        typer.echo(f"{config}: {exc}", err=True)
        raise typer.Exit(fail_code) from None


@app.command("zone")
def zone(
    domains: Domains = None,
    config: ConfigOption = Path("mox.toml"),
    dnssec: Annotated[
        bool,
        typer.Option(
            "--dnssec", help="The host's zone is DNSSEC-signed: publish the DANE TLSA records."
        ),
    ] = False,
    full: Annotated[
        bool,
        typer.Option(
            "--full", help="A complete zone for one domain, with SOA and NS (for Knot, NSD, BIND)."
        ),
    ] = False,
    serial: Annotated[int, typer.Option(help="SOA serial for --full.")] = 1,
    caa_issuer: CaaIssuer = None,
    acme_account_uri: Annotated[
        str | None,
        typer.Option(help="ACME account URI, to restrict CAA to the account (RFC 8657)."),
    ] = None,
) -> None:
    """Print the DNS records the config implies as an annotated BIND zone file."""
    if full and len(domains or []) != 1:
        typer.echo("--full needs exactly one DOMAIN", err=True)
        raise typer.Exit(1)
    facts = _facts(
        config, domains, dnssec=dnssec, caa_issuers=caa_issuer, acme_account_uri=acme_account_uri
    )
    text = render_zone(
        build_records(facts),
        full_zone=(domains or [""])[0] if full else None,
        hostname=facts.hostname,
        serial=serial,
    )
    typer.echo(text, nl=False)


def dnscheck(
    domains: Domains = None,
    config: ConfigOption = Path("mox.toml"),
    resolver: Annotated[
        str | None,
        typer.Option(
            help="Validating resolver IP[:PORT] to ask (default: /etc/resolv.conf). Its DNSSEC "
            "answers are trusted when it is on loopback."
        ),
    ] = None,
    output_format: Annotated[
        Literal["text", "json"], typer.Option("--format", help="text or json.")
    ] = "text",
    since: Annotated[
        Path | None,
        typer.Option(help="JSON output of an earlier run: show what changed since then."),
    ] = None,
    section: Annotated[
        list[str] | None, typer.Option(help="Only these sections (e.g. SPF, DKIM); repeatable.")
    ] = None,
    quiet: Annotated[bool, typer.Option(help="Show only sections with problems.")] = False,
    smtp_port: Annotated[int, typer.Option(help="Port for the TLS check (SMTP).")] = 25,
    https_port: Annotated[int, typer.Option(help="Port for the MTA-STS policy fetch.")] = 443,
    connect_ip: Annotated[
        str | None,
        typer.Option(help="Connect to this IP for the TLS and MTA-STS checks (testing)."),
    ] = None,
    tls_ca: Annotated[
        Path | None,
        typer.Option(help="Verify certificates with this CA bundle instead of the system's."),
    ] = None,
    timeout: Annotated[float, typer.Option(help="Seconds for each DNS query/connection.")] = 10.0,
    caa_issuer: CaaIssuer = None,
) -> None:
    """Check that the published DNS matches the config: exit 0 no errors, 1 errors, 2 could not
    check."""
    facts = _facts(config, domains, caa_issuers=caa_issuer, fail_code=2)
    before: Report | None = None
    if since is not None:
        try:
            before = Report.loads(since.read_text())
        except (OSError, ValueError) as exc:
            typer.echo(f"cannot use --since {since}: {exc}", err=True)
            raise typer.Exit(2) from None
    try:
        if resolver is not None:
            ns = [parse_nameserver(resolver)]
            res = DnsPythonResolver(ns, timeout=timeout)
            name = f"{ns[0][0]}:{ns[0][1]}"
        else:
            res = DnsPythonResolver.from_system()
            name = ", ".join(f"{ip}:{port}" for ip, port in res.nameservers)
    except (ValueError, OSError) as exc:
        typer.echo(f"cannot use the resolver: {exc}", err=True)
        raise typer.Exit(2) from None
    options = CheckOptions(
        smtp_port=smtp_port,
        https_port=https_port,
        connect_ip=connect_ip,
        tls_ca=tls_ca,
        timeout=timeout,
    )
    try:
        report = asyncio.run(
            run_checks(facts, res, options, resolver_name=name, sections=section or ())
        )
    except CannotCheck as exc:
        typer.echo(f"dnscheck: {exc}", err=True)
        raise typer.Exit(2) from None
    diff = changes(before, report) if before is not None else None
    if output_format == "json":
        data = report.to_json()
        if diff is not None:
            data["changes"] = [c.to_json() for c in diff]
        typer.echo(json.dumps(data, indent=2, ensure_ascii=False))
    else:
        typer.echo(render_text(report, verbose=not quiet), nl=False)
        if diff is not None:
            typer.echo(render_changes(diff, str(since)), nl=False)
    raise typer.Exit(report.exit_code)
