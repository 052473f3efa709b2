"""The real ``susurro-relay`` process and its log file under operations:
rotation by rename with a SIGHUP (logrotate's postrotate), and a full disk."""

from __future__ import annotations

import signal
import time
from pathlib import Path

from tests.helpers.hostile_client import HostileClient
from tests.helpers.processes import WAIT, RelayProcess


def relay_address(relay: RelayProcess) -> tuple[str, int]:
    host, port = relay.address.rsplit(":", 1)
    return host, int(port)


def wait_for_line(path: Path, text: str) -> str:
    deadline = time.monotonic() + WAIT
    while time.monotonic() < deadline:
        content = path.read_text(encoding="utf-8") if path.exists() else ""
        if text in content:
            return content
        time.sleep(0.05)
    raise AssertionError(f"no {text!r} in {path} within {WAIT} s")


def test_sighup_reopens_the_log_after_a_rename_and_the_relay_carries_on(tmp_path: Path) -> None:
    relay = RelayProcess(tmp_path)
    try:
        with HostileClient(relay_address(relay)) as alice:
            alice.join("alice")
            wait_for_line(relay.log_file, "join name=alice")
            relay.log_file.rename(tmp_path / "relay.log.1")
            relay.proc.send_signal(signal.SIGHUP)
            wait_for_line(relay.log_file, "logs reopened")
            assert relay.proc.poll() is None  # SIGHUP did not stop it
            alice.ping()  # alice's connection survived
            with HostileClient(relay_address(relay)) as bob:
                bob.join("bob")
                wait_for_line(relay.log_file, "join name=bob")
    finally:
        code = relay.stop()
    assert code == 0
    assert "join name=alice" in (tmp_path / "relay.log.1").read_text(encoding="utf-8")
    assert "join name=bob" not in (tmp_path / "relay.log.1").read_text(encoding="utf-8")
    assert "Traceback" not in relay.stderr_file.read_text(encoding="utf-8")


def test_a_relay_whose_log_disk_is_full_says_so_once_and_keeps_serving(tmp_path: Path) -> None:
    relay = RelayProcess(tmp_path, "--log-file", "/dev/full")
    try:
        for name in ("alice", "bob", "carol"):
            with HostileClient(relay_address(relay)) as client:
                client.join(name)
                client.ping()
    finally:
        code = relay.stop()
    assert code == 0
    stderr = relay.stderr_file.read_text(encoding="utf-8")
    assert stderr.count("susurro-relay: cannot write the log file /dev/full") == 1, stderr
    assert "Logging error" not in stderr and "Traceback" not in stderr
    for name in ("alice", "bob", "carol"):
        assert f"join name={name}" in stderr  # stderr (the journal) still has every line
