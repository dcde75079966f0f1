"""The message store against real files and a real SQLite database in tmp_path."""

from __future__ import annotations

import asyncio
import os
import re
import sqlite3
import threading
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path

import pytest

from mox.auth.password import derive_credentials
from mox.store import (
    Account,
    Change,
    Expunged,
    FlagsChanged,
    MailboxesChanged,
    MailboxExists,
    MailboxInvalid,
    MailboxNotFound,
    MessageAdded,
    Store,
    StoreError,
    files,
)


def inbox_id(acc: Account) -> int:
    mb = acc.get_mailbox("INBOX")
    assert mb is not None
    return mb.id


def mailbox_id(acc: Account, name: str) -> int:
    mb = acc.get_mailbox(name)
    assert mb is not None, name
    return mb.id


async def test_new_account_layout(acc: Account, tmp_path: Path) -> None:
    assert (tmp_path / "accounts" / "mjl" / "index.db").is_file()
    mbs = acc.list_mailboxes()
    assert [m.name for m in mbs] == ["Archive", "Drafts", "Inbox", "Junk", "Sent", "Trash"]
    assert all(m.subscribed for m in mbs)
    uses = {m.name: m.special_use for m in mbs}
    assert uses == {
        "Inbox": None,
        "Sent": "\\Sent",
        "Archive": "\\Archive",
        "Trash": "\\Trash",
        "Drafts": "\\Drafts",
        "Junk": "\\Junk",
    }
    assert len({m.uidvalidity for m in mbs}) == len(mbs)
    assert all(m.uidnext == 1 for m in mbs)
    assert acc.subscriptions() == sorted(m.name for m in mbs)
    conn = sqlite3.connect(tmp_path / "accounts" / "mjl" / "index.db")
    try:
        assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    finally:
        conn.close()


async def test_store_shares_account(store: Store) -> None:
    assert store.account("a") is store.account("a")
    for bad in ("", ".", "..", "a/b", "a\x00b"):
        with pytest.raises(StoreError):
            store.account(bad)


@pytest.mark.parametrize("name", ["INBOX", "inbox", "InBoX", "Inbox"])
async def test_inbox_case_insensitive(acc: Account, name: str) -> None:
    mb = acc.get_mailbox(name)
    assert mb is not None
    assert mb.name == "Inbox"


async def test_inbox_children_case_insensitive(acc: Account) -> None:
    await acc.create_mailbox("INBOX/x")
    mb = acc.get_mailbox("inbox/x")
    assert mb is not None
    assert mb.name == "Inbox/x"
    assert acc.get_mailbox("InboxX") is None


async def test_deliver_durable_and_readable(acc: Account, tmp_path: Path) -> None:
    data = b"From: a@example.org\r\nSubject: hi\r\n\r\nbody\r\n"
    date = datetime(2024, 1, 2, 3, 4, 5, tzinfo=timezone(timedelta(hours=2)))
    msg = await acc.deliver("INBOX", data, flags=["\\seen", "Important"], internal_date=date)
    assert msg.uid == 1
    assert msg.flags == frozenset({"\\Seen", "important"})
    assert msg.internal_date == date
    assert msg.internal_date.tzinfo == UTC
    assert msg.size == len(data)
    assert re.fullmatch(r"msg/[0-9a-f]{2}/[0-9a-f]{32}", msg.path)
    assert msg.path.split("/")[1] == msg.path.split("/")[2][:2]
    path = acc.message_path(msg)
    assert path == tmp_path / "accounts" / "mjl" / msg.path
    assert path.read_bytes() == data
    assert acc.read_message(msg) == data
    assert acc.list_messages(inbox_id(acc)) == [msg]
    assert acc.get_messages(inbox_id(acc), [1, 2]) == [msg]

    # An independent connection sees the committed row.
    conn = sqlite3.connect(tmp_path / "accounts" / "mjl" / "index.db")
    try:
        assert conn.execute("SELECT count(*) FROM messages").fetchone()[0] == 1
    finally:
        conn.close()


