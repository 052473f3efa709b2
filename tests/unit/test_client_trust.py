"""The client core's trust decisions, against a real relay core in memory.

Pins (TOFU) and key changes, verification and strict mode, stale
certificates, and session key rotation: each test names the exact events a
user's view would get, and proves that nothing is encrypted to a member the
user has not accepted.
"""

from __future__ import annotations

import pytest

from susurro.client import events as ev
from susurro.client.rotation import PREVIOUS_KEY_GRACE
from susurro.client.session import SendError, TrustError
from susurro.crypto import IdentityKey, SessionCertificate, SessionKey, join_proof
from susurro.crypto.safety import safety_number
from susurro.crypto.trust import TrustStore
from susurro.protocol import (
    RELAY_FRAMES,
    Deliver,
    Frame,
    FrameDecoder,
    Hello,
    Joined,
    Left,
    Member,
    Rekey,
    Rekeyed,
    decode_frame,
    encode,
    name_key,
)
from tests.helpers.memory import MemoryOutbox
from tests.helpers.session_pair import SessionPair, kinds, only


def rejoin(pair: SessionPair, label: str, identity: IdentityKey | None = None, **options: object) -> None:
    """``label`` leaves and comes back (same identity unless one is given); events consumed."""
    identity = identity or pair.identity(label)
    pair[label].close()
    pair.pump()
    del pair.nodes[label]
    pair.add(label, identity=identity, **options)
    pair.pump()


def certified(identity: IdentityKey, name: str, issued_at: int, session: SessionKey | None = None) -> Member:
    session = session or SessionKey.generate()
    cert = SessionCertificate.issue(identity, name, session.public, issued_at)
    return Member(name=name, ik=identity.public, sk=session.public, cert=cert.signature, issued_at=issued_at)


@pytest.fixture
def alice_store() -> TrustStore:
    return TrustStore(key_of=name_key)


@pytest.fixture
def room(alice_store: TrustStore) -> SessionPair:
    """alice (with a trust store that outlives her sessions), bob and carol."""
    pair = SessionPair()
    pair.add("alice", trust=alice_store)
    pair.pump()
    pair.join("bob", "carol")
    return pair


# --- pins and key changes ----------------------------------------------------------


def test_members_are_new_on_first_sight_and_pinned_the_next_session(room: SessionPair, alice_store: TrustStore) -> None:
    assert {p.name: p.trust.value for p in room["alice"].peers.values()} == {"bob": "new", "carol": "new"}
    rejoin(room, "alice", trust=alice_store)
    assert {p.name: p.trust.value for p in room["alice"].peers.values()} == {"bob": "pinned", "carol": "pinned"}
    room["bob"].send_message("hi", room.now)
    message = only(room.pump()["alice"], ev.Message)[0]
    assert message.trust == "pinned"


def test_a_changed_key_is_reported_and_blocks_encryption_until_accepted(room: SessionPair) -> None:
    old_fp = room["alice"].peers["bob"].fingerprint
    # bob comes back with another identity key: a new device, or the relay substituting one.
    rejoin(room, "bob", identity=IdentityKey.generate())
    peer = room["alice"].peers["bob"]
    assert peer.trust.value == "changed"
    assert peer.info().trust == "changed"

    msg_id = room["alice"].send_message("room message", room.now)
    produced = room.pump()
    assert only(produced["bob"], ev.Message) == [], "nothing may be encrypted to a changed key"
    assert [m.text for m in only(produced["carol"], ev.Message)] == ["room message"]
    assert only(produced["alice"], ev.Delivery) == [
        ev.Delivery(msg_id=msg_id, delivered=("carol",), missing=(), skipped=("bob",))
    ]
    with pytest.raises(SendError, match="/accept bob"):
        room["alice"].send_message("just bob", room.now, to=["bob"])

    events = room["alice"].accept_key("bob")
    assert kinds(events) == ["TrustUpdated"]
    assert events[0].member.trust == "pinned" and events[0].member.fingerprint != old_fp
    room["alice"].send_message("welcome back", room.now, to=["bob"])
    assert [m.text for m in only(room.pump()["bob"], ev.Message)] == ["welcome back"]


