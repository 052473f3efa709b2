"""Every lie a relay can tell is caught by the client, on real sockets.

The relay here is the real one, behind a tampering man in the middle
(``hostile_relay``): whatever the proxy does to the stream, a malicious relay
could do. For each attack the test asserts the client's exact warnings and
that no forged text ever appears as a ``Message``; a barrier makes sure the
client has processed everything before the assertions run.

The sections are numbered by one list of relay attacks: 1 identity key
substituted on join, 2 session key substituted, 3 a ghost member, 4 replays,
5 drops and reordering, 6 forged sender and swapped ciphertexts, 7 reflection,
8 bit flips, 9 a stale session certificate after rotation. The attacks that
need the trust store (1, 3's trust part, 9) are in
``test_hostile_relay_trust.py``; the socket-level fuzzing is in
``tests/property/test_socket_fuzz.py``.
"""

from __future__ import annotations

import dataclasses
import secrets
from collections.abc import Sequence

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from susurro.client import events as ev
from susurro.client.session import SendError
from susurro.crypto import (
    BoxCache,
    IdentityKey,
    Recipient,
    SessionCertificate,
    SessionKey,
    fingerprint_bytes,
    seal_message,
)
from susurro.crypto.seal import open_message
from susurro.protocol import Ack, Deliver, Frame, Joined, Member, Send, Welcome
from susurro.protocol.framing import pack_payload
from tests.helpers.hostile_relay import (
    TO_CLIENT,
    TO_RELAY,
    Client,
    HostileRoom,
    Item,
    after_barrier,
    assert_no_forgery,
    certified,
    delivers,
    send_and_wait,
    sends,
)

pytestmark = pytest.mark.timeout(120)


@pytest.fixture
def trio(hostile: HostileRoom) -> HostileRoom:
    """alice, bob and carol joined through the proxy, each having seen the others."""
    for label in ("alice", "bob", "carol"):
        hostile.join(label)
    hostile.forget_events()
    return hostile


# --- 2. session-key substitution with a certificate that does not verify ---------------

ATTACKER = IdentityKey.generate()


def substituted(member: Member, variant: str, attacker_sk: bytes) -> Member:
    """``member`` with the attacker's session key and a certificate that does not verify."""
    if variant == "unsigned":
        cert = secrets.token_bytes(64)
    elif variant == "zero_signature":
        cert = bytes(64)
    elif variant == "signed_by_attacker":  # a real signature, by the wrong identity key
        cert = SessionCertificate.issue(ATTACKER, member.name, attacker_sk, member.issued_at).signature
    elif variant == "genuine_cert_other_key":  # the member's own certificate, for its real key
        cert = member.cert
    else:
        raise AssertionError(variant)
    return dataclasses.replace(member, sk=attacker_sk, cert=cert)


SUBSTITUTIONS = ["unsigned", "zero_signature", "signed_by_attacker", "genuine_cert_other_key"]


@pytest.mark.parametrize("variant", SUBSTITUTIONS)
@pytest.mark.parametrize("where", ["joined", "welcome"])
def test_attack2_session_key_substituted_with_a_bad_certificate_is_refused(
    hostile: HostileRoom, where: str, variant: str
) -> None:
    attacker_sk = SessionKey.generate()

    def swap_carol(label: str, frame: Frame) -> list[Item]:
        if isinstance(frame, Joined) and frame.member.name == "carol":
            return [Joined(member=substituted(frame.member, variant, attacker_sk.public))]
        if isinstance(frame, Welcome):
            roster = tuple(
                substituted(m, variant, attacker_sk.public) if m.name == "carol" else m for m in frame.roster
            )
            return [dataclasses.replace(frame, roster=roster)]
        return [frame]

    bob = hostile.join("bob")
    if where == "joined":
        alice = hostile.join("alice")
        hostile.proxy.set_hook("alice", swap_carol)
        carol = hostile.join("carol", others_see_it=False)
        bob.wait_for(lambda e: isinstance(e, ev.Joined) and e.member.name == "carol")
    else:
        carol = hostile.join("carol")
        hostile.proxy.set_hook("alice", swap_carol)  # in place before alice's welcome arrives
        alice = hostile.join("alice")
    if where == "joined":
        alice.wait_warning("bad_certificate")
    else:  # checked while the welcome was read, before the roster
        assert alice.kinds() == ["Connected", "Warning:bad_certificate", "Roster"]
    assert "carol" not in alice.session.member_names()

    # The attacker speaks as carol with its substituted session key: nobody to open it with.
    forged = seal_message(
        identity=ATTACKER,
        boxes=BoxCache(attacker_sk),
        sender="carol",
        recipients=[
            Recipient(
                name="alice",
                identity_key=alice.identity.public,
                session_key=alice.session.session_key.public,
                counter=1,
            )
        ],
        body="forged by the relay",
        msg_id="forged1",
        sent_at=1,
    )
    hostile.proxy.inject("alice", Deliver(sender="carol", id="forged1", ct=forged["alice"]))
    with pytest.raises(SendError, match="not in the room"):
        alice.send("secret for carol", to=["carol"])
    send_and_wait(alice, "for the room", [bob])

    after_barrier(alice, bob, carol)
    assert alice.warnings() == ["bad_certificate", "unknown_sender"]
    assert alice.messages() == []
    # Nothing was ever encrypted to the substituted key.
    addressed = {name for send in sends(hostile.proxy.seen("alice", TO_RELAY)) for name in send.to}
    assert addressed == {"bob"}
    assert carol.messages() == [] and carol.warnings() == []


