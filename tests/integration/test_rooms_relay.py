"""Rooms on a real relay over real loopback sockets: a room made and joined,
the relay stopped, a new relay on the same ``--data-dir`` serving the same
verified log, and the ``susurro-relay`` flags that configure it."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from susurro.crypto import EntryKind, IdentityKey, LogRules, RoomPolicy, create_entry, verify_log
from susurro.protocol import RoomAppend, RoomCreate, RoomError, RoomFind, RoomLog, RoomUpdate, name_key
from susurro.relay import RelayConfig, RelayServer
from susurro.relay.rooms import valid_name
from susurro.relay.store import DATABASE_FILE
from tests.helpers.hostile_client import ROSTER_NOISE, HostileClient

RULES = LogRules(name_key=name_key, name_ok=valid_name)
T = 1_764_000_000


def start(data_dir: Path) -> RelayServer:
    server = RelayServer(RelayConfig(host="127.0.0.1", port=0, handshake_timeout=5.0, data_dir=str(data_dir)))
    server.start()
    return server


def joined(server: RelayServer, name: str, identity: IdentityKey) -> HostileClient:
    client = HostileClient(server.address)
    client.send_frame(client.make_hello(name, identity=identity))
    client.expect_frame("welcome")
    client.name = name
    return client


def test_a_room_survives_a_relay_restart_on_the_same_data_dir(tmp_path: Path) -> None:
    alice_key, bob_key = IdentityKey.generate(), IdentityKey.generate()
    server = start(tmp_path / "data")
    try:
        with joined(server, "alice", alice_key) as alice, joined(server, "bob", bob_key) as bob:
            create = create_entry(alice_key, name="alice", label="ops", policy=RoomPolicy.INVITE, time=T)
            alice.send_frame(RoomCreate(id="c", entry=create.to_bytes()))
            assert isinstance(alice.expect_frame(RoomLog, ROSTER_NOISE), RoomLog)
            state = verify_log([create.to_bytes()], RULES)
            add = state.next_entry(alice_key, kind=EntryKind.ADD, subject_name="bob", subject_ik=bob_key.public, time=T)
            alice.send_frame(RoomAppend(id="a", room=state.room_id, entries=(add.to_bytes(),)))
            answer = alice.expect_frame(RoomLog, ROSTER_NOISE)
            assert isinstance(answer, RoomLog) and answer.head_seq == 1
            update = bob.expect_frame(RoomUpdate, ROSTER_NOISE)
            assert isinstance(update, RoomUpdate) and update.entries == (add.to_bytes(),)
            state = state.extend([add.to_bytes()])
    finally:
        server.stop()
    server = start(tmp_path / "data")
    try:
        with joined(server, "bob", bob_key) as bob:
            bob.send_frame(RoomFind(id="f", label="OPS"))
            log = bob.expect_frame(RoomLog, ROSTER_NOISE)
            assert isinstance(log, RoomLog)
            assert verify_log(list(log.entries), RULES) == state
            assert log.online == ("bob",)
            # The relay still checks every entry: bob is no admin.
            remove = state.next_entry(
                bob_key, kind=EntryKind.REMOVE, subject_name="alice", subject_ik=alice_key.public, time=T
            )
            bob.send_frame(RoomAppend(id="r", room=state.room_id, entries=(remove.to_bytes(),)))
            refused = bob.expect_frame(RoomError, ROSTER_NOISE)
            assert isinstance(refused, RoomError) and refused.code == "bad_entry"
            bob.ping()
    finally:
        server.stop()
    assert (tmp_path / "data" / DATABASE_FILE).stat().st_mode & 0o077 == 0


def test_the_relay_command_takes_the_room_flags_and_refuses_bad_ones(tmp_path: Path) -> None:
    command = [sys.executable, "-m", "susurro.relay", "--port", "0"]
    shown = subprocess.run([*command, "--help"], capture_output=True, text=True, timeout=60, check=True).stdout
    for flag in ("--data-dir", "--max-rooms-per-identity", "--max-room-members", "--max-room-entries"):
        assert flag in shown
    bad = subprocess.run([*command, "--max-room-members", "5000"], capture_output=True, text=True, timeout=60)
    assert bad.returncode == 2 and "--max-room-members" in bad.stderr
    (tmp_path / "file").write_text("not a directory")
    blocked = subprocess.run(
        [*command, "--data-dir", str(tmp_path / "file")], capture_output=True, text=True, timeout=60
    )
    assert blocked.returncode == 2 and "cannot open the relay database" in blocked.stderr
