"""Profile our server under the SMTP and IMAP loads with py-spy: `python -m bench.profile`.

Starts `mox serve` as the benchmark does, attaches `py-spy record` to it while the load runs, and
prints per load the functions with the most samples: "self" (the function itself was running)
and "total" (the function was on the stack), as percentages of the samples. Needs root or
ptrace permission (CI and the benchmark machine run as root) and py-spy (`bench` dependency group).
"""

from __future__ import annotations

import argparse
import asyncio
import re
import shutil
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Callable, Coroutine
from pathlib import Path
from typing import Any

from bench import loadgen
from bench.ours import DOMAIN, Ours
from bench.procstat import cpu_seconds

PASSWORD = "bench-password-1"  # noqa: S105 (the accounts of a throwaway benchmark)
# frames on every stack (start-up, thread and event loop plumbing): left out of "total"
_PLUMBING: tuple[str, ...] = ("threading.py", "runpy", "typer/", "concurrent/futures")
_PLUMBING += (
    "asyncio/runners",
    "asyncio/base_events",
    "asyncio/events",
    "mox/__main__",
    "mox/cli/",
)
_FRAME = re.compile(r"^(.*) \((.*?)(?::\d+)?\)$")


def _func(frame: str) -> str:
    m = _FRAME.match(frame)
    if m is None:
        return frame
    path = m.group(2)
    for marker in ("site-packages/", "lib/python3.11/", "/work/main/"):
        if marker in path:
            path = path.split(marker, 1)[1]
    return f"{m.group(1)} ({path})"


def summarize(raw: Path, top: int) -> str:
    own: Counter[str] = Counter()
    total: Counter[str] = Counter()
    samples = 0
    for line in raw.read_text().splitlines():
        stack, _, count = line.rpartition(" ")
        if not stack or not count.isdigit():
            continue
        n = int(count)
        samples += n
        frames = [_func(f) for f in stack.split(";") if f]
        if not frames:
            continue
        own[frames[-1]] += n
        for f in set(frames):
            if not any(part in f for part in _PLUMBING):
                total[f] += n
    out = [f"{samples} samples", "", "self %  function"]
    out += [f"{100 * n / samples:6.1f}  {f}" for f, n in own.most_common(top)]
    out += ["", "total %  function"]
    out += [f"{100 * n / samples:7.1f}  {f}" for f, n in total.most_common(top)]
    return "\n".join(out)


def summarize_lines(raw: Path, top: int) -> str:
    """Self samples per function and line (where in a hot function the time goes)."""
    own: Counter[str] = Counter()
    samples = 0
    for line in raw.read_text().splitlines():
        stack, _, count = line.rpartition(" ")
        if not stack or not count.isdigit():
            continue
        samples += int(count)
        last = stack.split(";")[-1]
        for marker in ("site-packages/", "lib/python3.11/", "/work/main/"):
            if marker in last:
                head, _, tail = last.partition("(")
                last = head + "(" + tail.split(marker, 1)[-1]
        own[last] += int(count)
    out = ["self %  function (file:line)"]
    out += [f"{100 * n / max(samples, 1):6.1f}  {f}" for f, n in own.most_common(top)]
    return "\n".join(out)


def profile(
    pid: int,
    out: Path,
    seconds: float,
    load: Callable[[], Coroutine[Any, Any, loadgen.LoadResult]],
    *,
    gil: bool = False,
) -> tuple[loadgen.LoadResult, str]:
    spy = shutil.which("py-spy") or str(Path(sys.executable).parent / "py-spy")
    args = ["record", "--pid", str(pid), "--format", "raw", "--rate", "250", "--nonblocking"]
    if gil:
        args.append("--gil")  # only the thread holding the GIL: what bounds a Python server
    proc = subprocess.Popen(
        [spy, *args, "--duration", str(int(seconds) + 1), "--output", str(out)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    time.sleep(0.5)
    res = asyncio.run(load())
    _, err = proc.communicate(timeout=seconds + 60)
    if not out.exists():
        raise RuntimeError(f"py-spy wrote nothing: {err!r}")
    return res, err.decode(errors="replace")


def main() -> int:
    p = argparse.ArgumentParser(prog="python -m bench.profile", description=__doc__)
    p.add_argument("--seconds", type=float, default=15.0)
    p.add_argument("--top", type=int, default=25)
    p.add_argument("--keep", type=Path, help="directory for the raw py-spy files")
    p.add_argument("--only", choices=["smtp", "imap"], help="profile only this load")
    p.add_argument("--size", type=int, default=4096, help="SMTP message size in bytes")
    p.add_argument("--lines", action="store_true", help="self time per source line too")
    p.add_argument(
        "--gil", action="store_true", help="sample only the thread holding the GIL (py-spy --gil)"
    )
    a = p.parse_args()
    base = Path(tempfile.mkdtemp(prefix="mox-profile-", dir="/var/tmp"))
    users = [f"u{i}" for i in range(1, 11)]
    ours = Ours(base / "ours", ["sink1", *users], PASSWORD)
    keep = a.keep or base
    keep.mkdir(parents=True, exist_ok=True)
    try:
        if ours.populate(2048, dict.fromkeys(users, 100)).wait(600) != 0:
            raise RuntimeError("populate failed")
        ours.start()
        pid = ours.pids()[0]
        print(f"mox serve event loop: {ours.event_loop() or 'not logged'}")
        loads: list[tuple[str, Callable[[], Coroutine[Any, Any, loadgen.LoadResult]]]] = [
            (
                f"smtp: 50 connections, {a.size // 1024} KiB messages",
                lambda: loadgen.run_smtp(
                    ours.smtp_port,
                    f"sink1@{DOMAIN}",
                    connections=50,
                    size=a.size,
                    seconds=a.seconds,
                    max_messages=1_000_000,
                ),
            ),
            (
                "imap: mixed load, 10 clients",
                lambda: loadgen.run_imap_mixed(
                    ours.imap_port,
                    [f"{u}@{DOMAIN}" for u in users],
                    PASSWORD,
                    clients=10,
                    seconds=a.seconds,
                    max_ops=1_000_000,
                ),
            ),
        ]
        for i, (name, load) in enumerate(loads):
            if a.only is not None and not name.startswith(a.only):
                continue
            raw = keep / f"profile-{i}.txt"
            cpu0 = cpu_seconds([pid])
            res, _ = profile(pid, raw, a.seconds, load, gil=a.gil)
            cpu = cpu_seconds([pid]) - cpu0
            print(
                f"== {name}: {res.rate:.1f}/s ({res.done} in {res.elapsed:.1f}s), "
                f"server CPU {1000 * cpu / max(res.done, 1):.2f} ms per operation (profiled)"
            )
            print(summarize(raw, a.top))
            if a.lines:
                print()
                print(summarize_lines(raw, a.top))
            print()
    finally:
        ours.close()
        if a.keep is None:
            shutil.rmtree(base, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