# --- 4. replays ------------------------------------------------------------------------


def test_attack4_replayed_deliver_is_a_replay_however_relabelled(trio: HostileRoom) -> None:
    alice, bob = trio.clients["alice"], trio.clients["bob"]
    send_and_wait(alice, "only once", [bob], to=["bob"])
    (original,) = delivers(trio.proxy.seen("bob"))
    trio.proxy.inject(
        "bob",
        original,  # byte for byte
        original,
        dataclasses.replace(original, id="fresh-id"),  # a new relay id does not make it new
    )
    after_barrier(bob)
    assert bob.warnings() == ["replay", "replay", "replay"]
    assert bob.texts() == ["only once"]
    assert_no_forgery(bob, {"only once": "alice"})


def test_attack4_deliver_from_the_senders_earlier_session_does_not_decrypt(hostile: HostileRoom) -> None:
    alice, bob = hostile.join("alice"), hostile.join("bob")
    send_and_wait(alice, "from the first session", [bob])
    (old,) = delivers(hostile.proxy.seen("bob"))
    hostile.leave("alice")
    hostile.join("alice2", name="alice", identity=alice.identity)  # same person, fresh session key
    hostile.proxy.inject("bob", old, dataclasses.replace(old, id="renamed"))
    after_barrier(bob)
    assert bob.warnings() == ["decrypt_failed", "decrypt_failed"]
    assert bob.texts() == ["from the first session"]


def test_attack4_deliver_to_the_recipients_earlier_session_does_not_decrypt(hostile: HostileRoom) -> None:
    alice, bob = hostile.join("alice"), hostile.join("bob")
    send_and_wait(alice, "to bob's first session", [bob])
    (old,) = delivers(hostile.proxy.seen("bob"))
    hostile.leave("bob")
    bob2 = hostile.join("bob2", name="bob", identity=bob.identity)
    hostile.proxy.inject("bob2", old)
    after_barrier(bob2)
    assert bob2.warnings() == ["decrypt_failed"]
    assert bob2.messages() == []


def test_attack4_re_announced_ended_session_and_its_replay_are_refused(hostile: HostileRoom) -> None:
    alice, bob = hostile.join("alice"), hostile.join("bob")
    send_and_wait(alice, "before leaving", [bob])
    (old,) = delivers(hostile.proxy.seen("bob"))
    # The relay pretends alice came back with her old session, then replays her message.
    old_alice = next(f for f in hostile.proxy.seen("bob") if isinstance(f, Welcome)).roster[0]
    assert old_alice.name == "alice"
    hostile.leave("alice")
    hostile.proxy.inject("bob", Joined(member=old_alice), old)
    after_barrier(bob)
    assert bob.warnings() == ["stale_session", "unknown_sender"]
    assert bob.texts() == ["before leaving"]


# --- 5. drops and reordering -----------------------------------------------------------


