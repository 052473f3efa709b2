"""The installed ``susurro`` command as a user starts it: a real process on the test display."""

from __future__ import annotations

import os
import signal
import subprocess
from pathlib import Path

from tests.helpers.processes import WAIT, CliProcess, console_script


def test_susurro_with_server_and_name_joins_at_once_and_leaves_on_ctrl_c(display, relay_server, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    server = "{}:{}".format(*relay_server.address)
    watcher = CliProcess("watcher", tmp_path / "watcher", server)
    watcher.expect_event("connected", name="watcher")  # before the GUI starts: it must see a join
    env = {**os.environ, "DISPLAY": display, "SUSURRO_HOME": str(tmp_path / "gui-home")}
    gui = subprocess.Popen(
        [*console_script("susurro"), "--server", server, "--name", "ventana"],
        env=env,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    try:
        joined = watcher.expect_event("joined", name="ventana")
        assert len(joined["fingerprint"].split()) == 8
        watcher.type("hola ventana")
        watcher.expect(lambda e: e.get("event") == "delivery" and e.get("delivered") == ["ventana"], "delivery")
        gui.send_signal(signal.SIGINT)
        watcher.expect_event("left", name="ventana")
        assert gui.wait(WAIT) == 0
        assert gui.stderr is not None and b"Traceback" not in gui.stderr.read()
    finally:
        if gui.poll() is None:
            gui.kill()
            gui.wait(WAIT)
        watcher.stop()
