"""The per-account Bayesian junk filter, as mox's junk/filter.go.

Word counts live in `junkfilter.db` (SQLite, WAL) in the account directory, table
`wordscore(word, ham, spam)` with the numbers of trained ham and spam messages under the word
"-", and a bloom filter in `junkfilter.bloom` keeps words seen only once out of the database.
The same database keeps what was trained per message (`trained`, keyed by the message file,
which a move keeps) with the sender facts the reputation checks use.

Scoring as mox: per word r = (spam/nspam) / (spam/nspam + ham/nham), clamped to
[max_power, 1-max_power]; rare words (seen at most `rare_words` times) are pulled towards 0.5;
words within `ignore_words` of 0.5 are ignored; the `top_words` strongest ham and spam words
are combined as p = 1 / (1 + e^η), η = Σ ln(1-r) - ln(r).
"""

from __future__ import annotations

import math
import sqlite3
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from mox.config.model import JunkFilter
from mox.junk.bloom import Bloom
from mox.junk.tokenize import message_words

__all__ = ["Classification", "Filter", "Kind"]

Kind = Literal["ham", "spam"]

DB_NAME = "junkfilter.db"
BLOOM_NAME = "junkfilter.bloom"
COUNTS = "-"  # the word under which mox keeps the numbers of trained messages
SIGNIFICANT_HAMS = 50  # reference §1.2 step 13: a verdict needs this many trained ham messages

SCHEMA = """
CREATE TABLE IF NOT EXISTS wordscore (
    word TEXT PRIMARY KEY,
    ham INTEGER NOT NULL DEFAULT 0,
    spam INTEGER NOT NULL DEFAULT 0
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS trained (
    key TEXT PRIMARY KEY,
    kind TEXT NOT NULL,
    changed REAL NOT NULL,
    from_addr TEXT NOT NULL DEFAULT '',
    from_domain TEXT NOT NULL DEFAULT '',
    from_org TEXT NOT NULL DEFAULT '',
    from_validated INTEGER NOT NULL DEFAULT 0,
    dkim TEXT NOT NULL DEFAULT '',
    spf TEXT NOT NULL DEFAULT '',
    ip TEXT NOT NULL DEFAULT '',
    mailbox_id INTEGER NOT NULL DEFAULT 0,
    uid INTEGER NOT NULL DEFAULT 0,
    words BLOB
);
CREATE INDEX IF NOT EXISTS trained_location ON trained (mailbox_id, uid);
CREATE INDEX IF NOT EXISTS trained_from ON trained (from_addr, changed);
CREATE INDEX IF NOT EXISTS trained_domain ON trained (from_domain, changed);
CREATE INDEX IF NOT EXISTS trained_org ON trained (from_org, changed);
"""


@dataclass(frozen=True, slots=True)
class Classification:
    probability: float
    significant: bool  # enough ham was trained for the probability to mean something
    ham_words: tuple[str, ...]
    spam_words: tuple[str, ...]

    def describe(self) -> str:
        """For X-Mox-Reason and logs: the probability and the strongest words."""
        words = ", ".join((self.spam_words + self.ham_words)[:8])
        return f"junk probability {self.probability:.3f} (words: {words or 'none'})"


