"""Import (upload) and export (download) for the account pages, on mox.store.importexport.

An upload is an mbox file, or a zip or gzipped tar (.tgz/.tar.gz) holding mbox files and/or
Maildirs. Archives are unpacked into a private temporary directory with bounds on the number of
files and their total size, and only regular files with relative paths inside the directory are
written (no `..`, no absolute names, no links), so a hostile archive cannot write elsewhere or
fill the disk. Each Maildir becomes the mailbox named by its path in the archive (in a Maildir++
layout, as Dovecot and Courier keep it, the top Maildir is the Inbox and its `.A.B` folders are
mailbox A/B), each mbox file the mailbox named by its path without `.mbox`; a plain mbox upload
goes into the mailbox the user chose. Imports run as a background job of the server (so IMAP
sessions see the new messages at once) whose progress the page shows. A repeated import skips
what is already there (importexport's content hashes).
"""

from __future__ import annotations

import asyncio
import logging
import secrets
import shutil
import tarfile
import tempfile
import time
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import IO, Literal

from mox.store.account import Account
from mox.store.importexport import export_maildir, export_mbox, import_maildir, import_mbox
from mox.store.models import StoreError

__all__ = [
    "MAX_UPLOAD",
    "ImportJob",
    "ImportJobs",
    "UploadError",
    "export_archive",
    "run_import",
]

log = logging.getLogger(__name__)

MAX_UPLOAD = 1 << 30  # bytes of an uploaded file
MAX_UNPACKED = 4 << 30  # bytes of all files unpacked from an archive
MAX_FILES = 200_000  # files in an archive
MAX_JOBS = 50  # finished jobs remembered for their status page
CHUNK = 1 << 20

ArchiveKind = Literal["zip", "tgz"]


class UploadError(Exception):
    """An upload that cannot be imported; the text says why, for the page."""


@dataclass
class ImportJob:
    id: str
    account: str
    filename: str
    total: int = 0  # bytes to read
    base: int = 0  # bytes of files finished before the current one
    bytes: int = 0
    imported: int = 0
    skipped: int = 0
    too_large: int = 0
    mailboxes: list[str] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)
    done: bool = False
    started: float = field(default_factory=time.time)

    def text(self) -> str:
        state = "finished" if self.done else "importing"
        out = f"{state}: {self.imported} messages imported"
        if self.skipped:
            out += f", {self.skipped} already there"
        if self.too_large:
            out += f", {self.too_large} too large"
        return out

    def progress(self, imported: int, skipped: int, nbytes: int) -> None:
        self.bytes = self.base + nbytes

    def status(self) -> dict[str, object]:
        return {
            "text": self.text(),
            "done": self.done,
            "bytes": self.bytes,
            "total": self.total,
            "imported": self.imported,
            "problems": self.problems,
        }


class ImportJobs:
    """Jobs of this server process, by id; the oldest finished ones are forgotten."""

    def __init__(self) -> None:
        self.jobs: dict[str, ImportJob] = {}
        self.tasks: set[asyncio.Task[None]] = set()

    def new(self, account: str, filename: str) -> ImportJob:
        done = [j for j in self.jobs.values() if j.done]
        for job in sorted(done, key=lambda j: j.started)[: max(0, len(self.jobs) - MAX_JOBS)]:
            del self.jobs[job.id]
        job = ImportJob(secrets.token_urlsafe(12), account, filename)
        self.jobs[job.id] = job
        return job

    def get(self, account: str, job_id: str) -> ImportJob | None:
        job = self.jobs.get(job_id)
        return job if job is not None and job.account == account else None

    def start(self, job: ImportJob, acc: Account, mailbox: str, upload: Path, work: Path) -> None:
        task = asyncio.create_task(run_import(job, acc, mailbox, upload, work))
        self.tasks.add(task)
        task.add_done_callback(self.tasks.discard)


def archive_kind(filename: str) -> ArchiveKind | None:
    name = filename.lower()
    if name.endswith(".zip"):
        return "zip"
    if name.endswith((".tgz", ".tar.gz")):
        return "tgz"
    return None