def nth_deliver_hook(action: str) -> tuple[object, list[Deliver]]:
    """A hook over ``deliver`` frames: ``drop`` the second, or ``swap`` the first two."""
    held: list[Deliver] = []
    count = [0]

    def hook(label: str, frame: Frame) -> list[Item]:
        if not isinstance(frame, Deliver):
            return [frame]
        count[0] += 1
        if action == "drop" and count[0] == 2:
            return []
        if action == "swap" and count[0] == 1:
            held.append(frame)
            return []
        if action == "swap" and count[0] == 2:
            return [frame, held.pop()]
        return [frame]

    return hook, held


def send_three(sender: Client, recipients: Sequence[Client], to: list[str] | None) -> None:
    for text in ("one", "two", "three"):
        msg_id = sender.send(text, to)
        sender.wait_for(lambda e, i=msg_id: isinstance(e, ev.Delivery) and e.msg_id == i)


@pytest.mark.parametrize("to", [None, ["bob"]], ids=["room", "direct"])
def test_attack5_dropped_second_of_three_is_a_gap(trio: HostileRoom, to: list[str] | None) -> None:
    alice, bob, carol = (trio.clients[n] for n in ("alice", "bob", "carol"))
    hook, _ = nth_deliver_hook("drop")
    trio.proxy.set_hook("bob", hook)  # type: ignore[arg-type]
    send_three(alice, [bob], to)
    after_barrier(bob, carol)
    assert bob.kinds() == ["Message", "Warning:gap", "Message"]
    assert bob.texts() == ["one", "three"]
    gap = next(e for e in bob.log if isinstance(e, ev.Warning))
    assert gap.sender == "alice" and "1 message(s)" in gap.detail
    assert carol.texts() == (["one", "two", "three"] if to is None else [])
    assert carol.warnings() == []


def test_attack5_reordered_messages_show_a_gap_then_refuse_the_late_one(trio: HostileRoom) -> None:
    alice, bob = trio.clients["alice"], trio.clients["bob"]
    hook, held = nth_deliver_hook("swap")
    trio.proxy.set_hook("bob", hook)  # type: ignore[arg-type]
    send_three(alice, [bob], ["bob"])
    after_barrier(bob)
    assert not held
    assert bob.kinds() == ["Warning:gap", "Message", "Warning:replay", "Message"]
    assert bob.texts() == ["two", "three"]
    assert_no_forgery(bob, {"two": "alice", "three": "alice"})


# --- 6. forged sender, swapped ciphertexts ------------------------------------------------


def test_attack6_deliver_relabelled_as_from_another_member_does_not_decrypt(trio: HostileRoom) -> None:
    alice, bob = trio.clients["alice"], trio.clients["bob"]

    def from_carol(label: str, frame: Frame) -> list[Item]:
        if isinstance(frame, Deliver):
            return [dataclasses.replace(frame, sender="carol"), dataclasses.replace(frame, sender="mallory")]
        return [frame]

    trio.proxy.set_hook("bob", from_carol)
    alice.send("who sent this?", ["bob"])
    alice.wait_event(ev.Delivery)
    after_barrier(bob)
    assert bob.warnings() == ["decrypt_failed", "unknown_sender"]
    assert bob.messages() == []


def test_attack6_insider_signing_as_another_member_is_refused(trio: HostileRoom) -> None:
    """carol colludes with the relay: she seals a message that claims to be from alice."""
    bob, carol = trio.clients["bob"], trio.clients["carol"]
    bob_as_recipient = Recipient(
        name="bob", identity_key=bob.identity.public, session_key=bob.session.session_key.public, counter=1
    )
    forged = seal_message(
        identity=carol.identity,
        boxes=BoxCache(carol.session.session_key),
        sender="alice",  # the signed from
        recipients=[bob_as_recipient],
        body="alice says: send me your password",
        msg_id="insider1",
        sent_at=1,
    )["bob"]
    trio.proxy.inject(
        "bob",
        Deliver(sender="carol", id="insider1", ct=forged),  # carol's Box, but signed from alice
        Deliver(sender="alice", id="insider1", ct=forged),  # alice's name, but carol's Box
    )
    after_barrier(bob)
    assert bob.warnings() == ["sender_mismatch", "decrypt_failed"]
    assert bob.messages() == []