class Filter:
    """One account's filter; `close()` when done (saves the bloom filter)."""

    def __init__(self, directory: Path, params: JunkFilter | None = None) -> None:
        self.params = params or JunkFilter()
        directory.mkdir(parents=True, exist_ok=True)
        self.conn = sqlite3.connect(
            directory / DB_NAME, isolation_level=None, check_same_thread=False
        )
        self.conn.execute("PRAGMA journal_mode=WAL")
        self.conn.execute("PRAGMA synchronous=NORMAL")
        self.conn.executescript(SCHEMA)
        self.bloom = Bloom(directory / BLOOM_NAME)

    def close(self) -> None:
        self.bloom.save()
        self.conn.close()

    def flush(self) -> None:
        self.bloom.save()

    def words(self, data: bytes) -> set[str]:
        return message_words(data, onegrams=self.params.onegrams, twograms=self.params.twograms)

    def counts(self) -> tuple[int, int]:
        """Numbers of trained (ham, spam) messages."""
        row = self.conn.execute(
            "SELECT ham, spam FROM wordscore WHERE word = ?", (COUNTS,)
        ).fetchone()
        return (0, 0) if row is None else (int(row[0]), int(row[1]))

    def word_count(self, word: str) -> tuple[int, int] | None:
        row = self.conn.execute(
            "SELECT ham, spam FROM wordscore WHERE word = ?", (word,)
        ).fetchone()
        return None if row is None else (int(row[0]), int(row[1]))

    def train_words(self, words: Iterable[str], kind: Kind) -> None:
        col = kind  # "ham" or "spam", from the Literal
        with self.conn:
            self.conn.execute("BEGIN")
            self._bump(COUNTS, col, 1)
            for w in words:
                if w == COUNTS:
                    continue
                if self.word_count(w) is not None:
                    self._bump(w, col, 1)
                elif self.bloom.has(w):
                    self._bump(w, col, 1)  # second occurrence: now it is worth a row
                else:
                    self.bloom.add(w)

    def untrain_words(self, words: Iterable[str], kind: Kind) -> None:
        col = kind
        with self.conn:
            self.conn.execute("BEGIN")
            self._bump(COUNTS, col, -1)
            for w in words:
                if w != COUNTS and self.word_count(w) is not None:
                    self._bump(w, col, -1)
            self.conn.execute(
                "DELETE FROM wordscore WHERE ham = 0 AND spam = 0 AND word != ?", (COUNTS,)
            )

    def _bump(self, word: str, col: str, delta: int) -> None:
        if col not in ("ham", "spam"):
            raise ValueError(col)
        self.conn.execute(
            f"INSERT INTO wordscore (word, {col}) VALUES (?, max(0, ?)) "  # noqa: S608
            f"ON CONFLICT (word) DO UPDATE SET {col} = max(0, {col} + ?)",
            (word, delta, delta),
        )

    def train(self, data: bytes, kind: Kind) -> None:
        self.train_words(self.words(data), kind)

    def untrain(self, data: bytes, kind: Kind) -> None:
        self.untrain_words(self.words(data), kind)

    def classify(self, data: bytes) -> Classification:
        return self.classify_words(self.words(data))

    def classify_words(self, words: Iterable[str]) -> Classification:
        p = self.params
        hams, spams = self.counts()
        expect: dict[str, float] = {}
        for w in set(words):
            c = self.word_count(w) if w != COUNTS else None
            if c is None:
                continue
            ham, spam = c
            ws = spam / spams if spams > 0 else 0.0
            wh = ham / hams if hams > 0 else 0.0
            if ws + wh == 0:
                continue
            r = ws / (ws + wh)
            r = min(max(r, p.max_power), 1 - p.max_power)
            if ham + spam <= p.rare_words:
                r += (1 + p.rare_words - (ham + spam)) * (0.5 - r) / 10  # as mox
            if abs(0.5 - r) < p.ignore_words:
                continue
            expect[w] = r
        strongest = sorted(expect.items(), key=lambda kv: (-abs(kv[1] - 0.5), kv[0]))
        top_ham = [(w, r) for w, r in strongest if r < 0.5][: p.top_words]
        top_spam = [(w, r) for w, r in strongest if r > 0.5][: p.top_words]
        eta = sum(math.log(1 - r) - math.log(r) for _, r in top_ham + top_spam)
        prob = 0.0 if eta > 700 else 1 / (1 + math.exp(eta))
        return Classification(
            probability=prob,
            significant=hams >= SIGNIFICANT_HAMS,
            ham_words=tuple(w for w, _ in top_ham),
            spam_words=tuple(w for w, _ in top_spam),
        )
