"""The window understands the terminal client's commands (one parser, ``client/commands.py``)."""

from __future__ import annotations

from pathlib import Path

from tests.helpers.gui_driver import alice_and, pane, pump, type_line, wait_in_pane


def test_who_help_verify_strict_accept_and_quit_typed_in_the_composer(tk_root, relay_server, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    root = tk_root
    server = "{}:{}".format(*relay_server.address)
    with alice_and(root, server, tmp_path) as (alice, window, bob):
        type_line(root, alice, "/who")
        shown = wait_in_pane(root, alice, "bob: ")
        assert "alice (you): " in shown and "…, new" in shown
        assert "unknown command" not in shown.lower() and "there is no /who" not in shown.lower()
        type_line(root, alice, "/help")
        shown = wait_in_pane(root, alice, "Commands (the same as in the terminal client):")
        assert "/verify NAME  compare safety numbers with NAME" in shown
        type_line(root, alice, "/strict on")
        wait_in_pane(root, alice, "Strict mode on: messages go only to verified members.")
        type_line(root, alice, "/strict off")
        wait_in_pane(root, alice, "Strict mode off")
        type_line(root, alice, "/accept bob")
        wait_in_pane(root, alice, "there is nothing to accept")
        type_line(root, alice, "/verify bob")
        pump(root, lambda: alice.verify_dialog is not None and alice.verify_dialog.top.winfo_exists(), "the dialog")
        alice.verify_dialog.destroy()  # type: ignore[union-attr]
        assert window.entry.get("1.0", "end-1c") == "", "a command clears the composer"
        assert "/who" not in pane(bob) and "/verify" not in pane(bob), "commands are never sent as messages"
        type_line(root, alice, "/quit")
        pump(root, lambda: alice.closed, "/quit closed the window")
