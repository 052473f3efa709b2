"""Whole scripted sessions that more than one test runs (over plain TCP, over TLS)."""

from __future__ import annotations

import re
import secrets
from pathlib import Path

from tests.helpers.processes import CliProcess, RelayProcess


def three_user_session(
    relay: RelayProcess, clients: list[CliProcess], tmp_path: Path, client_args: tuple[str, ...] = ()
) -> None:
    """The whole scripted session; ``client_args`` go to every client (e.g. ``--tls``)."""
    # Each user has their own SUSURRO_HOME, as on three machines.
    alice = CliProcess("alice", tmp_path / "alice", relay.address, extra=client_args)
    clients.append(alice)
    me_alice = alice.expect_event("connected", name="alice")
    bob = CliProcess("bob", tmp_path / "bob", relay.address, extra=client_args)
    clients.append(bob)
    me_bob = bob.expect_event("connected", name="bob")
    carol = CliProcess("carol", tmp_path / "carol", relay.address, extra=client_args)
    clients.append(carol)
    me_carol = carol.expect_event("connected", name="carol")
    fingerprints = {"alice": me_alice["fingerprint"], "bob": me_bob["fingerprint"], "carol": me_carol["fingerprint"]}
    assert len(set(fingerprints.values())) == 3

    # Everyone sees the others with the fingerprints they have themselves.
    alice.expect_event("joined", name="bob", fingerprint=fingerprints["bob"])
    alice.expect_event("joined", name="carol", fingerprint=fingerprints["carol"])
    bob.expect_event("joined", name="carol", fingerprint=fingerprints["carol"])
    bob_roster = bob.expect_event("roster")
    assert bob_roster["members"] == [{"name": "alice", "fingerprint": fingerprints["alice"], "trust": "new"}]
    carol_roster = carol.expect_event("roster")
    assert sorted(m["name"] for m in carol_roster["members"]) == ["alice", "bob"]
    for member in carol_roster["members"]:
        assert member["fingerprint"] == fingerprints[member["name"]]

    # A room message reaches bob and carol, and alice learns it reached both.
    room_text = f"room plaintext {secrets.token_hex(8)}"
    alice.type(room_text)
    sent = alice.expect_event("sent")
    assert sorted(sent["to"]) == ["bob", "carol"] and sent["direct"] is False
    for receiver in (bob, carol):
        message = receiver.expect_event("message", text=room_text)
        assert message["from"] == "alice"
        assert sorted(message["to"]) == ["bob", "carol"]
        assert message["direct"] is False
        assert message["msg_id"] == sent["msg_id"]
    delivery = alice.expect_event("delivery", msg_id=sent["msg_id"])
    assert sorted(delivery["delivered"]) == ["bob", "carol"]
    assert delivery["missing"] == []

    # A direct message reaches bob only.
    direct_text = f"direct plaintext {secrets.token_hex(8)}"
    alice.type(f"/msg bob {direct_text}")
    direct = bob.expect_event("message", text=direct_text)
    assert direct["direct"] is True and direct["to"] == ["bob"] and direct["from"] == "alice"
    direct_delivery = alice.expect_event("delivery")
    assert direct_delivery["delivered"] == ["bob"] and direct_delivery["missing"] == []
    # The relay keeps per-sender order, so once carol has alice's next message,
    # anything alice sent her before it has arrived too.
    marker = f"after the direct message {secrets.token_hex(4)}"
    alice.type(marker)
    carol.expect_event("message", text=marker)
    assert not any(e.get("text") == direct_text for e in carol.events)

    # bob leaves cleanly; the others are told.
    bob.type("/quit")
    assert bob.wait() == 0
    alice.expect_event("left", name="bob")
    carol.expect_event("left", name="bob")

    # A message to a member who left waits for him in his mailbox: sealed to his
    # prekeys, stored by the relay, and reported as waiting, not delivered.
    carol.type(f"/msg bob are you there {secrets.token_hex(4)}")
    waiting = carol.expect(lambda e: e["event"] == "delivery" and e.get("waiting"), "a waiting delivery")
    assert waiting["waiting"] == ["bob"] and waiting["delivered"] == []

    # The relay shuts down cleanly; the clients are told why, and wait for it to come back.
    assert relay.stop() == 0
    for client in (alice, carol):
        client.expect_event("reconnecting")  # a restart, as far as clients know: they keep trying
        ended = [e for e in client.events if e.get("event") == "disconnected"]
        assert not ended, f"a shutdown ended the session: {ended}"

    output = relay.all_output()
    for plaintext in (room_text, direct_text, marker):
        assert plaintext not in output
        assert plaintext.encode().hex() not in output
    # The room message is one deliver line naming both copies; the direct one names bob alone.
    assert re.search(r"deliver from=alice to=(bob,carol|carol,bob) id=", output)
    assert "deliver from=alice to=bob id=" in output
    assert "join name=carol" in output and "leave name=bob" in output
