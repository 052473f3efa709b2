"""The ids a recipient has accepted outlive its restart (``client/seen_store.py``).

A message shown whose receipt was lost is sent again by its sender once the
recipient is back (the sender keeps every copy until its receipt). Before,
the ids window lived only in memory, so a recipient that had restarted in
between showed it a second time. Real sessions, a real relay core on a real
SQLite data dir, and the recipient's files opened as the terminal client
opens them (``open_local_state``) in a temporary ``$SUSURRO_HOME``.
"""

from __future__ import annotations

import sqlite3
import time
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from susurro.client import events as ev
from susurro.client.history import SqliteHistory
from susurro.client.localstate import open_local_state
from susurro.client.seen_store import SCHEMA, SeenRows
from susurro.crypto import IdentityKey, ReplayGuard, SessionPublicKey
from susurro.crypto.history import HistoryKey
from susurro.crypto.trust import TrustStore
from susurro.protocol import Mail, name_key
from tests.unit.test_offline_sessions import User, relay


def _from_disk(identity: IdentityKey, trust: TrustStore) -> dict[str, Any]:
    """bob's session options as the terminal client builds them from his files (``$SUSURRO_HOME``)."""
    history, mailbox, counters = open_local_state(identity, "bob", trust)
    return {
        "identity": identity, "trust": trust, "history": history, "mailbox": mailbox, "replay": counters.replay,
        "counters": counters.counters, "unconfirmed": counters.unconfirmed,
        "save_state": lambda now, force: counters.save(now, force=force),
    }  # fmt: skip


def test_a_message_shown_before_a_restart_and_sent_again_after_it_is_not_shown_twice(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SUSURRO_HOME", str(tmp_path / "bob-home"))
    clock = [time.time()]
    alice = User("alice", tmp_path)
    bob_identity, bob_trust = IdentityKey.generate(), TrustStore(None, key_of=name_key)
    room = relay(tmp_path / "relay")
    room.add("alice", **alice.session_options(clock))
    room.add("bob", **_from_disk(bob_identity, bob_trust))
    room.pump()
    room["alice"].send_message("warm-up", room.now, to=["bob"])
    assert [e for e in room.pump()["alice"] if isinstance(e, ev.Receipt)], "bob sends receipts"
    # bob shows the message, and his receipt never reaches alice (lost, or bob was killed first).
    room.intercept("alice", lambda frame: [] if isinstance(frame, Mail) and frame.kind == "receipt" else [frame])
    msg_id = room["alice"].send_message("shown once, before the restart", room.now, to=["bob"])
    assert [m.msg_id for m in room.pump()["bob"] if isinstance(m, ev.Message)] == [msg_id]
    room.hang_up("bob")  # killed: nothing saved at exit, only what was written as it happened
    room.pump()
    room.intercept("alice", None)
    room.add("bob-restarted", name="bob", **_from_disk(bob_identity, bob_trust))
    produced = room.pump()
    assert not [e for e in produced["bob-restarted"] if isinstance(e, (ev.Message, ev.Warning))], produced
    assert msg_id in {i for e in produced["alice"] if isinstance(e, ev.Receipt) for i in e.msg_ids}, "confirmed"
    assert room["alice"].outstanding() == []


def _rows(path: Path) -> int:
    with sqlite3.connect(path) as db:
        (count,) = db.execute("SELECT count(*) FROM seen").fetchone()
    return int(count)


def test_the_ids_on_disk_are_sealed_and_bounded_and_a_damaged_row_is_skipped(tmp_path: Path) -> None:
    identity = IdentityKey.generate()
    path = tmp_path / "history.sqlite3"
    history = SqliteHistory(path, HistoryKey.derive(identity))
    rows = SeenRows(HistoryKey.derive(identity), limit=5)
    history._seen = rows  # a small bound, to see it hold
    guard = ReplayGuard()
    history.keep_seen(guard)
    key = SessionPublicKey(bytes(32))
    for n in range(8):
        guard.check(key, "alice-the-sender", f"id{n}", n + 1, digest=bytes([n]) * 32, via=b"k" * 32)
    history.add_many([])  # written with the next messages stored
    assert _rows(path) == 5
    raw = path.read_bytes() + b"".join(p.read_bytes() for p in tmp_path.glob("history.sqlite3-*"))
    assert b"alice-the-sender" not in raw and b"id7" not in raw, "names and ids are sealed"
    with sqlite3.connect(path) as db:
        db.execute("UPDATE seen SET box = x'00' WHERE seq = (SELECT MIN(seq) FROM seen)")
    history.close()
    reopened = SqliteHistory(path, HistoryKey.derive(identity))
    assert [(s, m) for s, m, _ in reopened._seen.load(reopened._db)] == [
        ("alice-the-sender", f"id{n}") for n in (4, 5, 6, 7)
    ]
    other = SqliteHistory(path, HistoryKey.derive(IdentityKey.generate()))
    assert other._seen.load(other._db) == [], "another identity's key opens none of them"


@settings(max_examples=30, deadline=None)
@given(
    st.lists(
        st.tuples(
            st.text(min_size=1, max_size=40), st.text(min_size=1, max_size=32), st.binary(min_size=32, max_size=32)
        ),
        max_size=20,
        unique_by=lambda t: (t[0], t[1]),
    )
)
def test_what_is_written_is_what_is_read_back(entries: list[tuple[str, str, bytes]]) -> None:
    identity = IdentityKey.generate()
    rows = SeenRows(HistoryKey.derive(identity))
    db = sqlite3.connect(":memory:", isolation_level=None)
    db.executescript(SCHEMA)
    for sender, msg_id, digest in entries:
        rows.put(sender, msg_id, digest)
    rows.write(db)
    rows.committed()
    assert rows.load(db) == entries
