"""Verifying a contact and deciding about a changed key, through the real dialogs and buttons.

Each user has their own trust store file, as on their own machine. The
safety number must be the same in both windows; a changed key must block
sending to that person until the banner's "Accept new key" is pressed.
"""

from __future__ import annotations

from pathlib import Path

from susurro.client.gui.panes import ROOM
from tests.helpers.gui_driver import (
    bob_with_a_new_key,
    buttons,
    close_app,
    keyboard_to,
    pane,
    pump,
    roster,
    shields,
    signed_in,
    signed_in_apps,
    start_app,
    type_line,
    wait_in_pane,
)


def open_verify(root, app, name: str):  # type: ignore[no-untyped-def]
    window = app.window
    window.roster.selection_set(name)
    keyboard_to(root, window.verify_button)
    window.verify_button.event_generate("<Key-space>")  # keyboard: Space presses a focused ttk button
    pump(root, lambda: app.verify_dialog is not None and app.verify_dialog.top.winfo_exists(), "the verify dialog")
    return app.verify_dialog


def test_safety_numbers_match_and_verified_is_shown(tk_root, relay_server, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    root = tk_root
    server = "{}:{}".format(*relay_server.address)
    alice = start_app(root, tmp_path / "alice", name="alice", server=server)
    bob = None
    try:
        signed_in(root, alice)
        bob = start_app(root, tmp_path / "bob", name="bob", server=server)
        signed_in(root, bob)
        wait_in_pane(root, alice, "bob joined")
        assert roster(alice)["bob"][1] == "new"

        dialog_a = open_verify(root, alice, "bob")
        dialog_b = open_verify(root, bob, "alice")
        number_a, number_b = dialog_a.number.cget("text"), dialog_b.number.cget("text")
        assert number_a == number_b
        groups = number_a.split()
        assert len(groups) == 12 and all(len(g) == 5 and g.isdigit() for g in groups)
        assert len(number_a.splitlines()) == 3
        dialog_b.top.event_generate("<Escape>")
        pump(root, lambda: not dialog_b.top.winfo_exists(), "Escape closed bob's dialog")

        dialog_a.mark_button.invoke()
        pump(root, lambda: roster(alice)["bob"][1] == "verified", "bob verified in alice's roster")
        type_line(root, bob, "ahora verificado")
        assert "bob \tahora verificado" in wait_in_pane(root, alice, "ahora verificado")
        assert shields(alice)[-1] == ("bob", "verified"), "a verified shield, not a [✓ verified] on every line"
        type_line(root, bob, "y otra vez")
        wait_in_pane(root, alice, "y otra vez")
        assert [s for s in shields(alice) if s[0] == "bob"] == [("bob", "verified")], "one name header per run"
        assert "verified" not in pane(alice).split("ahora verificado")[1]
        assert (tmp_path / "alice" / "trust.json").exists(), "the decision is kept in alice's trust store"
    finally:
        close_app(root, alice)
        if bob is not None:
            close_app(root, bob)


def test_changed_key_blocks_sending_until_accepted(tk_root, relay_server, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    root = tk_root
    server = "{}:{}".format(*relay_server.address)
    with signed_in_apps(root, tmp_path, server, "alice", "bob") as apps:
        alice = apps[0]
        impostor = bob_with_a_new_key(root, tmp_path, server, apps)  # "bob" again, with a new key
        window = alice.window
        box, banner = window.conversations[ROOM].banners[0]
        assert banner.kind == "key_changed" and banner.accept
        assert banner.text.startswith("bob's identity key changed (was ")
        assert roster(alice)["bob"][1] == "KEY CHANGED"

        type_line(root, alice, "/msg bob hola")
        assert "Not sent: bob's key changed; accept it or verify first" in pane(alice)
        assert window.entry.get("1.0", "end-1c") == "/msg bob hola", "a refused line stays to be fixed"
        window.entry.delete("1.0", "end")
        type_line(root, alice, "a la sala")  # bob is the only other member: the core refuses it
        wait_in_pane(root, alice, "a la sala  Not sent: bob's key changed; accept it or verify first")
        assert "not sent: not sent" not in pane(alice).lower()
        assert "a la sala" not in pane(impostor)

        accept = buttons(box, "Accept new key")
        assert len(accept) == 1
        accept[0].invoke()
        pump(root, lambda: roster(alice)["bob"][1] == "seen before", "bob's new key accepted")
        assert not window.conversations[ROOM].banners, "accepting removed the banner"
        type_line(root, alice, "/msg bob bienvenido")
        wait_in_pane(root, impostor, "bienvenido", conversation="alice")
