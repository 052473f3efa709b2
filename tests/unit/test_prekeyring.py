"""client/prekeyring.py: our own prekeys, rotated, refilled, used once, saved sealed."""

from __future__ import annotations

import pytest

from susurro.client.prekeyring import Duplicate, PrekeyRing
from susurro.crypto import IdentityKey
from susurro.crypto.errors import DecryptFailed, PrekeyReused, UnknownPrekey
from susurro.crypto.prekeys import (
    ONE_TIME_PREKEY_KEPT,
    ONE_TIME_PREKEY_LIFETIME,
    SIGNED_PREKEY_GRACE,
    SIGNED_PREKEY_ROTATION,
    OneTimePrekey,
    PrekeyBundle,
    check_bundle,
    seal_to_prekey,
)
from susurro.crypto.seal import message_block, sign_message

ALICE, BOB = IdentityKey.generate(), IdentityKey.generate()
T0 = 1_764_000_000.0


def fresh_ring() -> tuple[PrekeyRing, list[OneTimePrekey]]:
    ring = PrekeyRing(BOB)
    first = ring.on_join(T0)
    assert first.signed is not None and first.one_time == ()
    publication = ring.due(T0, 0)  # the relay holds none yet
    assert publication is not None and publication.signed is None
    return ring, list(publication.one_time)


def envelope(ring: PrekeyRing, one_time: OneTimePrekey | None, body: str = "hi", msg_id: str = "m1") -> bytes:
    signed = ring.current_signed
    assert signed is not None
    bundle = PrekeyBundle(name="bob", identity_key=BOB.public, signed=signed, one_time=one_time)
    message = sign_message(
        identity=ALICE, sender="alice", recipients=[("bob", BOB.public)], body=body, msg_id=msg_id, sent_at=1
    )
    return seal_to_prekey(ALICE, check_bundle(bundle, BOB.public), message_block(message, 1))


def open_(ring: PrekeyRing, data: bytes) -> str:
    return ring.open(data, relay_sender="alice", sender_identity_key=ALICE.public, own_name="bob").inner.body


def test_a_new_ring_publishes_a_signed_prekey_and_a_hundred_one_time_prekeys() -> None:
    ring, one_time = fresh_ring()
    assert len(one_time) == 100 and len({k.key_id for k in one_time}) == 100
    for key in one_time:
        key.verify(BOB.public)
    assert ring.due(T0 + 60, 100) is None
    assert ring.due(T0 + 60, 10) is None
    refill = ring.due(T0 + 60, 9)  # fewer than 10 left on the relay: back to 100
    assert refill is not None and refill.signed is None and len(refill.one_time) == 91


def test_a_one_time_private_half_is_deleted_after_its_expiry_even_if_never_used() -> None:
    # The relay may be holding back a message sealed to it: after its expiry and as long
    # again as a waiting message may be opened, no message can need it.
    ring, one_time = fresh_ring()
    expiry = one_time[0].expires_at
    assert expiry == int(T0) + ONE_TIME_PREKEY_LIFETIME and {k.expires_at for k in one_time} == {expiry}
    late = envelope(ring, one_time[0])
    ring.expire(expiry + ONE_TIME_PREKEY_KEPT - 1)
    assert ring.one_time_held == 100
    ring.expire(expiry + ONE_TIME_PREKEY_KEPT)
    assert ring.one_time_held == 0
    with pytest.raises(UnknownPrekey):
        open_(ring, late)
    loaded = PrekeyRing.load(BOB, ring.export())
    assert loaded.one_time_held == 0


def test_joining_republishes_the_same_signed_prekey_until_it_is_due() -> None:
    ring, _ = fresh_ring()
    assert ring.on_join(T0 + 3600).signed == ring.current_signed
    assert ring.on_join(T0 + 3600).signed.key_id == 1  # type: ignore[union-attr]
    assert ring.on_join(T0 + SIGNED_PREKEY_ROTATION).signed.key_id == 2  # type: ignore[union-attr]


def test_the_signed_prekey_rotates_weekly_and_the_old_one_opens_mail_for_thirty_days() -> None:
    ring, _one_time = fresh_ring()
    old_mail = envelope(ring, None)
    rotated = ring.due(T0 + SIGNED_PREKEY_ROTATION, 100)
    assert rotated is not None and rotated.signed is not None and rotated.signed.key_id == 2
    assert open_(ring, old_mail) == "hi"  # sealed to the replaced one, still held
    ring.due(T0 + SIGNED_PREKEY_ROTATION + SIGNED_PREKEY_GRACE + 1, 100)
    with pytest.raises(UnknownPrekey):
        open_(ring, old_mail)


def test_a_one_time_prekey_opens_one_message_and_refuses_a_second() -> None:
    ring, one_time = fresh_ring()
    first = envelope(ring, one_time[0], "first")
    second = envelope(ring, one_time[0], "second", msg_id="m2")  # the relay handed the key out twice
    assert open_(ring, first) == "first"
    assert ring.one_time_held == 99  # the private half is gone
    with pytest.raises(PrekeyReused):
        open_(ring, second)
    with pytest.raises(Duplicate):
        open_(ring, first)  # the relay resent the item: confirmed again, not shown twice


def test_a_forgery_under_a_key_id_does_not_use_the_key_up() -> None:
    ring, one_time = fresh_ring()
    genuine = envelope(ring, one_time[0])
    forged = bytearray(genuine)
    forged[-1] ^= 1
    with pytest.raises(DecryptFailed):
        open_(ring, bytes(forged))
    assert open_(ring, genuine) == "hi"


def test_the_ring_is_saved_sealed_and_keeps_its_promises_after_loading() -> None:
    ring, one_time = fresh_ring()
    used = envelope(ring, one_time[0], "first")
    open_(ring, used)
    saved = ring.export()
    assert one_time[1].public not in saved
    loaded = PrekeyRing.load(BOB, saved)
    with pytest.raises(Duplicate):
        open_(loaded, used)
    assert open_(loaded, envelope(loaded, one_time[1], "second")) == "second"
    with pytest.raises(DecryptFailed):
        PrekeyRing.load(ALICE, saved)
