"""Relay configuration as an operator meets it: SUSURRO_RELAY_* variables with
flag > env > default, clear errors for bad values, public binds and the
addresses the relay tells users."""

from __future__ import annotations

import argparse
import logging
import os
import socket
import subprocess
from pathlib import Path

import pytest

from susurro.relay.addresses import announce
from susurro.relay.cli import build_parser
from susurro.relay.environment import apply_environment, variable_for
from susurro.relay.tls import client_flags, server_context
from tests.helpers.certs import make_pki, needs_openssl
from tests.helpers.processes import WAIT, RelayProcess, _readline_with_timeout, console_script


def parse(environ: dict[str, str], *argv: str) -> argparse.Namespace:
    parser = build_parser()
    apply_environment(parser, environ)
    return parser.parse_args(list(argv))


def test_flag_beats_environment_beats_default() -> None:
    assert parse({}).max_clients == 1000
    assert parse({"SUSURRO_RELAY_MAX_CLIENTS": "7"}).max_clients == 7
    assert parse({"SUSURRO_RELAY_MAX_CLIENTS": "7"}, "--max-clients", "9").max_clients == 9
    assert parse({"SUSURRO_RELAY_HANDSHAKE_TIMEOUT": "2.5"}).handshake_timeout == 2.5
    assert parse({"SUSURRO_RELAY_TLS_CERT": "/etc/x.pem"}).tls_cert == "/etc/x.pem"
    assert parse({"SUSURRO_RELAY_LOG_LEVEL": "DEBUG"}).log_level == "DEBUG"


@pytest.mark.parametrize(
    ("value", "expected"), [("1", True), ("yes", True), ("ON", True), ("0", False), ("off", False)]
)
def test_on_off_flags_read_the_usual_words(value: str, expected: bool) -> None:
    assert parse({"SUSURRO_RELAY_LOG_CIPHERTEXT": value}).log_ciphertext is expected


def test_an_on_off_flag_given_on_the_command_line_wins() -> None:
    assert parse({"SUSURRO_RELAY_LOG_CIPHERTEXT": "off"}, "--log-ciphertext").log_ciphertext is True


def test_empty_variable_counts_as_unset() -> None:
    assert parse({"SUSURRO_RELAY_PORT": ""}).port == 12345


def test_every_flag_has_a_variable_including_ones_added_later() -> None:
    parser = build_parser()
    parser.add_argument("--future-knob", type=float, default=60.0)  # as another engineer would
    apply_environment(parser, {"SUSURRO_RELAY_FUTURE_KNOB": "5"})
    assert parser.parse_args([]).future_knob == 5.0
    names = {variable_for(a) for a in parser._actions if a.option_strings and a.dest != "help"}
    for flag in ("--host", "--port", "--tls-cert", "--tls-key", "--status-port", "--log-file", "--max-clients"):
        assert "SUSURRO_RELAY_" + flag[2:].upper().replace("-", "_") in names


def test_a_one_time_action_has_no_variable_in_help() -> None:
    parser = build_parser()
    apply_environment(parser, {})
    from susurro.relay.environment import document_environment

    document_environment(parser)
    text = " ".join(parser.format_help().split())  # argparse wraps long help lines
    assert "--import-sqlite" in text
    assert "SUSURRO_RELAY_IMPORT_SQLITE" not in text
    assert "[env SUSURRO_RELAY_MAX_CLIENTS]" in text


def run_relay(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*console_script("susurro-relay"), *args],
        env={**os.environ, **env},
        capture_output=True,
        text=True,
        timeout=WAIT,
        check=False,
    )


@pytest.mark.parametrize(
    ("env", "says"),
    [
        ({"SUSURRO_RELAY_MAX_CLIENTS": "lots"}, "SUSURRO_RELAY_MAX_CLIENTS='lots': 'lots' is not a whole number"),
        ({"SUSURRO_RELAY_PORT": "70000"}, "SUSURRO_RELAY_PORT='70000': 70000 is out of range"),
        ({"SUSURRO_RELAY_HANDSHAKE_TIMEOUT": "soon"}, "SUSURRO_RELAY_HANDSHAKE_TIMEOUT='soon': not a valid float"),
        ({"SUSURRO_RELAY_LOG_LEVEL": "LOUD"}, "SUSURRO_RELAY_LOG_LEVEL='LOUD': expected one of DEBUG"),
        ({"SUSURRO_RELAY_LOG_CIPHERTEXT": "maybe"}, "SUSURRO_RELAY_LOG_CIPHERTEXT='maybe': expected one of"),
        ({"SUSURRO_RELAY_MAX_CLIENT": "5"}, "unknown environment variable SUSURRO_RELAY_MAX_CLIENT"),
        (
            {"SUSURRO_RELAY_IMPORT_SQLITE": "/var/lib/susurro"},
            "SUSURRO_RELAY_IMPORT_SQLITE is not read: --import-sqlite is a one-time action",
        ),
    ],
)
def test_bad_environment_values_are_refused_clearly(env: dict[str, str], says: str) -> None:
    result = run_relay(env, "--port", "0")
    assert result.returncode == 2
    assert says in result.stderr
    assert "Traceback" not in result.stderr


