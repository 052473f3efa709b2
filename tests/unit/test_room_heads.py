"""``RoomHeads`` alone: heads shown beyond a verified log, member claims, and the send gate they make.

No relay and no book: a real verified room log (alice created it, bob was
added) and the heads part, driven with ``now`` passed in. What the book does
with it against a hostile relay is in tests/unit/test_client_rooms.py and
tests/adversarial/test_hostile_rooms_review.py.
"""

from __future__ import annotations

import pytest

from susurro.client import room_heads
from susurro.client.events import WarningKind
from susurro.client.room_heads import MAX_PENDING_HEADS, RoomHeads, SendGate
from susurro.crypto import EntryKind, IdentityKey, RoomPolicy, RoomState, create_entry, entry_hash, verify_log

T = 1_764_000_000
ALICE, BOB, CAROL = IdentityKey.generate(), IdentityKey.generate(), IdentityKey.generate()


def room(*, with_carol: bool = False) -> tuple[RoomState, list[bytes]]:
    """A verified log: alice's create, bob added (and carol, if asked); its state and entry hashes."""
    entries = [create_entry(ALICE, name="alice", label="team", policy=RoomPolicy.INVITE, time=T).to_bytes()]
    state = verify_log(entries)
    added = [(BOB, "bob")] + ([(CAROL, "carol")] if with_carol else [])
    for key, name in added:
        entry = state.next_entry(ALICE, kind=EntryKind.ADD, subject_name=name, subject_ik=key.public, time=T)
        entries.append(entry.to_bytes())
        state = state.extend([entries[-1]])
    return state, [state.room_id, *(entry_hash(data) for data in entries[1:])]


def gate(heads: RoomHeads, state: RoomState, now: float, *, catching_up: bool = False) -> SendGate:
    return heads.gate(state, now, forked=False, refreshing=False, catching_up=catching_up)


def test_nothing_beyond_the_verified_head_leaves_the_gate_open() -> None:
    state, _ = room()
    assert gate(RoomHeads(), state, 0.0) is SendGate.OPEN


def test_fork_and_refresh_close_the_gate_before_anything_else() -> None:
    state, _ = room()
    heads = RoomHeads()
    assert heads.gate(state, 0.0, forked=True, refreshing=True, catching_up=False) is SendGate.FORKED
    assert heads.gate(state, 0.0, forked=False, refreshing=True, catching_up=False) is SendGate.WAIT


def test_a_newer_relay_head_waits_while_fetching_and_is_withheld_after() -> None:
    state, _ = room()
    heads = RoomHeads()
    heads.relay_head(state.head.seq + 1)
    assert gate(heads, state, 0.0, catching_up=True) is SendGate.WAIT
    assert gate(heads, state, 0.0) is SendGate.WITHHELD
    heads.relay_head(0)  # an older head does not lower the newest one shown
    assert heads.newest_seq(state.head.seq) == state.head.seq + 1


def test_a_members_claim_holds_sends_for_head_claim_wait_from_when_it_first_held_them() -> None:
    state, _ = room()
    heads = RoomHeads()
    heads.signed(state.head.seq + 3, b"\x01" * 32, "bob", BOB.public, state.members)
    assert gate(heads, state, 1000.0) is SendGate.WITHHELD  # the wait starts here
    heads.signed(state.head.seq + 5, b"\x02" * 32, "bob", BOB.public, state.members)
    assert heads.newest_seq(state.head.seq) == state.head.seq + 5
    assert gate(heads, state, 1000.0 + room_heads.HEAD_CLAIM_WAIT - 1) is SendGate.WITHHELD  # a higher claim
    assert gate(heads, state, 1000.0 + room_heads.HEAD_CLAIM_WAIT) is SendGate.OPEN  # ... does not restart it
    assert not heads.claims


def test_a_claim_by_a_non_member_holds_nothing_but_is_still_checked() -> None:
    state, hashes = room()
    heads = RoomHeads()
    heads.signed(state.head.seq + 1, b"\x01" * 32, "carol", CAROL.public, state.members)
    assert gate(heads, state, 0.0) is SendGate.OPEN
    [found] = heads.settle(hashes, state.head.seq, "team#x")
    assert found.kind is WarningKind.ROOM_WITHHELD and found.sender == "carol"


def test_a_claim_is_dropped_once_its_signer_is_removed_or_the_log_backs_it() -> None:
    state, _ = room(with_carol=True)
    heads = RoomHeads()
    heads.signed(state.head.seq + 2, b"\x01" * 32, "carol", CAROL.public, state.members)
    assert gate(heads, state, 0.0) is SendGate.WITHHELD
    removal = state.next_entry(ALICE, kind=EntryKind.REMOVE, subject_name="carol", subject_ik=CAROL.public, time=T)
    without_carol = state.extend([removal.to_bytes()])
    assert gate(heads, without_carol, 1.0) is SendGate.OPEN  # carol's claim went with her membership

    heads.signed(state.head.seq + 1, b"\x01" * 32, "bob", BOB.public, state.members)
    assert gate(heads, state, 2.0) is SendGate.WITHHELD
    assert gate(heads, without_carol, 3.0) is SendGate.OPEN  # the log reached bob's head


