"""Import of a big mbox: time, peak memory, and resuming after a kill.

`python -m bench.import_big [--mib 1024]` writes an mbox of about that many MiB (text messages
of a few KiB and, every 25th one with a base64 attachment of 256 KiB to 2 MiB), then:

1. runs `mox import mbox` on it and kills it (SIGKILL) when about a third of the file is read;
2. runs the same command again, which skips what the first run imported and imports the rest;
3. checks that the mailbox holds every message exactly once (by Message-ID), with the flags
   the mbox gave (Status: RO → \\Seen), and prints the figures: messages, MiB, seconds,
   MiB/s, and the peak RSS of each run (`wait4`'s ru_maxrss), next to the peak RSS of
   importing a 1 MiB mbox, so the memory can be seen not to grow with the file.

Everything is in a temporary directory (`--keep` keeps it); nothing touches the network.
"""

from __future__ import annotations

import argparse
import base64
import json
import os
import random
import shutil
import signal
import sqlite3
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

MOX = [sys.executable, "-m", "mox"]
CONFIG = """\
hostname = "mail.example.test"
data_dir = "data"
postmaster = "alice"

[listeners.local]
ips = ["127.0.0.1"]

[domains."example.test"]

[accounts.alice]
domain = "example.test"

[accounts.alice.destinations."alice@example.test"]
"""
WORDS = [
    *("mail", "server", "import", "archive", "quarterly", "report", "meeting", "notes"),
    *("garden", "lists", "invoice", "travel", "project", "budget", "family", "photos"),
    *("weekend", "review", "draft", "release", "schedule", "thanks", "regards"),
]


def _message(i: int, rng: random.Random) -> bytes:
    seen = i % 3 != 0
    lines = [
        f"From sender{i % 97}@example.org Mon Nov  2 10:{i % 60:02d}:00 2026",
        f"From: Sender {i % 97} <sender{i % 97}@example.org>",
        "To: alice@example.test",
        f"Subject: {' '.join(rng.choices(WORDS, k=5))} #{i}",
        f"Message-ID: <big-{i}@example.org>",
        "Date: Mon, 2 Nov 2026 10:00:00 +0000",
        "MIME-Version: 1.0",
    ]
    if seen:
        lines.append("Status: RO")
    body = [" ".join(rng.choices(WORDS, k=12)) for _ in range(rng.randint(20, 120))]
    body.append("From the archive: a body line an mbox writer escapes")
    if i % 25 == 24:
        size = rng.randint(256, 2048) * 1024
        blob = base64.encodebytes(rng.randbytes(size)).decode()
        lines += [
            'Content-Type: multipart/mixed; boundary="b"',
            "",
            "--b",
            "Content-Type: text/plain",
            "",
            *body,
            "--b",
            'Content-Type: application/octet-stream; name="data.bin"',
            "Content-Transfer-Encoding: base64",
            "",
            blob.rstrip("\n"),
            "--b--",
        ]
    else:
        lines += ["Content-Type: text/plain", "", *body]
    text = "\n".join(lines) + "\n\n"
    # mboxrd: body lines starting with "From " (or ">From ") get one more ">".
    head, _, rest = text.partition("\n")
    rest = rest.replace("\nFrom ", "\n>From ")
    return (head + "\n" + rest).encode()


def write_mbox(path: Path, mib: int, seed: int = 1) -> int:
    """Write about `mib` MiB of messages; returns how many."""
    rng = random.Random(seed)
    target = mib * 1024 * 1024
    n = 0
    with path.open("wb") as f:
        while f.tell() < target:
            f.write(_message(n, rng))
            n += 1
    return n


def run_import(
    workdir: Path, mbox: Path, kill_at: float | None = None
) -> tuple[float, int, int, bool]:
    """(seconds, peak RSS KiB, exit status, killed) of one `mox import mbox` run; with
    `kill_at` (a fraction of the file), SIGKILL once the progress line passes it."""
    size = mbox.stat().st_size
    start = time.monotonic()
    proc = subprocess.Popen(
        [*MOX, "import", "mbox", "alice", "Import", str(mbox), "--config", "mox.toml"],
        cwd=workdir,
        stderr=subprocess.PIPE,
        stdout=subprocess.DEVNULL,
    )
    killed = False
    if kill_at is not None:
        # The CLI prints its final line only when stderr is no terminal; watch the store instead.
        db = workdir / "data" / "accounts" / "alice" / "index.db"
        deadline = time.monotonic() + 3600
        while proc.poll() is None and time.monotonic() < deadline:
            time.sleep(0.05)
            done = _imported_bytes(db)
            if done >= kill_at * size:
                proc.send_signal(signal.SIGKILL)
                killed = True
                break
    _, status, usage = os.wait4(proc.pid, 0)
    proc.returncode = os.waitstatus_to_exitcode(status)
    assert proc.stderr is not None  # noqa: S101 (PIPE)
    err = proc.stderr.read().decode(errors="replace")
    if not killed and proc.returncode != 0:
        raise SystemExit(f"mox import failed ({proc.returncode}): {err[-2000:]}")
    return time.monotonic() - start, usage.ru_maxrss, proc.returncode, killed


