"""Big messages are indexed after their delivery's commit, by the writer when idle; until then
SEARCH finds them through unindexed_uids, and nothing is lost across close and reopen."""

from __future__ import annotations

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
