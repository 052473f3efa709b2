"""Direct messages: a tab on both sides, nothing for anyone else.

Alice opens the tab from the roster with the keyboard (select, Enter) and
with a double-click; Bob answers with ``/msg``. Carol, a real
``susurro-cli --json`` in the same room, must never see either.
"""

from __future__ import annotations

from pathlib import Path

from susurro.client.gui.panes import ROOM
from tests.helpers.gui_driver import (
    close_app,
    keyboard_to,
    pane,
    pump,
    shields,
    signed_in,
    start_app,
    type_line,
    wait_in_pane,
)
from tests.helpers.processes import CliProcess


def double_click(root, tree, iid: str) -> None:  # type: ignore[no-untyped-def]
    x, y, _width, height = tree.bbox(iid)
    for _ in range(2):  # two clicks in quick succession are what Tk calls <Double-1>
        tree.event_generate("<ButtonPress-1>", x=x + 5, y=y + height // 2)
        tree.event_generate("<ButtonRelease-1>", x=x + 5, y=y + height // 2)
    root.update()


def test_direct_message_opens_a_tab_and_reaches_nobody_else(tk_root, relay_server, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    root = tk_root
    host, port = relay_server.address
    server = f"{host}:{port}"
    carol = CliProcess("carol", tmp_path / "carol", server)
    alice = bob = None
    try:
        carol.expect_event("connected", name="carol")
        alice = start_app(root, tmp_path / "alice", name="alice", server=server)
        win_a = signed_in(root, alice)
        bob = start_app(root, tmp_path / "bob", name="bob", server=server)
        win_b = signed_in(root, bob)
        wait_in_pane(root, alice, "bob joined")
        carol.expect_event("joined", name="bob")

        # Keyboard: select bob in the roster, press Enter: a focused tab opens.
        win_a.roster.selection_set("bob")
        win_a.roster.focus("bob")
        keyboard_to(root, win_a.roster)
        win_a.roster.event_generate("<Return>")
        pump(root, lambda: win_a.current_conversation() == "bob", "alice's tab with bob selected")
        type_line(root, alice, "solo para bob")
        text = wait_in_pane(root, bob, "alice \tsolo para bob", conversation="alice")
        assert shields(bob, "alice") == [("alice", "new")]
        assert "solo para bob" not in pane(bob, ROOM), "a direct message is not shown in the room"
        assert win_b.current_conversation() == ROOM, "an incoming tab does not steal focus"
        wait_in_pane(root, alice, "✓ delivered to bob", conversation="bob")

        # Bob answers with /msg from the room tab; it lands in the same tabs.
        type_line(root, bob, "/msg alice recibido")
        wait_in_pane(root, alice, "bob \trecibido", conversation="bob")
        assert win_b.current_conversation() == "alice"
        assert "recibido" not in pane(alice, ROOM)

        # Closing the tab (Ctrl+W) and double-clicking the roster reopens it.
        keyboard_to(root, win_a.top)
        win_a.entry.event_generate("<Control-w>")
        pump(root, lambda: "bob" not in win_a.conversations, "alice's tab with bob closed")
        double_click(root, win_a.roster, "bob")
        pump(root, lambda: win_a.current_conversation() == "bob", "double-click reopened the tab")
        pump(root, lambda: win_a.top.focus_get() is win_a.entry, "double-click left the focus in the composer")

        # Carol got neither: the next room message is the first message she sees.
        win_a.actions.select(ROOM)
        type_line(root, alice, "para toda la sala")
        wait_in_pane(root, bob, "alice \tpara toda la sala")
        seen = carol.expect_event("message", **{"from": "alice"})
        assert seen["text"] == "para toda la sala"
        assert [e for e in carol.events if e.get("event") == "message"] == [seen]
        assert text.count("solo para bob") == 1
    finally:
        carol.stop()
        for app in (alice, bob):
            if app is not None:
                close_app(root, app)