def test_environment_configures_a_running_relay(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SUSURRO_RELAY_MAX_CLIENTS", "3")
    monkeypatch.setenv("SUSURRO_RELAY_PORT", "1")  # RelayProcess passes --port 0, which wins
    relay = RelayProcess(tmp_path)
    relay.stop()
    assert "max_clients=3" in relay.all_output()
    assert not relay.address.endswith(":1")


class Lines(logging.Handler):
    def __init__(self) -> None:
        super().__init__()
        self.lines: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append(f"{record.levelname} {record.getMessage()}")


def _announce(host: str, tls: bool) -> tuple[list[str], list[str]]:
    said: list[str] = []
    log = logging.getLogger(f"test.announce.{host}.{tls}")
    handler = Lines()
    log.addHandler(handler)
    log.propagate = False
    announce(host, 12345, tls, said.append, log)
    return said, handler.lines


def test_public_bind_without_tls_warns_and_names_addresses() -> None:
    said, logged = _announce("0.0.0.0", tls=False)
    assert said and all(line.startswith("users connect with: susurro-cli --server ") for line in said)
    assert not any("0.0.0.0" in line for line in said)  # a bind address is not a connect address
    assert len(logged) == 1 and logged[0].startswith("WARNING plaintext-bind addr=0.0.0.0:12345")
    assert "--tls-cert" in logged[0]


def test_public_bind_with_tls_does_not_warn() -> None:
    said, logged = _announce("::", tls=True)
    assert logged == []
    assert any("--tls" in line for line in said)
    assert said[-1] == "with --tls, users must give the host name on the relay's certificate"


def test_loopback_bind_says_only_this_machine() -> None:
    said, logged = _announce("127.0.0.1", tls=False)
    assert said == ["only this machine can connect: susurro-cli --server 127.0.0.1:12345"]
    assert logged == []


def test_relay_bound_to_all_interfaces_serves_ipv4_and_ipv6_loopback(tmp_path: Path) -> None:
    relay = RelayProcess(tmp_path, "--host", "::")
    try:
        assert relay.address.startswith("[::]:")
        assert relay.proc.stdout is not None
        line = _readline_with_timeout(relay.proc.stdout, WAIT)  # announced once the addresses are found
        assert line.startswith("users connect with: susurro-cli --server "), line
        port = int(relay.address.rsplit(":", 1)[1])
        for family, host in ((socket.AF_INET, "127.0.0.1"), (socket.AF_INET6, "::1")):
            with socket.socket(family, socket.SOCK_STREAM) as sock:
                sock.settimeout(WAIT)
                try:
                    sock.connect((host, port))
                except OSError as exc:  # e.g. no IPv6 on this machine
                    pytest.skip(f"cannot reach {host}: {exc}")
                assert len(sock.recv(4)) == 4  # the challenge's length prefix
    finally:
        relay.stop()
    assert "WARNING plaintext-bind" in relay.all_output()


@needs_openssl
def test_startup_line_says_cafile_for_a_certificate_the_system_does_not_trust(tmp_path: Path) -> None:
    """A relay whose certificate comes from a private authority must not tell users just --tls (it fails)."""
    pki = make_pki(tmp_path)
    flags = client_flags(server_context(str(pki.cert), str(pki.key)), str(pki.cert))
    assert flags == " --cafile CA-CERT.pem"
    said: list[str] = []
    announce("127.0.0.1", 12345, True, said.append, logging.getLogger("test.announce.cafile"), flags)
    assert said == [
        "only this machine can connect: susurro-cli --server 127.0.0.1:12345 --cafile CA-CERT.pem",
    ]
    # Self-signed: the certificate is its own authority, so that very file is what users pass.
    assert pki.ca.exists()
    ca_key = tmp_path / "ca.key"
    flags = client_flags(server_context(str(pki.ca), str(ca_key)), str(pki.ca))
    assert flags == f" --cafile {pki.ca}"
