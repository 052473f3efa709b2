"""A flood of rooms from throwaway identities: real ``susurro-cli``, a real relay, raw hostile clients.

Anyone may add bob to a room (an admin's ``add`` needs no consent), so 40
throwaway identities each create a room and add him. Each is an invitation:
bob's client keeps at most ``MAX_INVITATIONS`` of them, and
nothing of any room (no log, no label pin, no remembered head in the state
file) until he accepts one; the one he accepts is followed like any room,
the one he declines leaves nothing. Those still waiting when he quits are
kept in the sealed state file (their records only) and offered again when he
starts. Run once with every room taken as consented (the old behaviour): the
first ``invitation`` never comes, and the state file remembers all 40 rooms;
with the invitations left out of the state file, the restarted bob is offered
none.
"""

from __future__ import annotations

import time
from pathlib import Path

import msgpack
import nacl.secret
import pytest

from susurro.client.home import LocalFile, local_path
from susurro.client.localstate import STATE_PERSON, CounterState
from susurro.client.room_invites import MAX_INVITATIONS
from susurro.client.room_log import RULES
from susurro.client.sockets import parse_address
from susurro.crypto import EntryKind, RoomPolicy, create_entry, load_identity, verify_log
from susurro.crypto.history import derive_local_key
from susurro.protocol import RoomAppend, RoomCreate, RoomLog
from tests.helpers.hostile_client import HostileClient
from tests.helpers.processes import CliProcess, RelayProcess

#: Throwaway identities, each with a room of its own that bob is added to.
FLOOD = 40


def throwaway_adds(relay: RelayProcess, n: int, bob_key: bytes) -> bytes:
    """A fresh identity creates the invite-only room ``spam-N`` and adds bob; the room's id."""
    now = int(time.time())
    with HostileClient(parse_address(relay.address)) as member:
        member.join(f"t{n}", skip=("joined", "left"))
        assert member.identity is not None
        entry = create_entry(member.identity, name=f"t{n}", label=f"spam-{n}", policy=RoomPolicy.INVITE, time=now)
        member.send_frame(RoomCreate(id="c", entry=entry.to_bytes()))
        member.expect_frame(RoomLog, skip=("joined", "left"))
        state = verify_log([entry.to_bytes()], RULES)
        add = state.next_entry(member.identity, kind=EntryKind.ADD, subject_name="bob", subject_ik=bob_key, time=now)
        member.send_frame(RoomAppend(id="a", room=state.room_id, entries=(add.to_bytes(),)))
        member.expect_frame(RoomLog, skip=("joined", "left"))
        return state.room_id


