"""client/history.py and crypto/history.py: the local history, sealed at rest.

A real SQLite file in a temporary $SUSURRO_HOME; the file (and its WAL) is
read back as bytes and searched for every plaintext written.
"""

from __future__ import annotations

import os
import sqlite3
import stat
from pathlib import Path

import pytest

from susurro.client.history import HistoryError, NoHistory, SqliteHistory
from susurro.crypto import IdentityKey
from susurro.crypto.errors import DecryptFailed, MalformedMessage
from susurro.crypto.history import HistoryKey, HistoryRecord

ALICE = IdentityKey.generate()


def record(n: int, conversation: str = "room:main", body: str | None = None) -> HistoryRecord:
    return HistoryRecord(
        conversation=conversation,
        msg_id=f"id{n:06d}",
        sender="bob" if n % 2 else "alice",
        sent_at=1_764_000_000_000 + n,
        outgoing=not n % 2,
        body=body if body is not None else f"message number {n}",
    )


def open_history(tmp_path: Path, identity: IdentityKey = ALICE, **kw: int) -> SqliteHistory:
    return SqliteHistory(tmp_path / "history" / "alice.sqlite3", HistoryKey.derive(identity), **kw)


def all_bytes(path: Path) -> bytes:
    return b"".join(p.read_bytes() for p in path.parent.iterdir() if p.name.startswith(path.name))


def test_messages_come_back_in_order_after_reopening(tmp_path: Path) -> None:
    history = open_history(tmp_path)
    for n in range(5):
        assert history.add(record(n))
    history.close()
    again = open_history(tmp_path)
    page = again.page("room:main")
    assert [e.record for e in page.entries] == [record(n) for n in range(5)]
    assert not page.older and again.count("room:main") == 5


def test_the_database_holds_no_plaintext_names_or_ids(tmp_path: Path) -> None:
    secret = "the eagle lands at midnight"
    history = open_history(tmp_path)
    history.add(record(1, "dm:carolina", body=secret))
    history.add(record(2, "room:conspiracy", body=secret + " again"))
    path = history.path
    data = all_bytes(path)
    history.close()
    data += all_bytes(path)
    for needle in (secret, "eagle", "carolina", "conspiracy", "id000001", "bob", "message number"):
        assert needle.encode() not in data, needle
        assert needle.encode("utf-16-le") not in data, needle
    assert bytes.fromhex(secret.encode().hex()) not in data


def test_the_file_is_private_and_a_readable_one_is_refused(tmp_path: Path) -> None:
    history = open_history(tmp_path)
    history.close()
    assert stat.S_IMODE(history.path.stat().st_mode) == 0o600
    assert stat.S_IMODE(history.path.parent.stat().st_mode) == 0o700
    os.chmod(history.path, 0o644)
    with pytest.raises(HistoryError, match="chmod 600"):
        open_history(tmp_path)


def test_duplicates_are_stored_once(tmp_path: Path) -> None:
    history = open_history(tmp_path)
    assert history.add(record(1))
    assert not history.add(record(1))  # the relay resent a mailbox item
    assert history.add_many([record(1), record(2), record(2)]) == 1
    assert history.count("room:main") == 2


def test_pages_go_back_in_time(tmp_path: Path) -> None:
    history = open_history(tmp_path)
    history.add_many(record(n) for n in range(120))
    newest = history.page("room:main", limit=50)
    assert [e.record.msg_id for e in newest.entries] == [f"id{n:06d}" for n in range(70, 120)]
    assert newest.older
    middle = history.page("room:main", before=newest.entries[0].seq, limit=50)
    assert [e.record.msg_id for e in middle.entries] == [f"id{n:06d}" for n in range(20, 70)]
    oldest = history.page("room:main", before=middle.entries[0].seq, limit=50)
    assert len(oldest.entries) == 20 and not oldest.older


def test_each_conversation_keeps_only_its_newest_messages(tmp_path: Path) -> None:
    history = open_history(tmp_path, max_per_conversation=10)
    history.add_many(record(n) for n in range(25))
    history.add(record(99, "dm:bob"))
    assert history.count("room:main") == 10
    assert [e.record.msg_id for e in history.page("room:main").entries] == [f"id{n:06d}" for n in range(15, 25)]
    assert history.count("dm:bob") == 1


