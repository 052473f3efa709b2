"""Nothing lost that was called delivered: ``python -m benchmarks.delivery_faults``.

Three fault runs (stop, kill, write failure), with the real programs: a ``susurro-relay``
process on a data dir and two ``susurro-cli --json`` processes, alice and
bob, each with its own ``$SUSURRO_HOME``. alice sends bob direct messages
while bob's process is stopped (SIGSTOP), so his copies pile up in the
relay's queue and the kernel's buffers; then

- ``stop``: the relay evicts bob as a slow reader (a small ``--outbox-bytes``);
- ``kill``: the relay is killed (SIGKILL) and started again on its port and data dir;
- ``write``: bob's socket takes nothing for ``--send-timeout`` seconds and the
  relay gives up on it ("write failed");

and bob is let go on (SIGCONT). Both clients reconnect by themselves. The run
counts, from the clients' own ``--json`` output: messages alice's client
accepted, copies the relay acked as queued for bob, messages bob showed (and
how many twice), alice's receipts, receipts for messages bob never showed
(must be 0), and messages acked as queued that bob never showed (lost after
"queued": clients that did not keep their copies lost 72, 219 and 22). Counts, not times.

It drives the programs with the test suite's process helpers
(``tests/helpers/processes.py``), so run it from a checkout.
"""

from __future__ import annotations

import argparse
import enum
import os
import signal
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tests.helpers.processes import CliProcess, RelayProcess

#: Bytes of filler per message: big copies fill the buffers in fewer messages.
FILLER = 12 * 1024
#: How long each phase may take (seconds); every wait is bounded by one of these.
PHASE = 180.0
#: Messages before the kill: about 40 s of sending, a backlog past the kernel's buffers.
KILL_MESSAGES = 300
#: How long the end of a run waits with nothing new shown or reported before it counts what is missing.
SETTLE = 30.0
#: Messages alice types before waiting for the relay's word on them.
STEP = 10
#: alice types no faster than this (lines a second), under the relay's flood allowance, so that a
#: client that does not pace its sends (older ones did not) is not cut for flooding in the middle.
TYPING_RATE = 8.0


class Fault(str, enum.Enum):
    STOP = "stop"
    KILL = "kill"
    WRITE = "write"


#: Relay flags per run: a small queue for the eviction, a short send timeout for the failed write.
RELAY_FLAGS = {
    Fault.STOP: ("--outbox-bytes", str(64 * 1024)),
    Fault.KILL: ("--outbox-bytes", str(256 * 1024 * 1024)),  # bob's backlog stays queued until the kill
    Fault.WRITE: ("--send-timeout", "3", "--outbox-bytes", str(256 * 1024 * 1024)),
}
#: What the relay's log says when it let go of bob, per run (``kill`` writes nothing).
LEAVE_REASON = {Fault.STOP: "reason=slow_consumer", Fault.WRITE: "reason=write failed"}


@dataclass(frozen=True)
class Outcome:
    fault: Fault
    sent: int
    queued: int
    waiting: int
    not_delivered: int
    shown: int
    shown_twice: int
    receipted: int
    receipted_not_shown: int
    lost_after_queued: int
    lost_unsaid: int

    def row(self) -> str:
        return "| " + " | ".join(str(v.value if isinstance(v, Fault) else v) for v in vars(self).values()) + " |"


HEADER = (
    "| run | sent | acked as queued for bob | left waiting for bob | reported not delivered | shown by bob | "
    "shown twice | receipts | receipts for unshown | queued, never shown | never shown and never said |\n"
    "|---|---|---|---|---|---|---|---|---|---|---|"
)


def _wait(done: Callable[[], bool], what: str, limit: float = PHASE) -> None:
    deadline = time.monotonic() + limit
    while not done():
        if time.monotonic() > deadline:
            raise TimeoutError(f"{what}: not within {limit:g} s")
        time.sleep(0.2)


def _settle(done: Callable[[], bool], progress: Callable[[], object]) -> None:
    """Wait for ``done`` while ``progress()`` keeps changing (resends go out paced), at most ``PHASE``;
    not an error when it does not come: what never settles is what the run counts as lost."""
    deadline = time.monotonic() + PHASE
    seen, moved_at = progress(), time.monotonic()
    while not done() and time.monotonic() < min(deadline, moved_at + SETTLE):
        time.sleep(0.5)
        now_seen = progress()
        if now_seen != seen:
            seen, moved_at = now_seen, time.monotonic()


def _of(client: CliProcess, kind: str) -> list[dict[str, Any]]:
    return [e for e in client.printed() if e.get("event") == kind]


