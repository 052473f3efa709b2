"""The window says why a cluster's relay lets nobody join (``cluster_down``), as the terminal and --json do.

A real cluster node (``RelayServer`` with ``cluster=``, real sockets) on a real ``redis-server``, which the
test stops; a real window under Xvfb. Run once without the window's handling (review-s8-cluster M2): the
sign-in said only "Connecting to …", then "The relay did not answer within 20 s", and a window whose
connection dropped said "connection lost; trying again in N s" without the reason; both tests failed.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from susurro.client.gui import app_signin
from susurro.relay import RelayConfig, RelayServer
from tests.helpers.gui_driver import close_app, fill_and_submit, pump, signed_in, start_app
from tests.helpers.redis_server import RedisServer
from tests.helpers.system import wait_until

#: Seconds for the node to see Redis gone (its health check), with slack for 2 loaded cores.
NODE_WAIT = 30.0
#: The relay's reason, in the window's words (``wording.reason_cluster_down``).
WHY = "cannot reach the store it shares with the other relays of its cluster"


@pytest.fixture
def node(redis_server: RedisServer) -> Iterator[RelayServer]:
    server = RelayServer(RelayConfig(host="127.0.0.1", port=0, handshake_timeout=5.0, cluster=redis_server.url))
    server.start()
    try:
        yield server
    finally:
        server.stop()


def redis_gone(node: RelayServer, redis_server: RedisServer) -> str:
    """Redis stopped and the node aware of it; the node's address."""
    cluster = node.cluster
    assert cluster is not None
    redis_server.stop()
    wait_until(lambda: not cluster.node.up, "the node to see Redis gone", NODE_WAIT)
    host, port = node.address
    return f"{host}:{port}"


@pytest.mark.parametrize("capped", [False, True])
def test_a_first_join_refused_cluster_down_says_why_while_it_waits_and_when_it_gives_up(  # type: ignore[no-untyped-def]
    tk_root, tmp_path: Path, node: RelayServer, redis_server: RedisServer, capped: bool
) -> None:
    """capped: the wait ends at its 10 min bound (JOIN_GIVE_UP), maybe a moment after the latest attempt, so
    the error names the whole wait, not 20 s of trying again (review-s9-fixes 7)."""
    root = tk_root
    address = redis_gone(node, redis_server)
    app = start_app(root, tmp_path / "erin")
    try:
        fill_and_submit(root, app, name="erin", relay=address, identity=str(tmp_path / "erin" / "erin.key"))
        dialog = app.dialog
        assert dialog is not None
        pump(root, lambda: WHY in str(dialog.progress.cget("text")), "the sign-in saying why it waits")
        waiting = str(dialog.progress.cget("text"))
        assert waiting.startswith(f"Connecting to {address}… The relay does not let you in yet: the relay")
        assert "Trying again in" in waiting and app.window is None
        wait = app._join_wait
        assert wait is not None

        def deadline_passed() -> str:
            wait.deadline = 0.0  # the 20 s pass (brought forward at every poll: a refusal starts them again)
            if capped:
                wait._last = 0.0  # and they were the last the 10 min allowed
            return str(dialog.error.cget("text"))

        pump(root, deadline_passed, "the sign-in's error")
        error = str(dialog.error.cget("text"))
        assert error.startswith("The relay did not let you in: the relay") and WHY in error
        if capped:
            assert error.endswith("It still did not after 10 min of trying. Try again in a while."), error
        else:
            assert error.endswith("It did not answer within 20 s of trying again. Try again in a while."), error
    finally:
        close_app(root, app)


def test_a_window_whose_rejoin_is_refused_cluster_down_says_why_in_its_status(  # type: ignore[no-untyped-def]
    tk_root, tmp_path: Path, node: RelayServer, redis_server: RedisServer
) -> None:
    root = tk_root
    host, port = node.address
    app = start_app(root, tmp_path / "erin", name="erin", server=f"{host}:{port}", lang="es")
    try:
        window = signed_in(root, app)
        redis_gone(node, redis_server)
        assert app.opened is not None
        app.opened.connection.cut()  # the link drops (a network fault): the rejoin meets the refusal
        status = window.status_connection
        pump(root, lambda: status.full.startswith("no te deja entrar: "), "the status saying why, in Spanish")
        assert "no llega al almacén que comparte" in status.full and "nuevo intento en" in status.full
        assert "conexión perdida" not in status.full
    finally:
        close_app(root, app)


def test_a_first_join_let_in_once_redis_is_back_keeps_no_stale_refusal(  # type: ignore[no-untyped-def]
    tk_root, tmp_path: Path, node: RelayServer, redis_server: RedisServer
) -> None:
    """ifix L7: the refusals seen before the welcome were replayed into the window after it, so a
    window that had just joined said "not let in: …; trying again in N s" until something else moved
    its status, while the relay had let it in."""
    root = tk_root
    address = redis_gone(node, redis_server)
    app = start_app(root, tmp_path / "erin")
    try:
        fill_and_submit(root, app, name="erin", relay=address, identity=str(tmp_path / "erin" / "erin.key"))
        dialog = app.dialog
        assert dialog is not None
        pump(root, lambda: WHY in str(dialog.progress.cget("text")), "the sign-in saying why it waits")
        redis_server.restart()  # same port: the node reconnects and lets the next attempt in
        window = signed_in(root, app)
        settled = time.monotonic() + 1.0  # a few polls after the welcome: whatever was queued is drawn
        pump(root, lambda: time.monotonic() > settled, "a second after the welcome")
        status = window.status_connection.full
        assert status == f"connected to {address}", status
        assert app.state is not None and app.state.reason == ""
    finally:
        close_app(root, app)


def test_a_first_join_refused_cluster_down_waits_past_its_timeout_and_joins_once_redis_is_back(  # type: ignore[no-untyped-def]
    tk_root, tmp_path: Path, node: RelayServer, redis_server: RedisServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The sign-in's 20 s ran from the first attempt whatever the relay said, so a window refused
    cluster_down for longer gave up ("did not let you in within 20 s") while the relay answered every
    attempt. Each refusal now starts them again from the next attempt: with the timeout made 2 s and the
    outage held past it twice, the sign-in still waits, then joins."""
    monkeypatch.setattr(app_signin, "JOIN_TIMEOUT", 2.0)
    root = tk_root
    address = redis_gone(node, redis_server)
    app = start_app(root, tmp_path / "erin")
    try:
        fill_and_submit(root, app, name="erin", relay=address, identity=str(tmp_path / "erin" / "erin.key"))
        dialog = app.dialog
        assert dialog is not None
        pump(root, lambda: WHY in str(dialog.progress.cget("text")), "the sign-in saying why it waits")
        outage_ends = time.monotonic() + 4.5
        pump(root, lambda: time.monotonic() > outage_ends or str(dialog.error.cget("text")), "the outage held")
        assert not str(dialog.error.cget("text")), "gave up while the relay answered every attempt"
        assert app.opened is not None and app.window is None
        redis_server.restart()
        window = signed_in(root, app)
        assert window.status_connection.full == f"connected to {address}"
    finally:
        close_app(root, app)