def test_forget_deletes_one_conversation_and_its_bytes(tmp_path: Path) -> None:
    history = open_history(tmp_path)
    history.add_many(record(n, "dm:bob") for n in range(3))
    history.add(record(7, "room:main"))
    sealed_rows = [r[0] for r in sqlite3.connect(history.path).execute("SELECT box FROM messages")]
    assert history.conversations() == ["dm:bob", "room:main"]
    assert history.forget("dm:bob") == 3
    assert history.conversations() == ["room:main"]
    assert history.page("dm:bob").entries == ()
    data = all_bytes(history.path)
    gone = [row for row in sealed_rows if row not in data]
    assert len(gone) == 3  # secure_delete + checkpoint: the sealed rows are zeroed, not left in free pages


def test_rows_moved_between_conversations_or_from_another_identity_are_refused(tmp_path: Path) -> None:
    history = open_history(tmp_path)
    history.add(record(1, "dm:bob"))
    history.add(record(2, "dm:carol"))
    db = sqlite3.connect(history.path)
    bob_label, carol_label = (HistoryKey.derive(ALICE).label("conversation", c) for c in ("dm:bob", "dm:carol"))
    db.execute("UPDATE messages SET conv = ? WHERE conv = ?", (bob_label, carol_label))
    db.commit()
    page = history.page("dm:bob")
    assert [e.record.msg_id for e in page.entries] == ["id000001"] and page.refused == 1
    other = HistoryKey.derive(IdentityKey.generate())
    (box,) = db.execute("SELECT box FROM messages LIMIT 1").fetchone()
    with pytest.raises(DecryptFailed):
        other.open(box, "dm:bob")
    with pytest.raises(MalformedMessage):
        HistoryKey.derive(ALICE).open(box, "dm:somebody-else")


def test_the_history_key_is_the_identity_keys_and_nothing_else(tmp_path: Path) -> None:
    seed = bytes(range(32))
    first, second = HistoryKey.derive(IdentityKey.from_seed(seed)), HistoryKey.derive(IdentityKey.from_seed(seed))
    assert first.label("conversation", "x") == second.label("conversation", "x")
    assert first.label("conversation", "x") != HistoryKey.derive(ALICE).label("conversation", "x")
    assert first.label("conversation", "x") != first.label("message", "x")


def test_no_history_keeps_nothing(tmp_path: Path) -> None:
    history = NoHistory()
    assert history.add(record(1))
    assert history.page("room:main").entries == () and history.conversations() == []
    assert not any(tmp_path.iterdir())


def test_the_whole_history_is_bounded_in_bytes_whatever_the_conversations(tmp_path: Path) -> None:
    # Anyone may write to us in as many conversations as they like (review S5 finding 8): past the
    # client-wide bound the oldest rows of any conversation go, and their counts with them.
    path = tmp_path / "history" / "alice.sqlite3"
    history = open_history(tmp_path, max_bytes=40_000)
    for n in range(300):
        history.add(record(n, conversation=f"dm:spam{n % 30}", body="x" * 100))
    history.add(record(999, conversation="dm:bob"))
    with sqlite3.connect(path) as db:
        (stored,) = db.execute("SELECT sum(length(box)) FROM messages").fetchone()
        (rows,) = db.execute("SELECT count(*) FROM messages").fetchone()
    assert stored <= 40_000 and rows < 300
    counts = {c: history.count(c) for c in history.conversations()}
    assert sum(counts.values()) == rows and counts["dm:bob"] == 1  # the newest is kept
    assert "dm:spam0" not in counts or history.page("dm:spam0").entries[0].record.msg_id != "id000000"
    history.close()
    again = open_history(tmp_path, max_bytes=40_000)  # counted again on opening: still bounded
    for n in range(300, 400):
        again.add(record(n, conversation="dm:carol", body="y" * 100))
    with sqlite3.connect(path) as db:
        assert db.execute("SELECT sum(length(box)) FROM messages").fetchone()[0] <= 40_000
    again.close()