async def test_row_visible_only_after_deliver_returns(acc: Account) -> None:
    seen_at_notify: list[int] = []

    def listener(changes: list[Change]) -> None:
        # After the commit: the read connection sees the row already.
        seen_at_notify.append(len(acc.list_messages(inbox_id(acc))))

    acc.add_listener(listener)
    task = asyncio.create_task(acc.deliver("Inbox", b"x\r\n"))
    await asyncio.sleep(0)
    assert acc.list_messages(inbox_id(acc)) == []
    msg = await task
    assert acc.list_messages(inbox_id(acc)) == [msg]
    assert seen_at_notify == [1]


async def test_deliver_unknown_mailbox_leaves_no_file(acc: Account) -> None:
    with pytest.raises(MailboxNotFound):
        await acc.deliver("Nope", b"x")
    assert [p for p in (acc.dir / "msg").rglob("*") if p.is_file()] == []


async def test_group_commit(acc: Account) -> None:
    n = 50
    msgs = await asyncio.gather(*(acc.deliver("Inbox", b"msg %d\r\n" % i) for i in range(n)))
    assert sorted(m.uid for m in msgs) == list(range(1, n + 1))
    assert acc.commit_count < n
    assert acc.batch_count == acc.commit_count
    for i, m in enumerate(msgs):
        assert acc.read_message(m) == b"msg %d\r\n" % i
    status = acc.mailbox_status(inbox_id(acc))
    assert status.messages == n
    assert status.uidnext == n + 1


async def test_failing_op_does_not_fail_batch(acc: Account) -> None:
    results = await asyncio.gather(
        acc.deliver("Inbox", b"a"),
        acc.deliver("Missing", b"b"),
        acc.create_mailbox("Sent"),
        acc.deliver("Inbox", b"c"),
        return_exceptions=True,
    )
    assert isinstance(results[1], MailboxNotFound)
    assert isinstance(results[2], MailboxExists)
    assert len(acc.list_messages(inbox_id(acc))) == 2


async def test_uids_and_uidnext(acc: Account) -> None:
    ib = inbox_id(acc)
    m1 = await acc.deliver("Inbox", b"1")
    m2 = await acc.deliver("Inbox", b"2")
    assert (m1.uid, m2.uid) == (1, 2)
    await acc.store_flags(ib, [2], "add", ["\\Deleted"])
    assert await acc.expunge(ib) == [2]
    m3 = await acc.deliver("Inbox", b"3")
    assert m3.uid == 3  # UIDs are never reused
    st = acc.mailbox_status(ib)
    assert (st.messages, st.uidnext) == (2, 4)
    other = await acc.deliver("Sent", b"s")
    assert other.uid == 1  # per mailbox


async def test_uidvalidity_new_for_recreated_mailbox(acc: Account) -> None:
    mb = await acc.create_mailbox("Lists/foo")
    assert acc.get_mailbox("Lists") is not None  # parent created
    await acc.delete_mailbox("Lists/foo")
    mb2 = await acc.create_mailbox("Lists/foo")
    assert mb2.uidvalidity != mb.uidvalidity
    assert mb2.uidvalidity > mb.uidvalidity
    with pytest.raises(MailboxExists):
        await acc.create_mailbox("Lists/foo")


async def test_flags_and_modseq(acc: Account) -> None:
    ib = inbox_id(acc)
    for i in range(3):
        await acc.deliver("Inbox", b"%d" % i)
    base = acc.mailbox_status(ib).highest_modseq

    changed = await acc.store_flags(ib, [1, 2], "add", ["\\SEEN", "$Forwarded"])
    assert [m.uid for m in changed] == [1, 2]
    assert all(m.flags == {"\\Seen", "$forwarded"} for m in changed)
    ms1 = changed[0].modseq
    assert ms1 > base
    assert acc.mailbox_status(ib).highest_modseq == ms1
    assert acc.mailbox_status(ib).unseen == 1

    # Adding flags a message already has changes nothing and bumps nothing.
    assert await acc.store_flags(ib, [1], "add", ["\\Seen"]) == []
    assert acc.mailbox_status(ib).highest_modseq == ms1

    changed = await acc.store_flags(ib, [1, 2, 3], "remove", ["$forwarded"])
    assert [m.uid for m in changed] == [1, 2]
    ms2 = changed[0].modseq
    assert ms2 > ms1

    changed = await acc.store_flags(ib, [1, 3], "set", ["\\Flagged"])
    assert {m.uid: m.flags for m in changed} == {1: {"\\Flagged"}, 3: {"\\Flagged"}}
    assert changed[0].modseq > ms2
    msgs = {m.uid: m for m in acc.list_messages(ib)}
    assert msgs[1].flags == {"\\Flagged"}
    assert msgs[2].flags == {"\\Seen"}
    assert msgs[1].modseq == changed[0].modseq
    assert msgs[2].modseq == ms2

    with pytest.raises(StoreError):
        await acc.store_flags(ib, [1], "add", ["\\Recent"])
    with pytest.raises(ValueError, match="unknown flag operation"):
        await acc.store_flags(ib, [1], "toggle", ["x"])  # type: ignore[arg-type]


