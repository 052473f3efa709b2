"""A relay restart (``systemctl restart``: SIGTERM, then the relay is back on its port) ends nobody's session.

A real ``susurro-relay`` process is SIGTERMed (it sends ``shutdown`` to
everyone) and started again on the same port while two GUI windows and a
``susurro-cli --json`` are in the room. All three come back by themselves; a
line typed in a window while the relay is down waits until the room is back
*and its members are*, then reaches both of them.
"""

from __future__ import annotations

from pathlib import Path

from tests.helpers.gui_driver import close_app, pane, pump, signed_in, start_app, type_line, wait_in_pane
from tests.helpers.processes import CliProcess, RelayProcess

RESTART_WAIT = 45.0  # backoff after a restart: up to a few seconds per client, on a loaded machine more


def test_a_relay_restart_is_ridden_through_and_held_lines_reach_everyone(tk_root, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    root = tk_root
    for folder in ("relay-1", "relay-2"):
        (tmp_path / folder).mkdir()
    relay = RelayProcess(tmp_path / "relay-1")
    server = relay.address
    port = server.rsplit(":", 1)[1]
    again = None
    alice = start_app(root, tmp_path / "alice", name="alice", server=server)
    apps = [alice]
    carol = None
    try:
        window = signed_in(root, alice)
        bob = start_app(root, tmp_path / "bob", name="bob", server=server)
        apps.append(bob)
        signed_in(root, bob)
        carol = CliProcess("carol", tmp_path / "carol", server)
        carol.expect_event("connected", name="carol")
        wait_in_pane(root, alice, "carol joined")
        wait_in_pane(root, bob, "carol joined")

        assert relay.stop() == 0  # SIGTERM: the relay says shutdown to everyone, then exits
        pump(
            root,
            lambda: window.status_connection.full.startswith("connection lost; trying again in"),
            "alice's window says it is reconnecting",
        )
        assert not window.reconnect_button.winfo_manager(), "no Reconnect button: it tries by itself"
        reconnecting = carol.expect_event("reconnecting")
        assert "the relay shut down" in reconnecting["reason"]
        assert str(window.entry.cget("state")) == "normal"
        type_line(root, alice, "escrito durante el reinicio")
        assert "escrito durante el reinicio  waiting for the room to come back…" in pane(alice)

        again = RelayProcess(tmp_path / "relay-2", "--port", port)
        pump(root, lambda: "Back in the room" in pane(alice), "alice back", timeout=RESTART_WAIT)
        pump(root, lambda: "Back in the room" in pane(bob), "bob back", timeout=RESTART_WAIT)
        carol.expect(
            lambda e: e.get("event") == "connected" and e.get("name") == "carol", "carol back", timeout=RESTART_WAIT
        )
        held = carol.expect(
            lambda e: e.get("event") == "message" and e.get("from") == "alice", "the held line", timeout=RESTART_WAIT
        )
        assert held["text"] == "escrito durante el reinicio"
        wait_in_pane(root, bob, "escrito durante el reinicio")
        # Two ticks for both: each one's client signed that it showed the line (it waited for both).
        pump(
            root,
            lambda: "escrito durante el reinicio  ✓✓ delivered to bob, carol" in pane(alice),
            "the delivery note",
            timeout=RESTART_WAIT,
        )
        assert not any(e.get("event") == "disconnected" for e in carol.events)
        assert carol.proc.poll() is None, "the terminal client is still running"
        carol.type("todos de vuelta")
        wait_in_pane(root, alice, "todos de vuelta")
    finally:
        for app in apps:
            close_app(root, app)
        if carol is not None:
            carol.stop()
        relay.stop()
        if again is not None:
            again.stop()