def test_key_changed_event_carries_both_fingerprints(room: SessionPair) -> None:
    old_fp = room["alice"].peers["bob"].fingerprint
    room["bob"].close()
    room.pump()
    del room.nodes["bob"]
    new_identity = IdentityKey.generate()
    room.add("bob", identity=new_identity)
    produced = room.pump()["alice"]
    assert kinds(produced) == ["Joined", "Warning:key_changed"]
    changed = produced[1]
    assert isinstance(changed, ev.KeyChanged)
    assert (changed.name, changed.old_fingerprint) == ("bob", old_fp)
    assert changed.new_fingerprint == room["alice"].peers["bob"].fingerprint != old_fp
    assert produced[0].member.trust == "changed"


def test_accepting_an_unchanged_key_or_an_absent_member_is_refused(room: SessionPair) -> None:
    with pytest.raises(TrustError, match="has not changed"):
        room["alice"].accept_key("bob")
    with pytest.raises(TrustError, match="not in the room"):
        room["alice"].accept_key("mallory")
    with pytest.raises(TrustError, match="not in the room"):
        room["alice"].safety_number("mallory")


# --- verification and strict mode --------------------------------------------------


def test_both_sides_see_the_same_safety_number_and_verified_is_badged(room: SessionPair) -> None:
    number = room["alice"].safety_number("bob")
    assert number == room["bob"].safety_number("alice")
    assert number == safety_number(room.identity("alice").public, room.identity("bob").public)
    assert number != room["alice"].safety_number("carol")

    events = room["alice"].mark_verified("bob")
    assert kinds(events) == ["TrustUpdated"] and events[0].member.trust == "verified"
    room["bob"].send_message("it is me", room.now)
    room["carol"].send_message("me too", room.now)
    produced = only(room.pump()["alice"], ev.Message)
    assert {(m.sender, m.trust) for m in produced} == {("bob", "verified"), ("carol", "new")}


def test_verified_survives_a_rotation_of_the_session_key_and_a_new_session(
    room: SessionPair, alice_store: TrustStore
) -> None:
    number = room["alice"].safety_number("bob")
    room["alice"].mark_verified("bob")
    rejoin(room, "bob")  # new session key, same identity
    assert room["alice"].peers["bob"].trust.value == "verified"
    assert room["alice"].safety_number("bob") == number


def test_strict_mode_sends_only_to_verified_members(room: SessionPair) -> None:
    alice = room["alice"]
    alice.strict = True
    with pytest.raises(SendError, match="strict mode"):
        alice.send_message("to nobody yet", room.now)
    alice.mark_verified("carol")
    msg_id = alice.send_message("carol only", room.now)
    produced = room.pump()
    assert only(produced["bob"], ev.Message) == []
    assert [m.text for m in only(produced["carol"], ev.Message)] == ["carol only"]
    assert only(produced["alice"], ev.Delivery) == [
        ev.Delivery(msg_id=msg_id, delivered=("carol",), missing=(), skipped=("bob",))
    ]
    alice.strict = False
    alice.send_message("everyone", room.now)
    produced = room.pump()
    assert [m.text for m in only(produced["bob"], ev.Message)] == ["everyone"]


def test_a_ghost_member_is_new_and_strict_mode_skips_it(room: SessionPair) -> None:
    # The relay invents "ghost" with a key it owns: the certificate verifies, so
    # only trust can tell. Ghost shows as new; strict mode never encrypts to it.
    ghost = certified(IdentityKey.generate(), "ghost", 5)
    produced = room.inject("alice", Joined(member=ghost))
    assert kinds(produced) == ["Joined"] and produced[0].member.trust == "new"
    room["alice"].mark_verified("bob")
    room["alice"].mark_verified("carol")
    room["alice"].strict = True
    msg_id = room["alice"].send_message("no ghosts", room.now)
    assert only(room.pump()["alice"], ev.Delivery) == [
        ev.Delivery(msg_id=msg_id, delivered=("bob", "carol"), missing=(), skipped=("ghost",))
    ]


# --- stale certificates ---------------------------------------------------------------


def test_an_older_session_of_a_pinned_key_is_refused_even_after_a_restart(
    room: SessionPair, alice_store: TrustStore
) -> None:
    bob_identity = room.identity("bob")
    old = certified(bob_identity, "bob", int(room.now) - 3600)  # a session from an hour ago
    rejoin(room, "alice", trust=alice_store)  # alice restarts; the store remembers bob's newest certificate
    produced = room.inject("alice", Left(name="bob"), Joined(member=old))
    assert kinds(produced) == ["Left", "Warning:stale_certificate"]
    assert "bob" not in room["alice"].peers


