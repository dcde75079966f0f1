"""Every RFC cited in the code is listed, with its status, in docs/rfc-index.tsv."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
STATUSES = {"yes", "partial", "no", "roadmap"}


def index() -> dict[int, tuple[str, str]]:
    rows: dict[int, tuple[str, str]] = {}
    lines = (ROOT / "docs" / "rfc-index.tsv").read_text().splitlines()
    assert lines[0] == "rfc\tstatus\ttitle"
    for line in lines[1:]:
        number, status, title = line.split("\t")
        assert status in STATUSES, line
        assert int(number) not in rows, f"RFC {number} listed twice"
        rows[int(number)] = (status, title)
    return rows


def test_cited_rfcs_are_indexed() -> None:
    listed = index()
    cited: dict[int, str] = {}
    for path in sorted((ROOT / "mox").rglob("*.py")):
        for number in re.findall(r"\bRFC ?(\d{3,4})\b", path.read_text()):
            cited.setdefault(int(number), str(path.relative_to(ROOT)))
    missing = {n: p for n, p in cited.items() if n not in listed}
    assert not missing, f"cited but not in docs/rfc-index.tsv: {missing}"
    assert len(cited) >= 10
