"""Room commands typed in the window, and the member list's Remove, Make admin and Leave room.

Two real windows (alice, bob) on a real relay. The typed commands are the
terminal's (``commands.parse``, one parser); the buttons ask first, in
people's words, and go through the same core calls (``RoomBook.change``).
The notices they cause are in the window's language: a Spanish window
reads a promotion in Spanish.
"""

from __future__ import annotations

from pathlib import Path

from susurro.client.gui.app import SusurroApp
from susurro.client.gui.panes import ROOM
from susurro.client.gui.room_dialogs import ConfirmDialog
from tests.helpers.gui_driver import (
    accept_invitation,
    alice_and,
    close_app,
    pane,
    pump,
    room_named,
    signed_in,
    start_app,
    type_line,
    wait_in_pane,
)
from tests.helpers.processes import CliProcess


def type_command(root, app: SusurroApp, text: str) -> None:  # type: ignore[no-untyped-def]
    """Type a line into an empty composer (a refused line stays in it, to be corrected)."""
    assert app.window is not None
    app.window.entry.delete("1.0", "end")
    type_line(root, app, text)


def shown(button) -> bool:  # type: ignore[no-untyped-def]
    return bool(button.winfo_manager())


def confirm(root, app: SusurroApp) -> ConfirmDialog:  # type: ignore[no-untyped-def]
    pump(
        root,
        lambda: isinstance(app.rooms.dialog, ConfirmDialog) and app.rooms.dialog.top.winfo_exists(),
        f"the question in {app.options.name}'s window",
    )
    dialog = app.rooms.dialog
    assert isinstance(dialog, ConfirmDialog)
    return dialog


