"""Quitting with a message no receipt has confirmed, through the real programs.

alice's message to bob is queued by the relay, but bob's process is stopped
and then killed before reading it. alice's ``/quit`` says so (an
``unconfirmed`` warning naming it), keeps it in her sealed state file, and her
next start sends it again to bob's new session, which shows it and confirms
it. Real relay process, real ``susurro-cli --json`` processes.
"""

from __future__ import annotations

import os
import signal
from pathlib import Path

from tests.helpers.processes import CliProcess, RelayProcess


def test_quitting_says_what_is_unconfirmed_and_the_next_start_sends_it_again(
    tmp_path: Path, cli_clients: list[CliProcess]
) -> None:
    relay = RelayProcess(tmp_path, "--data-dir", str(tmp_path / "data"))

    def start(name: str) -> CliProcess:
        client = CliProcess(name, tmp_path / name, relay.address)
        cli_clients.append(client)
        client.expect_event("connected")
        return client

    try:
        alice = start("alice")
        bob = start("bob")
        alice.expect_event("joined", name="bob")
        alice.type("/msg bob warm-up")  # bob confirms what he shows; alice learns that he does
        alice.expect_event("sent")
        bob.expect_event("message", text="warm-up")
        alice.expect_event("receipt")
        os.kill(bob.proc.pid, signal.SIGSTOP)
        alice.type("/msg bob said while you were frozen")
        msg_id = alice.expect_event("sent")["msg_id"]
        alice.expect(
            lambda e: e["event"] == "delivery" and e["msg_id"] == msg_id and e["delivered"] == ["bob"], "queued"
        )
        alice.type("/quit")
        warning = alice.expect(lambda e: e["event"] == "warning" and e["kind"] == "unconfirmed", "the unconfirmed one")
        assert msg_id in warning["detail"] and "bob" in warning["detail"] and "said while" in warning["detail"]
        assert alice.wait() == 0
        bob.proc.kill()  # SIGKILL reaches a stopped process: what it had not read is gone with it
        bob.wait()
        bob = start("bob")
        alice = start("alice")
        shown = bob.expect_event("message", text="said while you were frozen")
        assert shown["msg_id"] == msg_id
        alice.expect(lambda e: e["event"] == "receipt" and msg_id in e["msg_ids"], "bob's receipt for it")
        alice.type("/quit")
        assert alice.wait() == 0
        assert not [e for e in alice.events if e.get("kind") == "unconfirmed"], "confirmed: nothing left to say"
    finally:
        relay.stop()
