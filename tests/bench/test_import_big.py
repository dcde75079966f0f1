"""`python -m bench.import_big` at a small size: the kill-and-resume run must end with every
message once, flags kept, and print its figures (the 1 GiB run is done by hand; see README)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]

pytestmark = [pytest.mark.slow, pytest.mark.integration]


def test_small_import_killed_and_resumed(tmp_path: Path) -> None:
    out = tmp_path / "import.json"
    res = subprocess.run(
        [
            sys.executable,
            "-m",
            "bench.import_big",
            "--mib",
            "6",
            "--kill-at",
            "0.2",
            "-o",
            str(out),
        ],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=110,
    )
    assert res.returncode == 0, res.stdout + res.stderr
    figures = json.loads(out.read_text())
    assert figures["killed"] is True
    assert figures["imported_before_kill"] < figures["messages"]
    assert figures["store"]["ok"] is True
    assert figures["store"]["messages"] == figures["messages"]
    assert figures["resumed_run_peak_rss_kib"] > 0
    assert "peak RSS" in res.stdout