def _safe_relpath(name: str) -> PurePosixPath | None:
    """A member name as a relative path without `..`, or None to skip it."""
    path = PurePosixPath(name.replace("\\", "/"))
    if path.is_absolute() or any(p in ("..", "") for p in path.parts) or not path.parts:
        return None
    return path


def _copy_bounded(src: IO[bytes], dest: Path, budget: list[int]) -> None:
    dest.parent.mkdir(parents=True, exist_ok=True)
    with dest.open("xb") as out:
        while chunk := src.read(CHUNK):
            budget[0] -= len(chunk)
            if budget[0] < 0:
                raise UploadError(f"the archive unpacks to more than {MAX_UNPACKED >> 20} MiB")
            out.write(chunk)


def _members(kind: ArchiveKind, archive: Path) -> Iterator[tuple[PurePosixPath, IO[bytes]]]:
    count = 0
    if kind == "zip":
        with zipfile.ZipFile(archive) as zf:
            for info in zf.infolist():
                rel = _safe_relpath(info.filename)
                if info.is_dir() or rel is None:
                    continue
                count += 1
                if count > MAX_FILES:
                    raise UploadError(f"the archive has more than {MAX_FILES} files")
                with zf.open(info) as f:
                    yield rel, f
        return
    with tarfile.open(archive, mode="r:gz") as tf:
        for member in tf:
            rel = _safe_relpath(member.name)
            if not member.isfile() or rel is None:
                continue  # directories, links, devices: nothing to import
            count += 1
            if count > MAX_FILES:
                raise UploadError(f"the archive has more than {MAX_FILES} files")
            extracted = tf.extractfile(member)
            if extracted is not None:
                with extracted:
                    yield rel, extracted


def unpack(kind: ArchiveKind, archive: Path, dest: Path) -> None:
    """Unpack into `dest` (empty); raises UploadError for bad or oversized archives."""
    budget = [MAX_UNPACKED]
    try:
        for rel, f in _members(kind, archive):
            target = dest.joinpath(*rel.parts)
            if target.exists():
                continue  # a duplicate name: the first one wins
            _copy_bounded(f, target, budget)
    except (zipfile.BadZipFile, tarfile.TarError, EOFError, OSError) as exc:
        raise UploadError(f"cannot read the {kind} archive: {exc}") from None


def _mailbox_name(rel: PurePosixPath) -> str:
    return "/".join(p for p in (part.strip(".") for part in rel.parts) if p)


def _maildir_name(root: Path, d: Path, maildirs: list[Path]) -> str:
    """Maildir++ (Dovecot, Courier): the top Maildir is the Inbox and its ".A.B" folders are
    mailbox A/B; any other Maildir is named by its path in the archive."""
    if d.name.startswith(".") and d.parent in maildirs:
        return d.name[1:].replace(".", "/")
    if d == root or d.name.lower() == "maildir":
        return "Inbox"
    return _mailbox_name(PurePosixPath(d.relative_to(root).as_posix())) or "Inbox"


def find_sources(root: Path) -> list[tuple[Literal["mbox", "maildir"], Path, str]]:
    """The Maildirs and mbox files under an unpacked archive, with their mailbox names."""
    found: list[tuple[Literal["mbox", "maildir"], Path, str]] = []
    dirs = [root, *sorted(p for p in root.rglob("*") if p.is_dir())]
    maildirs = [d for d in dirs if (d / "cur").is_dir() or (d / "new").is_dir()]
    for d in maildirs:
        found.append(("maildir", d, _maildir_name(root, d, maildirs)))
    for path in sorted(p for p in root.rglob("*") if p.is_file()):
        if path.parent.name in ("cur", "new", "tmp") and path.parent.parent in maildirs:
            continue  # a message of a Maildir
        if path.suffix.lower() == ".mbox" or path.name.lower() == "mbox":
            rel = PurePosixPath(path.relative_to(root).as_posix())
            stem = rel.with_suffix("") if rel.suffix.lower() == ".mbox" else rel.parent
            found.append(("mbox", path, _mailbox_name(stem) or "Inbox"))
    return found


