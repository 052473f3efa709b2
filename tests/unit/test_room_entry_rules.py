"""Entry rules every verifier must apply alike (spec review S4, findings 4 and 5).

A room log is agreed on for ever, so its rules must not depend on the runtime:
names are judged against the Unicode version pinned in ``protocol/data``, keys
and signatures by libsodium's strict Ed25519 checks, and the last tenth of a
log is kept for admins so that nobody can fill a room no admin can then fix.
"""

from __future__ import annotations

import unicodedata
from types import SimpleNamespace

import pytest

from susurro.crypto import (
    EntryKind,
    EntrySignatureInvalid,
    IdentityKey,
    LogRules,
    MalformedEntry,
    RoomEntry,
    RoomLimitExceeded,
    RoomLogError,
    RoomPolicy,
    RoomState,
    create_entry,
    verify_log,
)
from susurro.crypto.membership import MAX_SELF_ADDS_PER_KEY, admin_reserve, sign_entry
from susurro.protocol import name_key, names
from susurro.protocol.names import NAME_UNICODE_VERSION, BadName, assigned_ranges, normalize_name
from susurro.relay.rooms import valid_name
from tests.helpers.docs import doc_vectors

ALICE = IdentityKey.from_seed(bytes(range(32)))
T = 1_764_000_000
RULES = LogRules(name_key=name_key, name_ok=valid_name)
#: Kawi letters A and AA, assigned in Unicode 15.0 (Python 3.12), unassigned in 14.0.
KAWI = "\U00011f04\U00011f05"
#: The order of the Ed25519 group, little-endian.
L = 2**252 + 27742317777372353535851937790883648493
#: The neutral point: a small-order "key" for which S = 0, R = identity verifies without the strict checks.
IDENTITY_POINT = bytes([1]) + bytes(31)


def open_room(policy: RoomPolicy = RoomPolicy.OPEN, rules: LogRules = RULES) -> RoomState:
    entry = create_entry(ALICE, name="alice", label="lobby", policy=policy, time=T, nonce=bytes(16))
    return verify_log([entry.to_bytes()], rules)


def self_add(state: RoomState, key: IdentityKey, name: str) -> bytes:
    return state.next_entry(key, kind=EntryKind.ADD, subject_name=name, subject_ik=key.public, time=T).to_bytes()


# --- names: the pinned Unicode version, not the runtime's -------------------------------


def test_the_shipped_table_is_unicode_14_as_python_3_11_has_it() -> None:
    if unicodedata.unidata_version != NAME_UNICODE_VERSION:
        pytest.skip(f"this runtime has Unicode {unicodedata.unidata_version}; the table is derived from 14.0.0")
    derived = {cp for cp in range(0x110000) if unicodedata.category(chr(cp)) != "Cn"}
    shipped = {cp for low, high in assigned_ranges() for cp in range(low, high + 1)}
    assert shipped == derived


