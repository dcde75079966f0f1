"""Delivered messages are indexed after their commit, together, by the writer when idle (and now
and then under a steady load); until then SEARCH finds them through unindexed_uids, and nothing
is lost across close and reopen."""

from __future__ import annotations

import asyncio
from pathlib import Path

from mox.store import Store
from mox.store import account as account_mod

BIG = b"Subject: big one\r\n\r\n" + b"lorem ipsum dolor sit amet\r\n" * 1000 + b"needle-xyz\r\n"


async def test_messages_indexed_after_their_commit_together(tmp_path: Path) -> None:
    """Delivered messages wait up to INDEX_DELAY to be indexed together, in one transaction;
    until then SEARCH finds them through unindexed_uids."""
    async with Store(tmp_path) as store:
        acc = store.account("alice")
        inbox = acc.get_mailbox("Inbox")
        assert inbox is not None
        t0 = asyncio.get_running_loop().time()
        small = [
            await acc.deliver("Inbox", f"Subject: s{i}\r\n\r\nneedle-xyz {i}\r\n".encode())
            for i in range(10)
        ]
        big = await acc.deliver("Inbox", BIG)
        uids = {m.uid for m in small} | {big.uid}
        # Durable and visible at once, not indexed yet.
        assert {m.uid for m in acc.list_messages(inbox.id)} == uids
        if asyncio.get_running_loop().time() - t0 < account_mod.INDEX_DELAY / 2:
            assert acc.unindexed_uids(inbox.id) == uids
            assert acc.fts_search(inbox.id, "needle-xyz", text=False) == set()
        indexed_before = acc.index_count
        for _ in range(100):  # bounded: 10 s
            if not acc.unindexed_uids(inbox.id):
                break
            await asyncio.sleep(0.1)
        assert acc.unindexed_uids(inbox.id) == set()
        assert acc.index_count - indexed_before <= 2  # together, not one transaction each
        assert acc.fts_search(inbox.id, "needle-xyz", text=False) == uids
        assert acc.fts_search(inbox.id, "s7", text=True) == {small[7].uid}
        # A moved copy keeps its index entry.
        [(_, moved)] = await acc.move_messages(inbox.id, [big.uid], "Archive")
        archive = acc.get_mailbox("Archive")
        assert archive is not None
        assert acc.fts_search(archive.id, "dolor sit", text=False) == {moved}


async def test_unindexed_rows_indexed_from_files_after_reopen(tmp_path: Path) -> None:
    async with Store(tmp_path) as store:
        acc = store.account("alice")
        msgs = [await acc.deliver("Inbox", BIG) for _ in range(3)]
        await acc.index_backlog()
        # As after a crash before the background transaction: rows with indexed = 0, no text.
        acc._wconn.execute("DELETE FROM fts")
        acc._wconn.execute("UPDATE messages SET indexed = 0")
        inbox = acc.get_mailbox("Inbox")
        assert inbox is not None
        assert acc.unindexed_uids(inbox.id) == {m.uid for m in msgs}
    async with Store(tmp_path) as store:
        acc = store.account("alice")
        await acc.index_backlog()
        assert acc.unindexed_uids(inbox.id) == set()
        assert acc.fts_search(inbox.id, "needle-xyz", text=True) == {m.uid for m in msgs}


async def test_moved_before_indexing_is_indexed_from_its_file(tmp_path: Path) -> None:
    async with Store(tmp_path) as store:
        acc = store.account("alice")
        inbox = acc.get_mailbox("Inbox")
        assert inbox is not None
        big = await acc.deliver("Inbox", BIG)
        [(_, moved)] = await acc.move_messages(inbox.id, [big.uid], "Archive")
        await acc.index_backlog()
        archive = acc.get_mailbox("Archive")
        assert archive is not None
        assert acc.unindexed_uids(archive.id) == set()
        assert acc.fts_search(archive.id, "needle-xyz", text=False) == {moved}


async def test_concurrent_deliveries_indexed_after_their_commit(tmp_path: Path) -> None:
    async with Store(tmp_path) as store:
        acc = store.account("alice")
        inbox = acc.get_mailbox("Inbox")
        assert inbox is not None
        batches = acc.batch_count
        many = await asyncio.gather(
            *(
                acc.deliver("Inbox", f"Subject: m{i}\r\n\r\nneedle-abc {i}\r\n".encode())
                for i in range(20)
            )
        )
        assert acc.batch_count - batches < 20  # group commit: they shared batches
        uids = {m.uid for m in many}
        unindexed = acc.unindexed_uids(inbox.id)
        assert unindexed
        assert unindexed <= uids
        hits = acc.fts_search(inbox.id, "needle-abc", text=False)
        assert hits is not None
        assert hits | unindexed == uids
        await acc.index_backlog()
        assert acc.unindexed_uids(inbox.id) == set()
        assert acc.fts_search(inbox.id, "needle-abc", text=False) == uids
        assert acc.fts_search(inbox.id, "m7", text=True) == {many[7].uid}


async def test_index_not_starved_by_a_steady_write_load(tmp_path: Path) -> None:
    """With writes always pending, the backlog is still indexed between write batches."""
    async with Store(tmp_path) as store:
        acc = store.account("alice")
        inbox = acc.get_mailbox("Inbox")
        assert inbox is not None
        first = await asyncio.gather(
            *(acc.deliver("Inbox", b"Subject: x\r\n\r\nneedle-def\r\n") for _ in range(40))
        )
        waiting = {m.uid for m in first}
        assert acc.unindexed_uids(inbox.id) & waiting
        # A steady load: a new write at every turn of the event loop, so writes are pending
        # whenever a batch ends (bounded in count).
        writes: list[asyncio.Task[None]] = []
        batches = acc.batch_count
        while acc.unindexed_uids(inbox.id) & waiting:
            assert len(writes) < 50_000, "index starved"
            writes.append(asyncio.create_task(acc.set_subscribed("Inbox", True)))
            await asyncio.sleep(0)
        assert not writes[-1].done()  # still under load when indexed
        await asyncio.gather(*writes)
        assert acc.batch_count - batches > account_mod.INDEX_EVERY_BATCHES
        assert acc.fts_search(inbox.id, "needle-def", text=False) == waiting


async def test_missing_files_do_not_hold_up_indexing(tmp_path: Path) -> None:
    """More missing message files than one scan takes: they are indexed as empty, and the
    messages after them are still indexed."""
    async with Store(tmp_path) as store:
        acc = store.account("alice")
        inbox = acc.get_mailbox("Inbox")
        assert inbox is not None
        gone = await asyncio.gather(
            *(
                acc.deliver("Inbox", b"Subject: gone\r\n\r\nneedle-ghi\r\n")
                for _ in range(account_mod.INDEX_SCAN_BATCH + 5)
            )
        )
        await acc.index_backlog()
        # As if the files had gone before their turn: rows unindexed, files missing.
        acc._wconn.execute("DELETE FROM fts")
        acc._wconn.execute("UPDATE messages SET indexed = 0")
        for m in gone:
            acc.message_path(m).unlink()
        kept = await acc.deliver("Inbox", b"Subject: kept\r\n\r\nneedle-ghi\r\n")
        await acc.index_backlog()
        assert acc.unindexed_uids(inbox.id) == set()
        assert acc.fts_search(inbox.id, "needle-ghi", text=False) == {kept.uid}
