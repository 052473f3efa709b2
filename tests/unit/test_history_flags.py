"""Review S4 finding 10: the history keeps each message's trust, key and warnings.

A message shown flagged (a changed key, a gap, a late one) must come back from
the history flagged after a restart, and one whose key is no longer the one
pinned for its sender is shown as from another key. Real sessions on a relay
core in memory, a real SQLite history file reopened as a restart does.
"""

from __future__ import annotations

from pathlib import Path

import msgpack
import pytest
from hypothesis import given
from hypothesis import strategies as st

from susurro.client import events as ev
from susurro.client.history import SqliteHistory
from susurro.client.incoming import shown_records
from susurro.client.render import history_marks
from susurro.crypto import IdentityKey
from susurro.crypto.errors import MalformedMessage
from susurro.crypto.history import HistoryKey, HistoryRecord
from susurro.crypto.padding import pad
from susurro.crypto.trust import TrustState, TrustStore
from susurro.protocol import name_key
from tests.helpers.session_pair import SessionPair, only


def alice_with_history(tmp_path: Path) -> tuple[SessionPair, IdentityKey, TrustStore, Path]:
    pair = SessionPair()
    alice, store, path = IdentityKey.generate(), TrustStore(key_of=name_key), tmp_path / "alice.sqlite3"
    pair.add("alice", identity=alice, trust=store, history=SqliteHistory(path, HistoryKey.derive(alice)))
    pair.pump()
    pair.join("bob")
    return pair, alice, store, path


def reopened(path: Path, alice: IdentityKey) -> list[HistoryRecord]:
    """The room's rows as alice's next process reads them."""
    return [e.record for e in SqliteHistory(path, HistoryKey.derive(alice)).page("room:main").entries]


def test_a_message_shown_under_a_changed_key_comes_back_changed_after_a_restart(tmp_path: Path) -> None:
    pair, alice, store, path = alice_with_history(tmp_path)
    pair["bob"].close()
    pair.pump()
    del pair.nodes["bob"]
    substitute = IdentityKey.generate()  # the relay puts its own key under bob's name
    pair.add("bob", identity=substitute)
    pair.pump()
    pair["bob"].send_message("pay mallory", pair.now)
    shown = only(pair.pump()["alice"], ev.Message)
    assert [(m.text, m.trust) for m in shown] == [("pay mallory", TrustState.CHANGED)]

    (row,) = reopened(path, alice)
    assert (row.body, row.trust, row.sender_key) == ("pay mallory", TrustState.CHANGED, substitute.public)
    now = store.state(row.sender, row.sender_key)
    assert now is TrustState.CHANGED
    assert "[key changed]" in history_marks(row, now) and "another key" in history_marks(row, now)


def test_a_row_under_a_key_no_longer_pinned_is_shown_as_from_another_key(tmp_path: Path) -> None:
    pair, alice, store, path = alice_with_history(tmp_path)
    old_bob = pair.identity("bob")
    pair["bob"].send_message("hello", pair.now)
    pair.pump()
    # later the pin for bob moves to another key (accepted): the old row is not bob's key any more
    store.accept("bob", IdentityKey.generate().public)
    (row,) = reopened(path, alice)
    assert row.sender_key == old_bob.public and row.trust is TrustState.NEW
    assert "another key" in history_marks(row, store.state(row.sender, row.sender_key))


def test_the_warnings_shown_with_a_message_are_kept_with_it() -> None:
    gap = ev.Warning(kind=ev.WarningKind.GAP, detail="2 never arrived", sender="bob")
    late = ev.Warning(kind=ev.WarningKind.LATE, detail="late", sender="bob")
    other = ev.Warning(kind=ev.WarningKind.REPLAY, detail="a replay", sender="bob")
    message = ev.Message(sender="bob", text="hi", to=(), direct=False, msg_id="m1", sent_at=1, trust=TrustState.PINNED)
    clean = ev.Message(sender="bob", text="again", to=(), direct=False, msg_id="m2", sent_at=2)
    first, second = shown_records([other, gap, late, message, clean], "alice")
    assert first.warnings == ("gap", "late") and second.warnings == ()
    assert "[gap, late]" in history_marks(first, TrustState.PINNED)


def test_a_row_from_before_the_flags_were_kept_says_its_trust_was_not_recorded(tmp_path: Path) -> None:
    key = HistoryKey.derive(IdentityKey.generate())
    legacy = bytes(key._box.encrypt(pad(msgpack.packb(["room:main", "m1", "bob", 1, False, "old"]))))
    record = key.open(legacy, "room:main")
    assert record.trust is None and record.sender_key == b""
    assert history_marks(record, None) == " [trust not recorded]"


@given(
    key=st.sampled_from([b"", bytes(32)]),
    trust=st.sampled_from([None, *TrustState]),
    warnings=st.lists(st.sampled_from([k.value for k in ev.WarningKind]), max_size=16).map(tuple),
)
def test_rows_round_trip_their_flags(key: bytes, trust: TrustState | None, warnings: tuple[str, ...]) -> None:
    history = HistoryKey(bytes(range(32)))
    record = HistoryRecord(
        conversation="dm:bob", msg_id="m", sender="bob", sent_at=5, outgoing=False, body="b",
        sender_key=key, trust=trust, warnings=warnings,
    )  # fmt: skip
    assert history.open(history.seal(record), "dm:bob") == record


@pytest.mark.parametrize(
    "flags", [[b"short", "new", []], [b"", "trusted", []], [b"", "new", ["x" * 65]], [b"", "new", ["gap"] * 17]]
)
def test_rows_with_bad_flags_are_refused(flags: list[object]) -> None:
    history = HistoryKey(bytes(range(32)))
    box = bytes(history._box.encrypt(pad(msgpack.packb(["dm:bob", "m", "bob", 5, False, "b", *flags]))))
    with pytest.raises(MalformedMessage):
        history.open(box, "dm:bob")
