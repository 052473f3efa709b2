"""``--status-port``: counts and uptime for monitoring, never names."""

from __future__ import annotations

import json
import queue
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest

from susurro.client import events as ev
from susurro.client.connection import RelayConnection
from susurro.client.session import ClientSession
from susurro.crypto import IdentityKey
from susurro.relay import RelayServer
from susurro.relay.status import StatusServer
from tests.helpers.processes import WAIT, CliProcess, RelayProcess


def get(url: str) -> tuple[int, dict[str, object]]:
    try:
        with urllib.request.urlopen(url, timeout=WAIT) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read())


def wait_for(url: str, predicate: object) -> dict[str, object]:
    deadline = time.monotonic() + WAIT
    while True:
        _, body = get(url)
        if predicate(body):  # type: ignore[operator]
            return body
        assert time.monotonic() < deadline, f"status never matched; last {body}"
        time.sleep(0.05)


def join(server: RelayServer, name: str) -> RelayConnection:
    events: queue.Queue[object] = queue.Queue()
    host, port = server.address
    connection = RelayConnection.open(ClientSession(IdentityKey.generate(), name), host, port, events)
    while not isinstance(event := events.get(timeout=WAIT), ev.Connected):
        assert not isinstance(event, ev.Disconnected), event
    return connection


def test_status_counts_members_without_naming_them(relay_factory: object) -> None:
    server: RelayServer = relay_factory()  # type: ignore[operator]
    status = StatusServer("127.0.0.1", 0, lambda: (server.core.connection_count, len(server.core.roster)), tls=False)
    host, port = status.start()
    url = f"http://{host}:{port}/status"
    try:
        first = wait_for(url, lambda b: b["members"] == 0)
        assert first == {"status": "ok", "uptime_seconds": first["uptime_seconds"], "connections": 0,
                         "members": 0, "tls": False}  # fmt: skip
        ivy = join(server, "ivy")
        jon = join(server, "jon")
        body = wait_for(url, lambda b: b["members"] == 2)
        assert body["connections"] == 2
        raw = urllib.request.urlopen(url, timeout=WAIT).read()
        assert b"ivy" not in raw and b"jon" not in raw and b"127.0.0.1" not in raw
        jon.close()
        wait_for(url, lambda b: b["members"] == 1 and b["connections"] == 1)
        ivy.close()
        assert get(f"http://{host}:{port}/")[0] == 200
        code, error = get(f"http://{host}:{port}/roster")
        assert code == 404 and "not found" in str(error["error"])
    finally:
        status.stop()


def test_status_port_is_off_by_default_and_on_loopback_when_asked(tmp_path: Path) -> None:
    for sub in ("off", "on"):
        (tmp_path / sub).mkdir()
    quiet = RelayProcess(tmp_path / "off")
    quiet.stop()
    assert not any(line.startswith("status on") for line in quiet.stdout_lines)

    relay = RelayProcess(tmp_path / "on", "--status-port", "0")
    try:
        client = CliProcess("kim", tmp_path / "kim", relay.address)
        try:
            client.expect_event("connected")
            assert relay.proc.stdout is not None
            line = relay.proc.stdout.readline().decode()
            assert line.startswith("status on http://127.0.0.1:"), line  # loopback unless told otherwise
            body = wait_for(line.removeprefix("status on ").strip(), lambda b: b["members"] == 1)
            assert body["status"] == "ok" and isinstance(body["uptime_seconds"], int)
        finally:
            client.stop()
    finally:
        relay.stop()


@pytest.mark.parametrize("path", ["/status", "/"])
def test_head_requests_answer_without_a_body(relay_factory: object, path: str) -> None:
    server: RelayServer = relay_factory()  # type: ignore[operator]
    status = StatusServer("127.0.0.1", 0, lambda: (server.core.connection_count, len(server.core.roster)), tls=True)
    host, port = status.start()
    try:
        request = urllib.request.Request(f"http://{host}:{port}{path}", method="HEAD")
        with urllib.request.urlopen(request, timeout=WAIT) as response:
            assert response.status == 200 and response.read() == b""
    finally:
        status.stop()