def test_a_letter_newer_than_the_pinned_version_is_refused_whatever_the_runtime_says(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A runtime on Unicode 15 calls U+11F04 a letter (Lo); the pinned table still refuses it."""
    real = unicodedata

    def category(ch: str) -> str:
        return "Lo" if ch in KAWI else real.category(ch)

    def name(ch: str) -> str:
        return {"\U00011f04": "KAWI LETTER A", "\U00011f05": "KAWI LETTER AA"}.get(ch) or real.name(ch)

    newer = SimpleNamespace(category=category, name=name, normalize=real.normalize)
    monkeypatch.setattr(names, "unicodedata", newer)
    with pytest.raises(BadName, match=r"U\+11F04 is not assigned in Unicode 14\.0\.0"):
        normalize_name(KAWI)
    assert normalize_name("alice") == "alice"


def test_a_self_add_under_a_newer_letter_is_refused_by_the_verifier() -> None:
    state = open_room()
    mallory = IdentityKey.generate()
    with pytest.raises(RoomLogError) as refused:
        state.extend([self_add(state, mallory, KAWI)])
    assert refused.value.kind == "invalid_entry"


# --- fields by kind, keys, signatures ------------------------------------------------------


def test_an_add_with_a_label_or_a_policy_is_malformed() -> None:
    state = open_room()
    bob = IdentityKey.generate()
    entry = state.next_entry(bob, kind=EntryKind.ADD, subject_name="bob", subject_ik=bob.public, time=T)
    for field, value in (("label", "x"), ("policy", "open"), ("nonce", bytes(16))):
        fields = {name: getattr(entry, name) for name in RoomEntry.__dataclass_fields__ if name != "signature"}
        fields[field] = value
        forged = sign_entry(bob, **{k: v for k, v in fields.items() if k != "signer"})
        with pytest.raises(MalformedEntry):
            state.extend([forged.to_bytes()])


def test_a_subject_key_that_is_no_valid_point_is_malformed() -> None:
    state = open_room(RoomPolicy.INVITE)
    for subject in (IDENTITY_POINT, bytes(32), bytes([0xFF]) * 32):
        entry = state.next_entry(ALICE, kind=EntryKind.ADD, subject_name="bob", subject_ik=subject, time=T)
        with pytest.raises(MalformedEntry, match="subject_ik"):
            state.extend([entry.to_bytes()])


def test_a_signature_with_a_non_canonical_s_is_refused() -> None:
    """S + L verifies under a lax verifier and gives the same content a second byte string (a free fork)."""
    state = open_room()
    bob = IdentityKey.generate()
    entry = RoomEntry.from_bytes(self_add(state, bob, "bob"))
    s = int.from_bytes(entry.signature[32:], "little") + L
    assert s < 2**256
    lax = RoomEntry(
        **{name: getattr(entry, name) for name in RoomEntry.__dataclass_fields__ if name != "signature"},
        signature=entry.signature[:32] + s.to_bytes(32, "little"),
    )
    with pytest.raises(EntrySignatureInvalid):
        state.extend([lax.to_bytes()])
    state.extend([entry.to_bytes()])  # the canonical one is fine


def test_a_small_order_signer_is_refused_even_where_the_equation_holds() -> None:
    """With A and R the neutral point and S = 0, [S]B = R + [k]A for every k: only the strict checks refuse it."""
    state = open_room()
    unsigned = state.next_entry(
        ALICE, kind=EntryKind.ADD, subject_name="ghost", subject_ik=ALICE.public, time=T
    )  # replaced below: signer and subject the small-order point would be refused as subject first
    forged = RoomEntry(
        **{
            **{name: getattr(unsigned, name) for name in RoomEntry.__dataclass_fields__},
            "signer": IDENTITY_POINT,
            "subject_ik": ALICE.public,
            "signature": IDENTITY_POINT + bytes(32),
        }
    )
    with pytest.raises(EntrySignatureInvalid):
        state.extend([forged.to_bytes()])


# --- the admins' reserve, and self-adds per key ----------------------------------------------


def test_self_adds_stop_at_the_admins_reserve_and_an_admin_still_fits() -> None:
    rules = LogRules(name_key=name_key, name_ok=valid_name, max_entries=100, max_members=1000)
    state = open_room(rules=rules)
    guests = iter(IdentityKey.generate() for _ in range(100))
    guest = next(guests)
    while True:  # the cycling attack: add, leave, add, leave... under fresh keys
        if guest.public in state.members:
            entry = state.next_entry(guest, kind=EntryKind.LEAVE, subject_name="guest", subject_ik=guest.public, time=T)
            state = state.extend([entry.to_bytes()])
            guest = next(guests)
            continue
        try:
            state = state.extend([self_add(state, guest, "guest")])
        except RoomLimitExceeded as exc:
            assert "entries are for admins" in exc.detail
            break
    assert state.head.seq <= 100 - admin_reserve(100)  # only leaves after the mark
    # The admin's entries use the reserve: the room can still be closed and cleaned up.
    closing = state.next_entry(
        ALICE, kind=EntryKind.POLICY, subject_name="alice", subject_ik=ALICE.public, time=T, policy=RoomPolicy.INVITE
    )
    assert state.extend([closing.to_bytes()]).policy is RoomPolicy.INVITE


def test_member_slots_keep_a_reserve_for_admins() -> None:
    rules = LogRules(name_key=name_key, name_ok=valid_name, max_members=20)
    state = open_room(rules=rules)
    for number in range(20 - admin_reserve(20) - 1):
        state = state.extend([self_add(state, IdentityKey.generate(), f"guest{number}")])
    with pytest.raises(RoomLimitExceeded, match="member slots are for admins"):
        state.extend([self_add(state, IdentityKey.generate(), "one-more")])
    invited = IdentityKey.generate()
    entry = state.next_entry(ALICE, kind=EntryKind.ADD, subject_name="invited", subject_ik=invited.public, time=T)
    assert invited.public in state.extend([entry.to_bytes()]).members


def test_one_key_adds_itself_a_bounded_number_of_times() -> None:
    state = open_room()
    guest = IdentityKey.generate()
    for _ in range(MAX_SELF_ADDS_PER_KEY):
        state = state.extend([self_add(state, guest, "guest")])
        leave = state.next_entry(guest, kind=EntryKind.LEAVE, subject_name="guest", subject_ik=guest.public, time=T)
        state = state.extend([leave.to_bytes()])
    with pytest.raises(RoomLimitExceeded, match=f"at most {MAX_SELF_ADDS_PER_KEY} times"):
        state.extend([self_add(state, guest, "guest")])
    readd = state.next_entry(ALICE, kind=EntryKind.ADD, subject_name="guest", subject_ik=guest.public, time=T)
    assert guest.public in state.extend([readd.to_bytes()]).members  # an admin may still add it


# --- the published vectors: entries that must be refused ---------------------------------------

BOB = IdentityKey.from_seed(bytes(range(32, 64)))


def refused_vectors() -> tuple[dict[str, tuple[bytes, str]], RoomState]:
    """Each continues the log of the ``ops`` vector (alice's create) at seq 1, and each is refused."""
    create = create_entry(ALICE, name="alice", label="ops", policy=RoomPolicy.INVITE, time=T, nonce=bytes([0x11]) * 16)
    state = verify_log([create.to_bytes()], RULES)
    add = state.next_entry(ALICE, kind=EntryKind.ADD, subject_name="bob", subject_ik=BOB.public, time=T + 60)
    fields = {
        name: getattr(add, name) for name in RoomEntry.__dataclass_fields__ if name not in ("signature", "signer")
    }
    labelled = sign_entry(ALICE, **{**fields, "label": "x"})
    high_s = int.from_bytes(add.signature[32:], "little") + L
    non_canonical_s = RoomEntry(
        **{**fields, "signer": ALICE.public, "signature": add.signature[:32] + high_s.to_bytes(32, "little")}
    )
    small_order = RoomEntry(**{**fields, "signer": IDENTITY_POINT, "signature": IDENTITY_POINT + bytes(32)})
    kawi = sign_entry(ALICE, **{**fields, "subject_name": KAWI})
    return {
        "add_with_label": (labelled.to_bytes(), "malformed_entry"),
        "add_non_canonical_s": (non_canonical_s.to_bytes(), "bad_entry_signature"),
        "add_small_order_signer": (small_order.to_bytes(), "bad_entry_signature"),
        "add_kawi_name": (kawi.to_bytes(), "invalid_entry"),
    }, state


def test_the_refused_entry_vectors_are_published_and_refused() -> None:
    vectors, state = refused_vectors()
    published = doc_vectors("#### Entries that must be refused")
    for name, (data, kind) in vectors.items():
        assert published[name] == data.hex(), name
        assert published[f"{name}_error"] == kind, name
        with pytest.raises(RoomLogError) as refused:
            state.extend([data])
        assert refused.value.kind == kind, name
