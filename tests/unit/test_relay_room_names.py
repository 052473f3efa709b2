"""A member names itself in a room by the name it joined the relay with (spec review S4, finding 12)."""

from __future__ import annotations

from susurro.crypto import EntryKind, RoomPolicy, create_entry
from susurro.protocol import RoomCreate, RoomError, RoomLog
from tests.unit.test_relay_rooms import Member, T, make_core


def test_a_self_add_under_another_name_than_the_connections_is_refused() -> None:
    core = make_core()
    alice, mallory = Member(core, "alice"), Member(core, "mallory")
    state = alice.create("lobby", RoomPolicy.OPEN)
    posing = state.next_entry(
        mallory.identity, kind=EntryKind.ADD, subject_name="alicia", subject_ik=mallory.ik, time=T
    ).to_bytes()
    refused = mallory.append(state, posing)
    assert isinstance(refused, RoomError) and refused.code == "bad_entry"
    assert "you joined as 'mallory'" in refused.detail
    honest = state.next_entry(
        mallory.identity, kind=EntryKind.ADD, subject_name="mallory", subject_ik=mallory.ik, time=T
    ).to_bytes()
    assert isinstance(mallory.append(state, honest), RoomLog)


def test_a_room_created_under_another_name_than_the_connections_is_refused() -> None:
    core = make_core()
    mallory = Member(core, "mallory")
    entry = create_entry(mallory.identity, name="alice", label="ops", policy=RoomPolicy.INVITE, time=T).to_bytes()
    refused = mallory.request(RoomCreate(id=mallory.next_id(), entry=entry))
    assert isinstance(refused, RoomError) and "you joined as 'mallory'" in refused.detail


def test_an_admin_may_still_add_someone_under_the_name_it_chooses() -> None:
    core = make_core()
    alice, bob = Member(core, "alice"), Member(core, "bob")
    state = alice.create("ops")
    entry = state.next_entry(alice.identity, kind=EntryKind.ADD, subject_name="roberto", subject_ik=bob.ik, time=T)
    assert isinstance(alice.append(state, entry.to_bytes()), RoomLog)
