"""Rooms on the relay, socket-free: ``RelayCore`` with in-memory outboxes and a real SQLite store.

Every entry is really signed; every frame read back is decoded with the
client's validation. Each refusal is a ``room_error`` for that request, and
the connection (and everyone else) carries on.
"""

from __future__ import annotations

import logging
import sqlite3
from pathlib import Path
from typing import Any

import pytest

from susurro.crypto import (
    EntryKind,
    IdentityKey,
    LogRules,
    RoomEntry,
    RoomPolicy,
    RoomState,
    SessionCertificate,
    SessionKey,
    create_entry,
    join_proof,
    verify_log,
)
from susurro.crypto.membership import MAX_SELF_ADDS_PER_KEY
from susurro.protocol import (
    Error,
    Frame,
    Hello,
    Ping,
    Pong,
    RoomAppend,
    RoomCreate,
    RoomError,
    RoomFetch,
    RoomFind,
    RoomIndex,
    RoomList,
    RoomLog,
    RoomUpdate,
    encode,
    name_key,
)
from susurro.protocol.framing import encode_frame, pack_payload
from susurro.relay import RelayConfig, RelayCore
from susurro.relay.rooms import valid_name
from susurro.relay.store import DATABASE_FILE
from tests.helpers.memory import MemoryOutbox

RULES = LogRules(name_key=name_key, name_ok=valid_name)
T = 1_764_000_000


def hello_for(name: str, nonce: bytes, identity: IdentityKey) -> Hello:
    session = SessionKey.generate()
    cert = SessionCertificate.issue(identity, name, session.public, T)
    return Hello(
        name=name,
        ik=identity.public,
        sk=session.public,
        cert=cert.signature,
        issued_at=T,
        proof=join_proof(identity, nonce, name, session.public),
    )


class Member:
    """One joined connection with its identity, driving room requests."""

    def __init__(self, core: RelayCore, name: str, identity: IdentityKey | None = None) -> None:
        self.core = core
        self.name = name
        self.identity = identity or IdentityKey.generate()
        self.outbox = MemoryOutbox()
        conn = core.connect(self.outbox, "test:1")
        assert conn is not None
        self.conn = conn
        assert core.receive(self.conn, encode(hello_for(name, self.conn.nonce, self.identity)))
        self.outbox.new_frames()
        self._ids = 0

    @property
    def ik(self) -> bytes:
        return self.identity.public

    def request(self, frame: Frame) -> Frame:
        """Send one room request; return the answer (pushes and roster noise skipped)."""
        assert self.core.receive(self.conn, encode(frame, max_frame=16 * 1024 * 1024)) is True
        answers = [f for f in self.outbox.new_frames() if isinstance(f, (RoomLog, RoomError, RoomIndex))]
        assert len(answers) == 1, answers
        return answers[0]

    def next_id(self) -> str:
        self._ids += 1
        return f"q{self._ids}"

    def create(self, label: str, policy: RoomPolicy = RoomPolicy.INVITE) -> RoomState:
        entry = create_entry(self.identity, name=self.name, label=label, policy=policy, time=T).to_bytes()
        answer = self.request(RoomCreate(id=self.next_id(), entry=entry))
        assert isinstance(answer, RoomLog), answer
        return verify_log([entry], RULES)

    def sign(self, state: RoomState, kind: EntryKind, subject: Member, **kw: Any) -> bytes:
        return state.next_entry(
            self.identity, kind=kind, subject_name=subject.name, subject_ik=subject.ik, time=T + 1, **kw
        ).to_bytes()

    def append(self, state: RoomState, *entries: bytes) -> Frame:
        return self.request(RoomAppend(id=self.next_id(), room=state.room_id, entries=entries))

    def fetch(self, room: bytes, from_seq: int = 0) -> Frame:
        return self.request(RoomFetch(id=self.next_id(), room=room, from_seq=from_seq))

    def pushes(self) -> list[RoomUpdate]:
        return [f for f in self.outbox.new_frames() if isinstance(f, RoomUpdate)]

    def alive(self) -> None:
        self.outbox.new_frames()
        assert self.core.receive(self.conn, encode(Ping()))
        assert self.outbox.new_frames() == [Pong()]


def make_core(tmp_path: Path | None = None, **overrides: Any) -> RelayCore:
    settings: dict[str, Any] = {"rate_per_second": 0}  # these tests send many frames at once
    if tmp_path is not None:
        settings["data_dir"] = str(tmp_path / "data")
    settings.update(overrides)
    return RelayCore(RelayConfig(**settings))


