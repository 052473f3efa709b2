"""The window over its life: the one-command demo relay, a lost relay, remembered layout, Spanish."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.helpers.gui_driver import (
    close_app,
    fill_and_submit,
    pane,
    pump,
    signed_in,
    start_app,
    type_line,
    wait_in_pane,
)
from tests.helpers.system import free_port


def test_default_address_starts_the_demo_relay_in_the_window(tk_root, tmp_path: Path, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    """The README's first command: sign in to the default address with nothing listening there."""
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
        second = start_app(root, tmp_path / "b")
        fill_and_submit(root, second, name="beto")
        signed_in(root, second)
        assert "No relay was running" not in pane(second), "the second window joins the first one's relay"
        type_line(root, second, "hola ana")
        wait_in_pane(root, first, "hola ana")
    finally:
        if second is not None:
            close_app(root, second)
        close_app(root, first)


def test_lost_relay_keeps_the_window_and_disables_sending(tk_root, relay_factory, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    root = tk_root
    relay = relay_factory()
    app = start_app(root, tmp_path / "a", name="alice", server="{}:{}".format(*relay.address))
    try:
        window = signed_in(root, app)
        assert str(window.entry.cget("state")) == "normal"
        relay.stop("maintenance")
        pump(root, lambda: str(window.entry.cget("state")) == "disabled", "sending disabled")
        status = window.status_connection.full
        assert status.startswith(("disconnected: ", "connection lost; trying again")), status
        assert window.hint.full.startswith("Sending is off: ")
        assert str(window.status_e2e.cget("style")) == "Muted.TLabel", "not green while disconnected"
        assert window.send_button.instate(["disabled"])
        assert window.top.winfo_exists() and app.window is window
        window.entry.configure(state="normal")  # even if typed in somehow, Enter sends nothing
        type_line(root, app, "nadie escucha")
        assert "Not sent: not connected to the relay" in pane(app) or "Not sent: reconnecting" in pane(app)
        assert "alice: nadie escucha" not in pane(app)
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
    ("lang", "room", "connected"), [("es", "Sala", "conectado a "), ("en", "Room", "connected to ")]
)
def test_interface_language(tk_root, relay_server, tmp_path: Path, lang: str, room: str, connected: str) -> None:  # type: ignore[no-untyped-def]
    root = tk_root
    app = start_app(root, tmp_path / "a", name="alice", server="{}:{}".format(*relay_server.address), lang=lang)
    try:
        window = signed_in(root, app)
        pump(root, lambda: window.status_connection.full.startswith(connected), "status in language")
        assert window.sidebar.items[0].label == room and window.header.full.startswith(room)
        # Keyboard: Tab leaves the message entry (it does not insert a tab character).
        window.entry.focus_force()
        root.update()
        window.entry.event_generate("<Tab>")
        pump(root, lambda: str(window.top.focus_get()) == str(window.send_button),
             f"Tab moved to the Send button, not {window.top.focus_get()}")
        assert window.entry.get("1.0", "end-1c") == ""
    finally:
        close_app(root, app)
