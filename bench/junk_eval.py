"""Junk filter quality: `mox junk eval` (the real CLI, in a subprocess) on the labelled test
corpus (tests/junk/corpus.py), ham as a Maildir and spam as an mbox, as a user would run it on
their own mail. Reports precision, recall and the false-positive rate, and the seconds the run
took (training and classifying).

`python -m bench.junk_eval [--ham N] [--spam N] [--json FILE]`; `run()` returns the figures as a
dict for the benchmark's results.json.
"""

from __future__ import annotations

import argparse
import json
import mailbox
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from tests.junk import corpus

__all__ = ["main", "parse_report", "run"]

REPO = Path(__file__).resolve().parent.parent
FIGURES = ("precision", "recall", "false positive rate")


def write_corpus(directory: Path, n_ham: int, n_spam: int, seed: int) -> tuple[Path, Path]:
    """Ham as a Maildir, spam as an mbox file (both formats `mox junk eval` reads)."""
    maildir = directory / "ham"
    for sub in ("cur", "new", "tmp"):
        (maildir / sub).mkdir(parents=True)
    for i, m in enumerate(corpus.ham(n_ham, seed=seed)):
        (maildir / "cur" / f"{i}.bench:2,S").write_bytes(m)
    mbox_path = directory / "spam.mbox"
    box = mailbox.mbox(str(mbox_path))
    try:
        for m in corpus.spam(n_spam, seed=seed + 1):
            box.add(m)
    finally:
        box.close()
    return maildir, mbox_path


def parse_report(text: str) -> dict[str, Any]:
    """The figures from `mox junk eval` output ("precision 0.987", ...)."""
    out: dict[str, Any] = {}
    for line in text.splitlines():
        for name in FIGURES:
            if line.startswith(name + " "):
                out[name.replace(" ", "_")] = float(line.rsplit(" ", 1)[1])
        if line.startswith("trained on "):
            out["summary"] = line
    missing = [n for n in FIGURES if n.replace(" ", "_") not in out]
    if missing:
        raise ValueError(f"mox junk eval printed no {', '.join(missing)}:\n{text}")
    return out


def run(
    n_ham: int = 400, n_spam: int = 400, seed: int = 11, timeout: float = 600
) -> dict[str, Any]:
    with tempfile.TemporaryDirectory(prefix="mox-bench-junk-") as tmp:
        ham, spam = write_corpus(Path(tmp), n_ham, n_spam, seed)
        t0 = time.monotonic()
        proc = subprocess.run(  # our own CLI, fixed arguments
            [sys.executable, "-m", "mox", "junk", "eval", "--ham", str(ham), "--spam", str(spam)],
            cwd=REPO,
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )
        seconds = time.monotonic() - t0
    if proc.returncode != 0:
        raise RuntimeError(f"mox junk eval failed ({proc.returncode}): {proc.stderr.strip()}")
    figures = parse_report(proc.stdout)
    figures.update({"ham": n_ham, "spam": n_spam, "seconds": round(seconds, 3)})
    return figures


def render(figures: dict[str, Any]) -> str:
    return (
        f"junk filter (mox junk eval, {figures['ham']} ham / {figures['spam']} spam test corpus, "
        f"{figures['seconds']:.1f} s)\n"
        f"  {figures.get('summary', '')}\n"
        f"  precision {figures['precision']:.3f}  recall {figures['recall']:.3f}  "
        f"false positive rate {figures['false_positive_rate']:.3f}"
    )


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(
        prog="python -m bench.junk_eval", description=__doc__.split("\n")[0]
    )
    p.add_argument("--ham", type=int, default=400, help="ham messages in the corpus")
    p.add_argument("--spam", type=int, default=400, help="spam messages in the corpus")
    p.add_argument("--seed", type=int, default=11, help="seed of the generated corpus")
    p.add_argument("--json", type=Path, help="also write the figures to this JSON file")
    a = p.parse_args(argv)
    figures = run(a.ham, a.spam, a.seed)
    print(render(figures))
    if a.json is not None:
        a.json.write_text(json.dumps(figures, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