def refused(answer: Frame, code: str) -> RoomError:
    assert isinstance(answer, RoomError), answer
    assert answer.code == code, answer
    return answer


# --- create ---------------------------------------------------------------------


def test_create_stores_the_room_and_answers_its_head(tmp_path: Path) -> None:
    core = make_core(tmp_path)
    alice = Member(core, "alice")
    entry = create_entry(alice.identity, name="alice", label="ops", policy=RoomPolicy.INVITE, time=T).to_bytes()
    answer = alice.request(RoomCreate(id="c1", entry=entry))
    state = verify_log([entry], RULES)
    assert answer == RoomLog(
        id="c1",
        room=state.room_id,
        label="ops",
        from_seq=1,
        entries=(),
        head_seq=0,
        head_hash=state.room_id,
        online=("alice",),
    )
    assert alice.fetch(state.room_id).entries == (entry,)  # type: ignore[attr-defined]


@pytest.mark.parametrize("label", ["ops", "OPS", "Ops", "оps", "0ps"], ids=ascii)
def test_labels_are_unique_under_casefold_and_lookalikes(label: str) -> None:
    core = make_core()
    alice, bob = Member(core, "alice"), Member(core, "bob")
    alice.create("ops")
    entry = create_entry(bob.identity, name="bob", label=label, policy=RoomPolicy.OPEN, time=T).to_bytes()
    if not valid_name(label):  # mixed scripts: refused by the name rules before uniqueness
        refused(bob.request(RoomCreate(id="c", entry=entry)), "bad_entry")
        return
    error = refused(bob.request(RoomCreate(id="c", entry=entry)), "label_taken")
    assert "ops" in error.detail
    bob.alive()


def test_create_signed_by_someone_else_or_with_a_bad_signature_is_refused() -> None:
    core = make_core()
    alice, mallory = Member(core, "alice"), Member(core, "mallory")
    entry = create_entry(alice.identity, name="alice", label="ops", policy=RoomPolicy.INVITE, time=T)
    assert "own key" in refused(mallory.request(RoomCreate(id="c", entry=entry.to_bytes())), "bad_entry").detail
    forged = bytearray(entry.to_bytes())
    forged[-1] ^= 1
    assert "bad_entry_signature" in refused(alice.request(RoomCreate(id="c", entry=bytes(forged))), "bad_entry").detail
    assert core.rooms.store.room_count() == 0


def test_a_flood_of_room_creations_stops_at_the_per_identity_limit_and_others_carry_on() -> None:
    core = make_core(max_rooms_per_identity=5)
    mallory, alice = Member(core, "mallory"), Member(core, "alice")
    for i in range(5):
        mallory.create(f"spam{i}")
    for i in range(5, 40):
        entry = create_entry(mallory.identity, name="mallory", label=f"spam{i}", policy=RoomPolicy.OPEN, time=T)
        error = refused(mallory.request(RoomCreate(id="c", entry=entry.to_bytes())), "room_limit")
        assert "5 rooms" in error.detail
    assert core.rooms.store.room_count() == 5
    alice.create("ops")  # others are unaffected
    mallory.alive()


def test_the_relay_wide_room_limit() -> None:
    core = make_core(max_rooms=2)
    alice = Member(core, "alice")
    alice.create("a")
    alice.create("b")
    entry = create_entry(alice.identity, name="alice", label="c", policy=RoomPolicy.OPEN, time=T).to_bytes()
    assert "2 rooms" in refused(alice.request(RoomCreate(id="c", entry=entry)), "room_limit").detail


# --- append -------------------------------------------------------------------------


def test_add_reaches_the_new_member_and_the_room_and_is_logged(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="susurro.relay")
    core = make_core()
    alice, bob, carol = Member(core, "alice"), Member(core, "bob"), Member(core, "carol")
    state = alice.create("ops")
    add = alice.sign(state, EntryKind.ADD, bob)
    answer = alice.append(state, add)
    assert isinstance(answer, RoomLog) and answer.head_seq == 1 and answer.entries == ()
    assert sorted(answer.online) == ["alice", "bob"]
    (update,) = bob.pushes()
    assert update.entries == (add,) and update.from_seq == 1 and update.head_seq == 1
    assert carol.pushes() == []  # not a member: hears nothing
    assert alice.pushes() == []  # the appender has its answer
    lines = [r.getMessage() for r in caplog.records]
    assert any(line.startswith(f"room-create room={state.short_id} label=ops by=alice") for line in lines)
    assert any(line.startswith(f"room-add room={state.short_id} label=ops seq=1 name=bob by=alice") for line in lines)