class _Tally:
    """What alice's and bob's ``--json`` output says about alice's messages to bob since the warm-up."""

    def __init__(self, alice: CliProcess, bob: CliProcess, first_sent: int) -> None:
        self.alice, self.bob, self.first_sent = alice, bob, first_sent

    def sent(self) -> list[str]:
        return [e["msg_id"] for e in _of(self.alice, "sent")[self.first_sent :]]

    def reports(self, field: str) -> set[str]:
        def names(event: dict[str, Any]) -> list[str]:
            value = event.get(field, [])
            return [v["name"] if isinstance(v, dict) else v for v in value]

        return {e["msg_id"] for e in _of(self.alice, "delivery") if "bob" in names(e)}

    def shown(self) -> list[str]:
        return [e["msg_id"] for e in _of(self.bob, "message") if e.get("from") == "alice"]

    def receipted(self) -> set[str]:
        return {msg_id for e in _of(self.alice, "receipt") for msg_id in e["msg_ids"]}

    def settled(self) -> bool:
        """Every message shown by bob or reported to alice as not delivered (missing, or refused)."""
        said = self.reports("missing") | self.reports("not_delivered")
        return set(self.sent()) <= set(self.shown()) | said

    def outcome(self, fault: Fault) -> Outcome:
        sent = set(self.sent())
        shown_list = [i for i in self.shown() if i in sent]
        shown = set(shown_list)
        queued = self.reports("delivered") & sent
        said = (self.reports("missing") | self.reports("not_delivered")) & sent
        receipted = self.receipted() & sent
        return Outcome(
            fault=fault,
            sent=len(sent),
            queued=len(queued),
            waiting=len(self.reports("waiting") & sent),
            not_delivered=len(said - shown),
            shown=len(shown),
            shown_twice=len(shown_list) - len(shown),
            receipted=len(receipted),
            receipted_not_shown=len(receipted - shown),
            lost_after_queued=len(queued - shown),
            lost_unsaid=len(sent - shown - said),
        )


def run(fault: Fault, messages: int, workdir: Path) -> Outcome:
    """One run: alice sends at most ``messages`` while bob is stopped, in steps of ``STEP``, and stops once
    the relay has let go of bob."""
    data = workdir / "data"
    relay = RelayProcess(workdir, "--data-dir", str(data), *RELAY_FLAGS[fault])
    port = relay.address.rsplit(":", 1)[1]
    clients: list[CliProcess] = []
    try:
        alice = CliProcess("alice", workdir / "alice", relay.address)
        clients.append(alice)
        alice.expect_event("connected")
        bob = CliProcess("bob", workdir / "bob", relay.address)
        clients.append(bob)
        bob.expect_event("connected")
        alice.expect_event("joined", name="bob")
        # bob confirms what he shows; alice learns that he does from his first receipt.
        alice.type("/msg bob warm-up")
        bob.expect_event("message", text="warm-up")
        alice.expect_event("receipt")
        tally = _Tally(alice, bob, len(_of(alice, "sent")))
        os.kill(bob.proc.pid, signal.SIGSTOP)
        if fault is Fault.KILL:  # all typed well within bob's idle timeout (120 s), so the kill is what loses them
            messages = min(messages, KILL_MESSAGES)
        typed = 0
        while typed < messages and not (fault in LEAVE_REASON and _left(relay, fault)):
            step_started = time.monotonic()
            for _ in range(min(STEP, messages - typed)):
                alice.type(f"/msg bob m{typed:04d} {'x' * FILLER}")
                typed += 1
            # alice's client paces its sends: wait for the relay's word on each before typing more.
            _wait(lambda n=typed: len(tally.sent()) >= n and _answered(alice, tally.sent()), "alice's reports")
            time.sleep(max(0.0, step_started + STEP / TYPING_RATE - time.monotonic()))
        if fault is Fault.KILL:
            relay.proc.kill()  # SIGKILL: no shutdown frame, no flush
            relay.proc.wait(PHASE)
            relay.stop()
            (workdir / "again").mkdir()
            relay = RelayProcess(workdir / "again", "--port", port, "--data-dir", str(data))
        else:
            _wait(lambda: _left(relay, fault), f"the relay letting go of bob ({LEAVE_REASON[fault]})")
        os.kill(bob.proc.pid, signal.SIGCONT)
        progress = lambda: (len(tally.shown()), len(tally.receipted()), len(_of(alice, "delivery")))  # noqa: E731
        _settle(tally.settled, progress)
        _settle(lambda: set(tally.shown()) <= tally.receipted(), progress)
        return tally.outcome(fault)
    finally:
        for client in clients:
            if client.proc.poll() is None:
                os.kill(client.proc.pid, signal.SIGCONT)
            client.stop()
        relay.stop()


def _answered(alice: CliProcess, ids: list[str]) -> bool:
    reported = {e["msg_id"] for e in _of(alice, "delivery")}
    return set(ids) <= reported


def _left(relay: RelayProcess, fault: Fault) -> bool:
    if not relay.log_file.exists():
        return False
    reason = LEAVE_REASON[fault]
    return any(
        line.split(" leave ", 1)[-1].startswith("name=bob ") and reason in line
        for line in relay.log_file.read_text("utf-8", "replace").splitlines()
        if " leave " in line
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--messages", type=int, default=400, help="most messages alice sends while bob is stopped")
    parser.add_argument("--runs", nargs="+", choices=[f.value for f in Fault], default=[f.value for f in Fault])
    args = parser.parse_args(argv)
    print(HEADER)
    failed = False
    for name in args.runs:
        with tempfile.TemporaryDirectory(prefix="susurro-faults-") as tmp:
            outcome = run(Fault(name), args.messages, Path(tmp))
        print(outcome.row(), flush=True)
        failed = failed or bool(outcome.receipted_not_shown or outcome.lost_unsaid)
    return 1 if failed else 0


if __name__ == "__main__":
    raise SystemExit(main())
