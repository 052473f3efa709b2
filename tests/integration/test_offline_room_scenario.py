"""Messages that wait, room and direct, end to end from the real programs: a ``susurro-relay`` process on a
``--data-dir`` (stopped and started again) and ``susurro-cli --json`` clients, each
with its own ``$SUSURRO_HOME``. Days pass by starting a client with its clock ahead
(``tests/helpers/later_clock.py``), never by sleeping.

1. alice sends two messages to the room "ops" while bob is away, and leaves; the relay restarts.
2. bob starts eight days later (his signed prekey rotates as he joins): he gets both,
   verified (messages, not warnings), in order, marked as having waited; alice, back an
   hour after him, gets his signed receipt, and her report moves from waiting to delivered.
3. bob starts again and sees them in his history; neither his history database, anyone's
   files, nor the relay's database and log hold the plaintext.
"""

from __future__ import annotations

import secrets
import time
from pathlib import Path

from tests.helpers.processes import CliProcess, RelayProcess, alice_then_bob

DAY = 86_400


def all_bytes(*directories: Path) -> bytes:
    return b"".join(p.read_bytes() for d in directories for p in d.rglob("*") if p.is_file())


def test_a_room_message_waits_across_a_relay_restart_and_days_then_is_delivered_and_kept(
    tmp_path: Path, cli_clients: list[CliProcess]
) -> None:
    data_dir = tmp_path / "data"
    texts = [f"ops plaintext one {secrets.token_hex(6)}", f"ops plaintext two {secrets.token_hex(6)}"]
    relay = RelayProcess(tmp_path, "--data-dir", str(data_dir))
    try:
        alice, bob = alice_then_bob((tmp_path / "alice", tmp_path / "bob"), relay, cli_clients)
        alice.type("/create ops")
        created = alice.expect_event("room_created", room="ops")
        alice.type("/invite bob")
        bob.expect_event("invitation", room="ops", by="alice")
        bob.type("/accept-invite ops")
        bob.expect_event("invited", room="ops", by="alice")
        alice.expect_event("member_added", room="ops", name="bob")
        bob.type("/quit")
        assert bob.wait() == 0
        alice.expect_event("left", name="bob")
        alice.type("/join ops")
        alice.expect_event("room", room="ops")
        sent_ids = []
        for text in texts:
            alice.type(text)
            sent = alice.expect_event("sent", room="ops")
            report = alice.expect(
                lambda e, i=sent["msg_id"]: e["event"] == "delivery" and e["msg_id"] == i and e["waiting"],
                "a waiting delivery",
            )
            assert report["waiting"] == ["bob"] and report["not_delivered"] == []
            sent_ids.append(sent["msg_id"])
        alice.type("/quit")
        assert alice.wait() == 0
    finally:
        relay.stop()

    (tmp_path / "again").mkdir()
    relay = RelayProcess(tmp_path / "again", "--data-dir", str(data_dir))  # the relay restarted
    try:
        bob = CliProcess("bob", tmp_path / "bob", relay.address, later=8 * DAY)
        cli_clients.append(bob)
        bob.expect_event("connected")
        # At another address the relay is another relay to bob's state file: its rooms are not his yet, and
        # the room messages from his mailbox wait (in memory only) for his answer to the invitation.
        bob.expect_event("invitation", room="ops", by="alice")
        bob.type("/accept-invite ops")
        bob.expect_event("message", text=texts[-1])
        got = [e for e in bob.events if e["event"] == "message"]  # as printed, in order
        assert [(m["text"], m["msg_id"]) for m in got] == list(zip(texts, sent_ids, strict=True))
        assert [(m["from"], m["room"], m["room_id"], m["waited"]) for m in got] == [
            ("alice", "ops", created["room_id"], True)
        ] * 2
        assert not [e for e in bob.events if e["event"] == "warning"], bob.events
        alice = CliProcess("alice", tmp_path / "alice", relay.address, later=8 * DAY + 3600)
        cli_clients.append(alice)
        alice.expect_event("connected")
        receipt = alice.expect_event("receipt", **{"from": "bob"})
        assert receipt["waited"] == sent_ids  # "waiting for bob" is now "delivered to bob"
        alice.type("/msg bob back")
        back = bob.expect_event("message", text="back")
        assert back["sent_at"] / 1000 - time.time() > 7 * DAY  # alice's clock did run days ahead
        bob.type("/quit")
        assert bob.wait() == 0
        alice.type("/quit")
        alice.wait()

        bob = CliProcess("bob", tmp_path / "bob", relay.address, later=8 * DAY + 7200, extra=("--room", "ops"))
        cli_clients.append(bob)
        bob.expect_event("connected")
        bob.expect_event("room_ready", room="ops")  # its log verified again: /history is the room's
        bob.type("/history")
        history = bob.expect_event("history", conversation=f"room:{created['room_id']}")
        assert [m["text"] for m in history["messages"]] == texts
        assert not [e for e in bob.events if e["event"] in ("message", "warning")], bob.events  # not again
        bob.type("/quit")
        bob.wait()
    finally:
        relay.stop()
    everything = all_bytes(data_dir, tmp_path / "alice", tmp_path / "bob")
    for text in texts:
        assert text.encode() not in everything
        assert text not in relay.all_output()
    assert (tmp_path / "bob" / "history").exists() and any((tmp_path / "bob" / "history").iterdir())
