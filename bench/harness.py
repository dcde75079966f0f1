"""The benchmark: the same loads against our server and the classic stack, in one run.

Figures (each for ours and theirs, and the ratio ours/theirs):
(a) durable SMTP delivery, messages/s, at 1, 10 and 50 connections, 4 KiB and 64 KiB messages;
(b) IMAP mixed load (login, select, fetch headers and bodies, store, append, expunge, idle),
    operations/s, with 1, 10 and 50 clients;
(c) memory per idle IMAP connection and per open account (PSS delta of the server's processes);
(d) a big mailbox (100,000 messages by default): SELECT, FETCH of 1,000 ENVELOPEs, full-text
    SEARCH BODY;
(e) seconds from start to accepting SMTP and IMAP connections.
Plus the generator's own ceiling against a server that does no work (bench.nullserver).
"""

from __future__ import annotations

import asyncio
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Protocol

from bench import loadgen
from bench.classic import Classic, classic_missing
from bench.mail import RARE_EVERY, RARE_WORD
from bench.ours import DOMAIN, REPO, Ours, free_port
from bench.procstat import busy_seconds, cpu_seconds, pss_bytes, wait_port

__all__ = ["Settings", "main", "run"]

PASSWORD = "bench-password-1"  # noqa: S105 (the accounts of a throwaway benchmark)


class Target(Protocol):
    name: str
    acks_are_durable: bool
    smtp_port: int
    imap_port: int

    def start(self, timeout: float = 60) -> float: ...
    def stop(self) -> None: ...
    def pids(self) -> list[int]: ...
    def delivered(self, user: str) -> int | None: ...


@dataclass
class Settings:
    quick: bool = False
    seconds: float = 8.0  # per load cell
    smtp_connections: list[int] = field(default_factory=lambda: [1, 10, 50])
    smtp_sizes: list[int] = field(default_factory=lambda: [4096, 65536])
    imap_clients: list[int] = field(default_factory=lambda: [1, 10, 50])
    imap_messages: int = 100  # per account of the IMAP load
    idle_connections: int = 100
    open_accounts: int = 50
    big: int = 100_000
    big_size: int = 2048
    start_runs: int = 3
    max_per_cell: int = 1_000_000
    theirs: bool = True
    dovecot_fsync: str = "always"
    # fts-xapian for Dovecot: off by default, its indexing of 100,000 messages alone takes
    # longer than 12 minutes on 2 cores (seen here), past the time a full run should take
    dovecot_fts: bool = False
    output: Path = REPO / "bench" / "results.json"

    @classmethod
    def quick_settings(cls) -> Settings:
        return cls(
            quick=True,
            seconds=0.5,
            smtp_connections=[1, 5],
            imap_clients=[1, 5],
            imap_messages=20,
            idle_connections=5,
            open_accounts=3,
            big=300,
            start_runs=1,
        )


@dataclass
class Figure:
    key: str
    label: str
    unit: str
    better: str  # "higher" or "lower"
    ours: float | None = None
    theirs: float | None = None

    @property
    def ratio(self) -> float | None:
        if self.ours is None or self.theirs is None or self.theirs == 0:
            return None
        return self.ours / self.theirs


@dataclass
class Report:
    settings: Settings
    figures: dict[str, Figure] = field(default_factory=dict)
    details: dict[str, dict[str, Any]] = field(default_factory=lambda: {"ours": {}, "theirs": {}})
    generator: dict[str, Any] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)
    setup: dict[str, Any] = field(default_factory=dict)

    def put(self, side: str, key: str, label: str, unit: str, better: str, value: float) -> None:
        fig = self.figures.setdefault(key, Figure(key, label, unit, better))
        setattr(fig, side, value)


