"""The benchmark harness in --quick mode against our server only: it must print the table and
write JSON with a positive figure for every measurement (CI proves the harness works; the real
comparison with Postfix and Dovecot is `nox -s bench`)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]

pytestmark = [pytest.mark.slow, pytest.mark.integration]


def test_quick_run_prints_table_and_writes_json(tmp_path: Path) -> None:
    out = tmp_path / "results.json"
    env = {k: v for k, v in os.environ.items() if not k.startswith("MOX")}
    res = subprocess.run(
        [sys.executable, "-m", "bench", "--quick", "--ours-only", "--output", str(out)],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=100,
    )
    assert res.returncode == 0, res.stdout + res.stderr
    lines = res.stdout.splitlines()
    header = next(line for line in lines if line.startswith("figure"))
    assert header.split() == ["figure", "unit", "ours", "theirs", "ours/theirs", "better"]
    assert any(line.startswith("(a) SMTP durable, 4 KiB, 1 conn") for line in lines)
    assert "null server:" in res.stdout

    data = json.loads(out.read_text())
    figures = {f["key"]: f for f in data["figures"]}
    expected = {
        "start",
        "mem_idle_conn",
        "mem_open_account",
        "smtp_4k_1",
        "smtp_64k_5",
        "imap_1",
        "imap_5",
        "big_select",
        "big_fetch",
        "big_search",
    }
    assert expected <= set(figures)
    for key, fig in figures.items():
        assert isinstance(fig["ours"], float), key
        # memory deltas are noisy with a handful of connections; all others must be positive
        if not key.startswith("mem_"):
            assert fig["ours"] > 0, key
        assert fig["theirs"] is None, key
        assert fig["ratio"] is None, key
    assert data["generator"]["smtp_4k_5_msgs_per_s"] > 0
    assert data["setup"]["ours_event_loop"] == "uvloop.Loop"  # `mox serve` runs on uvloop
    assert data["settings"]["quick"] is True
    for key in ("smtp_4k_1", "imap_5"):
        assert data["details"]["ours"][key]["server_cpu_pct"] > 0