@pytest.mark.parametrize("swap", ["exchanged", "both_get_bobs"])
def test_attack6_ciphertexts_swapped_between_recipients_are_refused(trio: HostileRoom, swap: str) -> None:
    alice, bob, carol = (trio.clients[n] for n in ("alice", "bob", "carol"))

    def tamper_send(label: str, frame: Frame) -> list[Item]:
        if isinstance(frame, Send):
            to = dict(frame.to)
            if swap == "exchanged":
                to["bob"], to["carol"] = to["carol"], to["bob"]
            else:
                to["carol"] = to["bob"]
            return [Send(id=frame.id, to=to)]
        return [frame]

    trio.proxy.set_hook("alice", tamper_send, TO_RELAY)
    send_and_wait(alice, "for both of you", [bob] if swap == "both_get_bobs" else [])
    after_barrier(bob, carol)
    assert carol.warnings() == ["decrypt_failed"]
    assert carol.messages() == []
    if swap == "exchanged":
        assert bob.warnings() == ["decrypt_failed"]
        assert bob.messages() == []
    else:
        assert bob.warnings() == []
        assert bob.texts() == ["for both of you"]


# --- 7. reflection ---------------------------------------------------------------------------


@pytest.mark.parametrize("to", [["bob"], None], ids=["direct", "room"])
def test_attack7_own_ciphertext_reflected_back_is_a_sender_mismatch(trio: HostileRoom, to: list[str] | None) -> None:
    """Box(SK_alice, SK_bob) is the same key both ways, so alice's ciphertext for bob
    opens for alice as if bob had sent it; only the signed ``from`` gives it away."""
    alice, bob = trio.clients["alice"], trio.clients["bob"]
    send_and_wait(alice, "my own words", [bob], to)
    (send,) = sends(trio.proxy.seen("alice", TO_RELAY))
    reflections = [Deliver(sender=name, id=send.id, ct=ct) for name, ct in send.to.items()]
    trio.proxy.inject("alice", *reflections)
    after_barrier(alice)
    assert alice.warnings() == ["sender_mismatch"] * len(reflections)
    assert alice.messages() == []


# --- 8. bit flips ------------------------------------------------------------------------------


def flipped(data: bytes, index: int, mask: int) -> bytes:
    out = bytearray(data)
    out[index] ^= mask
    return bytes(out)


