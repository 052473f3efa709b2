"""Review S4 finding 13: a prekey bundle under another key never changes the pin.

The hostile relay answers alice's ``bundle_fetch`` for bob (who is away) with a
bundle under bob's name for mallory's key, its signed prekey genuinely signed by
mallory. Real sessions, a real relay core on a real SQLite data dir; alice's
frames from the relay pass a hook that swaps the bundle.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest

from susurro.client import events as ev
from susurro.client.errors import TrustError
from susurro.crypto import IdentityKey
from susurro.crypto.prekeys import new_signed_prekey
from susurro.crypto.trust import TrustState
from susurro.protocol import Bundles, Frame, WireBundle, WireSignedPrekey
from tests.helpers.offline import T0, bob_away


def test_a_bundle_for_another_key_is_refused_and_the_pin_and_accept_stay_as_they_were(tmp_path: Path) -> None:
    room, alice, bob, _ = bob_away(tmp_path)
    mallory = IdentityKey.generate()
    _, spk = new_signed_prekey(mallory, 1, int(T0))
    forged = WireBundle(
        name="bob", ik=mallory.public, opk=None,
        spk=WireSignedPrekey(id=spk.key_id, pk=spk.public, at=spk.created_at, sig=spk.signature),
    )  # fmt: skip

    def substitute(frame: Frame) -> list[Frame]:
        if isinstance(frame, Bundles):
            return [dataclasses.replace(frame, bundles=(forged,), unknown=())]
        return [frame]

    room.intercept("alice", substitute)
    msg_id = room["alice"].send_message("for bob only", room.now, to=["bob"])
    events = room.pump()["alice"]

    warnings = [e for e in events if isinstance(e, ev.Warning)]
    assert [w.kind for w in warnings] == [ev.WarningKind.BAD_PREKEY]
    assert "your pin for bob is unchanged" in warnings[0].detail
    assert not any(isinstance(e, ev.KeyChanged) for e in events)
    reports = [e for e in events if isinstance(e, ev.Delivery) and e.msg_id == msg_id]
    assert [r.not_delivered for r in reports] == [(("bob", "bad_prekey"),)]
    # nothing was posted to mallory's key, and the pin is bob's own, untouched
    assert room.relay.mailbox.mailboxes.fetch(mallory.public, after=0, max_items=10, max_bytes=1 << 20, now=T0) == []
    pinned = alice.trust.contact("bob")
    assert pinned is not None and pinned.identity_key == bob.identity.public
    assert alice.trust.state("bob", bob.identity.public) is TrustState.PINNED
    with pytest.raises(TrustError):
        room["alice"].accept_key("bob")
    assert alice.trust.state("bob", bob.identity.public) is TrustState.PINNED
