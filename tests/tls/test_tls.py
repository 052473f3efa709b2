"""TLS end to end: the three-user session over TLS, refused certificates, and
a relay that keeps accepting while a peer never finishes its handshake."""

from __future__ import annotations

import os
import queue
import socket
import subprocess
import time
from pathlib import Path

import pytest

from susurro.client import events as ev
from susurro.client.connection import RelayConnection
from susurro.client.session import ClientSession
from susurro.client.tls import CERTIFICATE_REFUSED, client_context
from susurro.crypto import IdentityKey
from susurro.relay import RelayServer
from susurro.relay.tls import TLSConfigError
from tests.helpers.certs import TlsFiles, needs_openssl
from tests.helpers.processes import WAIT, CliProcess, RelayProcess, console_script
from tests.helpers.scenarios import three_user_session

pytestmark = needs_openssl


def run_cli(args: list[str], home: Path) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "SUSURRO_HOME": str(home)}
    return subprocess.run(
        [*console_script("susurro-cli"), *args],
        input="",
        capture_output=True,
        text=True,
        timeout=WAIT * 2,
        env=env,
        check=False,
    )


def test_three_user_session_over_tls(pki: TlsFiles, cli_clients: list[CliProcess], tmp_path: Path) -> None:
    relay = RelayProcess(tmp_path, "--tls-cert", str(pki.cert), "--tls-key", str(pki.key))
    try:
        three_user_session(relay, cli_clients, tmp_path, client_args=("--tls", "--cafile", str(pki.ca)))
    finally:
        relay.stop()
    # The session ran over TLS, not around it: every connection shook hands.
    assert "tls-fail" not in relay.all_output()


def test_untrusted_certificate_is_refused_with_the_documented_message(pki: TlsFiles, tmp_path: Path) -> None:
    relay = RelayProcess(tmp_path, "--tls-cert", str(pki.cert), "--tls-key", str(pki.key))
    try:
        # Only the system trust store: our private authority is unknown there.
        result = run_cli(["--name", "dana", "--server", relay.address, "--tls"], tmp_path / "dana")
    finally:
        relay.stop()
    assert result.returncode == 1, result.stderr
    assert f"susurro-cli: {CERTIFICATE_REFUSED} for {relay.address}" in result.stderr
    assert "issuer certificate" in result.stderr  # OpenSSL's reason is passed on
    assert "--cafile" in result.stderr
    assert "Traceback" not in result.stderr
    assert "joined as" not in result.stdout  # it never joined
    # The client told the relay why (a TLS alert), and the relay logged it.
    assert "tls-fail addr=127.0.0.1:" in relay.all_output()
    assert "reason=tlsv1_alert_unknown_ca" in relay.all_output()


def test_certificate_for_another_host_is_refused(pki: TlsFiles, tmp_path: Path) -> None:
    relay = RelayProcess(tmp_path, "--tls-cert", str(pki.other_host_cert), "--tls-key", str(pki.other_host_key))
    try:
        result = run_cli(
            ["--name", "dana", "--server", relay.address, "--cafile", str(pki.ca)],  # --cafile implies --tls
            tmp_path / "dana",
        )
    finally:
        relay.stop()
    assert result.returncode == 1, result.stderr
    assert CERTIFICATE_REFUSED in result.stderr
    assert "mismatch" in result.stderr and "127.0.0.1" in result.stderr
    assert "Traceback" not in result.stderr


def test_tls_client_against_a_plain_relay_says_so(tmp_path: Path, pki: TlsFiles) -> None:
    relay = RelayProcess(tmp_path)
    try:
        result = run_cli(["--name", "dana", "--server", relay.address, "--cafile", str(pki.ca)], tmp_path / "dana")
    finally:
        relay.stop()
    assert result.returncode == 1
    assert "TLS handshake with the relay" in result.stderr and "serving TLS" in result.stderr
    assert "Traceback" not in result.stderr


def test_bad_tls_files_stop_the_relay_with_a_clear_error(pki: TlsFiles, tmp_path: Path, relay_factory: object) -> None:
    relay = console_script("susurro-relay")
    missing = subprocess.run(
        [*relay, "--port", "0", "--tls-cert", str(tmp_path / "nope.pem")],
        capture_output=True,
        text=True,
        timeout=WAIT,
        check=False,
    )
    assert missing.returncode == 2
    assert "no such file" in missing.stderr and "Traceback" not in missing.stderr
    mismatched = subprocess.run(
        [*relay, "--port", "0", "--tls-cert", str(pki.cert), "--tls-key", str(pki.other_host_key)],
        capture_output=True,
        text=True,
        timeout=WAIT,
        check=False,
    )
    assert mismatched.returncode == 2
    assert "the key must belong to the certificate" in mismatched.stderr
    assert "Traceback" not in mismatched.stderr
    with pytest.raises(TLSConfigError, match="must belong"):  # the same check, in process
        relay_factory(tls_cert=str(pki.cert), tls_key=str(pki.other_host_key))  # type: ignore[operator]


