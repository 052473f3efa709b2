"""A room that becomes an invitation again leaves the sidebar at once, in a real window.

alice's ``SusurroApp`` (real Tk under Xvfb) and carol's ``susurro-cli --json`` on a real relay. carol
adds alice to her room, alice accepts, carol removes her and adds her back: consent covered the first
membership only, so the core follows the room no more and offers it as an invitation again. Run once
with the old presenter (an invitation drew nothing else): the room kept its row in alice's sidebar, and
her window stayed on it, until she restarted.
"""

from __future__ import annotations

from pathlib import Path

from susurro.client.gui.panes import ROOM
from tests.helpers.gui_driver import accept_invitation, pump, rooms, signed_in_apps, wait_in_pane
from tests.helpers.processes import CliProcess


def test_a_room_added_back_after_a_removal_moves_to_the_invitations(  # type: ignore[no-untyped-def]
    tk_root, relay_server, cli_clients, tmp_path: Path
) -> None:
    root = tk_root
    server = "{}:{}".format(*relay_server.address)
    with signed_in_apps(root, tmp_path, server, "alice") as apps:
        (alice,) = apps
        window, state = alice.window, alice.state
        assert window is not None and state is not None
        carol = CliProcess("carol", tmp_path / "carol", server)
        cli_clients.append(carol)
        carol.expect_event("connected", name="carol")
        wait_in_pane(root, alice, "carol joined")
        carol.type("/create clase")
        created = carol.expect_event("room_created", room="clase")
        room_id = bytes.fromhex(created["room_id"])
        carol.type("/invite alice")
        clase = accept_invitation(root, alice, "clase")
        wait_in_pane(root, alice, "carol added you to clase #", clase)
        carol.type("/remove alice")
        wait_in_pane(root, alice, "carol removed you from clase #", clase)
        alice.select(clase)
        assert window.current == clase

        carol.type("/invite alice")  # added back by someone else: an invitation, not her room
        pump(root, lambda: room_id in state.invitations, "the invitation to clase again")
        pump(root, lambda: clase not in rooms(alice), "clase gone from the rooms in alice's sidebar")
        assert window.current == ROOM, "the window leaves the room it no longer follows"
        assert window.invitation_list.frame.winfo_manager(), "the invitations section is shown"
        assert room_id in window.invitation_list.rows
        accept_invitation(root, alice, "clase")  # her word makes it hers again: back in the sidebar
        wait_in_pane(root, alice, "carol added you to clase #", clase)