# --- session key rotation ---------------------------------------------------------------


def rotating_room(**options: object) -> SessionPair:
    pair = SessionPair()
    pair.add("alice", **options)
    pair.pump()
    pair.join("bob", "carol")
    return pair


def test_rotation_every_n_messages_is_invisible_to_the_conversation() -> None:
    room = rotating_room(rotate_after_messages=3)
    first_key = room["alice"].session_key.public
    texts = [f"m{i}" for i in range(8)]
    for text in texts:
        room["alice"].send_message(text, room.now)
        produced = room.pump()
        for label in ("bob", "carol"):
            assert kinds(produced[label]) == ["Message"], (text, produced[label])
        assert kinds(produced["alice"]) == ["Delivery"]
    assert room["alice"].session_key.public != first_key
    # Everyone holds alice's current session key, and the relay gives it to newcomers.
    assert room["bob"].peers["alice"].session_key == room["alice"].session_key.public
    room.join("dave")
    assert room["dave"].peers["alice"].session_key == room["alice"].session_key.public
    # Replies still reach alice under her new key.
    room["bob"].send_message("reply", room.now, to=["alice"])
    assert [m.text for m in only(room.pump()["alice"], ev.Message)] == ["reply"]
    room["dave"].send_message("hello alice", room.now, to=["alice"])
    assert [m.text for m in only(room.pump()["alice"], ev.Message)] == ["hello alice"]


def test_rotation_by_age_happens_on_tick() -> None:
    room = rotating_room(rotate_after_seconds=60)
    before = room["alice"].session_key.public
    room["alice"].tick(room.now + 30)
    assert room["alice"].data_to_send() == b"" and room["alice"].session_key.public == before
    room["alice"].tick(room.now + 61)
    assert room["alice"].session_key.public != before
    room.pump()
    assert room["bob"].peers["alice"].session_key == room["alice"].session_key.public


def pump_holding_delivers(room: SessionPair, label: str, sender: str | None = None) -> list[Frame]:
    """Pump once with every ``deliver`` to ``label`` (from ``sender``, if named) held back; returns them."""
    held: list[Frame] = []

    def hold(frame: Frame) -> list[Frame]:
        if isinstance(frame, Deliver) and sender in (None, frame.sender):
            held.append(frame)
            return []
        return [frame]

    room.intercept(label, hold)
    room.pump()
    room.intercept(label, None)
    return held


def test_messages_sealed_to_the_previous_key_open_within_the_grace_period_only() -> None:
    room = rotating_room(rotate_after_seconds=1000)  # long enough that only one rotation happens here
    # bob seals two messages to alice's current key before he hears of her rotation.
    room["bob"].send_message("in flight 1", room.now, to=["alice"])
    room["bob"].send_message("in flight 2", room.now, to=["alice"])
    held = pump_holding_delivers(room, "alice")
    rotated_at = room.now + 1001
    room["alice"].tick(rotated_at)
    room.pump()
    assert len(held) == 2
    # The first arrives inside the grace period and opens with the previous key...
    room.now = rotated_at + 1
    assert [m.text for m in only(room.inject("alice", held[0]), ev.Message)] == ["in flight 1"]
    # ...after it, the previous secret is gone: the second no longer opens.
    room.now = rotated_at + PREVIOUS_KEY_GRACE + 1
    room["alice"].tick(room.now)
    assert kinds(room.inject("alice", held[1])) == ["Warning:decrypt_failed"]


def test_a_replayed_rekey_announcement_is_refused() -> None:
    room = rotating_room(rotate_after_messages=1)
    captured: list[Rekeyed] = []

    def capture(frame: Frame) -> list[Frame]:
        if isinstance(frame, Rekeyed):
            captured.append(frame)
        return [frame]

    room.intercept("bob", capture)
    for text in ("one", "two", "three"):
        room["alice"].send_message(text, room.now)
        room.pump()
    assert len(captured) == 2  # rotations before the 2nd and 3rd messages
    # The relay replays the first rotation: that session key has ended.
    assert kinds(room.inject("bob", captured[0])) == ["Warning:stale_session"]
    # A certificate older than the current one, for a key never seen, is stale.
    older = certified(room.identity("alice"), "alice", captured[1].member.issued_at - 1)
    assert kinds(room.inject("bob", Rekeyed(member=older))) == ["Warning:stale_certificate"]
    # Certified at the same second as the current one: not later, so not a rotation.
    same_time = certified(room.identity("alice"), "alice", captured[1].member.issued_at)
    assert kinds(room.inject("bob", Rekeyed(member=same_time))) == ["Warning:stale_certificate"]
    room["alice"].send_message("still fine", room.now)
    assert kinds(room.pump()["bob"]) == ["Message"]