def test_a_flood_of_adds_leaves_bounded_invitations_and_nothing_kept_until_accepted(
    relay: RelayProcess, cli_clients: list[CliProcess], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    home = tmp_path / "bob"
    bob = CliProcess("bob", home, relay.address)
    cli_clients.append(bob)
    bob.expect_event("connected", name="bob")
    bob_key = load_identity(home / "identities" / "bob.key").public
    rooms = []
    for n in range(FLOOD):  # one after the other: each invitation arrives before the next add
        rooms.append(throwaway_adds(relay, n, bob_key))
        offered = bob.expect_event("invitation", room=f"spam-{n}")
        assert offered["room_id"] == rooms[-1].hex() and offered["by"] == f"t{n}"
    dropped = [e for e in bob.events if e["event"] == "invitation_dropped"]
    assert [e["room"] for e in dropped] == [f"spam-{n}" for n in range(FLOOD - MAX_INVITATIONS)]  # oldest first

    bob.type("/invites")
    listed = [bob.expect_event("invitation")["room"] for _ in range(MAX_INVITATIONS)]
    assert listed == [f"spam-{n}" for n in range(FLOOD - MAX_INVITATIONS, FLOOD)]

    bob.type(f"/decline-invite spam-{FLOOD - 2}")
    bob.expect_event("invitation_declined", room=f"spam-{FLOOD - 2}")
    bob.type(f"/accept-invite spam-{FLOOD - 1}")
    bob.expect_event("invitation_accepted", room=f"spam-{FLOOD - 1}")
    ready = bob.expect_event("room_ready", room=f"spam-{FLOOD - 1}")
    assert ready["members"] == [f"t{FLOOD - 1}", "bob"]
    bob.type("/quit")
    assert bob.wait() == 0

    # The state file remembers the one room accepted, nothing of the other 39.
    monkeypatch.setenv("SUSURRO_HOME", str(home))
    identity = load_identity(home / "identities" / "bob.key")
    state = CounterState(identity, local_path(LocalFile.STATE, identity.public))
    remembered = [room.room_id for kept in state.rooms.values() for room in kept]
    assert remembered == [rooms[FLOOD - 1]]
    # The 30 still waiting are kept (sealed, their records only), and bob restarted is told of each again.
    waiting = rooms[FLOOD - MAX_INVITATIONS : FLOOD - 2]
    assert [i.room_id for kept in state.invitations.values() for i in kept] == waiting
    again = CliProcess("bob", home, relay.address)
    cli_clients.append(again)
    again.expect_event("connected", name="bob")
    restored = [again.expect_event("invitation") for _ in waiting]
    assert [e["room_id"] for e in restored] == [r.hex() for r in waiting] and all(e["restored"] for e in restored)
    again.type(f"/accept-invite spam-{FLOOD - 3}")
    again.expect_event("room_ready", room=f"spam-{FLOOD - 3}")


def test_a_damaged_row_of_the_saved_state_is_said_by_the_terminal_at_start(
    relay: RelayProcess, cli_clients: list[CliProcess], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """bob's sealed state file gets an unreadable invitation row: the restarted terminal says so, and goes on."""
    home = tmp_path / "bob"
    bob = CliProcess("bob", home, relay.address)
    cli_clients.append(bob)
    bob.expect_event("connected", name="bob")
    bob.type("/quit")
    assert bob.wait() == 0
    monkeypatch.setenv("SUSURRO_HOME", str(home))
    identity = load_identity(home / "identities" / "bob.key")
    path = local_path(LocalFile.STATE, identity.public)
    box = nacl.secret.SecretBox(derive_local_key(identity, STATE_PERSON))
    state = msgpack.unpackb(box.decrypt(path.read_bytes()), raw=False, strict_map_key=False)
    state["invitations"] = {relay.address: ["not a row"]}
    path.write_bytes(bytes(box.encrypt(msgpack.packb(state, use_bin_type=True))))
    again = CliProcess("bob", home, relay.address)
    cli_clients.append(again)
    warning = again.expect_event("warning", kind="saved_entry_unreadable")
    assert "1 saved entries" in warning["detail"]
    again.expect_event("connected", name="bob")
    again.type("/quit")
    assert again.wait() == 0


def test_a_saved_state_that_cannot_be_opened_is_said_by_the_terminal_and_kept_aside(
    relay: RelayProcess, cli_clients: list[CliProcess], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """bob's sealed state file is cut short on disk: the restarted terminal says, once, that it started
    afresh and where the damaged file was kept; the next save does not overwrite that copy."""
    home = tmp_path / "bob"
    bob = CliProcess("bob", home, relay.address)
    cli_clients.append(bob)
    bob.expect_event("connected", name="bob")
    bob.type("/quit")
    assert bob.wait() == 0
    monkeypatch.setenv("SUSURRO_HOME", str(home))
    path = local_path(LocalFile.STATE, load_identity(home / "identities" / "bob.key").public)
    damaged = path.read_bytes()[:-20]
    path.write_bytes(damaged)
    again = CliProcess("bob", home, relay.address)
    cli_clients.append(again)
    warning = again.expect_event("warning", kind="saved_state_unreadable")
    aside = path.with_name(path.name + ".unreadable")
    assert "could not be decrypted" in warning["detail"] and str(aside) in warning["detail"]
    again.expect_event("connected", name="bob")
    again.type("/quit")
    assert again.wait() == 0
    assert aside.read_bytes() == damaged and path.read_bytes() != damaged, "the new state did not keep it aside"
