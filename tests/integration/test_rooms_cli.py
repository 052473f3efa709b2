"""Rooms as people use them: real ``susurro-cli`` processes and a real relay with
``--data-dir``. Three users, two rooms: a member of only one room never
receives the other's messages, and neither the relay's log nor its SQLite
database holds any plaintext."""

from __future__ import annotations

import secrets
from collections.abc import Callable
from pathlib import Path

from tests.helpers.processes import CliProcess, RelayProcess
from tests.helpers.system import free_port


def test_three_users_two_rooms_and_the_relay_sees_no_plaintext(
    relay: RelayProcess, cli_clients: list[CliProcess], tmp_path: Path
) -> None:
    people = {}
    for name in ("alice", "bob", "carol"):
        people[name] = CliProcess(name, tmp_path / name, relay.address)
        cli_clients.append(people[name])
        people[name].expect_event("connected", name=name)
    alice, bob, carol = people["alice"], people["bob"], people["carol"]
    alice.expect_event("joined", name="carol")  # alice has seen (and pinned) both

    # ops: invite-only, alice and bob.
    alice.type("/create ops")
    created = alice.expect_event("room_created", room="ops")
    alice.type("/invite bob")
    # bob is asked first: nothing of the room is kept until he accepts.
    offered = bob.expect_event("invitation", room="ops", by="alice")
    assert offered["room_id"] == created["room_id"] and offered["known"]
    bob.type("/invites")
    assert bob.expect_event("invitation", room="ops")["room_id"] == created["room_id"]  # the listing
    bob.type("/accept-invite ops")
    bob.expect_event("invitation_accepted", room="ops")
    invited = bob.expect_event("invited", room="ops", by="alice")
    assert invited["room_id"] == created["room_id"]
    alice.expect_event("member_added", room="ops", name="bob")
    # Nobody invites someone they never saw.
    alice.type("/invite zoe")
    refusal = alice.expect_event("warning", kind="send_failed")
    assert "never seen zoe" in refusal["detail"]

    # lounge: open; carol joins it herself, no invite.
    alice.type("/create lounge --open")
    alice.expect_event("room_created", room="lounge")
    carol.type("/join lounge")
    alice.expect_event("member_added", room="lounge", name="carol", by="carol")

    # A message to ops reaches bob only; one to lounge reaches alice only.
    secret_ops = f"ops plaintext {secrets.token_hex(8)}"
    alice.type("/join ops")
    alice.expect_event("room", room="ops")
    alice.type(secret_ops)
    sent = alice.expect_event("sent", room="ops")
    assert sent["to"] == ["bob"] and sent["room_id"] == created["room_id"]
    got = bob.expect_event("message", text=secret_ops)
    assert got["room"] == "ops" and got["room_id"] == created["room_id"] and got["to"] == ["bob"]
    assert got["trust"] == "new"
    assert alice.expect_event("delivery", msg_id=sent["msg_id"])["delivered"] == ["bob"]

    secret_lounge = f"lounge plaintext {secrets.token_hex(8)}"
    carol.type(secret_lounge)
    carol_sent = carol.expect_event("sent", room="lounge")
    assert carol_sent["to"] == ["alice"]
    assert alice.expect_event("message", text=secret_lounge)["room"] == "lounge"
    carol.expect_event("delivery", msg_id=carol_sent["msg_id"])

    # Barrier: a last direct message to each, after which nothing else can still be in flight.
    for other in (bob, carol):
        marker = f"marker {secrets.token_hex(4)}"
        alice.type(f"/msg {other.name} {marker}")
        other.expect_event("message", text=marker)
    assert not any(e.get("text") == secret_ops for e in carol.events)
    assert not any(e.get("text") == secret_lounge for e in bob.events)

    # /members shows the log's members with online state.
    bob.type("/members")
    names = {bob.expect_event("member")["name"], bob.expect_event("member")["name"]}
    assert names == {"alice", "bob"}

    relay.stop()
    stored = b"".join(path.read_bytes() for path in (tmp_path / "data").iterdir())
    output = relay.all_output()
    assert (tmp_path / "data" / "relay.sqlite3").stat().st_size > 0
    for secret in (secret_ops, secret_lounge):
        assert secret.encode() not in stored and secret not in output
        assert secret.encode().hex() not in output
    assert "room-create" in output and "label=ops" in output and "room-add" in output