def test_rekeyed_lies_are_refused() -> None:
    room = rotating_room()
    mallory = IdentityKey.generate()
    # Rotation for someone not present.
    assert kinds(room.inject("bob", Rekeyed(member=certified(mallory, "zed", 10**9)))) == ["Warning:unknown_sender"]
    # Rotation under another identity key: a key change in disguise, blocked.
    forged = certified(mallory, "carol", 10**10)
    assert kinds(room.inject("bob", Rekeyed(member=forged))) == ["Warning:key_changed"]
    assert "carol" not in room["bob"].peers
    # A certificate not signed by alice's identity key.
    genuine = room["bob"].peers["alice"]
    bad = Member(
        name="alice", ik=genuine.identity_key, sk=SessionKey.generate().public, cert=b"\x00" * 64, issued_at=10**10
    )
    assert kinds(room.inject("bob", Rekeyed(member=bad))) == ["Warning:bad_certificate"]
    assert room["bob"].peers["alice"].session_key == room["alice"].session_key.public


def test_the_relay_refuses_a_rekey_that_does_not_verify_or_goes_back_in_time() -> None:
    room = rotating_room()
    alice = room["alice"]
    now_cert = alice.certificate_time
    fresh = SessionKey.generate()
    unsigned = Rekey(sk=fresh.public, cert=b"\x01" * 64, issued_at=now_cert + 5)
    backwards_cert = SessionCertificate.issue(alice.identity, "alice", fresh.public, now_cert)
    backwards = Rekey(sk=fresh.public, cert=backwards_cert.signature, issued_at=now_cert)
    node = room.nodes["alice"]
    for frame in (unsigned, backwards):
        assert room.relay.receive(node.conn, encode(frame))  # a bad rekey costs no membership
        produced = room.pump()
        errors = [e for e in produced["alice"] if isinstance(e, ev.Warning)]
        assert [e.kind for e in errors] == ["relay_error"] and "bad_cert" in errors[0].detail
        assert only(produced["bob"], ev.Warning) == []
    assert room["bob"].peers["alice"].session_key == alice.session_key.public


# --- review findings (each failed before its fix) -----------------------------------------


def test_verified_is_bound_to_the_key_whose_number_was_compared(room: SessionPair) -> None:
    compared = room["alice"].safety_number("bob")
    # Between /verify and /verified the relay swaps bob's key for one it owns.
    impostor = certified(IdentityKey.generate(), "bob", int(room.now) + 10)
    room.inject("alice", Left(name="bob"), Joined(member=impostor))
    with pytest.raises(TrustError, match="compare the numbers again"):
        room["alice"].mark_verified("bob", compared)
    assert room["alice"].peers["bob"].trust.value == "changed"  # still blocked
    with pytest.raises(TrustError, match="not the one"):
        room["alice"].mark_verified("bob", "00000 " * 11 + "00000")