def test_create_join_invite_and_leave_typed_in_the_composer(tk_root, relay_server, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    root = tk_root
    server = "{}:{}".format(*relay_server.address)
    with alice_and(root, server, tmp_path) as (alice, window, bob):
        type_command(root, alice, "/create")
        wait_in_pane(root, alice, "Type it as: /create LABEL [--open]")
        type_command(root, alice, "/leave")
        wait_in_pane(root, alice, "Type /leave in a room's conversation")

        type_command(root, alice, "/create ops")
        ops = room_named(root, alice, "ops")
        pump(root, lambda: window.current == ops, "alice's window on ops")
        wait_in_pane(root, alice, "Only people its admins add can join it.", ops)
        type_command(root, bob, "/join ops")
        wait_in_pane(root, bob, "The relay has no room called ops that you may join: there is none, or it is")
        type_command(root, alice, "/invite bob")
        wait_in_pane(root, alice, "alice added bob.", ops)
        wait_in_pane(root, bob, "alice invited you to ops #")
        type_command(root, bob, "/invites")
        pump(root, lambda: pane(bob, ROOM).count("alice invited you to ops #") >= 2, "/invites lists it")
        type_command(root, bob, "/accept-invite ops")
        assert room_named(root, bob, "ops") == ops
        type_command(root, alice, "/members")
        wait_in_pane(root, alice, "Members: alice, bob", ops)

        type_command(root, alice, "/create lounge --open")
        lounge = room_named(root, alice, "lounge")
        wait_in_pane(root, alice, "Anyone on this relay may join it.", lounge)
        type_command(root, bob, "/join lounge")
        pump(root, lambda: bob.window.current == lounge, "bob's window on lounge")
        wait_in_pane(root, bob, "You joined lounge #", lounge)  # his own add verified: /rooms lists it now
        wait_in_pane(root, alice, "bob joined the room.", lounge)
        type_command(root, bob, "/rooms")
        wait_in_pane(root, bob, "Rooms: lounge #", lounge)
        assert "ops #" in pane(bob, lounge)
        type_command(root, bob, "/leave")
        wait_in_pane(root, bob, "You left lounge #", lounge)
        wait_in_pane(root, alice, "bob left the room.", lounge)
        assert "/join" not in pane(alice, lounge) and "/leave" not in pane(alice, lounge), "commands are not sent"


def test_remove_make_admin_and_leave_ask_first_then_sign(tk_root, relay_server, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    root = tk_root
    server = "{}:{}".format(*relay_server.address)
    with alice_and(root, server, tmp_path) as (alice, window, bob):
        assert alice.rooms.create("ops", open_room=False) is None
        ops = room_named(root, alice, "ops")
        pump(root, lambda: window.current == ops, "alice's window on ops")
        assert alice.rooms.invite_name(ops, "bob") is None
        wait_in_pane(root, alice, "alice added bob.", ops)
        accept_invitation(root, bob, "ops")
        pump(root, lambda: window.roster.exists("bob"), "bob in the member list")
        assert shown(window.remove_button) and shown(window.promote_button) and shown(window.leave_button)

        bob.select(room_named(root, bob, "ops"))
        bob_window = bob.window
        pump(root, lambda: bob_window.roster.exists("alice"), "alice in bob's member list")
        assert shown(bob_window.leave_button), "any member may leave"
        assert not shown(bob_window.remove_button) and not shown(bob_window.promote_button), "only admins remove"

        # Make admin: asked first; Cancel does nothing.
        window.roster.selection_set("bob")
        window.promote_button.invoke()
        question = confirm(root, alice)
        assert str(question.question.cget("text")).startswith("Make bob an admin of ops #")
        question.destroy()
        root.update()
        assert "made bob an admin" not in pane(alice, ops)
        window.promote_button.invoke()
        confirm(root, alice).ok_button.invoke()
        wait_in_pane(root, alice, "alice made bob an admin.", ops)
        wait_in_pane(root, bob, "alice made you an admin of ops #", ops)
        pump(root, lambda: shown(bob_window.remove_button), "bob, an admin now, may remove")

        # Remove: asked first, in words, then signed.
        type_command(root, alice, "/remove carol")
        wait_in_pane(root, alice, "carol is not a member of ops #", ops)
        window.roster.selection_set("bob")
        window.remove_button.invoke()
        question = confirm(root, alice)
        assert "They will no longer get the room's messages" in str(question.question.cget("text"))
        question.ok_button.invoke()
        wait_in_pane(root, alice, "alice removed bob.", ops)
        wait_in_pane(root, bob, "alice removed you from ops #", ops)
        pump(root, lambda: not shown(bob_window.leave_button), "bob is no member: nothing to leave")

        # Leave room: asked first, then our own signed entry.
        window.leave_button.invoke()
        question = confirm(root, alice)
        assert "To come back, one of its admins must add you again." in str(question.question.cget("text"))
        question.ok_button.invoke()
        wait_in_pane(root, alice, "You left ops #", ops)
        pump(root, lambda: not shown(window.leave_button), "alice is no member any more")


def test_a_promotion_reads_in_spanish_in_the_spanish_window(tk_root, relay_server, cli_clients, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    root = tk_root
    server = "{}:{}".format(*relay_server.address)
    ana = start_app(root, tmp_path / "ana", name="ana", server=server, lang="es")
    try:
        signed_in(root, ana)
        carla = CliProcess("carla", tmp_path / "carla", server)
        cli_clients.append(carla)
        carla.expect_event("connected", name="carla")
        wait_in_pane(root, ana, "carla")
        carla.type("/create clase")
        carla.expect_event("room_created", room="clase")
        carla.type("/invite ana")
        wait_in_pane(root, ana, "carla te invitó a clase #")
        clase = accept_invitation(root, ana, "clase")
        wait_in_pane(root, ana, "carla te ha añadido a clase #", clase)
        carla.type("/promote ana")
        text = wait_in_pane(root, ana, "carla te ha hecho administrador de clase #", clase)
        assert "an admin" not in text and "made" not in text, "no English in the Spanish window"
    finally:
        close_app(root, ana)
