"""The membership log byte for byte: docs/protocol.md's *Room test vectors*
are recomputed here from the code, and the rules are checked case by case
(the property tests in tests/property/test_membership_log.py cover random logs)."""

from __future__ import annotations

import msgpack
import pytest

from susurro.crypto import (
    ROOM_ENTRY_PURPOSE,
    ChainBroken,
    EntryKind,
    EntryNotPermitted,
    EntrySignatureInvalid,
    IdentityKey,
    InvalidEntry,
    LogRules,
    MalformedEntry,
    RoomEntry,
    RoomLimitExceeded,
    RoomPolicy,
    create_entry,
    entry_hash,
    short_room_id,
    signing_payload,
    verify_log,
)
from susurro.crypto.membership import MAX_ENTRY_BYTES as CRYPTO_MAX_ENTRY_BYTES
from susurro.crypto.membership import ROOM_ID_SIZE as CRYPTO_ROOM_ID_SIZE
from susurro.protocol import name_key
from susurro.protocol.limits import MAX_ENTRY_BYTES, ROOM_ID_SIZE
from susurro.relay.rooms import valid_name
from tests.helpers.docs import doc_vectors

ALICE = IdentityKey.from_seed(bytes(range(32)))
BOB = IdentityKey.from_seed(bytes(range(32, 64)))
CAROL = IdentityKey.from_seed(bytes(range(64, 96)))
T = 1_764_000_000
RULES = LogRules(name_key=name_key, name_ok=valid_name)


def vectors() -> dict[str, str]:
    create = create_entry(ALICE, name="alice", label="ops", policy=RoomPolicy.INVITE, time=T, nonce=bytes([0x11]) * 16)
    state = verify_log([create.to_bytes()], RULES)
    add = state.next_entry(ALICE, kind=EntryKind.ADD, subject_name="bob", subject_ik=BOB.public, time=T + 60)
    after = state.extend([add.to_bytes()])
    return {
        "alice_ik": ALICE.public.hex(),
        "bob_ik": BOB.public.hex(),
        "create_signed": signing_payload(ROOM_ENTRY_PURPOSE, *create.signed_fields()).hex(),
        "create_entry": create.to_bytes().hex(),
        "room_id": state.room_id.hex(),
        "short_room_id": short_room_id(state.room_id),
        "add_entry": add.to_bytes().hex(),
        "head_seq": str(after.head.seq),
        "head_hash": after.head.hash.hex(),
    }


def ban_vectors() -> dict[str, str]:
    """alice's open room ``lobby``: bob joins, alice removes him, his own add is refused, hers is not."""
    create = create_entry(ALICE, name="alice", label="lobby", policy=RoomPolicy.OPEN, time=T, nonce=bytes([0x22]) * 16)
    state = verify_log([create.to_bytes()], RULES)
    entries = {"lobby_create": create.to_bytes()}
    for name, signer, kind, at in (
        ("bob_joins", BOB, EntryKind.ADD, 60),
        ("alice_removes_bob", ALICE, EntryKind.REMOVE, 120),
    ):
        entry = state.next_entry(signer, kind=kind, subject_name="bob", subject_ik=BOB.public, time=T + at).to_bytes()
        state = state.extend([entry])
        entries[name] = entry
    assert state.banned == {BOB.public: "bob"}
    rejoin = state.next_entry(BOB, kind=EntryKind.ADD, subject_name="bob", subject_ik=BOB.public, time=T + 180)
    with pytest.raises(EntryNotPermitted):
        state.extend([rejoin.to_bytes()])
    readd = state.next_entry(ALICE, kind=EntryKind.ADD, subject_name="bob", subject_ik=BOB.public, time=T + 240)
    after = state.extend([readd.to_bytes()])
    assert after.banned == {} and after.member(BOB.public) is not None
    return {
        **{name: data.hex() for name, data in entries.items()},
        "bob_rejoins_refused": rejoin.to_bytes().hex(),
        "alice_readds_bob": readd.to_bytes().hex(),
        "head_seq": str(after.head.seq),
        "head_hash": after.head.hash.hex(),
    }


