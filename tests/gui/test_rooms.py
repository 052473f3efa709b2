"""Rooms in real windows: New room, Invite from the member list, room panes, added and removed notices.

Two ``SusurroApp`` windows (alice, bob) and a ``susurro-cli --json`` (carol)
on a real relay. Alice creates an invite-only room with the dialog, invites
bob from the room's member list (a name never seen is refused in words), and
the room's messages stay in the room's pane and away from carol, who is not
in its signed log. Carol then adds alice to a room of hers and removes her
again, and alice's window says so each time.
"""

from __future__ import annotations

import secrets
from pathlib import Path

from susurro.client.gui.app import SusurroApp
from susurro.client.gui.panes import ROOM
from susurro.client.gui.room_view import is_room_key
from tests.helpers.gui_driver import (
    accept_invitation,
    close_app,
    pane,
    pump,
    room_named,
    rooms,
    signed_in,
    signed_in_apps,
    start_app,
    type_line,
    wait_in_pane,
)
from tests.helpers.processes import CliProcess


def member_rows(app: SusurroApp) -> dict[str, bool]:
    """name -> online, as the member list draws them (offline rows carry the "offline" tag)."""
    assert app.window is not None
    tree = app.window.roster
    return {iid: "offline" not in tree.item(iid, "tags") for iid in tree.get_children()}


def test_new_room_invite_and_room_panes(tk_root, relay_server, cli_clients, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    root = tk_root
    server = "{}:{}".format(*relay_server.address)
    with signed_in_apps(root, tmp_path, server, "alice", "bob") as apps:
        alice, bob = apps
        window = alice.window
        assert window is not None
        carol = CliProcess("carol", tmp_path / "carol", server)
        cli_clients.append(carol)
        carol.expect_event("connected", name="carol")
        wait_in_pane(root, alice, "carol joined")

        # New room: the dialog, invite-only by default; the window switches to the room.
        window.new_room_button.invoke()
        pump(root, lambda: alice.rooms.dialog is not None, "the New room dialog")
        dialog = alice.rooms.dialog
        dialog.label.insert(0, "has space")
        dialog.create_button.invoke()
        assert "not allowed" in str(dialog.error.cget("text")), "a bad label is refused in the dialog"
        dialog.label.delete(0, "end")
        dialog.label.insert(0, "ops")
        dialog.create_button.invoke()
        ops = room_named(root, alice, "ops")
        assert rooms(alice)[ops][1] == "#" + bytes.fromhex(ops[1:])[:8].hex(), "the label with the short room id"
        pump(root, lambda: window.current == ops, "alice's window on the new room")
        wait_in_pane(root, alice, "You created ops #", ops)
        assert "Only people its admins add" in pane(alice, ops)
        pump(root, lambda: member_rows(alice) == {"alice": True}, "the member list: alice alone")
        assert window.roster_title.full == f"MEMBERS OF OPS {rooms(alice)[ops][1].upper()}"

        # Invite from the member list: only a name whose key is pinned.
        assert window.invite_button.winfo_manager(), "Invite… under the room's member list"
        window.invite_button.invoke()
        pump(root, lambda: alice.rooms.dialog is not None and alice.rooms.dialog is not dialog, "the Invite dialog")
        invite = alice.rooms.dialog
        assert sorted(invite.name.cget("values")) == ["bob", "carol"], "the people here who are not members"
        invite.name.set("zed")
        invite.invite_button.invoke()
        assert str(invite.error.cget("text")) == (
            "You have never seen zed: they must be online here once, so that their key is known."
        )
        invite.name.set("bob")
        invite.invite_button.invoke()
        assert not invite.top.winfo_exists(), "the dialog closes once the request is on its way"
        wait_in_pane(root, alice, "alice added bob.", ops)
        pump(root, lambda: member_rows(alice) == {"alice": True, "bob": True}, "bob in the member list, online")
        # bob is asked first: his sidebar lists the invitation, and nothing of the room is kept until he accepts.
        wait_in_pane(root, bob, "alice invited you to ops #")
        assert ops not in rooms(bob), "no room before bob accepts"
        assert bob.window.current == ROOM, "an invitation does not take bob's window away from what he reads"
        ops_b = accept_invitation(root, bob, "ops")
        assert ops_b == ops, "the same room id in both windows"
        wait_in_pane(root, bob, "alice added you to ops #", ops)
        assert not bob.window.invitation_list.frame.winfo_manager(), "no invitation left: the section is hidden"
        pump(root, lambda: bob.window.current == ops, "accepting takes bob's window to the room")

        # Room messages stay in the room's pane, and carol (not in the signed log) gets nothing.
        bob.select(ops)
        text = f"hola ops {secrets.token_hex(3)}"
        type_line(root, bob, text)
        wait_in_pane(root, alice, text, ops)
        assert text not in pane(alice, ROOM)
        type_line(root, alice, "respuesta en ops")
        wait_in_pane(root, bob, "respuesta en ops", ops)
        pump(root, lambda: f"{text}  ✓✓ delivered to alice" in pane(bob, ops), "two ticks under bob's room message")
        marker = f"marker {secrets.token_hex(3)}"
        type_line(root, alice, f"/msg carol {marker}")
        carol.expect(lambda e: e.get("event") == "message" and e.get("text") == marker, "alice's direct marker")
        assert not any(e.get("text") == text for e in carol.events), "carol never got the room's message"

        # Offline members stay in the list, greyed.
        close_app(root, bob)
        alice.select(ops)
        pump(root, lambda: member_rows(alice) == {"alice": True, "bob": False}, "bob offline in the member list")

        # Added to a room by someone else, and removed again: a notice each time.
        carol.type("/create clase")
        carol.expect_event("room_created", room="clase")
        carol.type("/invite alice")
        clase = accept_invitation(root, alice, "clase")
        wait_in_pane(root, alice, "carol added you to clase #", clase)
        carol.type("/remove alice")
        wait_in_pane(root, alice, "carol removed you from clase #", clase)
        alice.select(clase)
        type_line(root, alice, "¿sigo aquí?")
        assert "You are not a member of clase #" in pane(alice, clase)
        assert is_room_key(clase) and not window.invite_button.winfo_manager()

        # The room's history comes back in the room's pane (its own conversation, not the relay-wide one).
        close_app(root, alice)
        alice = start_app(root, tmp_path / "alice", name="alice", server=server)
        apps.append(alice)
        signed_in(root, alice)
        assert room_named(root, alice, "ops") == ops
        wait_in_pane(root, alice, "respuesta en ops", ops)
        shown = wait_in_pane(root, alice, text, ops)
        assert shown.index(text) < shown.index("respuesta en ops")
        assert text not in pane(alice, ROOM) and "respuesta en ops" not in pane(alice, ROOM)
        wait_in_pane(root, alice, "Members: alice, bob", ops)
        assert "alice added bob." not in pane(alice, ops), "the log read again is not news"