def _join(server: RelayServer, name: str, tls: object) -> tuple[RelayConnection, queue.Queue[object]]:
    events: queue.Queue[object] = queue.Queue()
    session = ClientSession(IdentityKey.generate(), name)
    host, port = server.address
    connection = RelayConnection.open(session, host, port, events, tls=tls)  # type: ignore[arg-type]
    deadline = time.monotonic() + WAIT
    while True:
        event = events.get(timeout=max(0.01, deadline - time.monotonic()))
        if isinstance(event, ev.Connected):
            return connection, events
        assert not isinstance(event, ev.Disconnected), event


def test_a_stalled_handshake_does_not_stall_accepts(pki: TlsFiles, relay_factory: object) -> None:
    server: RelayServer = relay_factory(  # type: ignore[operator]
        tls_cert=str(pki.cert), tls_key=str(pki.key), handshake_timeout=10.0
    )
    host, port = server.address
    # A peer that connects and never says a word of TLS.
    staller = socket.create_connection((host, port), timeout=WAIT)
    try:
        # Meanwhile a real client (the API the GUI uses) connects and joins...
        connection, _ = _join(server, "erin", client_context(str(pki.ca)))
        connection.close()
        # ...while the staller is still connected: its handshake did not block accepts.
        staller.setblocking(False)
        with pytest.raises(BlockingIOError):
            staller.recv(1)
        # The staller is cut once the handshake deadline (counted from connect) passes.
        staller.settimeout(2 * WAIT)
        assert staller.recv(1) == b""
    finally:
        staller.close()


def test_messages_flow_both_ways_over_tls_in_process(pki: TlsFiles, relay_factory: object) -> None:
    server: RelayServer = relay_factory(tls_cert=str(pki.cert), tls_key=str(pki.key))  # type: ignore[operator]
    context = client_context(str(pki.ca))
    fay, fay_events = _join(server, "fay", context)
    gil, gil_events = _join(server, "gil", context)
    try:
        while not (isinstance(event := fay_events.get(timeout=WAIT), ev.Joined) and event.member.name == "gil"):
            assert not isinstance(event, ev.Disconnected), event
        for i in range(20):
            fay.send_message(f"from fay {i}")
            gil.send_message(f"from gil {i}")
        for events, sender in ((gil_events, "fay"), (fay_events, "gil")):
            texts = []
            deadline = time.monotonic() + WAIT
            while len(texts) < 20:
                event = events.get(timeout=max(0.01, deadline - time.monotonic()))
                if isinstance(event, ev.Message):
                    assert event.sender == sender
                    texts.append(event.text)
                assert not isinstance(event, (ev.Disconnected, ev.Warning)), event
            assert texts == [f"from {sender} {i}" for i in range(20)]
    finally:
        fay.close()
        gil.close()


def test_one_address_cannot_hold_every_tls_handshake_slot(pki: TlsFiles, relay_factory: object) -> None:
    server: RelayServer = relay_factory(  # type: ignore[operator]
        tls_cert=str(pki.cert), tls_key=str(pki.key), max_per_ip=2, limit_loopback=True, handshake_timeout=10.0
    )
    host, port = server.address
    stallers = [socket.create_connection((host, port), timeout=WAIT) for _ in range(2)]
    try:
        # A third silent connection from the same address is cut at once, not
        # after the handshake timeout: it never got a handshake slot.
        third = socket.create_connection((host, port), timeout=WAIT)
        with third:
            third.settimeout(WAIT)
            assert third.recv(1) == b""
        for staller in stallers:  # the first two are still waiting for their TLS
            staller.setblocking(False)
            with pytest.raises(BlockingIOError):
                staller.recv(1)
    finally:
        for staller in stallers:
            staller.close()
    # Once they are gone, the address gets its slots back.
    deadline = time.monotonic() + WAIT
    while True:
        try:
            connection, _ = _join(server, "hal", client_context(str(pki.ca)))
            break
        except Exception:
            assert time.monotonic() < deadline
            time.sleep(0.1)
    connection.close()


def test_plain_client_against_a_tls_relay_is_told_to_add_tls(tmp_path: Path, pki: TlsFiles) -> None:
    """A TLS relay waits for a TLS hello the plain client never sends, then hangs up: the client says --tls."""
    relay = RelayProcess(tmp_path, "--tls-cert", str(pki.cert), "--tls-key", str(pki.key), "--handshake-timeout", "1")
    client = CliProcess("ed", tmp_path / "ed", relay.address)
    try:
        client.expect_event("reconnecting")
        deadline = time.monotonic() + WAIT
        while "start with --tls" not in client.stderr() and time.monotonic() < deadline:
            time.sleep(0.05)
        assert "if it serves TLS, start with --tls (or --cafile FILE)" in client.stderr()
        assert client.stderr().count("start with --tls") == 1, "said once, not at every retry"
    finally:
        client.stop()
        relay.stop()