async def run_import(job: ImportJob, acc: Account, mailbox: str, upload: Path, work: Path) -> None:
    """The import job: unpack when needed, import each source, record the outcome."""
    try:
        kind = archive_kind(job.filename)
        if kind is None:
            with upload.open("rb") as f:
                if f.read(5) != b"From ":
                    raise UploadError(
                        "not an mbox file (it does not start with a 'From ' line), "
                        "nor a .zip or .tgz archive"
                    )
            sources: list[tuple[Literal["mbox", "maildir"], Path, str]] = [
                ("mbox", upload, mailbox)
            ]
        else:
            unpacked = work / "unpacked"
            unpacked.mkdir()
            await asyncio.to_thread(unpack, kind, upload, unpacked)
            sources = await asyncio.to_thread(find_sources, unpacked)
            if not sources:
                raise UploadError("the archive holds no Maildir and no .mbox file")
        sizes = []
        for skind, path, _ in sources:
            if skind == "mbox":
                sizes.append(path.stat().st_size)
            else:
                sizes.append(
                    sum(p.stat().st_size for s in ("cur", "new") for p in (path / s).glob("*"))
                )
        job.total = sum(sizes)
        for (skind, path, name), size in zip(sources, sizes, strict=True):
            fn = import_mbox if skind == "mbox" else import_maildir
            try:
                result = await fn(acc, name, path, job.progress)
            except (StoreError, OSError) as exc:
                job.problems.append(f"{name}: {exc}")
            else:
                job.imported += result.imported
                job.skipped += result.skipped
                job.too_large += result.too_large
                job.mailboxes.append(name)
            job.base += size
            job.bytes = job.base
    except UploadError as exc:
        job.problems.append(str(exc))
    except Exception as exc:
        log.exception("import failed", extra={"account": job.account})
        job.problems.append(f"import failed: {exc}")
    finally:
        shutil.rmtree(work, ignore_errors=True)
        job.done = True  # only now: a status poll that sees "done" finds the upload gone
        log.info(
            "web import finished",
            extra={"account": job.account, "imported": job.imported, "problems": len(job.problems)},
        )


def export_archive(
    account: str,
    account_dir: Path,
    fmt: Literal["mbox", "maildir"],
    archive: ArchiveKind,
    mailbox: str | None,
    work: Path,
) -> Path:
    """Export into `work` and pack it; returns the archive file. Runs in a worker thread with
    its own connection to the account's database (the server's stays on the event loop)."""
    acc = Account(account, account_dir)
    out = work / "export"
    out.mkdir()
    try:
        (export_mbox if fmt == "mbox" else export_maildir)(acc, out, mailbox)
    finally:
        acc.close()
    target = work / f"mox-{account}-{fmt}.{archive}"
    if archive == "zip":
        with zipfile.ZipFile(target, "w", zipfile.ZIP_DEFLATED) as zf:
            for path in sorted(out.rglob("*")):
                if path.is_file():
                    zf.write(path, path.relative_to(out).as_posix())
    else:
        with tarfile.open(target, "w:gz") as tf:
            for path in sorted(out.rglob("*")):
                if path.is_file():
                    tf.add(path, path.relative_to(out).as_posix())
    shutil.rmtree(out, ignore_errors=True)
    return target


def new_workdir(data_dir: Path) -> Path:
    """A private directory for one upload or export under data_dir/tmp. Directories left behind
    by a crash (older than a day) are removed here, so they cannot pile up."""
    base = data_dir / "tmp"
    base.mkdir(parents=True, exist_ok=True)
    cutoff = time.time() - 86400
    for old in base.glob("web-*"):
        try:
            if old.stat().st_mtime < cutoff:
                shutil.rmtree(old, ignore_errors=True)
        except OSError:
            continue
    return Path(tempfile.mkdtemp(prefix="web-", dir=base))