def test_room_test_vectors_in_the_doc_match_the_code() -> None:
    assert doc_vectors("### Room test vectors") == vectors()
    assert doc_vectors("#### A removal from an open room sticks") == ban_vectors()


def test_the_vector_entry_is_the_documented_array() -> None:
    v = vectors()
    fields = msgpack.unpackb(bytes.fromhex(v["create_entry"]))
    assert fields[:3] == ["create", bytes(32), 0] and fields[8:10] == ["ops", "invite"] and len(fields) == 12
    assert entry_hash(bytes.fromhex(v["create_entry"])).hex() == v["room_id"]


def test_protocol_and_crypto_agree_on_sizes() -> None:
    assert MAX_ENTRY_BYTES == CRYPTO_MAX_ENTRY_BYTES and ROOM_ID_SIZE == CRYPTO_ROOM_ID_SIZE


# --- rules, case by case ----------------------------------------------------------------


def room(policy: RoomPolicy = RoomPolicy.INVITE) -> list[bytes]:
    return [create_entry(ALICE, name="alice", label="ops", policy=policy, time=T).to_bytes()]


def then(
    log: list[bytes], signer: IdentityKey, kind: EntryKind, name: str, subject: IdentityKey, **kw: object
) -> list[bytes]:
    state = verify_log(log[:1], RULES).extend(log[1:])
    entry = state.next_entry(signer, kind=kind, subject_name=name, subject_ik=subject.public, time=T, **kw)  # type: ignore[arg-type]
    return [*log, entry.to_bytes()]


def test_an_invite_only_room_refuses_self_adds_and_an_open_one_takes_them() -> None:
    with pytest.raises(EntryNotPermitted):
        verify_log(then(room(), BOB, EntryKind.ADD, "bob", BOB), RULES)
    state = verify_log(then(room(RoomPolicy.OPEN), BOB, EntryKind.ADD, "bob", BOB), RULES)
    assert state.member(BOB.public) is not None and BOB.public not in state.admins
    with pytest.raises(EntryNotPermitted):  # open means adding *yourself*
        verify_log(
            then(then(room(RoomPolicy.OPEN), BOB, EntryKind.ADD, "bob", BOB), BOB, EntryKind.ADD, "carol", CAROL), RULES
        )


def test_a_member_an_admin_removed_may_not_add_themselves_back_to_an_open_room() -> None:
    joined = then(room(RoomPolicy.OPEN), BOB, EntryKind.ADD, "bob", BOB)
    removed = then(joined, ALICE, EntryKind.REMOVE, "bob", BOB)
    assert verify_log(removed, RULES).banned == {BOB.public: "bob"}
    with pytest.raises(EntryNotPermitted, match="only an admin may add them back"):
        verify_log(then(removed, BOB, EntryKind.ADD, "bob", BOB), RULES)
    # Continuing a state verified before refuses it the same way (the relay and clients do that).
    with pytest.raises(EntryNotPermitted):
        verify_log(removed, RULES).extend(then(removed, BOB, EntryKind.ADD, "bob", BOB)[-1:])
    # An admin's add lifts the ban; a later removal bans again; leaving bans no one.
    readded = then(removed, ALICE, EntryKind.ADD, "bob", BOB)
    assert verify_log(readded, RULES).banned == {}
    left = then(then(readded, BOB, EntryKind.LEAVE, "bob", BOB), BOB, EntryKind.ADD, "bob", BOB)
    assert verify_log(left, RULES).member(BOB.public) is not None
    # The ban is the removed key's, not everyone's: carol still joins.
    assert verify_log(then(removed, CAROL, EntryKind.ADD, "carol", CAROL), RULES).member(CAROL.public) is not None