async def test_expunge_deletes_files(acc: Account) -> None:
    ib = inbox_id(acc)
    msgs = [await acc.deliver("Inbox", b"%d" % i) for i in range(4)]
    await acc.store_flags(ib, [1, 2, 3], "add", ["\\Deleted"])
    assert await acc.expunge(ib, [2, 3, 4]) == [2, 3]
    assert [m.uid for m in acc.list_messages(ib)] == [1, 4]
    assert acc.message_path(msgs[0]).exists()
    assert not acc.message_path(msgs[1]).exists()
    assert not acc.message_path(msgs[2]).exists()
    with pytest.raises(StoreError):
        acc.read_message(msgs[1])
    assert acc.get_messages(ib, [2, 3]) == []
    assert await acc.expunge(ib) == [1]
    assert not acc.message_path(msgs[0]).exists()
    assert await acc.expunge(ib) == []
    st = acc.mailbox_status(ib)
    assert (st.messages, st.size) == (1, 1)


async def test_copy_messages(acc: Account) -> None:
    ib = inbox_id(acc)
    await acc.deliver("Inbox", b"one", flags=["\\Seen"])
    await acc.deliver("Inbox", b"two")
    await acc.deliver("Archive", b"archived")
    pairs = await acc.copy_messages(ib, [1, 2, 99], "Archive")
    assert pairs == [(1, 2), (2, 3)]
    arch = mailbox_id(acc, "Archive")
    copies = acc.get_messages(arch, [2, 3])
    assert [acc.read_message(m) for m in copies] == [b"one", b"two"]
    assert copies[0].flags == {"\\Seen"}
    # Independent files: expunging the originals keeps the copies.
    await acc.store_flags(ib, [1, 2], "add", ["\\Deleted"])
    await acc.expunge(ib)
    assert [acc.read_message(m) for m in acc.get_messages(arch, [2, 3])] == [b"one", b"two"]
    with pytest.raises(MailboxNotFound):
        await acc.copy_messages(arch, [2], "Nope")


async def test_rename_with_children(acc: Account) -> None:
    await acc.create_mailbox("a/b/c")
    await acc.set_subscribed("a/b", True)
    await acc.deliver("a/b", b"x")
    before = acc.get_mailbox("a/b")
    assert before is not None
    await acc.rename_mailbox("a", "z/y")
    names = [m.name for m in acc.list_mailboxes()]
    assert "a" not in names
    assert "a/b" not in names
    assert {"z", "z/y", "z/y/b", "z/y/b/c"} <= set(names)
    after = acc.get_mailbox("z/y/b")
    assert after is not None
    assert (after.id, after.uidvalidity, after.uidnext) == (
        before.id,
        before.uidvalidity,
        before.uidnext,
    )
    assert after.subscribed
    assert "a/b" not in acc.subscriptions()
    assert len(acc.list_messages(after.id)) == 1

    with pytest.raises(MailboxNotFound):
        await acc.rename_mailbox("a", "q")
    with pytest.raises(MailboxExists):
        await acc.rename_mailbox("z/y", "Sent")
    with pytest.raises(MailboxInvalid):
        await acc.rename_mailbox("z/y", "z/y/b/d")
    with pytest.raises(MailboxInvalid):
        await acc.rename_mailbox("Sent", "Bad//name")


