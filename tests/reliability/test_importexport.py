"""mbox and Maildir import and export: messages and flags preserved, mboxrd escaping, resumable
after an interruption, memory bounded by the largest message rather than the file, and the CLI
with its progress output."""

from __future__ import annotations

import io
import subprocess
import tracemalloc
from pathlib import Path

import pytest
import tomlkit

from mox.store import Store
from mox.store.account import Account
from mox.store.importexport import (
    export_maildir,
    export_mbox,
    import_maildir,
    import_mbox,
    read_mbox,
)
from tests.conftest import MOX, minimal_config

MBOX = (
    b"From alice@example.org Thu Nov 25 08:00:00 2021\n"
    b"Subject: one\n"
    b"Status: RO\n"
    b"X-Status: AF\n"
    b"X-Keywords: $label1 work\n"
    b"\n"
    b"first body\n"
    b">From here, escaped\n"
    b">>From twice escaped\n"
    b"From inside a line is fine\n"
    b"\n"
    b"From bob@example.org Fri Nov 26 09:30:00 2021\n"
    b"Subject: two\n"
    b"Status: O\n"
    b"\n"
    b"second\n"
    b"\n"
)


def messages(acc: Account, mailbox: str) -> list[tuple[bytes, frozenset[str]]]:
    mb = acc.get_mailbox(mailbox)
    assert mb is not None
    return [(acc.read_message(m), m.flags) for m in acc.list_messages(mb.id)]


async def test_mbox_import_flags_escaping_and_dates(tmp_path: Path) -> None:
    src = tmp_path / "in.mbox"
    src.write_bytes(MBOX)
    async with Store(tmp_path / "data") as store:
        acc = store.account("alice")
        result = await import_mbox(acc, "Old/Mail", src)
        assert (result.imported, result.skipped) == (2, 0)
        (one, f1), (two, f2) = messages(acc, "Old/Mail")
        assert one == (
            b"Subject: one\r\n\r\nfirst body\r\nFrom here, escaped\r\n>From twice escaped\r\n"
            b"From inside a line is fine\r\n"
        )
        assert f1 == frozenset({"\\Seen", "\\Answered", "\\Flagged", "$label1", "work"})
        assert two == b"Subject: two\r\n\r\nsecond\r\n"
        assert f2 == frozenset()
        mb = acc.get_mailbox("Old/Mail")
        assert mb is not None
        first = acc.list_messages(mb.id)[0]
        assert first.internal_date.isoformat() == "2021-11-25T08:00:00+00:00"


async def test_mbox_round_trip_through_export(tmp_path: Path) -> None:
    src = tmp_path / "in.mbox"
    src.write_bytes(MBOX)
    async with Store(tmp_path / "data") as store:
        acc = store.account("alice")
        await import_mbox(acc, "Inbox", src)
        before = messages(acc, "Inbox")
        assert export_mbox(acc, tmp_path / "out", "Inbox") == 2
        exported = (tmp_path / "out" / "Inbox.mbox").read_bytes()
        assert b"\n>From here, escaped\n>>From twice escaped\n" in exported
        assert b"Status: RO\nX-Status: AF\nX-Keywords: $label1 work\n" in exported
        await import_mbox(acc, "Again", tmp_path / "out" / "Inbox.mbox")
        assert messages(acc, "Again") == before


async def test_maildir_round_trip_with_keywords(tmp_path: Path) -> None:
    maildir = tmp_path / "md"
    for sub in ("cur", "new", "tmp"):
        (maildir / sub).mkdir(parents=True)
    (maildir / "dovecot-keywords").write_text("0 $Junk\n1 project\n")
    (maildir / "cur" / "1600000000.1.host:2,FRSab").write_bytes(b"Subject: a\n\nbody a\n")
    (maildir / "new" / "1600000001.2.host").write_bytes(b"Subject: b\r\n\r\nbody b\r\n")
    async with Store(tmp_path / "data") as store:
        acc = store.account("alice")
        result = await import_maildir(acc, "Imported", maildir)
        assert result.imported == 2
        got = messages(acc, "Imported")
        assert got[0][1] == frozenset({"\\Flagged", "\\Answered", "\\Seen", "$junk", "project"})
        assert got[0][0] == b"Subject: a\r\n\r\nbody a\r\n"
        assert got[1] == (b"Subject: b\r\n\r\nbody b\r\n", frozenset())
        assert export_maildir(acc, tmp_path / "out", "Imported") == 2
        out = tmp_path / "out" / "Imported"
        names = sorted(p.name for p in (out / "cur").iterdir())
        assert names[0].endswith(":2,FRSab") or names[1].endswith(":2,FRSab")
        assert (out / "dovecot-keywords").read_text() == "0 $junk\n1 project\n"
        await import_maildir(acc, "Back", out)
        assert sorted(messages(acc, "Back")) == sorted(got)