def _imported_bytes(db: Path) -> int:
    if not db.exists():
        return 0
    try:
        with sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=1) as conn:
            row = conn.execute("SELECT coalesce(sum(size), 0) FROM messages").fetchone()
            return int(row[0])
    except sqlite3.Error:
        return 0


def check_store(workdir: Path, expected: int) -> dict[str, Any]:
    db = workdir / "data" / "accounts" / "alice" / "index.db"
    with sqlite3.connect(f"file:{db}?mode=ro", uri=True) as conn:
        mb = conn.execute("SELECT id FROM mailboxes WHERE name = 'Import'").fetchone()[0]
        total, distinct_hashes = conn.execute(
            "SELECT count(*), count(DISTINCT json_extract(meta, '$.import_sha256')) "
            "FROM messages WHERE mailbox_id = ? AND expunged = 0",
            (mb,),
        ).fetchone()
        seen = conn.execute(
            "SELECT count(*) FROM messages WHERE mailbox_id = ? AND expunged = 0 "
            "AND instr(flags, '\"\\\\Seen\"') > 0",  # JSON: \\Seen
            (mb,),
        ).fetchone()[0]
    expected_seen = sum(1 for i in range(expected) if i % 3 != 0)
    return {
        "messages": total,
        "distinct": distinct_hashes,
        "seen": seen,
        "ok": total == expected and distinct_hashes == expected and seen == expected_seen,
    }


def _setup(workdir: Path) -> None:
    workdir.mkdir(parents=True, exist_ok=True)
    (workdir / "mox.toml").write_text(CONFIG)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--mib", type=int, default=1024, help="size of the mbox (default 1024)")
    ap.add_argument("--kill-at", type=float, default=0.33, help="fraction read before SIGKILL")
    ap.add_argument("--keep", action="store_true", help="keep the temporary directory")
    ap.add_argument("-o", "--output", help="write the figures as JSON to this file")
    args = ap.parse_args(argv)
    tmp = Path(tempfile.mkdtemp(prefix="mox-import-big-"))
    try:
        small_dir, big_dir = tmp / "small", tmp / "big"
        for d in (small_dir, big_dir):
            _setup(d)
        small = tmp / "small.mbox"
        n_small = write_mbox(small, 1, seed=2)
        t0 = time.monotonic()
        mbox = tmp / "big.mbox"
        n = write_mbox(mbox, args.mib)
        mib = mbox.stat().st_size / 1024 / 1024
        print(f"wrote {mib:.0f} MiB, {n} messages in {time.monotonic() - t0:.0f} s", flush=True)
        _, s_rss, _, _ = run_import(small_dir, small)
        k_secs, k_rss, _, killed = run_import(big_dir, mbox, kill_at=args.kill_at)
        partial = check_store(big_dir, n)["messages"]
        r_secs, r_rss, _, _ = run_import(big_dir, mbox)
        result = check_store(big_dir, n)
        figures = {
            "mbox_mib": round(mib, 1),
            "messages": n,
            "small_mbox_messages": n_small,
            "small_peak_rss_kib": s_rss,
            "killed_run_seconds": round(k_secs, 1),
            "killed": killed,
            "imported_before_kill": partial,
            "killed_run_peak_rss_kib": k_rss,
            "resumed_run_seconds": round(r_secs, 1),
            "resumed_run_peak_rss_kib": r_rss,
            "total_seconds": round(k_secs + r_secs, 1),
            "mib_per_second": round(mib / (k_secs + r_secs), 2),
            "store": result,
        }
        print(
            f"small mbox ({n_small} messages): peak RSS {s_rss / 1024:.0f} MiB\n"
            f"big mbox: {mib:.0f} MiB, {n} messages\n"
            f"  run 1: killed={killed} after {k_secs:.0f} s with {partial} imported, "
            f"peak RSS {k_rss / 1024:.0f} MiB\n"
            f"  run 2 (resumed): {r_secs:.0f} s, peak RSS {r_rss / 1024:.0f} MiB\n"
            f"  total {k_secs + r_secs:.0f} s, {mib / (k_secs + r_secs):.1f} MiB/s\n"
            f"  store: {result['messages']} messages, {result['distinct']} distinct, "
            f"{result['seen']} \\Seen: {'OK' if result['ok'] else 'MISMATCH'}"
        )
        if args.output:
            Path(args.output).write_text(json.dumps(figures, indent=2) + "\n")
        return 0 if result["ok"] and killed else 1
    finally:
        if args.keep:
            print(f"kept {tmp}")
        else:
            shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    raise SystemExit(main())
