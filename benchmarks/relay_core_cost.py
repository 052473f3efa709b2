"""The relay's CPU per routed message, without sockets: ``python -m benchmarks.relay_core_cost``.

A real ``RelayCore`` (N members joined with real signed hellos) is fed
valid ``send`` frames, one ciphertext per other member, through
``RelayCore.receive_frames``, exactly as an I/O loop hands them over (one
frame per call, or ``--run K``: K at once, as a busy relay reads them); each
member has a real ``Outbox``, corked in the thread's batch as in an I/O
loop and flushed every ``CORKED_FRAMES`` frames to a stand-in socket that
takes every byte (no kernel). The relay's logging runs as
the ``susurro-relay`` command sets it up (INFO, through the queue to a file
and to a discarded stderr), so its listener thread's work is counted too.
Process CPU time (all threads) per message and per delivery: what the
routing, validation, encoding and log lines cost, and none of the kernel's
socket work, which ``relay_load`` measures with the rest.

``--tree PATH`` imports ``susurro`` from another checkout (say, an older
commit unpacked with ``git archive``), so two versions can be compared in
one sitting on the same machine.
"""

from __future__ import annotations

import argparse
import importlib
import os
import sys
import tempfile
import time
from collections.abc import Callable
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

#: The sealed size of a short chat line (the relay cannot tell a real one).
CT_BYTES = 296
#: Distinct senders whose frames are fed in turn.
SENDERS = 10
#: Frames handed over between two flushes of the batch: about what one 1 ms
#: cork (``loop.WRITE_CORK``) gathers when N = 10 saturates the relay.
CORKED_FRAMES = 16


class Wire:
    """The socket end of each member's real ``Outbox``: keeps the first writes (the handshake),
    takes every byte at once and counts them; no kernel, so what is measured is the relay's Python."""

    def __init__(self) -> None:
        self.first: list[bytes] = []
        self.sent = 0

    def send(self, data: bytes) -> int:
        if len(self.first) < 2:
            self.first.append(bytes(data))
        self.sent += len(data)
        return len(data)


def _import_tree(tree: str | None) -> None:
    if tree is None:
        return
    root = str(Path(tree).resolve())
    sys.path.insert(0, root)
    for name in [m for m in sys.modules if m == "susurro" or m.startswith("susurro.")]:
        del sys.modules[name]
    importlib.invalidate_caches()
    import susurro

    if not str(Path(susurro.__path__[0]).resolve()).startswith(root):
        raise SystemExit(f"--tree {tree}: susurro was imported from {susurro.__path__[0]}")


def measure(members: int, messages: int, drain: Callable[[], object], run: int = 1) -> tuple[float, int]:
    """(CPU seconds per message, deliveries per message) for a room of ``members``.

    ``drain`` waits until the log listener has written every line so far, so
    the lines of the timed messages are paid for inside the timing. ``run``
    frames from one sender are handed over per call, as a busy relay reads
    them; the offers are corked in the thread's batch, as in an I/O loop, and
    flushed every ``CORKED_FRAMES`` frames.
    """
    from susurro.crypto import IdentityKey, SessionCertificate, SessionKey, join_proof
    from susurro.protocol import RELAY_FRAMES, Challenge, Hello, Send, decode_frame, encode
    from susurro.protocol.limits import ABSOLUTE_MAX_FRAME
    from susurro.relay import RelayConfig, RelayCore
    from susurro.relay.budget import Meter
    from susurro.relay.outbox import Batch, Outbox, use_batch

    config = RelayConfig(max_recipients=1024, rate_per_second=0, max_clients=members + 10)
    core = RelayCore(config)
    conns: list[Any] = []
    issued = int(time.time())
    batch = Batch(Meter())
    use_batch(batch)
    for i in range(members):
        wire = Wire()
        outbox = Outbox(1 << 30, wire.send)
        conn = core.connect(outbox, f"127.0.0.1:{20000 + i}", "127.0.0.1")
        assert conn is not None
        challenge = decode_frame(wire.first[0][4:], RELAY_FRAMES)
        assert isinstance(challenge, Challenge)
        identity, session, name = IdentityKey.generate(), SessionKey.generate(), f"m{i}"
        cert = SessionCertificate.issue(identity, name, session.public, issued)
        hello = Hello(
            name=name,
            ik=identity.public,
            sk=session.public,
            cert=cert.signature,
            issued_at=issued,
            proof=join_proof(identity, challenge.nonce, name, session.public),
        )
        assert core.receive(conn, encode(hello))
        conns.append(conn)
    ciphertext = os.urandom(CT_BYTES)
    frames = []
    for i in range(min(members, SENDERS)):
        to = {f"m{j}": ciphertext for j in range(members) if j != i}
        frames.append(encode(Send(id=f"b{i}", to=to), max_frame=ABSOLUTE_MAX_FRAME) * run)
    calls = max(1, messages // run)
    # As the I/O loop hands whole frames over (``receive`` in a tree from before it had one).
    receive = getattr(core, "receive_frames", core.receive)
    drain()
    started = time.process_time()
    batch.active = True
    for k in range(calls):
        i = k % len(frames)
        receive(conns[i], frames[i])
        if (k + 1) * run % CORKED_FRAMES < run:
            batch.flush()
            batch.active = True
    batch.flush()
    drain()
    spent = time.process_time() - started
    return spent / (calls * run), members - 1  # every other member is sent a copy


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.relay_core_cost", description=__doc__)
    parser.add_argument("--clients", default="10,100,500,1000", help="room sizes (default 10,100,500,1000)")
    parser.add_argument("--deliveries", type=int, default=400_000, help="deliveries per room size (default 400,000)")
    parser.add_argument("--quick", action="store_true", help="a few seconds: N=10 and 100, 20,000 deliveries")
    parser.add_argument("--tree", help="import susurro from this checkout instead")
    parser.add_argument(
        "--run", type=int, default=1, help="frames per call, as one read of a busy relay holds (default 1)"
    )
    args = parser.parse_args(argv)
    sizes = [10, 100] if args.quick else [int(x) for x in args.clients.split(",") if x.strip()]
    deliveries = 20_000 if args.quick else args.deliveries
    if any(n < 2 for n in sizes):
        parser.error("every N must be at least 2")
    _import_tree(args.tree)
    from susurro.relay.logsetup import configure_logging

    with tempfile.TemporaryDirectory() as logdir, open(os.devnull, "w") as discard:
        real_stderr, sys.stderr = sys.stderr, discard  # the relay's stderr lines: written, not shown
        setup = configure_logging("INFO", str(Path(logdir) / "relay.log"))
        try:
            results = [(n, *measure(n, max(20, deliveries // (n - 1)), setup.drain, args.run)) for n in sizes]
        finally:
            setup.stop()
            sys.stderr = real_stderr
    print(
        f"# relay_core_cost {datetime.now(timezone.utc):%Y-%m-%d %H:%M} UTC, tree {args.tree or 'this checkout'}, "
        f"{args.run} frame(s) per call"
    )
    print(f"{'N':>6} {'µs CPU / message':>17} {'µs CPU / delivery':>18}")
    for n, per_message, copies in results:
        print(f"{n:>6} {per_message * 1e6:>17.1f} {per_message * 1e6 / max(1, copies):>18.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