async def test_rename_inbox_moves_messages(acc: Account) -> None:
    await acc.create_mailbox("Inbox/child")
    for i in range(3):
        await acc.deliver("Inbox", b"m%d" % i, flags=["\\Seen"] if i == 0 else [])
    old = acc.get_mailbox("Inbox")
    assert old is not None
    changes: list[Change] = []
    acc.add_listener(changes.extend)
    await acc.rename_mailbox("INBOX", "Old/mail")

    inbox = acc.get_mailbox("Inbox")
    assert inbox is not None
    assert inbox.id == old.id
    assert inbox.uidvalidity == old.uidvalidity
    assert acc.list_messages(inbox.id) == []
    assert acc.get_mailbox("Inbox/child") is not None  # inferiors stay

    new = acc.get_mailbox("Old/mail")
    assert new is not None
    assert new.uidvalidity not in (old.uidvalidity,)
    moved = acc.list_messages(new.id)
    assert [m.uid for m in moved] == [1, 2, 3]
    assert [acc.read_message(m) for m in moved] == [b"m0", b"m1", b"m2"]
    assert moved[0].flags == {"\\Seen"}
    assert Expunged(inbox.id, (1, 2, 3)) in changes
    assert MailboxesChanged() in changes

    # New deliveries to Inbox continue after the old UIDs.
    m = await acc.deliver("Inbox", b"new")
    assert m.uid == 4


async def test_delete_rules(acc: Account) -> None:
    with pytest.raises(MailboxInvalid):
        await acc.delete_mailbox("inbox")
    with pytest.raises(MailboxNotFound):
        await acc.delete_mailbox("Nope")
    await acc.create_mailbox("p/c")
    with pytest.raises(MailboxInvalid, match="child"):
        await acc.delete_mailbox("p")
    await acc.set_subscribed("p/c", True)
    msg = await acc.deliver("p/c", b"x")
    await acc.delete_mailbox("p/c")
    assert not acc.message_path(msg).exists()
    assert acc.get_mailbox("p/c") is None
    assert "p/c" in acc.subscriptions()  # RFC 9051 §6.3.9: subscriptions survive
    await acc.delete_mailbox("p")
    assert acc.get_mailbox("p") is None


async def test_subscriptions(acc: Account) -> None:
    await acc.set_subscribed("Trash", False)
    assert "Trash" not in acc.subscriptions()
    trash = acc.get_mailbox("Trash")
    assert trash is not None
    assert not trash.subscribed
    await acc.set_subscribed("Not/there", True)
    await acc.set_subscribed("Not/there", True)
    assert acc.subscriptions().count("Not/there") == 1
    await acc.set_subscribed("Not/there", False)
    assert "Not/there" not in acc.subscriptions()
    with pytest.raises(MailboxInvalid):
        await acc.set_subscribed("", True)


@pytest.mark.parametrize(
    "name",
    ["", "/a", "a/", "a//b", "a\x00b", "a\tb", "a\x7fb", "a\u0085b", "x" * 201, "a*", "b%"],
)
async def test_invalid_mailbox_names(acc: Account, name: str) -> None:
    with pytest.raises(MailboxInvalid):
        await acc.create_mailbox(name)


async def test_long_name_ok_and_nfc(acc: Account) -> None:
    await acc.create_mailbox("x" * 200)
    await acc.create_mailbox("cafe\u0301")
    assert acc.get_mailbox("caf\u00e9") is not None


async def test_listeners(acc: Account) -> None:
    got: list[list[Change]] = []

    def bad(changes: list[Change]) -> None:
        raise RuntimeError("listener bug")

    acc.add_listener(bad)
    acc.add_listener(got.append)
    ib = inbox_id(acc)
    await acc.deliver("Inbox", b"x")
    assert got[-1] == [MessageAdded(ib, 1)]
    changed = await acc.store_flags(ib, [1], "add", ["\\Deleted"])
    assert got[-1] == [FlagsChanged(ib, 1, frozenset({"\\Deleted"}), changed[0].modseq)]
    await acc.expunge(ib)
    assert got[-1] == [Expunged(ib, (1,))]
    await acc.create_mailbox("new")
    assert got[-1] == [MailboxesChanged()]
    acc.remove_listener(got.append)
    acc.remove_listener(got.append)  # absent: no error
    n = len(got)
    await acc.deliver("Inbox", b"y")
    assert len(got) == n