def test_admins_and_what_others_may_not_do() -> None:
    log = then(then(room(), ALICE, EntryKind.ADD, "bob", BOB), ALICE, EntryKind.ADD, "carol", CAROL)
    for kind in (EntryKind.REMOVE, EntryKind.PROMOTE):
        with pytest.raises(EntryNotPermitted):
            verify_log(then(log, BOB, kind, "carol", CAROL), RULES)
    with pytest.raises(EntryNotPermitted):
        verify_log(then(log, BOB, EntryKind.POLICY, "bob", BOB, policy=RoomPolicy.OPEN), RULES)
    with pytest.raises(EntryNotPermitted):  # nobody leaves for someone else
        verify_log(then(log, ALICE, EntryKind.LEAVE, "bob", BOB), RULES)
    promoted = then(log, ALICE, EntryKind.PROMOTE, "bob", BOB)
    state = verify_log(then(promoted, BOB, EntryKind.REMOVE, "carol", CAROL), RULES)
    assert set(state.members) == {ALICE.public, BOB.public} and state.admins == {ALICE.public, BOB.public}
    state = verify_log(
        then(then(promoted, BOB, EntryKind.DEMOTE, "alice", ALICE), BOB, EntryKind.LEAVE, "bob", BOB), RULES
    )
    assert set(state.members) == {ALICE.public, CAROL.public} and not state.admins


def test_transitions_that_do_not_fit_the_state() -> None:
    log = then(room(), ALICE, EntryKind.ADD, "bob", BOB)
    for bad in (
        then(log, ALICE, EntryKind.ADD, "bob", BOB),  # twice
        then(log, ALICE, EntryKind.ADD, "BOB", CAROL),  # a name that collides
        then(log, ALICE, EntryKind.ADD, "Ьob", CAROL),  # breaks the name rules (mixed scripts)
        then(log, ALICE, EntryKind.REMOVE, "carol", CAROL),  # not a member
        then(log, ALICE, EntryKind.REMOVE, "robert", BOB),  # the key's name is bob
        then(log, ALICE, EntryKind.REMOVE, "alice", ALICE),  # admins leave, they do not remove themselves
        then(log, ALICE, EntryKind.DEMOTE, "bob", BOB),  # not an admin
        then(log, ALICE, EntryKind.PROMOTE, "alice", ALICE),  # already one
    ):
        with pytest.raises(InvalidEntry):
            verify_log(bad, RULES)


def test_limits_and_chain_errors() -> None:
    log = then(room(), ALICE, EntryKind.ADD, "bob", BOB)
    with pytest.raises(RoomLimitExceeded):
        verify_log(log, LogRules(max_members=1, name_key=name_key, name_ok=valid_name))
    with pytest.raises(RoomLimitExceeded):
        verify_log(log, LogRules(max_entries=1, name_key=name_key, name_ok=valid_name))
    with pytest.raises(ChainBroken):
        verify_log(log[1:], RULES)
    with pytest.raises(ChainBroken):
        verify_log([], RULES)
    with pytest.raises(ChainBroken):
        verify_log([log[0], log[0]], RULES)


def test_non_canonical_encodings_and_bad_signatures() -> None:
    (first,) = room()
    fields = msgpack.unpackb(first)
    # The same values, seq as uint64 instead of a fixint: one value, two encodings.
    longer = b"\x9c" + b"".join(msgpack.packb(f, use_bin_type=True) for f in fields[:2]) + b"\xcf" + bytes(8)
    longer += b"".join(msgpack.packb(f, use_bin_type=True) for f in fields[3:])
    assert msgpack.unpackb(longer) == fields
    with pytest.raises(MalformedEntry):
        verify_log([longer], RULES)
    with pytest.raises(MalformedEntry):
        RoomEntry.from_bytes(b"\x00" * (MAX_ENTRY_BYTES + 1))
    resigned = msgpack.packb([*fields[:-1], bytes(64)], use_bin_type=True)
    with pytest.raises(EntrySignatureInvalid):
        verify_log([resigned], RULES)
    # A signature for another purpose over the same fields does not count.
    entry = RoomEntry.from_bytes(first)
    other = ALICE.sign(b"susurro/msg/v1", *entry.signed_fields())
    with pytest.raises(EntrySignatureInvalid):
        verify_log([msgpack.packb([*fields[:-1], other], use_bin_type=True)], RULES)