def test_attack8_every_single_bit_flip_of_a_ciphertext_is_decrypt_failed(trio: HostileRoom) -> None:
    """Exhaustive: every bit of a real ciphertext, flipped one at a time, through the socket."""
    alice, bob = trio.clients["alice"], trio.clients["bob"]
    send_and_wait(alice, "flip me", [bob], ["bob"])
    (original,) = delivers(trio.proxy.seen("bob"))
    bits = len(original.ct) * 8
    batch: list[Item] = []
    for bit in range(bits):
        batch.append(dataclasses.replace(original, ct=flipped(original.ct, bit // 8, 1 << (bit % 8))))
        if len(batch) == 256:
            trio.proxy.inject("bob", *batch)
            batch = []
    trio.proxy.inject("bob", *batch)
    after_barrier(bob)
    assert bob.warnings() == ["decrypt_failed"] * bits
    assert bob.texts() == ["flip me"]


def test_attack8_bit_flips_anywhere_in_a_deliver_frame_never_forge(trio: HostileRoom) -> None:
    """Flip a bit in every byte of the whole ``deliver`` payload (name, id, framing, ciphertext).

    Flips outside the ciphertext give protocol errors, unknown senders, or a
    relabelled id; none may show a message again (the genuine one was
    already shown, so a copy under another id is a replay).
    """
    alice, bob = trio.clients["alice"], trio.clients["bob"]
    send_and_wait(alice, "frame flip", [bob], ["bob"])
    (original,) = delivers(trio.proxy.seen("bob"))
    payload = pack_payload(original.to_wire())
    trio.proxy.inject("bob", *(flipped(payload, i, 1 << (i % 8)) for i in range(len(payload))))
    after_barrier(bob)
    allowed = {"decrypt_failed", "protocol_error", "unknown_sender", "replay"}
    assert set(bob.warnings()) <= allowed, bob.warnings()
    assert len(bob.warnings()) == len(payload)
    assert bob.texts() == ["frame flip"]


def test_attack8_random_corruptions_of_a_ciphertext_are_decrypt_failed(trio: HostileRoom) -> None:
    """Hypothesis picks positions and masks (one or several bytes); each corrupted copy is refused.

    Each example waits for the one event its copy must cause; a barrier at the
    end (one ``ping``: the relay's flood control counts them) proves there was
    nothing more.
    """
    alice, bob = trio.clients["alice"], trio.clients["bob"]
    send_and_wait(alice, "corrupt me", [bob], ["bob"])
    (original,) = delivers(trio.proxy.seen("bob"))
    size = len(original.ct)
    corrupted = 0

    @settings(max_examples=150, deadline=None)
    @given(changes=st.dictionaries(st.integers(0, size - 1), st.integers(1, 255), min_size=1, max_size=4))
    def corrupt(changes: dict[int, int]) -> None:
        nonlocal corrupted
        ct = original.ct
        for index, mask in changes.items():
            ct = flipped(ct, index, mask)
        trio.proxy.inject("bob", dataclasses.replace(original, ct=ct))
        corrupted += 1
        event = bob.wait_for(lambda e: True, what="the next event")
        assert isinstance(event, ev.Warning) and event.kind == "decrypt_failed", event

    corrupt()
    after_barrier(bob)
    assert bob.warnings() == ["decrypt_failed"] * corrupted
    assert bob.texts() == ["corrupt me"]


# --- 3. a ghost member (the part that needs no trust store) --------------------------------


def test_attack3_ghost_recipient_is_visible_in_every_signed_to_list(trio: HostileRoom) -> None:
    """The relay slips a ghost into alice's roster and reads what alice encrypts to it.

    It cannot hide that: every recipient sees the signed ``to`` list, which names the ghost.
    """
    alice, bob, carol = (trio.clients[n] for n in ("alice", "bob", "carol"))
    ghost_identity, ghost_session = IdentityKey.generate(), SessionKey.generate()
    stolen: list[bytes] = []

    def keep_ghost_copy(label: str, frame: Frame) -> list[Item]:
        if isinstance(frame, Send) and "ghost" in frame.to:
            stolen.append(frame.to["ghost"])
            return [Send(id=frame.id, to={n: ct for n, ct in frame.to.items() if n != "ghost"})]
        return [frame]

    def claim_ghost_delivered(label: str, frame: Frame) -> list[Item]:
        if isinstance(frame, Ack):
            return [dataclasses.replace(frame, delivered=(*frame.delivered, "ghost"))]
        return [frame]

    trio.proxy.set_hook("alice", keep_ghost_copy, TO_RELAY)
    trio.proxy.set_hook("alice", claim_ghost_delivered, TO_CLIENT)
    trio.proxy.inject("alice", Joined(member=certified(ghost_identity, "ghost", ghost_session.public)))
    joined = alice.wait_event(ev.Joined)
    assert isinstance(joined, ev.Joined) and joined.member.name == "ghost"
    msg_id = send_and_wait(alice, "for the room only", [bob, carol])

    # The attack works against alice (the ghost can read it)...
    (ct,) = stolen
    opened = open_message(
        boxes=BoxCache(ghost_session),
        ciphertext=ct,
        relay_sender="alice",
        sender_identity_key=alice.identity.public,
        sender_session_key=alice.session.session_key.public,
        own_name="ghost",
        own_identity_key=ghost_identity.public,
    )
    assert opened.inner.body == "for the room only"
    # ...but it is visible to everyone who got the message: the ghost is in the signed list,
    # with the identity key alice encrypted to.
    after_barrier(alice, bob, carol)
    for member in (bob, carol):
        (message,) = member.messages()
        assert set(message.to) == {"bob", "carol", "ghost"}
        assert "ghost" not in member.session.member_names()
    assert ("ghost", fingerprint_bytes(ghost_identity.public)) in opened.inner.to
    delivery = next(e for e in alice.log if isinstance(e, ev.Delivery) and e.msg_id == msg_id)
    assert isinstance(delivery, ev.Delivery) and "ghost" in delivery.delivered


# --- the harness itself ------------------------------------------------------------------------


def test_an_untouched_proxy_is_transparent(trio: HostileRoom) -> None:
    """Without hooks the room behaves exactly as without the proxy (the baseline of every test)."""
    alice, bob, carol = (trio.clients[n] for n in ("alice", "bob", "carol"))
    send_and_wait(alice, "hello room", [bob, carol])
    send_and_wait(bob, "hello alice", [alice], ["alice"])
    after_barrier(alice, bob, carol)
    for client in (alice, bob, carol):
        assert client.warnings() == []
    assert bob.texts() == ["hello room"] and carol.texts() == ["hello room"]
    assert alice.texts() == ["hello alice"]
