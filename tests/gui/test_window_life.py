"""The window over its life: the one-command demo relay, a lost relay, remembered layout, Spanish."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from susurro.client import events as ev
from susurro.client.gui.room_view import is_room_key
from tests.helpers.gui_driver import (
    close_app,
    fill_and_submit,
    keyboard_to,
    pane,
    pump,
    roster,
    signed_in,
    start_app,
    type_line,
    wait_in_pane,
)
from tests.helpers.system import free_port


def test_default_address_starts_the_demo_relay_in_the_window(tk_root, tmp_path: Path, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    """The README's first command: sign in to the default address with nothing listening there.

    A second window (a second person on this machine) joins the first one's
    relay, and both land in the demo's open room, with no invite step.
    """
    root = tk_root
    address = f"127.0.0.1:{free_port()}"
    monkeypatch.setenv("SUSURRO_LOCAL_RELAY", address)  # the demo's 127.0.0.1:12345, moved to a free port
    first = start_app(root, tmp_path / "a")
    second = None
    try:
        pump(root, lambda: first.dialog is not None, "the sign-in dialog")
        assert first.dialog.entries["relay"].get() == address, "the default address is filled in"
        fill_and_submit(root, first, name="ana")
        signed_in(root, first)
        assert f"No relay was running on {address}; started one inside this window." in pane(first)
        # The demo's open room: the first window created it and is on it.
        pump(root, lambda: is_room_key(first.window.current), "ana's window on the demo's room")
        lobby = first.window.current
        assert first.state.rooms[lobby].label == "lobby" and first.state.rooms[lobby].open
        wait_in_pane(root, first, "You created lobby #", lobby)
        second = start_app(root, tmp_path / "b")
        fill_and_submit(root, second, name="beto")
        signed_in(root, second)
        assert "No relay was running" not in pane(second), "the second window joins the first one's relay"
        # Two people who start the demo land in the same open room, with no invite step.
        pump(root, lambda: second.window.current == lobby, "beto's window on the same room (same room id)")
        wait_in_pane(root, second, "You joined lobby #", lobby)
        wait_in_pane(root, first, "beto joined the room.", lobby)
        pump(root, lambda: roster(first).keys() == {"ana", "beto"}, "both in ana's member list of the lobby")
        assert first.window.roster_title.full.startswith("MEMBERS OF LOBBY #")
        type_line(root, second, "hola ana")
        wait_in_pane(root, first, "hola ana", lobby)
        assert "hola ana" not in pane(first)
        wait_in_pane(root, second, "hola ana  ✓✓ delivered to ana", lobby)
    finally:
        if second is not None:
            close_app(root, second)
        close_app(root, first)


def test_the_demo_address_written_out_starts_the_demo_relay(tk_root, tmp_path: Path, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    """``susurro --server 127.0.0.1:12345 --name ana`` behaves like the bare command (moved to a free port)."""
    address = f"127.0.0.1:{free_port()}"
    monkeypatch.setenv("SUSURRO_LOCAL_RELAY", address)
    app = start_app(tk_root, tmp_path / "a", name="ana", server=address)
    try:
        signed_in(tk_root, app)
        assert f"No relay was running on {address}; started one inside this window." in pane(app)
    finally:
        close_app(tk_root, app)


def test_a_refusal_offers_reconnect_and_the_button_signs_in_again(tk_root, relay_factory, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    """Only a relay that refuses us stops the retries; then the window offers Reconnect, and it works."""
    root = tk_root
    relay = relay_factory()
    host, port = relay.address
    app = start_app(root, tmp_path / "a", name="alice", server=f"{host}:{port}")
    try:
        window = signed_in(root, app)
        relay.stop("maintenance")
        pump(root, lambda: window.status_connection.full.startswith("connection lost; trying again"), "retrying")
        assert not window.reconnect_button.winfo_manager()
        # The relay refuses us for good (as a relay that bans a name would): retries stop.
        assert app.opened is not None
        app.opened.events.put(ev.Disconnected(reason="the relay refused to let us join: banned", code="banned"))
        pump(root, lambda: window.reconnect_button.winfo_manager(), "the Reconnect button")
        assert str(window.entry.cget("state")) == "disabled" and window.send_button.instate(["disabled"])
        assert window.hint.full.startswith("Sending is off: ")
        assert str(window.status_e2e.cget("style")) == "Muted.TLabel", "not green while disconnected"
        window.entry.configure(state="normal")  # even if typed in somehow, Enter sends nothing
        type_line(root, app, "nadie escucha")
        assert "Not sent: not connected to the relay" in pane(app)

        window.reconnect_button.invoke()  # the relay is still down: said in the window, the button stays
        wait_in_pane(root, app, f"Cannot reach the relay at {host}:{port}")
        assert window.reconnect_button.winfo_manager() and window.top.winfo_exists()

        relay_factory(port=port)
        window.reconnect_button.invoke()
        wait_in_pane(root, app, f"Back in the room on {host}:{port}")
        pump(root, lambda: not window.reconnect_button.winfo_manager(), "the button gone once connected")
        assert str(window.entry.cget("state")) == "normal"
    finally:
        close_app(root, app)


def test_window_size_and_pane_split_are_remembered(tk_root, relay_server, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    root = tk_root
    server = "{}:{}".format(*relay_server.address)
    app = start_app(root, tmp_path / "a", name="alice", server=server)
    window = signed_in(root, app)
    window.top.geometry("760x480")
    root.update()
    window.paned.sashpos(0, 430)
    root.update()
    close_app(root, app)
    saved = json.loads((tmp_path / "a" / "gui.json").read_text())
    assert saved["geometry"].startswith("760x480") and saved["sash"] == 430
    again = start_app(root, tmp_path / "a", name="alice", server=server)
    try:
        window = signed_in(root, again)
        pump(
            root,
            lambda: window.top.winfo_width() == 760 and window.paned.sashpos(0) == 430,
            f"the layout restored: {window.top.geometry()} sash {window.paned.sashpos(0)}",
        )
    finally:
        close_app(root, again)


@pytest.mark.parametrize(
    ("lang", "room", "connected"), [("es", "Todos aquí", "conectado a "), ("en", "Everyone here", "connected to ")]
)
def test_interface_language(tk_root, relay_server, tmp_path: Path, lang: str, room: str, connected: str) -> None:  # type: ignore[no-untyped-def]
    root = tk_root
    app = start_app(root, tmp_path / "a", name="alice", server="{}:{}".format(*relay_server.address), lang=lang)
    try:
        window = signed_in(root, app)
        pump(root, lambda: window.status_connection.full.startswith(connected), "status in language")
        assert window.sidebar.items[0].label == room and window.header.full.startswith(room)
        # Keyboard: Tab leaves the message entry (it does not insert a tab character).
        keyboard_to(root, window.entry)
        window.entry.event_generate("<Tab>")
        pump(
            root,
            lambda: str(window.top.focus_get()) == str(window.send_button),
            f"Tab moved to the Send button, not {window.top.focus_get()}",
        )
        assert window.entry.get("1.0", "end-1c") == ""
    finally:
        close_app(root, app)