def test_a_removed_member_is_told_and_no_longer_listed_online() -> None:
    core = make_core()
    alice, bob, carol = Member(core, "alice"), Member(core, "bob"), Member(core, "carol")
    state = alice.create("ops")
    alice.append(state, add := alice.sign(state, EntryKind.ADD, bob))
    state = state.extend([add])
    alice.append(state, add_carol := alice.sign(state, EntryKind.ADD, carol))
    state = state.extend([add_carol])
    assert bob.pushes()[0].entries == (add,)
    carol.pushes()
    remove = alice.sign(state, EntryKind.REMOVE, bob)
    assert isinstance(alice.append(state, remove), RoomLog)
    [told] = bob.pushes()
    assert told.entries == (remove,)
    # The update's presence is the room after the append: a removed member
    # listed as online made the other members' clients warn that the relay
    # announced a non-member.
    [update] = carol.pushes()
    assert set(update.online) == {"alice", "carol"}
    assert set(told.online) == {"alice", "carol"}


def test_a_member_removed_from_an_open_room_cannot_add_itself_back() -> None:
    core = make_core()
    alice, bob = Member(core, "alice"), Member(core, "bob")
    state = alice.create("lobby", RoomPolicy.OPEN)
    join = bob.sign(state, EntryKind.ADD, bob)
    assert isinstance(bob.append(state, join), RoomLog)
    state = state.extend([join])
    remove = alice.sign(state, EntryKind.REMOVE, bob)
    assert isinstance(alice.append(state, remove), RoomLog)
    state = state.extend([remove])
    error = refused(bob.append(state, bob.sign(state, EntryKind.ADD, bob)), "bad_entry")
    assert "entry_not_permitted" in error.detail and "only an admin may add them back" in error.detail
    log = alice.fetch(state.room_id)
    assert isinstance(log, RoomLog) and log.head_seq == 2
    assert isinstance(alice.append(state, alice.sign(state, EntryKind.ADD, bob)), RoomLog)  # an admin may
    bob.alive()


def test_a_remove_signed_by_a_non_admin_is_refused_and_not_stored() -> None:
    core = make_core()
    alice, bob, carol = Member(core, "alice"), Member(core, "bob"), Member(core, "carol")
    state = alice.create("ops")
    for who in (bob, carol):
        entry = alice.sign(state, EntryKind.ADD, who)
        assert isinstance(alice.append(state, entry), RoomLog)
        state = state.extend([entry])
    error = refused(bob.append(state, bob.sign(state, EntryKind.REMOVE, carol)), "bad_entry")
    assert "entry_not_permitted" in error.detail
    log = alice.fetch(state.room_id)
    assert isinstance(log, RoomLog) and log.head_seq == 2


def test_an_append_behind_the_head_is_a_conflict_and_a_self_forking_batch_is_refused() -> None:
    core = make_core()
    alice, bob, carol = Member(core, "alice"), Member(core, "bob"), Member(core, "carol")
    state = alice.create("ops")
    first = alice.sign(state, EntryKind.ADD, bob)
    fork = alice.sign(state, EntryKind.ADD, carol)  # another entry 1 on the same head
    assert isinstance(alice.append(state, first), RoomLog)
    assert "entry 1" in refused(alice.append(state, fork), "room_conflict").detail
    # Two entries for one sequence number inside one batch: the second does not chain.
    after = state.extend([first])
    a = alice.sign(after, EntryKind.PROMOTE, bob)
    b = alice.sign(after, EntryKind.ADD, carol)
    assert "broken_chain" in refused(alice.append(after, a, b), "bad_entry").detail
    assert alice.fetch(state.room_id).head_seq == 1  # type: ignore[attr-defined]  # all or nothing


def test_oversized_entries_are_refused_with_the_limit() -> None:
    core = make_core(max_entry_bytes=300)
    alice = Member(core, "alice")
    state = alice.create("ops")
    error = refused(alice.append(state, b"\x9c" * 301), "room_limit")
    assert "301 bytes" in error.detail and "at most 300" in error.detail
    # Past the protocol's own bound (2 KiB), whatever the flag says, the frame itself is refused.
    alice.outbox.new_frames()
    wire = {"v": 1, "t": "room_append", "id": "x", "room": state.room_id, "entries": [b"\x9c" * 2049]}
    assert core.receive(alice.conn, encode_frame(pack_payload(wire)))
    (error_frame,) = alice.outbox.new_frames()
    assert isinstance(error_frame, Error) and error_frame.code == "bad_field"
    alice.alive()


