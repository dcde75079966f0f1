"""CPU time and memory of a server's process tree, from /proc (Linux)."""

from __future__ import annotations

import os
import time
from collections.abc import Iterable
from pathlib import Path

__all__ = ["busy_seconds", "cpu_seconds", "pss_bytes", "rss_bytes", "tree", "wait_port"]

_TICK = os.sysconf("SC_CLK_TCK")


def _stat(pid: int) -> list[str] | None:
    try:
        text = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    # The command name is in parentheses and may contain spaces: split after the last ")".
    return text[text.rindex(")") + 2 :].split()


def tree(roots: Iterable[int]) -> list[int]:
    """The roots and all their live descendants."""
    children: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        st = _stat(int(entry))
        if st is not None:
            children.setdefault(int(st[1]), []).append(int(entry))
    out: list[int] = []
    todo = [r for r in roots if _stat(r) is not None]
    while todo:
        pid = todo.pop()
        out.append(pid)
        todo.extend(children.get(pid, []))
    return out


def cpu_seconds(roots: Iterable[int]) -> float:
    """CPU seconds ever used by the trees: each live process's own time plus that of its reaped
    children (utime, stime, cutime, cstime), so processes that came and went are counted too."""
    total = 0
    for pid in tree(roots):
        st = _stat(pid)
        if st is not None:
            total += sum(int(x) for x in st[11:15])
    return total / _TICK


def busy_seconds() -> float:
    """CPU seconds all processes of the machine have used (all cores, /proc/stat), to tell how
    much of a run's CPU went to processes that are not part of the benchmark."""
    fields = Path("/proc/stat").read_text().splitlines()[0].split()[1:]
    user, nice, system, _idle, _iowait, irq, softirq, steal = (int(x) for x in fields[:8])
    return (user + nice + system + irq + softirq + steal) / _TICK


def pss_bytes(roots: Iterable[int]) -> int:
    """Proportional set size of the trees (shared pages divided among their users), so a
    multi-process server is not charged its shared libraries once per process."""
    total = 0
    for pid in tree(roots):
        try:
            text = Path(f"/proc/{pid}/smaps_rollup").read_text()
        except OSError:
            continue
        for line in text.splitlines():
            if line.startswith("Pss:"):
                total += int(line.split()[1]) * 1024
                break
    return total


def rss_bytes(pid: int) -> int:
    try:
        text = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return 0
    for line in text.splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    return 0


def wait_port(port: int, timeout: float, host: str = "127.0.0.1") -> float:
    """Poll until a TCP connect to port succeeds; the time.monotonic() when it did.
    TimeoutError when it does not within timeout."""
    import socket

    deadline = time.monotonic() + timeout
    while True:
        try:
            with socket.create_connection((host, port), timeout=1):
                return time.monotonic()
        except OSError:
            if time.monotonic() >= deadline:
                raise TimeoutError(f"nothing accepts on {host}:{port}") from None
            time.sleep(0.005)