async def test_credentials(acc: Account) -> None:
    assert acc.get_credentials() is None
    creds = derive_credentials("pencil")
    await acc.set_credentials(creds)
    assert acc.get_credentials() == creds
    creds2 = derive_credentials("other")
    await acc.set_credentials(creds2)
    assert acc.get_credentials() == creds2


async def test_mailbox_status(acc: Account) -> None:
    ib = inbox_id(acc)
    await acc.deliver("Inbox", b"12345", flags=["\\Seen"])
    await acc.deliver("Inbox", b"123")
    st = acc.mailbox_status(ib)
    assert (st.messages, st.unseen, st.size, st.uidnext) == (2, 1, 8, 3)
    mb = acc.get_mailbox("Inbox")
    assert mb is not None
    assert (st.uidvalidity, st.highest_modseq) == (mb.uidvalidity, mb.highest_modseq)
    with pytest.raises(MailboxNotFound):
        acc.mailbox_status(9999)


async def test_reopen_keeps_everything(tmp_path: Path) -> None:
    s = Store(tmp_path)
    acc = s.account("mjl")
    msg = await acc.deliver("Inbox", b"keep me", flags=["kw"])
    await acc.create_mailbox("Projects/x")
    await acc.set_subscribed("Projects/x", True)
    await acc.set_credentials(derive_credentials("pw"))
    mbs = acc.list_mailboxes()
    await s.aclose()
    with pytest.raises(StoreError):
        await acc.deliver("Inbox", b"closed")

    s2 = Store(tmp_path)
    try:
        acc2 = s2.account("mjl")
        assert acc2.list_mailboxes() == mbs
        assert acc2.list_messages(msg.mailbox_id) == [msg]
        assert acc2.read_message(msg) == b"keep me"
        assert "Projects/x" in acc2.subscriptions()
        assert acc2.get_credentials() is not None
        m2 = await acc2.deliver("Inbox", b"more")
        assert m2.uid == 2
        assert m2.modseq > msg.modseq
    finally:
        await s2.aclose()


async def test_aclose_finishes_pending(tmp_path: Path) -> None:
    s = Store(tmp_path)
    acc = s.account("mjl")
    ib = inbox_id(acc)
    await acc.deliver("Inbox", b"first")  # the file write is done, the next ones queue up
    tasks = [asyncio.create_task(acc.store_flags(ib, [1], "add", [f"k{i}"])) for i in range(5)]
    await asyncio.sleep(0)
    await s.aclose()
    assert all(t.done() and t.exception() is None for t in tasks)
    s2 = Store(tmp_path)
    try:
        (m,) = s2.account("mjl").list_messages(ib)
        assert m.flags == {f"k{i}" for i in range(5)}
    finally:
        s2.close()


def test_sync_usage_with_asyncio_run(tmp_path: Path) -> None:
    # How the CLI uses the store: plain asyncio.run per step, then close().
    s = Store(tmp_path)
    acc = s.account("cli")
    asyncio.run(acc.deliver("Inbox", b"one"))
    asyncio.run(acc.create_mailbox("Imported"))
    asyncio.run(acc.deliver("Imported", b"two"))
    assert len(acc.list_messages(inbox_id(acc))) == 1
    s.close()
    s.close()  # idempotent

    async def check() -> int:
        async with Store(tmp_path) as s2:
            return len(s2.account("cli").list_messages(mailbox_id(s2.account("cli"), "Imported")))

    assert asyncio.run(check()) == 1


async def assert_batch_fails_cleanly(acc: Account, monkeypatch: pytest.MonkeyPatch) -> None:
    """With the failure monkeypatched in, five concurrent deliveries all fail, leaving no row
    and no file; once it is undone, delivery works (and the failed ones used no UID)."""
    results = await asyncio.gather(
        *(acc.deliver("Inbox", b"%d" % i) for i in range(5)), return_exceptions=True
    )
    assert all(isinstance(r, OSError) for r in results)
    assert acc.list_messages(inbox_id(acc)) == []
    assert [p for p in (acc.dir / "msg").rglob("*") if p.is_file()] == []
    monkeypatch.undo()
    m = await acc.deliver("Inbox", b"ok")
    assert m.uid == 1


