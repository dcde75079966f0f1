"""An account created by the first schema (the foundation release) opens with today's code:
every later migration applies once, and the old mail stays visible, searchable and intact."""

from __future__ import annotations

import datetime
from pathlib import Path

from mox.store import Store
from mox.store.db import MIGRATIONS, connect, get_meta, migrate

OLD_MESSAGE = b"From: a@example.test\r\nSubject: from the first release\r\n\r\nold body text\r\n"


async def test_first_schema_upgrades_in_place(tmp_path: Path) -> None:
    account_dir = tmp_path / "accounts" / "alice"
    (account_dir / "msg" / "ab").mkdir(parents=True)
    db_path = account_dir / "index.db"
    conn = connect(db_path)
    assert migrate(conn, MIGRATIONS[:1]) == 1  # the data directory as the first release left it
    (account_dir / "msg" / "ab" / "cdef").write_bytes(OLD_MESSAGE)
    inbox_id = conn.execute("SELECT id FROM mailboxes WHERE name = 'Inbox'").fetchone()[0]
    date = datetime.datetime(2026, 1, 1, tzinfo=datetime.UTC).isoformat()
    conn.execute("BEGIN")
    conn.execute(
        "INSERT INTO messages(mailbox_id, uid, modseq, flags, internal_date, size, path, expunged)"
        " VALUES (?, 1, 2, ?, ?, ?, 'msg/ab/cdef', 0)",
        (inbox_id, '["\\\\Seen"]', date, len(OLD_MESSAGE)),
    )
    conn.execute("UPDATE mailboxes SET uidnext = 2 WHERE id = ?", (inbox_id,))
    conn.execute("COMMIT")
    conn.close()

    async with Store(tmp_path) as store:
        acc = store.account("alice")
        assert acc.schema_version == len(MIGRATIONS)
        inbox = acc.get_mailbox("INBOX")
        assert inbox is not None
        (msg,) = acc.list_messages(inbox.id)
        assert msg.uid == 1
        assert "\\Seen" in msg.flags
        assert acc.read_message(msg) == OLD_MESSAGE
        assert acc.message_meta(msg) == {}  # meta column added, empty for old mail
        # Old mail is not in the full-text index; searches still find it by reading the file.
        assert acc.unindexed_uids(inbox.id) == {1}
        new = await acc.deliver("Inbox", b"Subject: new\r\n\r\nafter the upgrade\r\n")
        assert new.uid == 2
    conn = connect(db_path)
    try:
        assert get_meta(conn, "schema_version") == len(MIGRATIONS)
        assert conn.execute("PRAGMA integrity_check").fetchone() == ("ok",)
    finally:
        conn.close()
