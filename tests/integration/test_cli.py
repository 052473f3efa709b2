"""The command-line surfaces: the one-command local demo, --help, and clear errors."""

from __future__ import annotations

import os
import secrets
import subprocess
import time
from pathlib import Path

from susurro.client.demo import LOCAL_RELAY_ENV
from tests.helpers.processes import WAIT, CliProcess, console_script
from tests.helpers.system import free_port


def run(args: list[str], home: Path, stdin: str = "") -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "SUSURRO_HOME": str(home)}
    return subprocess.run(args, input=stdin, capture_output=True, text=True, timeout=WAIT, env=env, check=False)


def test_demo_starts_an_embedded_relay_that_a_second_client_joins(tmp_path: Path) -> None:
    local = {"SUSURRO_LOCAL_RELAY": f"127.0.0.1:{free_port()}"}
    host = CliProcess("host", tmp_path / "host", server=None, env=local)
    guest = None
    try:
        host.expect_event("connected", name="host")
        assert "started one in this process" in host.stderr()
        guest = CliProcess("guest", tmp_path / "guest", server=None, env=local)
        guest.expect_event("connected", name="guest")
        assert "started one" not in guest.stderr()  # it found the host's relay
        text = f"hello over the demo relay {secrets.token_hex(4)}"
        guest.type(text)
        assert host.expect_event("message", text=text)["from"] == "guest"
        # The demo relay logs to SUSURRO_HOME/relay.log: ciphertext only. The line is
        # written just after the frame is queued, so the host can see the message first.
        log_file = tmp_path / "host" / "relay.log"
        deadline = time.monotonic() + WAIT
        while "deliver from=guest to=host" not in (log := log_file.read_text("utf-8")):
            assert time.monotonic() < deadline, f"no deliver line in {log!r}"
            time.sleep(0.05)
        assert text not in log
        # When the host quits, its relay goes with it; the guest is told and keeps trying.
        host.type("/quit")
        assert host.wait() == 0
        assert "shut down" in guest.expect_event("reconnecting")["reason"]
    finally:
        host.stop()
        if guest is not None:
            guest.stop()


def test_cli_refuses_an_unreachable_relay_clearly(tmp_path: Path) -> None:
    result = run([*console_script("susurro-cli"), "--name", "dana", "--server", f"127.0.0.1:{free_port()}"], tmp_path)
    assert result.returncode == 1
    assert "cannot reach the relay" in result.stderr and "connection refused" in result.stderr
    assert "Traceback" not in result.stderr


def test_cli_refuses_a_bad_name_before_connecting(tmp_path: Path) -> None:
    result = run([*console_script("susurro-cli"), "--name", "dаna", "--server", "127.0.0.1:1"], tmp_path)
    assert result.returncode == 2
    assert "must not mix scripts" in result.stderr
    assert "Traceback" not in result.stderr


def test_name_taken_is_reported_as_the_reason(tmp_path: Path, relay_server: object) -> None:
    host, port = relay_server.address  # type: ignore[attr-defined]
    first = CliProcess("erin", tmp_path / "a", f"{host}:{port}")
    second = None
    try:
        first.expect_event("connected", name="erin")
        second = CliProcess("Erin", tmp_path / "b", f"{host}:{port}")
        refused = second.expect_event("disconnected")
        assert refused["code"] == "name_taken" and "in use" in refused["reason"]
        assert second.wait() == 1
    finally:
        first.stop()
        if second is not None:
            second.stop()


def test_a_second_session_of_one_key_is_told_and_the_first_keeps_chatting(tmp_path: Path, relay_server: object) -> None:
    host, port = relay_server.address  # type: ignore[attr-defined]
    relay = f"{host}:{port}"
    key = tmp_path / "gale.key"
    first = CliProcess("gale", tmp_path / "a", relay, extra=("--identity", str(key)))
    clients = [first]
    try:
        first.expect_event("connected", name="gale")
        second = CliProcess("gale2", tmp_path / "b", relay, extra=("--identity", str(key)))  # the same key
        clients.append(second)
        refused = second.expect_event("disconnected")
        assert refused["code"] == "identity_in_use" and "gale" in refused["reason"]
        assert second.wait() == 1
        other = CliProcess("hugo", tmp_path / "c", relay)
        clients.append(other)
        other.expect_event("connected")
        first.expect_event("joined", name="hugo")
        first.type("still here")
        assert other.expect_event("message", text="still here")["from"] == "gale"
    finally:
        for client in clients:
            client.stop()


def test_help_explains_both_commands(tmp_path: Path) -> None:
    relay_help = run([*console_script("susurro-relay"), "--help"], tmp_path)
    assert relay_help.returncode == 0
    for flag in ("--host", "--port", "--log-file", "--log-level", "--log-ciphertext", "--max-frame", "--max-clients"):
        assert flag in relay_help.stdout
    cli_help = run([*console_script("susurro-cli"), "--help"], tmp_path)
    assert cli_help.returncode == 0
    for text in ("--server", "--name", "--identity", "--json", "/msg", "/who", "/quit", "/forget-room LABEL"):
        assert text in cli_help.stdout


def test_identity_is_created_once_and_reused(tmp_path: Path, relay_server: object) -> None:
    host, port = relay_server.address  # type: ignore[attr-defined]
    fingerprints = []
    for _ in range(2):
        client = CliProcess("fran", tmp_path, f"{host}:{port}")
        try:
            fingerprints.append(client.expect_event("connected")["fingerprint"])
            client.type("/quit")
            assert client.wait() == 0
        finally:
            client.stop()
    key_file = tmp_path / "identities" / "fran.key"
    assert key_file.stat().st_mode & 0o777 == 0o600
    assert fingerprints[0] == fingerprints[1]


def test_text_client_survives_hostile_text_and_an_ascii_terminal(tmp_path: Path, relay_server: object) -> None:
    host, port = relay_server.address  # type: ignore[attr-defined]
    sender = CliProcess("gus", tmp_path / "gus", f"{host}:{port}")
    sender.expect_event("connected")
    env = {**os.environ, "SUSURRO_HOME": str(tmp_path / "hana"), "PYTHONIOENCODING": "ascii", "LC_ALL": "C"}
    reader = subprocess.Popen(
        [*console_script("susurro-cli"), "--name", "hana", "--server", f"{host}:{port}"],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env=env,
    )
    try:
        sender.expect_event("joined", name="hana")
        sender.type("café \x1b[2J clear screen")
        sender.expect_event("delivery")
        assert reader.stdin is not None
        reader.stdin.write(b"\xff\xfe not utf-8\n")  # invalid input must not kill the input thread
        reader.stdin.flush()
        message = sender.expect_event("message", **{"from": "hana"})
        assert message["text"] == "\ufffd\ufffd not utf-8"
        out, err = reader.communicate(b"/quit\n", timeout=WAIT)
        assert reader.returncode == 0, err
        assert b"\x1b" not in out
        assert b"<gus> caf? \\x1b[2J clear screen" in out
        assert b"Traceback" not in err
    finally:
        if reader.poll() is None:
            reader.kill()
            reader.communicate(timeout=WAIT)
        sender.stop()


def test_the_demo_address_written_out_starts_the_demo_relay_like_the_bare_command(tmp_path: Path) -> None:
    address = f"127.0.0.1:{free_port()}"
    host = CliProcess("ana", tmp_path / "ana", server=address, env={LOCAL_RELAY_ENV: address})
    try:
        host.expect_event("connected", name="ana")
        assert "started one in this process" in host.stderr()
    finally:
        host.stop()
