"""Subjectpass tokens (mox's subjectpass/): bound to the From address and the account key, valid
for the period only, and the key file is created once with mode 0600; plus the junk benchmark's
run of `mox junk eval` on the test corpus."""

from __future__ import annotations

import stat
from pathlib import Path

import pytest

from bench import junk_eval
from mox.junk import subjectpass


def test_token_roundtrip_binding_and_period(tmp_path: Path) -> None:
    key = subjectpass.key_for(tmp_path)
    assert subjectpass.key_for(tmp_path) == key  # created once, then read
    assert stat.S_IMODE((tmp_path / subjectpass.KEY_FILE).stat().st_mode) == 0o600
    now = 1_800_000_000.0
    token = subjectpass.generate(key, "Carol@Example.org", now)
    inner = subjectpass.token_in_subject(f"Re: party {token} thanks")
    assert inner is not None
    assert subjectpass.verify(key, "carol@example.org", inner, 3600, now + 10)
    assert not subjectpass.verify(key, "dan@example.org", inner, 3600, now + 10)
    assert not subjectpass.verify(key, "carol@example.org", inner, 3600, now + 3601)  # expired
    assert not subjectpass.verify(key, "carol@example.org", inner, 3600, now - 120)  # future
    assert not subjectpass.verify(b"x" * 32, "carol@example.org", inner, 3600, now)
    assert not subjectpass.verify(key, "carol@example.org", inner[:-2], 3600, now)
    assert not subjectpass.verify(key, "carol@example.org", "!!!", 3600, now)
    assert subjectpass.token_in_subject("no token (pass:) here") is None


def test_subject_decoded_before_search() -> None:
    header = b"Subject: =?utf-8?q?Hallo_(pass:abc=5FDEF-1)?=\r\n"
    assert subjectpass.token_in_subject(subjectpass.subject_of(header)) == "abc_DEF-1"


def test_bench_junk_eval_on_test_corpus() -> None:
    figures = junk_eval.run(n_ham=40, n_spam=40, timeout=60)
    assert figures["precision"] >= 0.95
    assert figures["recall"] >= 0.9
    assert figures["false_positive_rate"] <= 0.05
    assert "precision" in junk_eval.render(figures)
    with pytest.raises(ValueError, match="printed no"):
        junk_eval.parse_report("nothing")