def log(msg: str) -> None:
    print(f"[bench {time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


def accounts_for(s: Settings) -> tuple[list[str], list[str], list[str], list[str]]:
    sinks = [f"sink{i}" for i in range(1, len(s.smtp_connections) * len(s.smtp_sizes) + 1)]
    imap_users = [f"u{i}" for i in range(1, max(s.imap_clients) + 1)]
    open_users = [f"m{i}" for i in range(1, s.open_accounts + 1)]
    return sinks, imap_users, open_users, ["big", "idle"]


def addr(name: str) -> str:
    return f"{name}@{DOMAIN}"


# (e) start


def measure_start(t: Target, s: Settings, r: Report) -> None:
    times = []
    for i in range(s.start_runs):
        if i:
            t.stop()
        times.append(t.start())
    r.details[t.name]["start_seconds"] = times
    r.put(
        t.name, "start", "(e) start to accepting SMTP+IMAP", "s", "lower", statistics.median(times)
    )


# (a) SMTP


def measure_smtp(t: Target, s: Settings, r: Report, sinks: list[str]) -> None:
    cell = 0
    for size in s.smtp_sizes:
        for conns in s.smtp_connections:
            rcpt = addr(sinks[cell])
            cell += 1
            cpu0, busy0 = cpu_seconds(t.pids()), busy_seconds()
            res = asyncio.run(
                loadgen.run_smtp(
                    t.smtp_port,
                    rcpt,
                    connections=conns,
                    size=size,
                    seconds=s.seconds,
                    max_messages=s.max_per_cell,
                    first_source=1000 * cell,
                )
            )
            elapsed = res.elapsed
            if not t.acks_are_durable:
                # Postfix's 250 means queued: the message counts once Dovecot has stored it.
                deadline = time.monotonic() + max(120.0, 20 * s.seconds)
                while (t.delivered(rcpt) or 0) < res.done and time.monotonic() < deadline:
                    time.sleep(0.01)
                got = t.delivered(rcpt) or 0
                if got < res.done:
                    raise RuntimeError(f"{t.name}: only {got} of {res.done} messages delivered")
                elapsed = time.monotonic() - res.started
            server_cpu = cpu_seconds(t.pids()) - cpu0
            other_cpu = busy_seconds() - busy0 - server_cpu - res.gen_cpu
            rate = res.done / elapsed
            kib = size // 1024
            key = f"smtp_{kib}k_{conns}"
            r.put(
                t.name,
                key,
                f"(a) SMTP durable, {kib} KiB, {conns} conn",
                "msg/s",
                "higher",
                rate,
            )
            r.details[t.name][key] = {
                "messages": res.done,
                "seconds": elapsed,
                "generator_cpu_pct": 100 * res.gen_cpu / elapsed,
                "server_cpu_pct": 100 * server_cpu / elapsed,
                "other_cpu_pct": 100 * max(0.0, other_cpu) / elapsed,
            }
            log(f"{t.name} {key}: {rate:.1f} msg/s ({res.done} in {elapsed:.2f}s)")


# (b) IMAP


def measure_imap(t: Target, s: Settings, r: Report, users: list[str]) -> None:
    for clients in s.imap_clients:
        cpu0, busy0 = cpu_seconds(t.pids()), busy_seconds()
        res = asyncio.run(
            loadgen.run_imap_mixed(
                t.imap_port,
                [addr(u) for u in users],
                PASSWORD,
                clients=clients,
                seconds=s.seconds,
                max_ops=s.max_per_cell,
            )
        )
        server_cpu = cpu_seconds(t.pids()) - cpu0
        other_cpu = busy_seconds() - busy0 - server_cpu - res.gen_cpu
        key = f"imap_{clients}"
        r.put(t.name, key, f"(b) IMAP mixed, {clients} clients", "ops/s", "higher", res.rate)
        r.details[t.name][key] = {
            "operations": res.done,
            "by_kind": res.per_kind,
            "seconds": res.elapsed,
            "generator_cpu_pct": 100 * res.gen_cpu / res.elapsed,
            "server_cpu_pct": 100 * server_cpu / res.elapsed,
            "other_cpu_pct": 100 * max(0.0, other_cpu) / res.elapsed,
        }
        log(f"{t.name} {key}: {res.rate:.1f} ops/s ({res.done} in {res.elapsed:.2f}s)")


# (c) memory


async def _hold_idle(
    port: int, users: list[str], first_source: int, measure: Callable[[], int]
) -> tuple[int, int]:
    """Open one connection per user (logged in, INBOX selected, in IDLE); PSS before and after."""
    before = measure()
    sem = asyncio.Semaphore(8)
    clients: list[loadgen.ImapClient] = []

    async def one(k: int, user: str) -> None:
        async with sem:
            c = await loadgen.ImapClient.connect(port, loadgen.source_ip(first_source + k))
            clients.append(c)
            await c.login(user, PASSWORD)
            await c.select()
            await c.start_idle()

    try:
        await asyncio.wait_for(
            asyncio.gather(*(one(k, u) for k, u in enumerate(users))), 120 + len(users)
        )
        await asyncio.sleep(1.0)  # let login processes and buffers settle
        after = measure()
    finally:
        for c in clients:
            await c.close()
    return before, after


def measure_memory(
    t: Target, r: Report, s: Settings, open_users: list[str], mem_pids: Callable[[], list[int]]
) -> None:
    port = t.imap_port

    def measure() -> int:
        return pss_bytes(mem_pids())

    # warm up: the idle account open and one session done, so the delta is per connection
    asyncio.run(_hold_idle(port, [addr("idle")], 5000, measure))
    time.sleep(0.5)
    n = s.idle_connections
    before, after = asyncio.run(_hold_idle(port, [addr("idle")] * n, 6000, measure))
    per_conn = (after - before) / n
    r.put(t.name, "mem_idle_conn", "(c) memory per idle IMAP conn", "KiB", "lower", per_conn / 1024)
    time.sleep(1.0)
    users = [addr(u) for u in open_users]
    before2, after2 = asyncio.run(_hold_idle(port, users, 7000, measure))
    per_acc = (after2 - before2) / len(users)
    label = "(c) memory per open account+conn"
    r.put(t.name, "mem_open_account", label, "KiB", "lower", per_acc / 1024)
    r.details[t.name]["memory"] = {
        "idle_connections": n,
        "pss_before": before,
        "pss_after": after,
        "open_accounts": len(users),
        "pss_before_accounts": before2,
        "pss_after_accounts": after2,
    }
    log(f"{t.name} memory: {per_conn / 1024:.1f} KiB/conn, {per_acc / 1024:.1f} KiB/account")


# (d) big mailbox


async def _big(port: int, n: int) -> dict[str, list[float]]:
    out: dict[str, list[float]] = {"select": [], "fetch": [], "search": [], "hits": []}
    for _ in range(3):
        c = await loadgen.ImapClient.connect(port, loadgen.source_ip(9000))
        try:
            await c.login(addr("big"), PASSWORD)
            t0 = time.perf_counter()
            exists = await c.select()
            out["select"].append(time.perf_counter() - t0)
            if exists != n:
                raise loadgen.ProtocolError(f"big mailbox has {exists} messages, not {n}")
            lo = max(1, n - 999)
            t0 = time.perf_counter()
            resp = await c.cmd(f"FETCH {lo}:{n} (ENVELOPE)")
            out["fetch"].append(time.perf_counter() - t0)
            if resp.count(b" FETCH (") != n - lo + 1:
                raise loadgen.ProtocolError("FETCH ENVELOPE returned too few messages")
            t0 = time.perf_counter()
            resp = await c.cmd(f"SEARCH BODY {RARE_WORD}")
            out["search"].append(time.perf_counter() - t0)
            line = next(x for x in resp.split(b"\r\n") if x.startswith(b"* SEARCH"))
            out["hits"].append(len(line.split()) - 2)
            await c.cmd("LOGOUT")
        finally:
            await c.close()
    return out


def measure_big(t: Target, s: Settings, r: Report) -> None:
    out = asyncio.run(_big(t.imap_port, s.big))
    expected = len([i for i in range(1, s.big + 1) if i % RARE_EVERY == 1])
    if any(h != expected for h in out["hits"]):
        raise RuntimeError(f"{t.name}: SEARCH found {out['hits']}, expected {expected}")
    n = f"{s.big:,}"
    for key, label in (
        ("select", f"(d) SELECT of {n} messages"),
        ("fetch", "(d) FETCH 1,000 ENVELOPE"),
        ("search", f"(d) SEARCH BODY in {n}"),
    ):
        r.put(t.name, f"big_{key}_first", f"{label}, first", "ms", "lower", out[key][0] * 1000)
        r.put(
            t.name,
            f"big_{key}",
            f"{label}, again",
            "ms",
            "lower",
            statistics.median(out[key][1:]) * 1000,
        )
    r.details[t.name]["big"] = out
    log(f"{t.name} big mailbox: {out}")


# the generator's ceiling


def measure_generator(s: Settings, r: Report) -> None:
    smtp_port, imap_port = free_port(), free_port()
    proc = subprocess.Popen(
        [sys.executable, "-m", "bench.nullserver", str(smtp_port), str(imap_port)], cwd=REPO
    )
    try:
        wait_port(smtp_port, 20)
        wait_port(imap_port, 20)
        conns = max(s.smtp_connections)
        size = min(s.smtp_sizes)
        res = asyncio.run(
            loadgen.run_smtp(
                smtp_port,
                addr("x"),
                connections=conns,
                size=size,
                seconds=s.seconds,
                max_messages=s.max_per_cell,
            )
        )
        clients = max(s.imap_clients)
        res2 = asyncio.run(
            loadgen.run_imap_mixed(
                imap_port,
                [addr(f"u{i}") for i in range(clients)],
                PASSWORD,
                clients=clients,
                seconds=s.seconds,
                max_ops=s.max_per_cell,
            )
        )
    finally:
        proc.terminate()
        proc.wait(10)
    r.generator = {
        f"smtp_{size // 1024}k_{conns}_msgs_per_s": res.rate,
        "smtp_generator_cpu_pct": 100 * res.gen_cpu / res.elapsed,
        f"imap_{clients}_ops_per_s": res2.rate,
        "imap_generator_cpu_pct": 100 * res2.gen_cpu / res2.elapsed,
    }
    log(f"generator ceiling against a null server: {r.generator}")


# the run


def run(s: Settings) -> Report:
    r = Report(s)
    problems = classic_missing() if s.theirs else []
    if problems:
        raise SystemExit("bench: the classic stack cannot run: " + "; ".join(problems))
    sinks, imap_users, open_users, extra = accounts_for(s)
    accounts = sinks + imap_users + open_users + extra
    base = Path(tempfile.mkdtemp(prefix="mox-bench-", dir="/var/tmp"))
    base.chmod(0o755)
    ours = Ours(base / "ours", accounts, PASSWORD)
    theirs: Classic | None = None
    try:
        log(f"populating ours: {s.big} messages in big, {s.imap_messages} per IMAP account")
        t0 = time.monotonic()
        counts = {"big": s.big, **dict.fromkeys(imap_users, s.imap_messages)}
        pop = ours.populate(s.big_size, counts)
        if s.theirs:
            theirs = Classic(
                base / "classic", accounts, PASSWORD, fsync=s.dovecot_fsync, fts=s.dovecot_fts
            )
            r.notes.extend(classic_notes(theirs))
            t1 = time.monotonic()
            theirs.start()
            for u in imap_users:
                theirs.populate(addr(u), s.imap_messages, s.big_size)
            theirs.populate(addr("big"), s.big, s.big_size)
            theirs.stop()
            r.setup["theirs_populate_seconds"] = time.monotonic() - t1
            log(f"populated theirs in {r.setup['theirs_populate_seconds']:.1f}s")
        if pop.wait(3600) != 0:
            raise RuntimeError("populating our store failed")
        r.setup["ours_populate_seconds"] = time.monotonic() - t0
        log(f"populated ours in {r.setup['ours_populate_seconds']:.1f}s")
        targets: list[tuple[Target, Callable[[], list[int]]]] = [(ours, ours.pids)]
        if theirs is not None:
            targets.insert(0, (theirs, theirs.dovecot_pids))
        for t, mem_pids in targets:
            log(f"measuring {t.name}")
            try:
                measure_start(t, s, r)
                if isinstance(t, Ours):
                    r.setup["ours_event_loop"] = t.event_loop()
                measure_memory(t, r, s, open_users, mem_pids)
                measure_smtp(t, s, r, sinks)
                measure_imap(t, s, r, imap_users)
                measure_big(t, s, r)
            finally:
                t.stop()
        measure_generator(s, r)
    finally:
        ours.close()
        if theirs is not None:
            theirs.close()
        if not os.environ.get("MOX_BENCH_KEEP"):
            subprocess.run(["rm", "-rf", str(base)], check=False)
    r.notes.extend(method_notes(s))
    return r


def classic_notes(c: Classic) -> list[str]:
    return [
        f"Dovecot mail_fsync = {c.fsync}: ours fsyncs file, directory and index before its ack; "
        "Dovecot's default 'optimized' skips some of those, 'always' is the like-for-like choice.",
        f"Dovecot full-text search: {c.fts}; mail in Maildir; passwords ARGON2ID (ours: scrypt).",
        "Postfix->Dovecot: a message counts when Dovecot has stored it (files in the Maildir "
        "polled every 10 ms after the load), not at Postfix's 250, so queueing does not flatter.",
        "Theirs' big mailbox: Maildir files written directly, then `doveadm force-resync`"
        + (" and `doveadm index` (xapian)" if c.xapian else "")
        + "; ours: the store API (Account.deliver) with fsync skipped in set-up.",
    ]


def method_notes(s: Settings) -> list[str]:
    return [
        f"Each load cell runs {s.seconds:g}s (bounded by count and time) on 2 shared cores: the "
        "generator, the server(s) and for theirs Postfix+Dovecot processes compete for them.",
        "Ours receives on its port-25 service with SPF/DKIM/DMARC/iprev checks against a "
        "loopback DNS stub; Postfix runs with its defaults (no such checks). No TLS on either.",
        "Memory: PSS of the IMAP server's processes (ours: one process; theirs: the Dovecot "
        "tree) before and after N connections logged in, INBOX selected, in IDLE, divided by N.",
        "(d) 'first' is the first command after a restart; 'again' the median of two repeats "
        "on new connections.",
        "(e) ours starts from the source tree with its bytecode compiled first (compileall), as "
        "an installed package has it.",
    ]


def render(r: Report) -> str:
    rows = [("figure", "unit", "ours", "theirs", "ours/theirs", "better")]
    for f in r.figures.values():
        rows.append(
            (
                f.label,
                f.unit,
                _num(f.ours),
                _num(f.theirs),
                "-" if f.ratio is None else f"{f.ratio:.2f}",
                f.better,
            )
        )
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    lines = []
    for n, row in enumerate(rows):
        lines.append(
            "  ".join(
                cell.ljust(w) if i == 0 else cell.rjust(w)
                for i, (cell, w) in enumerate(zip(row, widths, strict=True))
            )
        )
        if n == 0:
            lines.append("-" * len(lines[0]))
    lines.append("")
    lines.append("Load generator (is it the bottleneck?):")
    for side in ("ours", "theirs"):
        for key, d in r.details[side].items():
            if isinstance(d, dict) and "generator_cpu_pct" in d:
                lines.append(
                    f"  {side:6} {key:16} generator CPU {d['generator_cpu_pct']:5.1f}%  "
                    f"server CPU {d['server_cpu_pct']:5.1f}%  "
                    f"other processes {d['other_cpu_pct']:5.1f}% (100% = one core)"
                )
    for key, value in r.generator.items():
        lines.append(f"  null server: {key} = {value:.1f}")
    lines.append("")
    lines.extend(f"- {n}" for n in r.notes)
    return "\n".join(lines)


def _num(v: float | None) -> str:
    if v is None:
        return "-"
    if v >= 100:
        return f"{v:,.0f}"
    return f"{v:.2f}" if v < 10 else f"{v:.1f}"


def to_json(r: Report) -> dict[str, Any]:
    settings = asdict(r.settings)
    settings["output"] = str(settings["output"])
    return {
        "machine": {
            "cpus": os.cpu_count(),
            "python": platform.python_version(),
            "platform": platform.platform(),
        },
        "settings": settings,
        "figures": [{**asdict(f), "ratio": f.ratio, "unit": f.unit} for f in r.figures.values()],
        "details": r.details,
        "generator": r.generator,
        "setup": r.setup,
        "loadavg_at_end": os.getloadavg(),
        "notes": r.notes,
    }


def main(argv: list[str] | None = None) -> int:
    import argparse

    p = argparse.ArgumentParser(prog="python -m bench", description=__doc__.splitlines()[0])
    p.add_argument("--quick", action="store_true", help="tiny sizes: a smoke run of seconds")
    p.add_argument("--ours-only", action="store_true", help="skip Postfix and Dovecot")
    p.add_argument("--output", "-o", type=Path, help="JSON file (default bench/results.json)")
    p.add_argument("--seconds", type=float, help="seconds per load cell")
    p.add_argument("--big", type=int, help="messages in the big mailbox")
    p.add_argument("--idle-connections", type=int, help="connections for idle memory")
    p.add_argument(
        "--dovecot-fsync", choices=["always", "optimized", "never"], help="Dovecot mail_fsync"
    )
    p.add_argument(
        "--dovecot-fts",
        action="store_true",
        help="Dovecot with fts-xapian (index against index; indexing 100k messages takes >12 min)",
    )
    a = p.parse_args(argv)
    s = Settings.quick_settings() if a.quick else Settings()
    if a.ours_only:
        s.theirs = False
    if a.output is not None:
        s.output = a.output
    if a.seconds is not None:
        s.seconds = a.seconds
    if a.big is not None:
        s.big = a.big
    if a.idle_connections is not None:
        s.idle_connections = a.idle_connections
    if a.dovecot_fts:
        s.dovecot_fts = True
    if a.dovecot_fsync is not None:
        s.dovecot_fsync = a.dovecot_fsync
    t0 = time.monotonic()
    report = run(s)
    print(render(report))
    data = to_json(report)
    data["total_seconds"] = time.monotonic() - t0
    s.output.parent.mkdir(parents=True, exist_ok=True)
    s.output.write_text(json.dumps(data, indent=2) + "\n")
    print(f"\nJSON written to {s.output} ({data['total_seconds']:.0f}s in all)")
    return 0