async def test_import_is_resumable(tmp_path: Path) -> None:
    body = b"".join(
        b"From x@example.org Thu Nov 25 08:00:00 2021\nSubject: %d\n\nbody %d\n\n" % (i, i)
        for i in range(20)
    )
    dup = b"From x@example.org Thu Nov 25 08:00:00 2021\nSubject: 3\n\nbody 3\n\n"
    src = tmp_path / "in.mbox"
    src.write_bytes(body + dup)  # message 3 is in the file twice: imported twice
    async with Store(tmp_path / "data") as store:
        acc = store.account("alice")

        class Interrupted(Exception):
            pass

        def stop_after_7(imported: int, skipped: int, nbytes: int) -> None:
            if imported == 7:
                raise Interrupted

        with pytest.raises(Interrupted):
            await import_mbox(acc, "Inbox", src, stop_after_7)
        assert len(messages(acc, "Inbox")) == 7
        result = await import_mbox(acc, "Inbox", src)
        assert (result.imported, result.skipped) == (14, 7)
        got = [m for m, _ in messages(acc, "Inbox")]
        assert len(got) == 21
        assert got.count(b"Subject: 3\r\n\r\nbody 3\r\n") == 2
        again = await import_mbox(acc, "Inbox", src)
        assert (again.imported, again.skipped) == (0, 21)


def test_read_mbox_memory_is_bounded_by_the_message_not_the_file() -> None:
    one = (
        b"From x@example.org Thu Nov 25 08:00:00 2021\nSubject: big\n\n"
        + (b"0123456789abcdef" * 64 + b"\n") * 200
    )  # about 200 KiB per message
    data = (one + b"\n") * 150  # about 30 MiB in all
    tracemalloc.start()
    try:
        n = 0
        for item in read_mbox(io.BytesIO(data), limit=10 * 1024 * 1024):
            assert not isinstance(item, int)
            n += 1
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert n == 150
    assert peak < 3 * 1024 * 1024, f"peak {peak} bytes for a {len(data)} byte mbox"


def test_read_mbox_skips_messages_over_the_limit() -> None:
    data = (
        b"From a Thu Nov 25 08:00:00 2021\nSubject: big\n\n" + b"x" * 500 + b"\n\n"
        b"From b Thu Nov 25 08:00:00 2021\nSubject: small\n\nok\n"
    )
    items = list(read_mbox(io.BytesIO(data), limit=100))
    assert isinstance(items[0], int)
    assert not isinstance(items[1], int)
    assert items[1].data == b"Subject: small\r\n\r\nok\r\n"


@pytest.mark.integration
def test_cli_import_and_export(tmp_path: Path, mox_env: dict[str, str]) -> None:
    config = tmp_path / "mox.toml"
    config.write_text(tomlkit.dumps(minimal_config()))
    src = tmp_path / "in.mbox"
    src.write_bytes(MBOX)

    def mox(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [*MOX, *args, "--config", str(config)],
            env=mox_env,
            capture_output=True,
            text=True,
            check=False,
            timeout=60,
        )

    first = mox("import", "mbox", "alice", "Archive", str(src))
    assert first.returncode == 0, first.stderr
    assert "imported 2, " in first.stderr
    assert "100%" in first.stderr
    second = mox("import", "mbox", "alice", "Archive", str(src))
    assert "imported 0, 2 already there" in second.stderr
    out = mox("export", "maildir", "alice", str(tmp_path / "md"), "Archive")
    assert out.returncode == 0, out.stderr
    assert "exported 2" in out.stderr
    assert len(list((tmp_path / "md" / "Archive" / "cur").iterdir())) == 2
    bad = mox("import", "mbox", "nobody", "Archive", str(src))
    assert bad.returncode == 1
    assert "no account 'nobody'" in bad.stderr
