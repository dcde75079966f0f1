"""`mox junk eval`: measure the Bayesian filter on the user's own labelled mail.

Messages come from a Maildir (a directory with cur/ and new/), a directory of message files, or
an mbox file. Each set is shuffled with a fixed seed, the filter (fresh, in a temporary
directory) is trained on the first part and classifies the rest; "positive" means classified as
spam (probability above the threshold).
"""

from __future__ import annotations

import mailbox
import random
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from mox.config.model import JunkFilter
from mox.junk.bayes import Filter

__all__ = ["EvalResult", "evaluate", "read_messages"]


def read_messages(path: Path) -> Iterator[bytes]:
    """The messages of a Maildir, a directory of files, or an mbox file."""
    if path.is_dir():
        if (path / "cur").is_dir() or (path / "new").is_dir():
            dirs = [path / "cur", path / "new"]
        else:
            dirs = [path]
        for d in dirs:
            if not d.is_dir():
                continue
            for f in sorted(d.rglob("*")):
                if f.is_file() and not f.name.startswith("."):
                    yield f.read_bytes()
    elif path.is_file():
        box = mailbox.mbox(str(path), create=False)
        try:
            for key in box.iterkeys():
                yield box.get_bytes(key)
        finally:
            box.close()
    else:
        raise FileNotFoundError(path)


@dataclass(frozen=True, slots=True)
class EvalResult:
    trained_ham: int
    trained_spam: int
    true_pos: int  # spam classified as spam
    false_pos: int  # ham classified as spam
    true_neg: int
    false_neg: int

    @property
    def precision(self) -> float:
        n = self.true_pos + self.false_pos
        return self.true_pos / n if n else 1.0

    @property
    def recall(self) -> float:
        n = self.true_pos + self.false_neg
        return self.true_pos / n if n else 1.0

    @property
    def false_positive_rate(self) -> float:
        n = self.false_pos + self.true_neg
        return self.false_pos / n if n else 0.0

    def report(self) -> str:
        tested = self.true_pos + self.false_pos + self.true_neg + self.false_neg
        return (
            f"trained on {self.trained_ham} ham and {self.trained_spam} spam, tested {tested}\n"
            f"true positives {self.true_pos}, false positives {self.false_pos}, "
            f"true negatives {self.true_neg}, false negatives {self.false_neg}\n"
            f"precision {self.precision:.3f}\n"
            f"recall {self.recall:.3f}\n"
            f"false positive rate {self.false_positive_rate:.3f}"
        )


def evaluate(
    ham: list[bytes],
    spam: list[bytes],
    *,
    params: JunkFilter | None = None,
    train_fraction: float = 0.5,
    seed: int = 1,
) -> EvalResult:
    params = params or JunkFilter()
    rng = random.Random(seed)
    ham, spam = list(ham), list(spam)
    rng.shuffle(ham)
    rng.shuffle(spam)
    nham, nspam = int(len(ham) * train_fraction), int(len(spam) * train_fraction)
    with tempfile.TemporaryDirectory(prefix="mox-junk-eval-") as tmp:
        filt = Filter(Path(tmp), params)
        try:
            for m in ham[:nham]:
                filt.train(m, "ham")
            for m in spam[:nspam]:
                filt.train(m, "spam")
            fp = sum(filt.classify(m).probability > params.threshold for m in ham[nham:])
            tp = sum(filt.classify(m).probability > params.threshold for m in spam[nspam:])
        finally:
            filt.conn.close()  # the bloom file is thrown away with the directory
    return EvalResult(
        trained_ham=nham,
        trained_spam=nspam,
        true_pos=tp,
        false_pos=fp,
        true_neg=len(ham) - nham - fp,
        false_neg=len(spam) - nspam - tp,
    )
