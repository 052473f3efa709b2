"""Trust from the terminal: safety numbers, /verified, a changed key, /accept.

Real ``susurro-cli --json`` processes, each with its own SUSURRO_HOME (its own
trust file), on an in-process relay bound to an ephemeral loopback port.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from susurro.relay import RelayServer
from tests.helpers.processes import CliProcess


def address(server: RelayServer) -> str:
    host, port = server.address
    return f"{host}:{port}"


@pytest.mark.timeout(90)
def test_verify_then_a_changed_key_is_blocked_until_accepted(
    relay_server: RelayServer, cli_clients: list[CliProcess], tmp_path: Path
) -> None:
    alice = CliProcess("alice", tmp_path / "alice", address(relay_server))
    cli_clients.append(alice)
    alice.expect_event("connected", name="alice")
    bob = CliProcess("bob", tmp_path / "bob", address(relay_server))
    cli_clients.append(bob)
    bob.expect_event("connected", name="bob")
    assert alice.expect_event("joined", name="bob")["trust"] == "new"

    # Both sides print the same safety number; alice marks bob verified.
    alice.type("/verify bob")
    bob.type("/verify alice")
    number = alice.expect_event("safety_number", name="bob")["number"]
    assert bob.expect_event("safety_number", name="alice")["number"] == number
    assert len(number.split(" ")) == 12
    alice.type("/verified bob")
    alice.expect_event("trust", name="bob", trust="verified")
    bob.type("signed by the verified bob")
    assert alice.expect_event("message", text="signed by the verified bob")["trust"] == "verified"

    # The pin is on disk: it survives alice's restart.
    trust_file = json.loads((tmp_path / "alice" / "trust.json").read_text("utf-8"))
    assert [c["name"] for c in trust_file["contacts"] if c["verified"]] == ["bob"]

    # bob comes back with a different identity key (a new device, or a relay lie).
    bob.type("/quit")
    assert bob.wait() == 0
    alice.expect_event("left", name="bob")
    new_bob = CliProcess("bob", tmp_path / "bob-laptop", address(relay_server))
    cli_clients.append(new_bob)
    new_bob.expect_event("connected", name="bob")
    assert alice.expect_event("joined", name="bob")["trust"] == "changed"
    warning = alice.expect_event("warning", kind="key_changed")
    assert warning["old_fingerprint"] != warning["new_fingerprint"]

    alice.type("/msg bob only for the real bob")
    refusal = alice.expect_event("warning", kind="send_failed")
    assert "/accept bob" in refusal["detail"]
    alice.type("/accept bob")
    alice.expect_event("trust", name="bob", trust="pinned")
    alice.type("/msg bob accepted now")
    assert new_bob.expect_event("message", text="accepted now")["from"] == "alice"


@pytest.mark.timeout(60)
def test_strict_mode_lists_unverified_members_as_skipped(
    relay_server: RelayServer, cli_clients: list[CliProcess], tmp_path: Path
) -> None:
    alice = CliProcess("alice", tmp_path / "alice", address(relay_server))
    cli_clients.append(alice)
    alice.expect_event("connected", name="alice")
    for name in ("bob", "carol"):
        other = CliProcess(name, tmp_path / name, address(relay_server))
        cli_clients.append(other)
        other.expect_event("connected", name=name)
        alice.expect_event("joined", name=name)
    bob, carol = cli_clients[1], cli_clients[2]
    alice.type("/strict on")
    alice.expect_event("strict", on=True)
    alice.type("/verified carol")  # without comparing first: refused
    assert "/verify carol" in alice.expect_event("warning", kind="trust_failed")["detail"]
    alice.type("/verify carol")
    alice.expect_event("safety_number", name="carol")
    alice.type("/verified carol")
    alice.expect_event("trust", name="carol", trust="verified")
    alice.type("for verified eyes")
    sent = alice.expect_event("sent")
    assert (sent["to"], sent["skipped"]) == (["carol"], ["bob"])
    delivery = alice.expect_event("delivery", delivered=["carol"])
    assert delivery["skipped"] == ["bob"]
    assert carol.expect_event("message", text="for verified eyes")["from"] == "alice"
    # bob's ack for his own message is queued after anything alice sent him, so
    # once it is read every earlier event of bob's is in ``bob.events``.
    bob.type("ping")
    carol.expect_event("message", text="ping")
    bob.expect_event("delivery")
    assert not [e for e in bob.events if e.get("event") == "message" and e.get("text") == "for verified eyes"]
