"""Tokenizer, bloom filter and Bayesian filter units, on the corpus written for the tests."""

from __future__ import annotations

import base64
from pathlib import Path

from mox.config.model import JunkFilter
from mox.junk.bayes import SIGNIFICANT_HAMS, Filter
from mox.junk.bloom import Bloom
from mox.junk.tokenize import html_text, message_words, text_words
from tests.junk import corpus


def test_tokens_from_headers_text_and_html() -> None:
    html = base64.b64encode(b"<p>Visit <b>Amsterdam</b></p><script>var hidden=1</script>")
    data = (
        b"From: =?utf-8?q?J=C3=BCrgen?= <jurgen@example.test>\r\n"
        b"Subject: =?utf-8?b?" + base64.b64encode("Grüße aus Köln".encode()) + b"?=\r\n"
        b"X-Other: ignoredheaderword\r\n"
        b'Content-Type: multipart/alternative; boundary="x"\r\n\r\n'
        b"--x\r\nContent-Type: text/plain; charset=iso-8859-1\r\n"
        b"Content-Transfer-Encoding: quoted-printable\r\n\r\nsch=F6nes Wetter ok\r\n"
        b"--x\r\nContent-Type: text/html\r\nContent-Transfer-Encoding: base64\r\n\r\n"
        + html
        + b"\r\n--x--\r\n"
    )
    words = message_words(data)
    assert {"from:jürgen", "from:jurgen", "from:example", "subject:grüße", "subject:köln"} <= words
    assert "subject:aus" not in words  # header words need more than 3 characters, as mox
    assert {"schönes", "wetter", "visit", "amsterdam"} <= words
    assert "ok" not in words  # too short
    assert "hidden" not in words
    assert "ignoredheaderword" not in words


def test_twograms_and_html_text() -> None:
    assert text_words("Free money now", twograms=True, onegrams=False) == {
        "free money",
        "money now",
    }
    assert html_text("<style>p{}</style><p>a&amp;b</p>").strip() == "a&b"


def test_bloom_keeps_one_off_words_out(tmp_path: Path) -> None:
    f = Filter(tmp_path)
    f.train_words({"onceonly", "twice"}, "ham")
    assert f.word_count("onceonly") is None
    assert f.word_count("twice") is None
    assert f.bloom.has("onceonly")
    assert not f.bloom.has("neverseen")
    f.train_words({"twice"}, "spam")
    assert f.word_count("twice") == (0, 1)
    assert f.word_count("onceonly") is None
    assert f.counts() == (1, 1)
    f.close()
    reopened = Bloom(tmp_path / "junkfilter.bloom")
    assert reopened.has("onceonly")  # saved to its file


def test_untrain_reverses_training(tmp_path: Path) -> None:
    f = Filter(tmp_path)
    for _ in range(3):
        f.train_words({"word"}, "spam")
    assert f.word_count("word") == (0, 2)
    f.untrain_words({"word"}, "spam")
    f.untrain_words({"word"}, "spam")
    assert f.word_count("word") is None
    assert f.counts() == (0, 1)
    f.close()


def test_classifies_new_messages(tmp_path: Path) -> None:
    f = Filter(tmp_path, JunkFilter())
    for m in corpus.ham(60, seed=10):
        f.train(m, "ham")
    for m in corpus.spam(40, seed=11):
        f.train(m, "spam")
    new_ham = corpus.ham(16, seed=99)
    new_spam = corpus.spam(12, seed=98)
    for m in new_ham:
        c = f.classify(m)
        assert c.significant
        assert c.probability < 0.1, c.describe()
    for m in new_spam:
        c = f.classify(m)
        assert c.probability > 0.95, c.describe()
        assert c.spam_words
    assert "junk probability" in f.classify(new_spam[0]).describe()
    f.close()


def test_not_significant_without_enough_ham(tmp_path: Path) -> None:
    f = Filter(tmp_path)
    for m in corpus.ham(SIGNIFICANT_HAMS - 1):
        f.train(m, "ham")
    assert not f.classify(corpus.ham(1, seed=5)[0]).significant
    f.train(corpus.ham(1, seed=6)[0], "ham")
    assert f.classify(corpus.ham(1, seed=5)[0]).significant
    f.close()