def test_settle_finds_heads_the_log_lacks_or_holds_another_entry_for() -> None:
    state, hashes = room()
    heads = RoomHeads()
    heads.signed(1, b"\xff" * 32, "bob", BOB.public, state.members)  # entry 1 exists with another hash
    heads.signed(1, hashes[1], "bob", BOB.public, state.members)  # the very entry: nothing to say
    heads.signed(9, b"\x01" * 32, "bob", BOB.public, state.members)  # beyond what the relay serves
    heads.signed(1, b"\xfe" * 32, "carol", CAROL.public, state.members)  # a stranger's: proves nothing
    findings = heads.settle(hashes, state.head.seq, "team#x", state.members)
    assert [(f.kind, f.sender) for f in findings] == [
        (WarningKind.ROOM_FORK_CLAIMED, "bob"),  # a member's head claims a fork; only two entries prove one
        (WarningKind.ROOM_WITHHELD, "bob"),
    ]
    assert heads.settle(hashes, state.head.seq, "team#x") == []  # each pending head is checked once


def test_settle_says_the_relay_withholds_its_own_newer_head() -> None:
    state, hashes = room()
    heads = RoomHeads(newest=state.head.seq + 4)  # an earlier run verified this far
    [found] = heads.settle(hashes, state.head.seq, "team#x")
    assert found.kind is WarningKind.ROOM_WITHHELD and found.sender is None
    assert f"entry {state.head.seq + 4}" in found.detail


@pytest.mark.parametrize("extra", [1, 50])
def test_pending_heads_are_bounded(extra: int) -> None:
    state, hashes = room()
    heads = RoomHeads()
    for seq in range(MAX_PENDING_HEADS + extra):
        heads.signed(state.head.seq + 1 + seq, b"\x01" * 32, "bob", BOB.public, state.members)
    assert len(heads.pending) == MAX_PENDING_HEADS
    assert len(heads.settle(hashes, state.head.seq, "team#x")) == MAX_PENDING_HEADS


def test_a_signer_whose_claim_ran_out_unserved_holds_nothing_more() -> None:
    state, hashes = room(with_carol=True)
    heads = RoomHeads()
    wait = room_heads.HEAD_CLAIM_WAIT
    heads.signed(state.head.seq + 3, b"\x01" * 32, "bob", BOB.public, state.members)
    assert gate(heads, state, 1000.0) is SendGate.WITHHELD
    assert gate(heads, state, 1000.0 + wait) is SendGate.OPEN  # ran out unserved
    heads.signed(state.head.seq + 10**6, b"\x02" * 32, "bob", BOB.public, state.members)  # fresh and higher
    heads.conflicting(1, "bob", BOB.public, state.members)  # or another history
    assert gate(heads, state, 1001.0 + wait) is SendGate.OPEN
    assert gate(heads, state, 1000.0 + 3 * wait) is SendGate.OPEN
    assert [f.kind for f in heads.settle(hashes, state.head.seq, "team#x", state.members)] == [
        WarningKind.ROOM_WITHHELD,  # still checked, and said
        WarningKind.ROOM_WITHHELD,
    ]
    # carol's claim is her own: it holds.
    heads.signed(state.head.seq + 1, b"\x03" * 32, "carol", CAROL.public, state.members)
    assert gate(heads, state, 1000.0 + 3 * wait) is SendGate.WITHHELD
    # Once the relay serves a head bob signed beyond ours, his claims hold again.
    removal = state.next_entry(ALICE, kind=EntryKind.REMOVE, subject_name="carol", subject_ik=CAROL.public, time=T)
    later = state.extend([removal.to_bytes()])
    heads.signed(later.head.seq, later.head.hash, "bob", BOB.public, state.members)
    heads.settle([*hashes, later.head.hash], later.head.seq, "team#x", later.members)
    heads.signed(later.head.seq + 1, b"\x04" * 32, "bob", BOB.public, later.members)
    assert gate(heads, later, 1000.0 + 4 * wait) is SendGate.WITHHELD


def test_a_members_conflicting_head_holds_sends_for_the_wait_and_a_strangers_holds_nothing() -> None:
    state, _ = room()
    heads = RoomHeads()
    heads.conflicting(1, "carol", CAROL.public, state.members)  # carol is not in this room
    assert gate(heads, state, 0.0) is SendGate.OPEN
    heads.conflicting(1, "bob", BOB.public, state.members)
    assert gate(heads, state, 10.0) is SendGate.WITHHELD  # the log reaching seq 1 does not serve it
    assert gate(heads, state, 10.0 + room_heads.HEAD_CLAIM_WAIT) is SendGate.OPEN
