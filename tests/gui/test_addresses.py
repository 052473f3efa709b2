"""Several relay addresses in the sign-in field, as ``susurro-cli --server a:12345,b:12345``.

Two real relays on ephemeral loopback ports (the nodes of one relay would
share rooms over Redis; two plain ones are enough to see the window move).
The window uses the first that answers, says which one in its status bar,
and when that one goes away reconnects to the next by itself.
"""

from __future__ import annotations

import socket
from pathlib import Path

from tests.helpers.gui_driver import close_app, pump, signed_in, start_app, type_line, wait_in_pane

MOVE_WAIT = 45.0  # the reconnect's backoff, on a loaded machine


def address(relay) -> str:  # type: ignore[no-untyped-def]
    return "{}:{}".format(*relay.address)


def test_the_window_moves_to_the_next_relay_when_its_relay_goes_away(tk_root, relay_factory, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    root = tk_root
    first, second = relay_factory(), relay_factory()
    alice = start_app(root, tmp_path / "alice", name="alice", server=f"{address(first)},{address(second)}")
    bob = None
    try:
        window = signed_in(root, alice)
        pump(
            root,
            lambda: window.status_connection.full == f"connected to {address(first)}",
            "the status bar names the relay in use",
        )
        bob = start_app(root, tmp_path / "bob", name="bob", server=address(second))
        signed_in(root, bob)

        first.stop()
        wait_in_pane(root, alice, f"Back in the room on {address(second)} (new session key).")
        pump(
            root,
            lambda: window.status_connection.full == f"connected to {address(second)}",
            "the status bar names the relay moved to",
            timeout=MOVE_WAIT,
        )
        wait_in_pane(root, alice, "bob")
        type_line(root, alice, "/msg bob en el otro relé")
        wait_in_pane(root, bob, "en el otro relé", "alice")
    finally:
        close_app(root, alice)
        if bob is not None:
            close_app(root, bob)


def test_a_first_address_nobody_answers_on_is_passed_over_at_sign_in(tk_root, relay_factory, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    root = tk_root
    with socket.create_server(("127.0.0.1", 0)) as closed:
        nobody = f"127.0.0.1:{closed.getsockname()[1]}"
    relay = relay_factory()
    alice = start_app(root, tmp_path / "alice", name="alice", server=f"{nobody}, {address(relay)}")
    try:
        window = signed_in(root, alice)
        pump(root, lambda: window.status_connection.full == f"connected to {address(relay)}", "on the second")
    finally:
        close_app(root, alice)


def test_a_list_with_a_bad_address_is_refused_in_the_form(tk_root, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    root = tk_root
    alice = start_app(root, tmp_path / "alice", name="alice", server="127.0.0.1:12345,relay.example.org:port")
    try:
        pump(root, lambda: alice.dialog is not None and str(alice.dialog.error.cget("text")), "the form's error")
        assert alice.dialog is not None
        assert str(alice.dialog.error.cget("text")).startswith("That relay address is not valid")
    finally:
        close_app(root, alice)
