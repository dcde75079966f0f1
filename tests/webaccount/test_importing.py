"""Unpacking uploaded archives (mox.webaccount.importing): hostile members are skipped, sizes
are bounded, and the mailbox names follow the archive's layout."""

from __future__ import annotations

import io
import tarfile
from pathlib import Path

import pytest

from mox.webaccount import importing


def _tgz(path: Path, members: dict[str, bytes], links: dict[str, str] | None = None) -> None:
    with tarfile.open(path, "w:gz") as tf:
        for name, data in members.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tf.addfile(info, io.BytesIO(data))
        for name, target in (links or {}).items():
            info = tarfile.TarInfo(name)
            info.type = tarfile.SYMTYPE
            info.linkname = target
            tf.addfile(info)


def test_hostile_members_are_skipped(tmp_path: Path) -> None:
    archive = tmp_path / "up.tgz"
    _tgz(
        archive,
        {
            "Maildir/cur/1:2,S": b"Subject: a\n\nx\n",
            "Maildir/.Lists.Dev/new/2": b"Subject: b\n\nx\n",
            "Old/Sent.mbox": b"From x Mon Nov 23 10:00:00 2026\nSubject: c\n\nx\n",
            "../../outside": b"evil",
            "/etc/evil": b"evil",
        },
        links={"Maildir/cur/link": "/etc/passwd"},
    )
    dest = tmp_path / "out"
    dest.mkdir()
    importing.unpack("tgz", archive, dest)
    assert not (tmp_path / "outside").exists()
    assert not (dest / "Maildir" / "cur" / "link").exists()
    found = sorted((kind, name) for kind, _, name in importing.find_sources(dest))
    assert found == [("maildir", "Inbox"), ("maildir", "Lists/Dev"), ("mbox", "Old/Sent")]


def test_unpacked_size_is_bounded(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(importing, "MAX_UNPACKED", 1000)
    archive = tmp_path / "bomb.tgz"
    _tgz(archive, {"a.mbox": b"From x\n" + b"y" * 5000})
    dest = tmp_path / "out"
    dest.mkdir()
    with pytest.raises(importing.UploadError, match="unpacks to more than"):
        importing.unpack("tgz", archive, dest)


def test_not_an_archive(tmp_path: Path) -> None:
    archive = tmp_path / "broken.zip"
    archive.write_bytes(b"PK\x03\x04 not really")
    dest = tmp_path / "out"
    dest.mkdir()
    with pytest.raises(importing.UploadError, match="cannot read the zip archive"):
        importing.unpack("zip", archive, dest)
