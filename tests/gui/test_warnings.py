"""A relay that tampers with or replays a message: the window shows a banner, never the text.

Alice's GUI talks to the real relay through ``TamperingProxy`` (the hostile
relay of the adversarial suite), which rewrites the ``deliver`` frames meant
for her; Bob's GUI talks to the relay directly and types real messages.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from pathlib import Path

from susurro.client.home import LocalFile, local_path
from susurro.crypto import load_identity
from susurro.protocol import Deliver, Frame
from tests.helpers.gui_driver import alice_and, close_app, pane, pump, signed_in, start_app, type_line, wait_in_pane
from tests.helpers.gui_driver import banners as every_banner


def banners(app) -> list[str]:  # type: ignore[no-untyped-def]
    return app.window.conversations[""].banner_texts()


def test_tampered_and_replayed_messages_show_banners_not_text(tk_root, relay_server, proxy, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    root = tk_root
    mode = {"value": "pass"}

    def hook(_label: str, frame: Frame) -> Sequence[Frame]:
        if not isinstance(frame, Deliver) or mode["value"] == "pass":
            return [frame]
        if mode["value"] == "flip":
            ct = bytearray(frame.ct)
            ct[len(ct) // 2] ^= 0x01
            return [dataclasses.replace(frame, ct=bytes(ct))]
        return [frame, frame]  # replay: the same envelope twice

    host, port = relay_server.address
    phost, pport = proxy.address
    proxy.expect("alice")
    with alice_and(root, f"{phost}:{pport}", tmp_path, other_server=f"{host}:{port}") as (alice, _window, bob):
        proxy.set_hook("alice", hook)  # deliver frames pass until the mode changes
        mode["value"] = "flip"
        type_line(root, bob, "secreto alterado")
        pump(root, lambda: banners(alice), "a banner in alice's window")
        assert banners(alice)[0].startswith("A message from bob could not be decrypted")
        # The relay did hand it on (one tick), but alice's client showed nothing, so it sends no receipt.
        wait_in_pane(root, bob, "secreto alterado  ✓ sent to alice")
        assert "secreto alterado" not in pane(alice)
        assert "secreto alterado" not in " ".join(banners(alice))

        mode["value"] = "replay"
        type_line(root, bob, "dicho una vez")
        pump(root, lambda: any("(a replay)" in b for b in banners(alice)), "a replay banner")
        # The tampered message left a hole in Bob's counter: that is reported too.
        kinds = [banner.kind for _box, banner in alice.window.conversations[""].banners]
        assert kinds == ["decrypt_failed", "gap", "replay"]
        assert not any("_" in b for b in banners(alice)), "no internal codes in the words"
        assert pane(alice).count("dicho una vez") == 1


def test_a_cut_connection_shows_reconnecting_then_recovers(tk_root, relay_server, proxy, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    """The relay link breaks (no shutdown frame): the window stays, says so, and comes back by itself."""
    root = tk_root
    host, port = relay_server.address
    phost, pport = proxy.address
    proxy.expect("alice")
    with alice_and(root, f"{phost}:{pport}", tmp_path, other_server=f"{host}:{port}") as (alice, window, bob):
        states: list[str] = []

        def saw(text: str) -> bool:
            status = window.status_connection.full
            if not states or states[-1] != status:
                states.append(status)
            return status.startswith(text)

        proxy.expect("alice-again")
        proxy.cut("alice")
        pump(root, lambda: saw("connection lost; trying again in "), "the reconnecting status")
        assert str(window.entry.cget("state")) == "normal", "typing stays on: lines wait for the room"
        assert window.hint.full == "Reconnecting: what you send now goes out once the room is back."
        assert str(window.status_e2e.cget("style")) == "Muted.TLabel"
        type_line(root, alice, "escrito sin conexión")
        assert "escrito sin conexión  waiting for the room to come back…" in pane(alice)
        pump(root, lambda: saw("connected to "), f"connected again (status went {states})")
        assert str(window.entry.cget("state")) == "normal"
        wait_in_pane(root, alice, f"Back in the room on {phost}:{pport}")
        pump(root, lambda: "bob" in window.roster.get_children(), "bob back in the roster")
        wait_in_pane(root, bob, "escrito sin conexión")  # the held line, once alice is back
        wait_in_pane(root, alice, "escrito sin conexión  ✓✓ delivered to bob")
        type_line(root, alice, "de vuelta")
        wait_in_pane(root, bob, "de vuelta")


def test_a_saved_state_that_cannot_be_opened_is_a_banner_at_sign_in(tk_root, relay_server, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    """bob's sealed state file is garbage on disk: the window signs in and says, in words, that it started
    afresh and kept the damaged file aside (non-negotiable 4: nothing is lost unsaid)."""
    root = tk_root
    host, port = relay_server.address
    home = tmp_path / "bob"
    bob = start_app(root, home, name="bob", server=f"{host}:{port}")
    try:
        signed_in(root, bob)
    finally:
        close_app(root, bob)
    path = local_path(LocalFile.STATE, load_identity(home / "bob.key").public)  # start_app set SUSURRO_HOME
    path.write_bytes(b"not a sealed state file")
    again = start_app(root, home, name="bob", server=f"{host}:{port}")
    try:
        signed_in(root, again)
        said = "could not be opened, so Susurro started afresh"
        pump(root, lambda: any(said in b for b in every_banner(again)), "the unreadable state's banner")
        assert path.with_name(path.name + ".unreadable").read_bytes() == b"not a sealed state file"
    finally:
        close_app(root, again)
