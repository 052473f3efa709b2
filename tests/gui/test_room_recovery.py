"""/forget-room and /resume-room typed in the window, as in the terminal (one parser, the same core calls).

Real windows on a real relay. ``/forget-room LABEL`` drops the label's pin and
the room from the sidebar, and the next ``/join LABEL`` takes the room the
relay names then. For ``/resume-room`` alice's window talks to the relay
through ``TamperingProxy``, which serves her a second, validly signed entry 1
of her room (a branch the relay kept): a fork, after which nothing is sent to
the room until she says to go on. The words are the window's, in its language.
"""

from __future__ import annotations

from pathlib import Path

from susurro.client.gui.panes import ROOM
from susurro.client.rooms import RULES
from susurro.crypto import EntryKind, IdentityKey, verify_log
from susurro.protocol import RoomCreate, RoomUpdate
from tests.gui.test_room_commands import type_command
from tests.helpers.gui_driver import (
    accept_invitation,
    alice_and,
    banners,
    close_app,
    pane,
    pump,
    room_named,
    rooms,
    signed_in,
    start_app,
    wait_in_pane,
)
from tests.helpers.hostile_relay import TO_RELAY, TamperingProxy

T = 1_764_000_000


def test_forget_room_drops_the_label_and_the_next_join_takes_the_relays_room(  # type: ignore[no-untyped-def]
    tk_root, relay_server, tmp_path: Path
) -> None:
    root = tk_root
    server = "{}:{}".format(*relay_server.address)
    with alice_and(root, server, tmp_path) as (alice, window, _bob):
        type_command(root, alice, "/forget-room ops")
        wait_in_pane(root, alice, "No room is known here under the name ops: there is nothing to forget.")
        type_command(root, alice, "/create ops")
        ops = room_named(root, alice, "ops")
        pump(root, lambda: window.current == ops, "alice's window on ops")
        assert alice.opened is not None
        book = alice.opened.connection.session.rooms
        assert book.pinned_id("ops") == bytes.fromhex(ops[1:])

        type_command(root, alice, "/forget-room ops")  # typed in the room's own conversation
        text = wait_in_pane(root, alice, "ops no longer names ops #")
        assert "The next /join ops takes the room the relay names then" in text
        pump(root, lambda: window.current == ROOM and rooms(alice) == {}, "ops gone from alice's sidebar")
        assert book.pinned_id("ops") is None and book.state("ops") is None

        type_command(root, alice, "/join ops")  # the relay still has it: verified from entry 0, as new
        pump(root, lambda: room_named(root, alice, "ops") == ops and window.current == ops, "alice back on ops")
        assert book.pinned_id("ops") == bytes.fromhex(ops[1:])


def test_forget_room_refuses_in_the_spanish_window_in_spanish(tk_root, relay_server, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    root = tk_root
    server = "{}:{}".format(*relay_server.address)
    ana = start_app(root, tmp_path / "ana", name="ana", server=server, lang="es")
    try:
        signed_in(root, ana)
        type_command(root, ana, "/resume-room clase")
        wait_in_pane(root, ana, "Aquí no se conoce ninguna sala llamada clase.")
        type_command(root, ana, "/forget-room clase")
        said = "Aquí no se conoce ninguna sala con el nombre clase"
        line = next(line for line in wait_in_pane(root, ana, said).splitlines() if said in line)
        assert "room" not in line and "known" not in line, "no English in the Spanish window"
    finally:
        close_app(root, ana)


def test_resume_room_after_a_fork_sends_to_the_room_again(  # type: ignore[no-untyped-def]
    tk_root, relay_server, proxy: TamperingProxy, tmp_path: Path
) -> None:
    root = tk_root
    host, port = relay_server.address
    phost, pport = proxy.address
    proxy.expect("alice")
    with alice_and(root, f"{phost}:{pport}", tmp_path, other_server=f"{host}:{port}") as (alice, window, bob):
        type_command(root, alice, "/create ops")
        ops = room_named(root, alice, "ops")
        pump(root, lambda: window.current == ops, "alice's window on ops")
        type_command(root, alice, "/resume-room ops")
        wait_in_pane(root, alice, "ops #", ops)
        pump(root, lambda: "has not forked: there is nothing to resume." in pane(alice, ops), "nothing to resume")
        type_command(root, alice, "/invite bob")
        wait_in_pane(root, alice, "alice added bob.", ops)
        bob_ops = accept_invitation(root, bob, "ops")

        # Another entry 1, signed by alice's own key (say the relay accepted two appends at once).
        create = next(f for f in proxy.seen("alice", TO_RELAY) if isinstance(f, RoomCreate))
        assert alice.opened is not None
        identity = alice.opened.connection.session.identity
        branch = (
            verify_log([create.entry], RULES)
            .next_entry(identity, kind=EntryKind.ADD, subject_name="dave", subject_ik=IdentityKey.generate().public,
                        time=T)
            .to_bytes()
        )  # fmt: skip
        room_id = bytes.fromhex(ops[1:])
        proxy.inject("alice", RoomUpdate(room=room_id, label="ops", from_seq=1, entries=(branch,), head_seq=1,
                                         head_hash=bytes(32), online=()))  # fmt: skip
        pump(root, lambda: any("a fork" in b for b in banners(alice)), "the fork banner")
        type_command(root, alice, "not while forked")
        pump(root, lambda: "Not sent" in pane(alice, ops) or "not sent" in pane(alice, ops), "the refusal to send")

        type_command(root, alice, "/resume-room ops")
        text = wait_in_pane(root, alice, "You go on sending to ops #", ops)
        assert "whoever it removed still gets your messages" in text
        type_command(root, alice, "after I chose")
        wait_in_pane(root, bob, "after I chose", bob_ops)
        assert "not while forked" not in pane(bob, bob_ops)
