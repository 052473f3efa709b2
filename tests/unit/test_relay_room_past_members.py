"""A past member of an invite-only room reads its log up to its own removal, no further (spec review S4, finding 15)."""

from __future__ import annotations

from susurro.crypto import EntryKind, RoomPolicy, entry_hash, verify_log
from susurro.protocol import RoomLog
from tests.unit.test_relay_rooms import RULES, Member, make_core


def test_a_removed_member_reads_up_to_its_removal_and_hears_nothing_after() -> None:
    core = make_core()
    alice, bob, carol = Member(core, "alice"), Member(core, "bob"), Member(core, "carol")
    state = alice.create("ops", RoomPolicy.INVITE)
    for kind, subject in ((EntryKind.ADD, bob), (EntryKind.REMOVE, bob)):
        entry = alice.sign(state, kind, subject)
        assert isinstance(alice.append(state, entry), RoomLog)
        state = state.extend([entry])
    removal_seq, removal_hash = state.head.seq, state.head.hash
    bob.pushes()  # its removal reached it; what follows must not
    later = alice.sign(state, EntryKind.ADD, carol)
    assert isinstance(alice.append(state, later), RoomLog)
    assert bob.pushes() == []
    served = bob.fetch(state.room_id, 0)
    assert isinstance(served, RoomLog)
    assert len(served.entries) == removal_seq + 1 and served.head_seq == removal_seq
    assert served.head_hash == removal_hash == entry_hash(served.entries[-1])
    assert served.online == ()
    assert carol.ik not in verify_log(list(served.entries), RULES).members
    assert bob.fetch(state.room_id, removal_seq + 1).entries == ()  # type: ignore[attr-defined]
    full = carol.fetch(state.room_id, 0)
    assert isinstance(full, RoomLog) and full.head_seq == removal_seq + 1  # members read it all