def test_a_flood_of_ghosts_cannot_fill_the_trust_store(
    room: SessionPair, alice_store: TrustStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    import susurro.crypto.trust as trust_module

    monkeypatch.setattr(trust_module, "MAX_AUTO_PINS_PER_DAY", 3)
    produced: list[ev.Event] = []
    for i in range(6):  # a key each: one key under six names would be one session per key refused five times
        produced += room.inject("alice", Joined(member=certified(IdentityKey.generate(), f"ghost{i}", 10 + i)))
    warnings = only(produced, ev.Warning)
    assert [w.kind for w in warnings] == ["trust_store"]  # said once, not six times
    assert "never seen" in warnings[0].detail
    # bob and carol were pinned at the join (2 of the 3); one ghost took the last pin.
    pinned = [n for n in ("ghost0", "ghost1", "ghost2", "ghost3") if alice_store.contact(n) is not None]
    assert pinned == ["ghost0"]
    assert all(p.trust.value == "new" for n, p in room["alice"].peers.items() if n.startswith("ghost"))


def test_a_busy_room_drops_the_previous_key_without_any_tick() -> None:
    room = rotating_room(rotate_after_seconds=1000)
    room["bob"].send_message("sealed to the old key", room.now, to=["alice"])
    held = pump_holding_delivers(room, "alice", sender="bob")
    room["alice"].tick(room.now + 1001)  # rotation
    room.pump()
    # Traffic keeps flowing (carol talks), but nobody calls tick() again.
    room.now += 1001 + PREVIOUS_KEY_GRACE + 1
    room["carol"].send_message("busy", room.now)
    assert [m.text for m in only(room.pump()["alice"], ev.Message)] == ["busy"]
    assert kinds(room.inject("alice", held[0])) == ["Warning:decrypt_failed"]


def test_two_rotations_within_the_grace_period_keep_both_old_keys() -> None:
    room = rotating_room(rotate_after_messages=1)
    room["bob"].send_message("to key 1", room.now, to=["alice"])
    held = pump_holding_delivers(room, "alice")
    room["alice"].send_message("a", room.now)  # sent with key 1
    room.pump()
    room["alice"].send_message("b", room.now)  # rotates to key 2 first
    room.pump()
    room["alice"].send_message("c", room.now)  # rotates to key 3 first
    room.pump()
    assert [m.text for m in only(room.inject("alice", held[0]), ev.Message)] == ["to key 1"]


def test_a_reconnect_is_certified_after_rotations_that_ran_ahead_of_the_clock() -> None:
    room = rotating_room(rotate_after_messages=1)
    for text in ("one", "two", "three", "four"):
        room["alice"].send_message(text, room.now)
        room.pump()
    ahead = room["alice"].certificate_time
    assert ahead > int(room.now)  # several rotations in the same second
    identity = room.identity("alice")
    room["alice"].close()
    room.pump()
    del room.nodes["alice"]
    room.add("alice", identity=identity, issued_after=ahead)
    produced = room.pump()
    assert kinds(produced["bob"]) == ["Joined"]  # not refused as stale


def test_the_relay_refuses_another_members_session_key() -> None:
    room = rotating_room()
    alice, bob = room["alice"], room["bob"]
    # A member rotates to bob's session key (it needs only its own identity key to certify it).
    cert = SessionCertificate.issue(alice.identity, "alice", bob.session_key.public, alice.certificate_time + 5)
    room.relay.receive(
        room.nodes["alice"].conn,
        encode(Rekey(sk=bob.session_key.public, cert=cert.signature, issued_at=alice.certificate_time + 5)),
    )
    produced = room.pump()
    assert [w.kind for w in only(produced["alice"], ev.Warning)] == ["relay_error"]
    assert "in use" in only(produced["alice"], ev.Warning)[0].detail
    assert only(produced["carol"], ev.Warning) == []
    # A newcomer still sees both, each with its own key.
    joined = room.join("dave")["dave"]
    assert {m.name for m in only(joined, ev.Roster)[0].members} == {"alice", "bob", "carol"}


def test_the_relay_refuses_a_join_with_another_members_session_key() -> None:
    room = rotating_room()
    mallory = IdentityKey.generate()
    bob_session = room["bob"].session_key.public  # public: any member knows it
    outbox = MemoryOutbox()
    conn = room.relay.connect(outbox, "memory:mallory")
    assert conn is not None
    cert = SessionCertificate.issue(mallory, "mallory", bob_session, 7)
    hello = Hello(
        name="mallory",
        ik=mallory.public,
        sk=bob_session,
        cert=cert.signature,
        issued_at=7,
        proof=join_proof(mallory, conn.nonce, "mallory", bob_session),
    )
    assert not room.relay.receive(conn, encode(hello))
    decoder = FrameDecoder(1 << 20)
    decoder.feed(outbox.take_all())
    frames = []
    while (payload := decoder.next_payload()) is not None:
        frames.append(decode_frame(payload, RELAY_FRAMES))
    assert [f.TYPE for f in frames] == ["challenge", "error"]
    assert frames[1].code == "bad_cert" and "in use" in frames[1].detail
    assert only(room.pump()["alice"], ev.Joined) == []
