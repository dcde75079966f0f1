"""Big messages, and messages delivered under concurrent load, are indexed after their commit, by
the writer when idle; until then SEARCH finds them through unindexed_uids, and nothing is lost
across close and reopen."""

from __future__ import annotations

import asyncio
from pathlib import Path

from mox.store import Store
from mox.store import account as account_mod

BIG = b"Subject: big one\r\n\r\n" + b"lorem ipsum dolor sit amet\r\n" * 1000 + b"needle-xyz\r\n"


async def test_big_message_indexed_in_background(tmp_path: Path) -> None:
    assert len(BIG) > account_mod.INDEX_INLINE_MAX
    async with Store(tmp_path) as store:
        acc = store.account("alice")
        inbox = acc.get_mailbox("Inbox")
        assert inbox is not None
        small = await acc.deliver("Inbox", b"Subject: small\r\n\r\nneedle-xyz\r\n")
        big = await acc.deliver("Inbox", BIG)
        # Durable and visible at once; the small one indexed in its own transaction.
        assert [m.uid for m in acc.list_messages(inbox.id)] == [small.uid, big.uid]
        hits = acc.fts_search(inbox.id, "needle-xyz", text=False)
        assert hits is not None
        assert small.uid in hits
        assert hits | acc.unindexed_uids(inbox.id) == {small.uid, big.uid}
        await acc.index_backlog()
        assert acc.unindexed_uids(inbox.id) == set()
        assert acc.fts_search(inbox.id, "needle-xyz", text=False) == {small.uid, big.uid}
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
    """Under concurrent load (more than one write in a batch) the texts are indexed later, from
    the files; one delivery alone is indexed in its own transaction. SEARCH finds both at once."""
    async with Store(tmp_path) as store:
        acc = store.account("alice")
        inbox = acc.get_mailbox("Inbox")
        assert inbox is not None
        alone = await acc.deliver("Inbox", b"Subject: alone\r\n\r\nneedle-abc\r\n")
        assert acc.unindexed_uids(inbox.id) == set()
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
        assert unindexed and unindexed <= uids
        hits = acc.fts_search(inbox.id, "needle-abc", text=False)
        assert hits is not None
        assert hits | unindexed == uids | {alone.uid}
        await acc.index_backlog()
        assert acc.unindexed_uids(inbox.id) == set()
        assert acc.fts_search(inbox.id, "needle-abc", text=False) == uids | {alone.uid}
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