def test_ten_thousand_entries_stop_at_the_log_limit_and_others_carry_on() -> None:
    core = make_core(max_room_entries=300)
    alice, bob = Member(core, "alice"), Member(core, "bob")
    state = alice.create("ops", RoomPolicy.OPEN)
    entries = []
    guest = IdentityKey.generate()
    for _ in range(10_000):  # guests join and leave, again and again: a valid log (to the client's limits)
        if guest.public not in state.members and state.self_adds.get(guest.public, 0) >= MAX_SELF_ADDS_PER_KEY:
            guest = IdentityKey.generate()  # one key adds itself at most MAX_SELF_ADDS_PER_KEY times
        kind = EntryKind.ADD if guest.public not in state.members else EntryKind.LEAVE
        entry = state.next_entry(guest, kind=kind, subject_name="guest", subject_ik=guest.public, time=T).to_bytes()
        state = state.extend([entry])
        entries.append(entry)
    first_refusal = None
    for start in range(0, len(entries), 64):
        answer = alice.append(state, *entries[start : start + 64])
        if isinstance(answer, RoomError):
            first_refusal = answer
            break
    assert first_refusal is not None and first_refusal.code == "room_limit"
    assert "of the room's 300 entries are for admins" in first_refusal.detail  # self-adds stop at 270
    assert alice.fetch(state.room_id).head_seq == 256  # type: ignore[attr-defined]  # whole batches only
    stored = verify_log(_all_entries(alice, state.room_id), RULES)
    for _ in range(20):  # the admin's own entries still fit once self-adds are refused
        closing = stored.next_entry(
            alice.identity, kind=EntryKind.POLICY, subject_name="alice", subject_ik=alice.identity.public, time=T,
            policy=RoomPolicy.INVITE if stored.policy is RoomPolicy.OPEN else RoomPolicy.OPEN,
        ).to_bytes()  # fmt: skip
        assert isinstance(alice.append(stored, closing), RoomLog)
        stored = stored.extend([closing])
    bob.create("other")
    bob.alive()


def _all_entries(member: Member, room: bytes) -> list[bytes]:
    entries: list[bytes] = []
    while True:
        log = member.fetch(room, len(entries))
        assert isinstance(log, RoomLog)
        entries.extend(log.entries)
        if len(entries) > log.head_seq:
            return entries


def test_members_per_room_limit() -> None:
    core = make_core(max_room_members=3)
    alice = Member(core, "alice")
    state = alice.create("ops")
    for i in range(2):
        other = IdentityKey.generate()
        entry = state.next_entry(
            alice.identity, kind=EntryKind.ADD, subject_name=f"m{i}", subject_ik=other.public, time=T
        )
        assert isinstance(alice.append(state, entry.to_bytes()), RoomLog)
        state = state.extend([entry.to_bytes()])
    fourth = state.next_entry(
        alice.identity, kind=EntryKind.ADD, subject_name="m9", subject_ik=IdentityKey.generate().public, time=T
    )
    assert "3 members" in refused(alice.append(state, fourth.to_bytes()), "room_limit").detail


# --- reading -----------------------------------------------------------------------


def test_invite_only_logs_are_for_members_and_past_members_open_ones_for_all() -> None:
    core = make_core()
    alice, bob, eve = Member(core, "alice"), Member(core, "bob"), Member(core, "eve")
    private = alice.create("private")
    refused(eve.fetch(private.room_id), "no_such_room")
    refused(eve.request(RoomFind(id="f", label="private")), "no_such_room")
    state = private.extend([add := alice.sign(private, EntryKind.ADD, bob)])
    alice.append(private, add)
    found = bob.request(RoomFind(id="f", label="PRIVATE"))
    assert isinstance(found, RoomLog) and found.room == private.room_id and found.head_seq == 1
    alice.append(state, remove := alice.sign(state, EntryKind.REMOVE, bob))
    assert bob.fetch(private.room_id).entries[-1] == remove  # type: ignore[attr-defined]  # sees their removal
    public = alice.create("lobby", RoomPolicy.OPEN)
    assert isinstance(eve.fetch(public.room_id), RoomLog)
    refused(eve.request(RoomFind(id="f", label="nowhere")), "no_such_room")


