"""A one-process relay's SQLite data dir copied into a cluster's Redis (``susurro-relay --cluster URL
--import-sqlite DIR``), with the real programs: what alice and bob left on the single relay (a room
with both in it, a message waiting for bob) is there on the two clustered relays after the copy."""

from __future__ import annotations

import secrets
import subprocess
from pathlib import Path

from susurro.crypto import IdentityKey, LogRules, RoomPolicy, create_entry, verify_log
from susurro.protocol import name_key
from susurro.relay.rooms import member_records, valid_name
from susurro.relay.store import open_room_store
from susurro.relay.store.redis import RedisRoomStore
from tests.cluster.test_cluster_processes import sees
from tests.helpers.processes import CliProcess, RelayProcess, console_script
from tests.helpers.redis_server import RedisServer

#: Seconds for anything that crosses nodes (a presence refresh is every 3 s), on a loaded machine.
CROSS = 40.0
#: Seconds for the import itself (a handful of rooms and items).
IMPORT_TIMEOUT = 60.0
T = 1_764_000_000
RULES = LogRules(name_key=name_key, name_ok=valid_name)


def import_sqlite(data_dir: Path, redis_server: RedisServer) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*console_script("susurro-relay"), "--cluster", redis_server.url, "--import-sqlite", str(data_dir)],
        capture_output=True,
        text=True,
        timeout=IMPORT_TIMEOUT,
        check=False,
    )


def test_rooms_and_waiting_mail_of_a_single_relay_are_there_after_the_import(
    tmp_path: Path, cli_clients: list[CliProcess], redis_server: RedisServer
) -> None:
    data = tmp_path / "data"
    for part in ("single", "n1", "n2"):
        (tmp_path / part).mkdir()
    single = RelayProcess(tmp_path / "single", "--data-dir", str(data))
    try:
        alice = CliProcess("alice", tmp_path / "alice", single.address)
        bob = CliProcess("bob", tmp_path / "bob", single.address)
        cli_clients += [alice, bob]
        alice.expect_event("connected", name="alice")
        bob.expect_event("connected", name="bob")
        sees(alice, "bob")
        alice.type("/create ops")
        created = alice.expect_event("room_created", room="ops")
        alice.type("/invite bob")
        bob.expect_event("invitation", room="ops", by="alice")
        bob.type("/accept-invite ops")
        bob.expect_event("invited", room="ops", by="alice")
        bob.type("/quit")
        bob.wait()
        alice.expect_event("left", name="bob")
        secret = f"waits through the move {secrets.token_hex(8)}"
        alice.type(f"/msg bob {secret}")
        assert alice.expect(lambda e: e["event"] == "delivery" and e.get("waiting"), "waiting")["waiting"] == ["bob"]
        alice.type("/quit")
        alice.wait()
    finally:
        single.stop()

    copied = import_sqlite(data, redis_server)
    assert copied.returncode == 0, copied.stderr
    assert "copied 1 rooms (2 log entries), prekeys of 2 identities" in copied.stdout
    assert "1 mail items; left out: 0" in copied.stdout
    again = import_sqlite(data, redis_server)  # twice would store every waiting message twice
    assert again.returncode == 2 and "already holds" in again.stderr

    nodes = [RelayProcess(tmp_path / f"n{i}", "--cluster", redis_server.url) for i in (1, 2)]
    try:
        bob = CliProcess("bob", tmp_path / "bob", nodes[1].address)
        cli_clients.append(bob)
        bob.expect_event("connected", name="bob")
        message = bob.expect(lambda e: e["event"] == "message" and e["text"] == secret, "the waiting message", CROSS)
        assert message["from"] == "alice" and message["waited"]
        alice = CliProcess("alice", tmp_path / "alice", nodes[0].address)
        cli_clients.append(alice)
        alice.expect_event("connected", name="alice")
        alice.type("/join ops")
        ready = alice.expect(lambda e: e["event"] == "room_ready" and e["room"] == "ops", "the room", CROSS)
        assert ready["room_id"] == created["room_id"] and sorted(ready["members"]) == ["alice", "bob"]
    finally:
        for node in nodes:
            node.stop()


def test_a_room_whose_stored_log_does_not_verify_is_left_out_and_named(
    tmp_path: Path, redis_server: RedisServer
) -> None:
    """The import verifies every log as the relay verifies every entry: a database altered behind the
    relay's back does not become rooms every member's client would refuse."""
    good, bad = IdentityKey.generate(), IdentityKey.generate()
    store = open_room_store(str(tmp_path))
    for identity, label in ((good, "ops"), (bad, "lounge")):
        entry = create_entry(identity, name=label + "-admin", label=label, policy=RoomPolicy.INVITE, time=T)
        state = verify_log([entry.to_bytes()], RULES)
        store.create_room(
            room_id=state.room_id,
            label=label,
            label_key=name_key(label),
            creator=identity.public,
            open=False,
            entry=entry.to_bytes(),
            members=member_records(state),
        )
    signed = bytearray(entry.to_bytes())
    signed[-1] ^= 1  # one flipped bit in lounge's signed create entry
    with store.database.transaction() as db:
        db.execute("UPDATE room_entries SET entry = ? WHERE room_id = ?", (bytes(signed), state.room_id))
    store.close()
    copied = import_sqlite(tmp_path, redis_server)
    assert copied.returncode == 0, copied.stderr
    assert "copied 1 rooms (1 log entries)" in copied.stdout
    assert f"left out: room {state.short_id}: its log does not verify" in copied.stdout
    with redis_server.client() as raw:
        rooms = RedisRoomStore(raw)
        assert rooms.room_by_label(name_key("ops")) is not None and rooms.room(state.room_id) is None
