"""Messages that wait, through the real programs: a relay process on a
``--data-dir`` (stopped and started again), and ``susurro-cli --json`` clients
with their own ``$SUSURRO_HOME``. Afterwards neither the relay's database nor
either home holds the plaintext.
"""

from __future__ import annotations

from pathlib import Path

from tests.helpers.processes import CliProcess, RelayProcess

SECRET = "meet at the old mill at dawn"


def all_bytes(*directories: Path) -> bytes:
    return b"".join(p.read_bytes() for d in directories for p in d.rglob("*") if p.is_file())


def test_a_direct_message_waits_across_a_relay_restart_and_lands_in_history(
    tmp_path: Path, cli_clients: list[CliProcess]
) -> None:
    data_dir = tmp_path / "data"
    relay = RelayProcess(tmp_path, "--data-dir", str(data_dir))
    try:
        alice = CliProcess("alice", tmp_path / "alice", relay.address)
        cli_clients.append(alice)
        alice.expect_event("connected")  # before bob starts, so she sees him join
        bob = CliProcess("bob", tmp_path / "bob", relay.address)
        cli_clients.append(bob)
        bob.expect_event("connected")
        alice.expect_event("joined", name="bob")
        bob.type("/quit")
        bob.wait()
        alice.expect_event("left", name="bob")
        alice.type(f"/msg bob {SECRET}")
        delivery = alice.expect(lambda e: e["event"] == "delivery" and e.get("waiting"), "a waiting delivery")
        assert delivery["waiting"] == ["bob"] and delivery["not_delivered"] == []
    finally:
        relay.stop()
    (tmp_path / "again").mkdir()
    relay = RelayProcess(tmp_path / "again", "--data-dir", str(data_dir))  # the relay restarted
    try:
        bob = CliProcess("bob", tmp_path / "bob", relay.address)
        cli_clients.append(bob)
        bob.expect_event("connected")
        message = bob.expect_event("message", **{"from": "alice"})
        assert message["text"] == SECRET and message["direct"] and message["waited"]
        bob.type("/history alice")
        history = bob.expect_event("history", conversation="dm:alice")
        assert [m["text"] for m in history["messages"]] == [SECRET]
        bob.type("/quit")
        assert bob.wait() == 0
        # bob starts again: the message is not delivered twice, and his history still has it.
        bob = CliProcess("bob", tmp_path / "bob", relay.address)
        cli_clients.append(bob)
        bob.expect_event("connected")
        bob.type("/history alice")
        history = bob.expect_event("history", conversation="dm:alice")
        assert [m["text"] for m in history["messages"]] == [SECRET]
        assert not [e for e in bob.events if e["event"] == "message"]
        bob.type("/forget alice")
        assert bob.expect_event("forgotten", conversation="dm:alice")["messages"] == 1
        bob.type("/quit")
        bob.wait()
    finally:
        relay.stop()
    assert SECRET.encode() not in all_bytes(data_dir, tmp_path / "alice", tmp_path / "bob")
    assert SECRET not in relay.all_output()


def test_no_history_keeps_nothing(tmp_path: Path, cli_clients: list[CliProcess]) -> None:
    relay = RelayProcess(tmp_path)
    try:
        alice = CliProcess("alice", tmp_path / "alice", relay.address, extra=("--no-history",))
        cli_clients.append(alice)
        alice.expect_event("connected")
        bob = CliProcess("bob", tmp_path / "bob", relay.address, extra=("--no-history",))
        cli_clients.append(bob)
        bob.expect_event("connected")
        alice.expect_event("joined", name="bob")
        alice.type(SECRET)
        bob.expect_event("message", text=SECRET)
        bob.type("/history")
        assert bob.expect_event("history", conversation="room:main")["messages"] == []
    finally:
        relay.stop()
    assert not (tmp_path / "alice" / "history").exists() and not (tmp_path / "bob" / "history").exists()