def test_room_list_shows_my_rooms_and_open_ones_with_counts() -> None:
    core = make_core()
    alice, bob = Member(core, "alice"), Member(core, "bob")
    ops = alice.create("ops")
    alice.append(ops, alice.sign(ops, EntryKind.ADD, bob))
    alice.create("secret")
    alice.create("lobby", RoomPolicy.OPEN)
    index = bob.request(RoomList(id="l"))
    assert isinstance(index, RoomIndex)
    assert [(r.label, r.members, r.online, r.open) for r in index.rooms] == [
        ("lobby", 1, 1, True),
        ("ops", 2, 2, False),
    ]
    core.disconnect(alice.conn, "gone")
    index = bob.request(RoomList(id="l"))
    assert isinstance(index, RoomIndex) and [r.online for r in index.rooms] == [0, 1]


def test_fetch_pages_through_a_long_log() -> None:
    core = make_core(max_room_entries=1000)
    alice = Member(core, "alice")
    state = alice.create("ops", RoomPolicy.OPEN)
    guest = IdentityKey.generate()
    for start in range(0, 600, 64):
        batch = []
        for _ in range(min(64, 600 - start)):
            kind = EntryKind.ADD if guest.public not in state.members else EntryKind.LEAVE
            signer = alice.identity if kind is EntryKind.ADD else guest  # an admin's adds have no per-key cap
            entry = state.next_entry(signer, kind=kind, subject_name="guest", subject_ik=guest.public, time=T)
            state = state.extend([entry.to_bytes()])
            batch.append(entry.to_bytes())
        before = verify_log(_all_entries(alice, state.room_id), RULES)
        assert isinstance(alice.append(before, *batch), RoomLog)
    first = alice.fetch(state.room_id)
    assert isinstance(first, RoomLog) and len(first.entries) == 256 and first.head_seq == 600
    assert verify_log(_all_entries(alice, state.room_id), RULES) == state


# --- durability -----------------------------------------------------------------------


def test_rooms_and_logs_survive_a_restart_and_the_file_is_private(tmp_path: Path) -> None:
    core = make_core(tmp_path)
    alice, bob = Member(core, "alice"), Member(core, "bob")
    state = alice.create("ops")
    alice.append(state, add := alice.sign(state, EntryKind.ADD, bob))
    state = state.extend([add])
    del core
    again = make_core(tmp_path)
    stranger = Member(again, "eve")
    refused(stranger.fetch(state.room_id), "no_such_room")
    back = Member(again, "bob", bob.identity)
    log = back.request(RoomFind(id="f", label="ops"))
    assert isinstance(log, RoomLog) and log.head_seq == 1
    assert verify_log(list(log.entries), RULES) == state
    index = back.request(RoomList(id="l"))
    assert isinstance(index, RoomIndex) and [(r.label, r.members) for r in index.rooms] == [("ops", 2)]
    database = tmp_path / "data" / DATABASE_FILE
    assert database.stat().st_mode & 0o077 == 0
    assert (tmp_path / "data").stat().st_mode & 0o077 == 0


def test_a_log_altered_in_the_database_is_not_served(tmp_path: Path) -> None:
    core = make_core(tmp_path)
    alice, bob = Member(core, "alice"), Member(core, "bob")
    state = alice.create("ops")
    alice.append(state, alice.sign(state, EntryKind.ADD, bob))
    del core
    with sqlite3.connect(tmp_path / "data" / DATABASE_FILE) as db:
        (entry,) = db.execute("SELECT entry FROM room_entries WHERE seq = 1").fetchone()
        db.execute("UPDATE room_entries SET entry = ? WHERE seq = 1", (bytes(entry[:-1]) + bytes([entry[-1] ^ 1]),))
    again = make_core(tmp_path)
    alice = Member(again, "alice", alice.identity)
    refused(alice.fetch(state.room_id), "internal")


def test_entries_parse_as_stored() -> None:
    """Entries round-trip through the store byte for byte (the hash depends on it)."""
    core = make_core()
    alice = Member(core, "alice")
    state = alice.create("ops")
    (stored,) = core.rooms.store.entries(state.room_id, 0, 10)
    assert RoomEntry.from_bytes(stored).kind is EntryKind.CREATE
