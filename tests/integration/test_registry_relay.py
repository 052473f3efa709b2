"""``susurro-relay --registry``: a real relay on an ephemeral port remembers who owns each name."""

from __future__ import annotations

import json
import subprocess
import threading
from pathlib import Path
from typing import Any

import pytest

from susurro.crypto import IdentityKey
from susurro.protocol import Welcome
from susurro.relay import RelayServer
from tests.helpers.hostile_client import connect
from tests.helpers.processes import WAIT, CliProcess, RelayProcess, console_script
from tests.helpers.system import wait_until


def join_with(server: RelayServer, name: str, identity: IdentityKey) -> Any:
    """Join ``name`` with ``identity``; returns the Welcome or the Error frame, closing the connection.

    Returns once the relay has seen the close too: a name is free only after its holder left, and
    on a loaded machine the next join could otherwise reach the relay before the close does.
    """
    before = server.core.connection_count
    with connect(server, timeout=WAIT) as client:
        client.send_frame(client.make_hello(name, identity=identity))
        answer = client.recv_frame()
    wait_until(lambda: server.core.connection_count <= before, f"the relay saw {name}'s connection close")
    return answer


@pytest.fixture
def registry_relays(tmp_path: Path, relay_factory: Any) -> tuple[Any, Path]:
    """A function starting relays that share one registry file, and that file."""
    path = tmp_path / "names.json"
    # The joins here are not about the handshake timeout: leave it far above what a loaded machine takes.
    return (lambda: relay_factory(registry=str(path), handshake_timeout=4 * WAIT)), path


def test_a_name_stays_with_its_key_across_a_restart(registry_relays: Any) -> None:
    start, path = registry_relays
    alice, mallory = IdentityKey.generate(), IdentityKey.generate()
    first = start()
    assert isinstance(join_with(first, "alice", alice), Welcome)
    first.stop()
    assert json.loads(path.read_text("utf-8"))["names"][0]["name"] == "alice"

    second = start()  # same file, fresh process state; alice is offline
    refused = join_with(second, "alice", mallory)
    assert refused.TYPE == "error" and refused.code == "name_taken"
    assert "registered on this relay to another identity key" in refused.detail
    lookalike = join_with(second, "Alice", mallory)
    assert lookalike.code == "name_taken" and "it looks like 'alice'" in lookalike.detail
    assert isinstance(join_with(second, "alice", alice), Welcome)  # the owner still joins


def test_without_a_registry_a_name_is_free_once_its_holder_leaves(relay_server: RelayServer) -> None:
    # The behaviour --registry changes: this is what a relay without it allows.
    assert isinstance(join_with(relay_server, "alice", IdentityKey.generate()), Welcome)
    assert isinstance(join_with(relay_server, "alice", IdentityKey.generate()), Welcome)


def test_the_owner_is_present_while_an_impostor_tries(registry_relays: Any) -> None:
    start, _ = registry_relays
    server = start()
    owner = IdentityKey.generate()
    with connect(server, timeout=WAIT) as present:
        present.send_frame(present.make_hello("bea", identity=owner))
        assert isinstance(present.expect_frame(Welcome), Welcome)
        refused = join_with(server, "bea", IdentityKey.generate())
        assert refused.code == "name_taken" and "registered" in refused.detail
        present.ping()  # the owner's connection is untouched


def test_concurrent_joins_register_every_name_and_one_owner_per_name(registry_relays: Any) -> None:
    start, path = registry_relays
    server = start()
    names = [f"crowd{i}" for i in range(12)]
    rivals = [IdentityKey.generate() for _ in range(8)]
    joins = [(name, IdentityKey.generate()) for name in names] + [("zed", key) for key in rivals]
    clients = [connect(server, timeout=WAIT) for _ in joins]
    outcomes: list[str] = ["none"] * len(joins)
    barrier = threading.Barrier(len(joins))

    def join(index: int) -> None:
        client = clients[index]
        name, identity = joins[index]
        hello = client.make_hello(name, identity=identity)
        barrier.wait(timeout=WAIT)
        client.send_frame(hello)
        frame = client.recv_frame()  # welcome or error comes first: nobody else's joined precedes it
        outcomes[index] = "welcome" if isinstance(frame, Welcome) else frame.code

    threads = [threading.Thread(target=join, args=(i,)) for i in range(len(joins))]
    try:
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=WAIT * 4)
    finally:
        for client in clients:  # welcomed clients stayed connected until every answer was in
            client.close()
    wait_until(lambda: server.core.connection_count == 0, "the relay saw every join's connection close")
    assert outcomes[: len(names)] == ["welcome"] * len(names), outcomes
    assert sorted(outcomes[len(names) :]) == ["name_taken"] * (len(rivals) - 1) + ["welcome"], outcomes
    registered = {entry["name"] for entry in json.loads(path.read_text("utf-8"))["names"]}
    assert registered == {*names, "zed"}
    # Everyone has left; the rival that won still owns "zed" and the others still cannot have it.
    winner = rivals[outcomes[len(names) :].index("welcome")]
    for identity in rivals:
        assert isinstance(join_with(server, "zed", identity), Welcome) == (identity is winner)


def test_relay_refuses_to_start_with_a_corrupt_registry(tmp_path: Path) -> None:
    path = tmp_path / "names.json"
    path.write_text('{"format": "susurro-registry", "version": 1, "names": [{"name": "x"}]}', encoding="utf-8")
    result = subprocess.run(
        [*console_script("susurro-relay"), "--port", "0", "--registry", str(path)],
        capture_output=True,
        text=True,
        timeout=WAIT,
        check=False,
    )
    assert result.returncode == 2
    assert result.stderr.startswith(f"susurro-relay: name registry {path} is corrupt: entry 0")
    assert "Traceback" not in result.stderr
    assert "listening" not in result.stdout


def test_susurro_relay_registry_flag_with_real_clients(tmp_path: Path) -> None:
    path = tmp_path / "names.json"
    relay = RelayProcess(tmp_path, "--registry", str(path))
    clients: list[CliProcess] = []
    try:
        first = CliProcess("gwen", tmp_path / "owner", relay.address)
        clients.append(first)
        first.expect_event("connected", name="gwen")
        first.type("/quit")
        assert first.wait() == 0
        impostor = CliProcess("gwen", tmp_path / "impostor", relay.address)  # another home: another key
        clients.append(impostor)
        refused = impostor.expect_event("disconnected")
        assert refused["code"] == "name_taken" and "registered on this relay" in refused["reason"]
        assert impostor.wait() == 1
    finally:
        for client in clients:
            client.stop()
        assert relay.stop() == 0
    log = relay.all_output()
    assert "register name=gwen" in log
    assert "reject" in log and "code=name_taken" in log
    assert [entry["name"] for entry in json.loads(path.read_text("utf-8"))["names"]] == ["gwen"]
