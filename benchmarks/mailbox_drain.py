"""A mailbox of waiting messages drained end to end: ``python -m benchmarks.mailbox_drain``.

Real ``ClientSession`` objects and a real ``RelayCore`` on a temporary SQLite
data dir, wired in memory (no sockets, so this is the relay's and the
clients' work, not the network's): alice leaves ``--messages`` direct
messages for bob while he is away (each sealed to a prekey bundle fetched and
checked, posted, stored), then bob joins and drains them, opening each,
keeping it in his encrypted history and confirming it, while alice receives
his signed receipts. Wall-clock times, one run.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from datetime import datetime, timezone
from pathlib import Path

from susurro.client import events as ev
from susurro.client.history import SqliteHistory
from susurro.client.mailbox import Mailbox
from susurro.client.session import ClientSession
from susurro.crypto import IdentityKey, ReplayGuard
from susurro.crypto.history import HistoryKey
from susurro.crypto.trust import TrustStore
from susurro.protocol import name_key
from susurro.relay import RelayConfig, RelayCore


class _Client:
    def __init__(self, core: RelayCore, session: ClientSession) -> None:
        self.core, self.session = core, session
        # What hands the relay this client's bytes: offline_cost times it (a compiled RelayCore's
        # methods cannot be replaced on the instance).
        self.receive = core.receive
        self.outbox: list[bytes] = []
        conn = core.connect(self, "memory:bench")
        assert conn is not None
        self.conn = conn
        self.events: list[ev.Event] = []

    def offer(self, data: bytes, tag: object = None) -> bool:  # the relay's outbox for this connection
        self.outbox.append(data)
        return True

    def step(self, now: float) -> bool:
        moved = False
        if self.outbox:
            data, self.outbox = b"".join(self.outbox), []
            self.events += self.session.receive_data(data, now)
            moved = True
        out = self.session.data_to_send()
        if out:
            self.receive(self.conn, out)
            moved = True
        return moved


def pump(clients: list[_Client], now: float) -> None:
    while any([c.step(now) for c in clients]):
        pass


def session(core: RelayCore, name: str, identity: IdentityKey, trust: TrustStore, history: Path,
            mailbox: Mailbox | None = None) -> _Client:  # fmt: skip
    """A client; pass the ``mailbox`` of an earlier session to come back with the same prekeys."""
    replay = mailbox.replay if mailbox is not None else ReplayGuard()
    return _Client(
        core,
        ClientSession(
            identity, name, relay="memory", trust=trust, replay=replay,
            mailbox=mailbox or Mailbox(identity, name, trust, replay),
            history=SqliteHistory(history, HistoryKey.derive(identity)),
        ),
    )  # fmt: skip


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--messages", type=int, default=1_000)
    parser.add_argument("--quick", action="store_true", help="50 messages (smoke test)")
    args = parser.parse_args(argv)
    count = 50 if args.quick else args.messages
    alice_id, bob_id = IdentityKey.generate(), IdentityKey.generate()
    alice_trust, bob_trust = TrustStore(None, key_of=name_key), TrustStore(None, key_of=name_key)
    with tempfile.TemporaryDirectory() as directory:
        base = Path(directory)
        # One sender leaves them all: its per-sender and per-connection shares and its daily
        # share of bob's one-time prekeys are raised to fit (as --mailbox-per-sender and
        # --mailbox-prekeys-per-day would), so every copy uses a one-time prekey.
        config = RelayConfig(data_dir=str(base / "relay"), rate_burst=1_000_000, mailbox_messages=count + 10,
                             mailbox_per_sender=count + 10, mailbox_prekeys_per_day=count + 10)  # fmt: skip
        core = RelayCore(config)
        now = time.time()  # wall time: waiting messages carry it signed, and bob checks their age
        alice = session(core, "alice", alice_id, alice_trust, base / "a.sqlite3")
        bob = session(core, "bob", bob_id, bob_trust, base / "b.sqlite3")
        pump([alice, bob], now)
        core.disconnect(bob.conn, "away")
        pump([alice], now)
        start = time.perf_counter()
        for n in range(count):
            alice.session.send_message(f"waiting message {n}", now, to=["bob"])
            pump([alice], now)
        leave = time.perf_counter() - start
        waiting = sum(len(e.waiting) for e in alice.events if isinstance(e, ev.Delivery))
        assert waiting == count, waiting
        start = time.perf_counter()
        bob = session(core, "bob", bob_id, bob_trust, base / "b.sqlite3", bob.session.mailbox)
        pump([alice, bob], now)
        drain = time.perf_counter() - start
        shown = sum(isinstance(e, ev.Message) for e in bob.events)
        receipts = sum(len(e.msg_ids) for e in alice.events if isinstance(e, ev.Receipt))
        assert shown == count, shown
        stored = core.mailbox.mailboxes.usage(bob_id.public)
    print(f"mailbox_drain {datetime.now(timezone.utc):%Y-%m-%d %H:%M} UTC, {count:,} direct messages, no sockets")
    each = leave / count * 1e3
    print(f"leave {count:,} waiting messages (fetch bundle, seal, post, store): {leave:.2f} s ({each:.2f} ms each)")
    print(f"bob joins and drains them (open, history, confirm, receipts): {drain:.2f} s ({count / drain:,.0f} msg/s)")
    print(f"shown {shown:,}, receipts for {receipts:,} at alice, left in the mailbox {stored[0]}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