async def test_failed_batch_removes_files(acc: Account, monkeypatch: pytest.MonkeyPatch) -> None:
    real = files.fsync_dir

    def broken(path: Path) -> None:
        # Fail only the writer's directory fsyncs, so the batch (not the file write) fails.
        if threading.current_thread().name.startswith("mox-store-"):
            raise OSError("disk on fire")
        real(path)

    monkeypatch.setattr(files, "fsync_dir", broken)
    await assert_batch_fails_cleanly(acc, monkeypatch)


async def test_deliver_create_makes_the_mailbox_in_the_same_transaction(acc: Account) -> None:
    seen: list[Change] = []
    acc.add_listener(seen.extend)
    m = await acc.deliver("Lists/Mox", b"list mail", create=True)
    assert acc.commit_count == 1  # mailbox, its parent and the message: one transaction
    assert [c for c in seen if isinstance(c, MailboxesChanged)]
    lists, mox = acc.get_mailbox("Lists"), acc.get_mailbox("Lists/Mox")
    assert lists is not None
    assert mox is not None
    assert m.mailbox_id == mox.id
    assert m.uid == 1
    m2 = await acc.deliver("Lists/Mox", b"more", create=True)  # exists now: just delivered
    assert m2.uid == 2
    with pytest.raises(MailboxInvalid):
        await acc.deliver("bad//name", b"x", create=True)
    assert acc.get_mailbox("bad//name") is None
    assert sorted(p.read_bytes() for p in (acc.dir / "msg").rglob("*") if p.is_file()) == [
        b"list mail",
        b"more",
    ]


async def test_batch_files_durable_before_the_commit(
    acc: Account, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The writer writes a batch's files and fsyncs them (sync_files) before its COMMIT: at that
    # moment the files are complete and no other connection sees the rows yet.
    real = files.sync_files
    checks: list[tuple[int, list[bytes], int]] = []

    def check(fds: list[int]) -> None:
        contents = [Path(os.readlink(f"/proc/self/fd/{fd}")).read_bytes() for fd in fds]
        other = sqlite3.connect(acc.dir / "index.db")
        try:
            rows = other.execute("SELECT count(*) FROM messages").fetchone()[0]
        finally:
            other.close()
        checks.append((len(fds), sorted(contents), rows))
        real(fds)

    monkeypatch.setattr(files, "sync_files", check)
    msgs = await asyncio.gather(*(acc.deliver("Inbox", b"m%d" % i) for i in range(20)))
    assert sum(n for n, _, _ in checks) == 20
    assert sorted(c for _, contents, _ in checks for c in contents) == sorted(
        b"m%d" % i for i in range(20)
    )
    assert [rows for _, _, rows in checks] == [0] * len(checks)
    assert sorted(m.uid for m in msgs) == list(range(1, 21))


async def test_failed_file_sync_fails_the_batch(
    acc: Account, monkeypatch: pytest.MonkeyPatch
) -> None:
    def broken(fds: list[int]) -> None:
        raise OSError("fsync failed")

    monkeypatch.setattr(files, "sync_files", broken)
    await assert_batch_fails_cleanly(acc, monkeypatch)


async def test_big_message_written_before_the_batch(acc: Account) -> None:
    from mox.store.account import WRITER_FILE_MAX

    big = b"Subject: big\r\n\r\n" + b"x" * WRITER_FILE_MAX + b"\r\n"
    small = b"Subject: small\r\n\r\nsmall\r\n"
    m1, m2 = await asyncio.gather(acc.deliver("Inbox", big), acc.deliver("Inbox", small))
    assert acc.read_message(m1) == big
    assert acc.read_message(m2) == small
    with pytest.raises(MailboxNotFound):
        await acc.deliver("Nope", big)
    files_left = sorted(len(p.read_bytes()) for p in (acc.dir / "msg").rglob("*") if p.is_file())
    assert files_left == sorted([len(big), len(small)])
