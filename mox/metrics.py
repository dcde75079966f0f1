"""Prometheus metrics (https://prometheus.io/docs/instrumenting/exposition_formats/), as mox's.

Counters and histograms live in one process-wide registry (`REGISTRY`) and are updated where things
happen: connections through `CountedLimiter` (wrapping the shared per-IP-class limiter, so it sees
every SMTP and IMAP connection and every refusal), SMTP transactions in the SMTP server, and
failed logins in the authenticator. Values that live in a database (the queue size) are read at
scrape time. `render(data_dir)` produces the text exposition served at /metrics.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from pathlib import Path

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from mox.ratelimit import ConnectionLimiter

__all__ = [
    "AUTH_FAILURES",
    "AUTH_SUCCESSES",
    "CONNECTIONS",
    "CONTENT_TYPE",
    "OPEN_CONNECTIONS",
    "REGISTRY",
    "SMTP_DATA_SECONDS",
    "SMTP_DELIVERIES",
    "CountedLimiter",
    "auth_result",
    "render",
    "smtp_transaction",
]

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"

REGISTRY = CollectorRegistry(auto_describe=True)

CONNECTIONS = Counter(
    "mox_connections",
    "Incoming connections by protocol (smtp, submission, submissions, imap, imaps) and result "
    "(accepted, or refused by the per-IP-class limits).",
    ["protocol", "result"],
    registry=REGISTRY,
)
OPEN_CONNECTIONS = Gauge(
    "mox_connections_open", "Connections open now, by protocol.", ["protocol"], registry=REGISTRY
)
SMTP_DELIVERIES = Counter(
    "mox_smtp_transactions",
    "Messages received over SMTP (after DATA or the last BDAT), by listener kind and result: "
    "accepted (2xx), tempfail (4xx) or rejected (5xx).",
    ["kind", "result"],
    registry=REGISTRY,
)
SMTP_DATA_SECONDS = Histogram(
    "mox_smtp_data_duration_seconds",
    "Time from the end of the message data to the reply (checks, delivery, fsync).",
    ["kind"],
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30),
    registry=REGISTRY,
)
AUTH_FAILURES = Counter(
    "mox_auth_failures",
    "Failed logins (wrong credentials, unknown user or throttled), by protocol.",
    ["protocol"],
    registry=REGISTRY,
)
AUTH_SUCCESSES = Counter(
    "mox_auth_successes", "Successful logins, by protocol.", ["protocol"], registry=REGISTRY
)


def smtp_transaction(kind: str, reply: str, seconds: float) -> None:
    """Count one SMTP message transaction by its final reply line, and time it."""
    result = {"2": "accepted", "4": "tempfail"}.get(reply[:1], "rejected")
    SMTP_DELIVERIES.labels(kind, result).inc()
    SMTP_DATA_SECONDS.labels(kind).observe(seconds)


def auth_result(protocol: str, ok: bool) -> None:
    (AUTH_SUCCESSES if ok else AUTH_FAILURES).labels(protocol).inc()


class CountedLimiter(ConnectionLimiter):
    """A view of a shared ConnectionLimiter for one protocol that counts what passes through.

    The limits stay those of the shared limiter (all listeners together, per IP class)."""

    def __init__(self, shared: ConnectionLimiter, protocol: str) -> None:  # no super(): a view
        self.shared = shared
        self.protocol = protocol

    def open(self, ip: str) -> bool:
        ok = self.shared.open(ip)
        CONNECTIONS.labels(self.protocol, "accepted" if ok else "refused").inc()
        if ok:
            OPEN_CONNECTIONS.labels(self.protocol).inc()
        return ok

    def close(self, ip: str) -> None:
        self.shared.close(ip)
        OPEN_CONNECTIONS.labels(self.protocol).dec()


class _DataCollector(Collector):
    """Values read from the data directory at scrape time."""

    def __init__(self, data_dir: Path) -> None:
        self.data_dir = data_dir

    def collect(self) -> Iterator[Metric]:
        queued = GaugeMetricFamily(
            "mox_queue_messages",
            "Messages in the outgoing queue (one per recipient), by state.",
            labels=["state"],
        )
        counts = {"queued": 0, "held": 0}
        db = self.data_dir / "queue" / "index.db"
        if db.is_file():
            conn = sqlite3.connect(f"file:{db}?mode=rw", uri=True)  # rw: never creates it
            try:
                rows = conn.execute("SELECT hold, count(*) FROM msgs GROUP BY hold").fetchall()
            except sqlite3.Error:
                rows = []
            finally:
                conn.close()
            for hold, n in rows:
                counts["held" if hold else "queued"] += int(n)
        for state, n in counts.items():
            queued.add_metric([state], n)
        yield queued


def render(data_dir: Path | None) -> bytes:
    """The metrics in the Prometheus text format."""
    out = generate_latest(REGISTRY)
    if data_dir is not None:
        scrape = CollectorRegistry(auto_describe=False)
        scrape.register(_DataCollector(data_dir))
        out += generate_latest(scrape)
    return out
