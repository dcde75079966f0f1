"""`mox dnscheck`: the published DNS compared with what the config implies.

Sections (DNSSEC, IPRev, MX, TLS, DANE, SPF, DKIM, DMARC, TLSRPT, MTA-STS, SRV, Autoconfig, CAA) run
concurrently; each gives pass, warning or error findings, problems with the exact records to
publish. The checks are semantic, as mox's: SPF is evaluated for each of our IPs, the published DKIM
key is compared with our private key. Exit status 0 without errors, 1 with errors, 2 when the check
could not run (`CannotCheck`).
"""

from mox.dns.check.context import CheckOptions
from mox.dns.check.model import Finding, Report, Section, changes
from mox.dns.check.render import render_changes, render_text
from mox.dns.check.run import CannotCheck, run_checks

__all__ = [
    "CannotCheck",
    "CheckOptions",
    "Finding",
    "Report",
    "Section",
    "changes",
    "render_changes",
    "render_text",
    "run_checks",
]
