"""Two real GUI windows and one ``susurro-cli --json`` process in a real room.

Both GUI users run in this process, as two ``SusurroApp``s whose windows are
``Toplevel``s of one Tk root: one Tcl interpreter on one thread, which is the
robust way to have two windows in one test (two ``Tk()`` interpreters in one
process work, but fight over event handling). The CLI is a real subprocess and
the relay is real, on an ephemeral port.
"""

from __future__ import annotations

from pathlib import Path

from tests.helpers.gui_driver import (
    close_app,
    pane,
    pump,
    roster,
    shields,
    signed_in,
    start_app,
    type_line,
    wait_in_pane,
)
from tests.helpers.processes import CliProcess


def test_two_windows_and_a_cli_chat(tk_root, relay_server, cli_clients, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    root = tk_root
    host, port = relay_server.address
    server = f"{host}:{port}"
    alice = start_app(root, tmp_path / "alice", name="alice", server=server)
    bob = None
    try:
        win_a = signed_in(root, alice)
        bob = start_app(root, tmp_path / "bob", name="bob", server=server)
        signed_in(root, bob)
        assert win_a.top.title() == "Susurro: alice"
        wait_in_pane(root, alice, "bob joined")
        carol = CliProcess("carol", tmp_path / "carol", server)
        cli_clients.append(carol)
        carol_me = carol.expect_event("connected", name="carol")
        wait_in_pane(root, alice, "carol joined")
        wait_in_pane(root, bob, "carol joined")

        # Rosters: all three, with the fingerprints each member has itself.
        carol.expect_event("roster")
        pump(root, lambda: len(roster(alice)) == 3 and len(roster(bob)) == 3, "three members in both rosters")
        fingerprints = {
            "alice": alice.state.fingerprint,
            "bob": bob.state.fingerprint,
            "carol": carol_me["fingerprint"],
        }
        for app in (alice, bob):
            rows = roster(app)
            assert set(rows) == {"alice", "bob", "carol"}
            for name, (shown, _trust) in rows.items():
                assert shown == " ".join(fingerprints[name].split()[:2])
        assert win_a.status_connection.full == f"connected to {server}"
        assert "end-to-end encrypted" in win_a.status_e2e.cget("text")
        assert fingerprints["alice"] in win_a.status_fingerprint.cget("text"), "920 px: the whole fingerprint"

        # A -> everyone, typed into the real entry; Shift+Enter makes a second line.
        type_line(root, alice, "hola a todos", shift_lines=("segunda línea",))
        assert win_a.entry.get("1.0", "end-1c") == "", "Enter sent and cleared the entry"
        text_b = wait_in_pane(root, bob, "hola a todos")
        assert "segunda línea" in text_b
        message = carol.expect_event("message", **{"from": "alice"})
        assert message["text"] == "hola a todos\nsegunda línea"
        wait_in_pane(root, alice, "✓ delivered to bob, carol")

        # The CLI's message appears in both windows.
        carol.type("saludos desde la terminal")
        for app in (alice, bob):
            shown = wait_in_pane(root, app, "saludos desde la terminal")
            assert "carol \tsaludos desde la terminal" in shown
            assert ("carol", "new") in shields(app), "first sight of carol: a new-key shield"

        # A leave shows in both windows and empties the roster row.
        carol.type("/quit")
        assert carol.wait() == 0
        wait_in_pane(root, alice, "carol left")
        wait_in_pane(root, bob, "carol left")
        pump(root, lambda: "carol" not in roster(alice) and "carol" not in roster(bob), "carol out of both rosters")
        assert "saludos" not in pane(alice).split("carol left")[1]
    finally:
        close_app(root, alice)
        if bob is not None:
            close_app(root, bob)