def demo_clients(cli_clients: list[CliProcess], tmp_path: Path) -> Callable[..., CliProcess]:
    """Starts ``susurro-cli`` with no ``--server`` on one free demo address: the first starts the demo relay."""
    local = {"SUSURRO_LOCAL_RELAY": f"127.0.0.1:{free_port()}"}

    def start(name: str, *extra: str) -> CliProcess:
        client = CliProcess(name, tmp_path / name, server=None, env=local, extra=extra)
        cli_clients.append(client)
        client.expect_event("connected", name=name)
        return client

    return start


def test_the_demo_relay_keeps_rooms_under_susurro_home_and_an_open_room_needs_no_invite(
    cli_clients: list[CliProcess], tmp_path: Path
) -> None:
    demo = demo_clients(cli_clients, tmp_path)
    host = demo("host")
    guest = demo("guest", "--room", "lounge")
    host.type("/create lounge --open")
    host.expect_event("room_created", room="lounge")
    # The guest started with --room lounge before it existed; it joins by itself once told.
    guest.type("/join lounge")
    host.expect_event("member_added", room="lounge", name="guest", by="guest")
    guest.expect_event("invited", room="lounge", by="guest")  # its own add is verified: lines go there now
    text = f"hola lounge {secrets.token_hex(4)}"
    guest.type(text)
    assert host.expect_event("message", text=text)["room"] == "lounge"
    assert (tmp_path / "host" / "relay-data" / "relay.sqlite3").stat().st_size > 0


def test_two_people_starting_the_demo_land_in_one_open_room_with_no_command(
    cli_clients: list[CliProcess], tmp_path: Path
) -> None:
    demo = demo_clients(cli_clients, tmp_path)
    ana = demo("ana")
    lobby = ana.expect_event("room_created", room="lobby")
    beto = demo("beto")
    joined = beto.expect_event("invited", room="lobby", by="beto")  # he added himself: it is open
    assert joined["room_id"] == lobby["room_id"]
    ana.expect_event("member_added", room="lobby", name="beto", by="beto")
    text = f"hola a todos {secrets.token_hex(4)}"
    beto.type(text)  # a plain line, no /join: it goes to the lobby
    sent = beto.expect_event("sent", room="lobby")
    assert sent["to"] == ["ana"] and sent["room_id"] == lobby["room_id"]
    got = ana.expect_event("message", text=text)
    assert got["room"] == "lobby" and got["room_id"] == lobby["room_id"]
    # /rooms lists it from the verified log; /history shows the room's own conversation.
    ana.type("/rooms")
    listed = ana.expect_event("room_info", room="lobby")
    assert listed["verified"] and listed["member"] and listed["members"] == 2 and listed["online"] == 2
    ana.type("/history")
    history = ana.expect_event("history")
    assert history["conversation"] == f"room:{lobby['room_id']}"
    assert [m["text"] for m in history["messages"]] == [text]


def test_a_label_pinned_to_a_room_the_relay_lost_is_forgotten_and_used_again(
    tmp_path: Path, cli_clients: list[CliProcess]
) -> None:
    first = tmp_path / "first"
    first.mkdir()
    port = str(free_port())  # label pins are kept per relay address: the second relay takes the same one
    relay = RelayProcess(first, "--data-dir", str(first / "data"), "--port", port)
    try:
        alice = CliProcess("alice", tmp_path / "alice", relay.address)
        cli_clients.append(alice)
        alice.expect_event("connected")
        alice.type("/create ops")
        old = alice.expect_event("room_created", room="ops")
        alice.type("/quit")
        assert alice.wait() == 0
    finally:
        relay.stop()
    second = tmp_path / "second"
    second.mkdir()
    relay = RelayProcess(second, "--data-dir", str(second / "data"), "--port", port)  # it lost every room
    try:
        alice = CliProcess("alice", tmp_path / "alice", relay.address)
        cli_clients.append(alice)
        alice.expect_event("connected")
        alice.type("/forget-room ops")
        assert alice.expect_event("room_forgotten", room="ops")["room_id"] == old["room_id"]
        alice.type("/create ops")
        new = alice.expect_event("room_created", room="ops")
        alice.type("/join ops")
        assert alice.expect_event("room", room="ops")["room_id"] == new["room_id"] != old["room_id"]
        alice.type("/forget-room lounge")
        alice.expect(lambda e: e.get("event") == "warning" and "lounge" in e.get("detail", ""), "a refusal")
        alice.type("/quit")
        assert alice.wait() == 0
    finally:
        relay.stop()
    assert not [e for e in alice.events if e.get("kind") == "room_label_moved"], alice.events
