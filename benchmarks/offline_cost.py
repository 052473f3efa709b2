"""What a message that waits costs next to one delivered online:
``python -m benchmarks.offline_cost``.

- client CPU to seal one copy: online (a cached ``Box``) and waiting (check
  the fetched bundle, four X25519, the key derivation, a SecretBox), and to
  open each;
- bytes on the wire / in the mailbox per copy;
- relay CPU to store one waiting copy in the real SQLite mailbox, and the
  database bytes per stored item;
- the relay's CPU per message through a real ``RelayCore`` and real sessions
  (``mailbox_drain``'s wiring), from ``send`` to the sender holding the
  recipient's receipt: online (routed, acked, receipt) against waiting
  (bundle fetch, post, stored, drained when bob is back, receipt), with the
  online case as the baseline;
- draining a mailbox of 1,000 items: the relay's reads and deletes (pages of
  64, as it serves them) and the client's opening of every envelope.

CPU figures are process CPU time, best of several repeats; the database runs
on a temporary directory with the relay's settings (WAL, ``synchronous=FULL``).
"""

from __future__ import annotations

import argparse
import sqlite3
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from susurro.client import events as ev
from susurro.client.prekeyring import PrekeyRing
from susurro.crypto import BoxCache, IdentityKey, Recipient, SessionKey, open_message
from susurro.crypto.prekeys import PrekeyBundle, check_bundle, seal_to_prekey
from susurro.crypto.seal import message_block, seal_online, sign_message
from susurro.crypto.trust import TrustStore
from susurro.protocol import name_key
from susurro.relay import RelayConfig, RelayCore
from susurro.relay.store.mailbox import MailboxLimits, MailKind, Put, SQLiteMailboxStore
from susurro.relay.store.sqlite import DATABASE_FILE, Database

from .mailbox_drain import pump, session

BODY = "see you at the station at nine, bring the map"
PAGE = 64


def _best(fn: Callable[[], object], loops: int, repeat: int) -> float:
    """Best per-call process CPU seconds of ``fn``."""
    fn()
    best = float("inf")
    for _ in range(repeat):
        start = time.process_time()
        for _ in range(loops):
            fn()
        best = min(best, (time.process_time() - start) / loops)
    return best


def _file_bytes(path: Path) -> int:
    """The database's size once its write-ahead log is folded in (pages in use, not the WAL's length)."""
    db = sqlite3.connect(path)
    try:
        db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        (pages,) = db.execute("PRAGMA page_count").fetchone()
        (free,) = db.execute("PRAGMA freelist_count").fetchone()
        (size,) = db.execute("PRAGMA page_size").fetchone()
        return int((pages - free) * size)
    finally:
        db.close()


@dataclass(frozen=True, slots=True)
class RelayCost:
    """The relay's process CPU per message, from ``send`` to the sender holding the receipt; bytes it keeps."""

    cpu: float
    stored: float


def _relay_cost(count: int, *, waiting: bool, directory: Path) -> RelayCost:
    """Real sessions and a real ``RelayCore`` on a SQLite data dir (``mailbox_drain``'s wiring, no
    sockets). alice sends ``count`` direct messages to bob. Present, each is routed and acked and
    bob's signed receipt comes back through alice's mailbox; away, each takes a bundle fetch (a
    one-time prekey) and a post (stored), and bob then comes back, drains them, and sends his
    receipt. Every frame the relay handles after both joined is timed (bob's return, for the
    waiting case, included), so both columns cover the message's whole way."""
    config = RelayConfig(
        data_dir=str(directory / "relay"), rate_burst=1_000_000, mailbox_messages=count + 10,
        mailbox_per_sender=count + 10, mailbox_prekeys_per_day=count + 10,
    )  # fmt: skip
    core = RelayCore(config)
    now = time.time()
    alice_id, bob_id = IdentityKey.generate(), IdentityKey.generate()
    alice_trust, bob_trust = TrustStore(None, key_of=name_key), TrustStore(None, key_of=name_key)
    alice = session(core, "alice", alice_id, alice_trust, directory / "a.sqlite3")
    bob = session(core, "bob", bob_id, bob_trust, directory / "b.sqlite3")
    pump([alice, bob], now)
    if waiting:
        core.disconnect(bob.conn, "away")
        pump([alice], now)
    database = directory / "relay" / DATABASE_FILE
    size_before = _file_bytes(database)
    spent = [0.0]
    receive = core.receive

    def timed(conn: Any, data: bytes) -> bool:
        start = time.process_time()
        try:
            return receive(conn, data)
        finally:
            spent[0] += time.process_time() - start

    alice.receive = bob.receive = timed
    for n in range(count):
        alice.session.send_message(f"message {n}", now, to=["bob"])
        pump([alice] if waiting else [alice, bob], now)
    stored = (_file_bytes(database) - size_before) / count
    if waiting:
        bob = session(core, "bob", bob_id, bob_trust, directory / "b.sqlite3", bob.session.mailbox)
        bob.receive = timed
        pump([alice, bob], now)
    receipts = sum(len(e.msg_ids) for e in alice.events if isinstance(e, ev.Receipt))
    assert receipts == count, receipts
    return RelayCost(cpu=spent[0] / count, stored=max(0.0, stored))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--quick", action="store_true", help="few loops, 100-item drain (smoke test)")
    args = parser.parse_args(argv)
    loops, repeat, drain = (20, 1, 100) if args.quick else (300, 5, 1_000)
    through = 20 if args.quick else 200

    alice, bob = IdentityKey.generate(), IdentityKey.generate()
    alice_sk, bob_sk = SessionKey.generate(), SessionKey.generate()
    alice_boxes, bob_boxes = BoxCache(alice_sk), BoxCache(bob_sk)
    ring = PrekeyRing(bob)
    signed_prekey = ring.on_join(time.time()).signed
    publication = ring.due(time.time(), 0)
    assert publication is not None and signed_prekey is not None
    one_time = list(publication.one_time)
    signed = sign_message(
        identity=alice, sender="alice", recipients=[("bob", bob.public)], body=BODY, msg_id="m1", sent_at=1
    )
    online_recipient = Recipient(name="bob", identity_key=bob.public, session_key=bob_sk.public, counter=1)

    def seal_online_copy() -> bytes:
        return seal_online(signed, alice_boxes, [online_recipient])["bob"]

    def sign_and_seal_online() -> bytes:
        message = sign_message(
            identity=alice, sender="alice", recipients=[("bob", bob.public)], body=BODY, msg_id="m1", sent_at=1
        )
        return seal_online(message, alice_boxes, [online_recipient])["bob"]

    def sign_and_seal_waiting() -> bytes:
        message = sign_message(
            identity=alice, sender="alice", recipients=[("bob", bob.public)], body=BODY, msg_id="m1", sent_at=1
        )
        bundle = PrekeyBundle(name="bob", identity_key=bob.public, signed=signed_prekey, one_time=one_time[0])
        return seal_to_prekey(alice, check_bundle(bundle, bob.public), message_block(message, 1))

    def seal_waiting_copy() -> bytes:
        bundle = PrekeyBundle(name="bob", identity_key=bob.public, signed=signed_prekey, one_time=one_time[0])
        return seal_to_prekey(alice, check_bundle(bundle, bob.public), message_block(signed, 1))

    online_ct, waiting_ct = seal_online_copy(), seal_waiting_copy()
    spk_only = PrekeyRing(bob)  # opening under the signed prekey only: repeatable (no key used up)
    spk_publication = spk_only.on_join(time.time())
    assert spk_publication.signed is not None
    spk_ct = seal_to_prekey(
        alice,
        check_bundle(
            PrekeyBundle(name="bob", identity_key=bob.public, signed=spk_publication.signed, one_time=None), bob.public
        ),
        message_block(signed, 1),
    )

    def open_online() -> object:
        return open_message(
            boxes=bob_boxes,
            ciphertext=online_ct,
            relay_sender="alice",
            sender_identity_key=alice.public,
            sender_session_key=alice_sk.public,
            own_name="bob",
            own_identity_key=bob.public,
        )

    def open_waiting() -> object:
        return spk_only.open(spk_ct, relay_sender="alice", sender_identity_key=alice.public, own_name="bob")

    seal_on = _best(seal_online_copy, loops, repeat)
    seal_wait = _best(seal_waiting_copy, loops, repeat)
    whole_on = _best(sign_and_seal_online, loops, repeat)
    whole_wait = _best(sign_and_seal_waiting, loops, repeat)
    open_on = _best(open_online, loops, repeat)
    open_wait = _best(open_waiting, loops, repeat)

    with tempfile.TemporaryDirectory() as directory:
        path = Path(directory) / "relay.sqlite3"
        store = SQLiteMailboxStore(Database(path))
        store.limits = MailboxLimits(max_items=drain + 10, max_bytes=1 << 30, max_per_sender=drain + 10)
        size_before = _file_bytes(path)
        cts = [seal_waiting_copy() for _ in range(drain)]
        start_cpu, start_wall = time.process_time(), time.perf_counter()
        for n, ct in enumerate(cts):
            store.put(
                [Put(recipient=bob.public, sender="alice", sender_key=alice.public, msg_id=f"m{n}",
                     kind=MailKind.MESSAGE, ct=ct)],
                now=1.0,
            )  # fmt: skip
        put_cpu = (time.process_time() - start_cpu) / drain
        put_wall = (time.perf_counter() - start_wall) / drain
        stored_bytes = (_file_bytes(path) - size_before) / drain
        start_cpu, start_wall = time.process_time(), time.perf_counter()
        after, drained = 0, 0
        while True:
            items = store.fetch(bob.public, after=after, max_items=PAGE, max_bytes=1 << 20, now=2.0)
            if not items:
                break
            drained += len(items)
            after = items[-1].item
            store.confirm(bob.public, [i.item for i in items])
        relay_drain_cpu, relay_drain_wall = time.process_time() - start_cpu, time.perf_counter() - start_wall
        assert drained == drain
    receiver = PrekeyRing(bob)
    receiver_pub = receiver.on_join(time.time())
    assert receiver_pub.signed is not None
    bundle = check_bundle(
        PrekeyBundle(name="bob", identity_key=bob.public, signed=receiver_pub.signed, one_time=None), bob.public
    )
    envelopes = [seal_to_prekey(alice, bundle, message_block(signed, n + 1)) for n in range(drain)]
    start = time.process_time()
    for envelope in envelopes:
        receiver.open(envelope, relay_sender="alice", sender_identity_key=alice.public, own_name="bob")
    client_drain = time.process_time() - start
    with tempfile.TemporaryDirectory() as directory:
        relay_online = _relay_cost(through, waiting=False, directory=Path(directory) / "online")
        relay_waiting = _relay_cost(through, waiting=True, directory=Path(directory) / "waiting")

    print(f"offline_cost {datetime.now(timezone.utc):%Y-%m-%d %H:%M} UTC, one recipient, body {len(BODY)} bytes")
    print(f"{'':<44}{'online':>12}{'waiting':>12}{'ratio':>8}")
    print(f"{'client CPU, sign + seal a direct message (µs)':<44}{whole_on * 1e6:>12.1f}{whole_wait * 1e6:>12.1f}"
          f"{whole_wait / whole_on:>8.1f}")  # fmt: skip
    print(f"{'client CPU, one more copy of it (µs)':<44}{seal_on * 1e6:>12.1f}{seal_wait * 1e6:>12.1f}"
          f"{seal_wait / seal_on:>8.1f}")  # fmt: skip
    print(f"{'client CPU to open one copy (µs)':<44}{open_on * 1e6:>12.1f}{open_wait * 1e6:>12.1f}"
          f"{open_wait / open_on:>8.1f}")  # fmt: skip
    print(f"{'ciphertext bytes per copy':<44}{len(online_ct):>12}{len(waiting_ct):>12}"
          f"{len(waiting_ct) / len(online_ct):>8.2f}")  # fmt: skip
    print(f"{'relay CPU to store a waiting copy (µs)':<44}{'-':>12}{put_cpu * 1e6:>12.1f}")
    print(f"{'relay wall time to store it (ms, fsync)':<44}{'-':>12}{put_wall * 1e3:>12.2f}")
    print(f"{'relay database bytes per stored copy':<44}{'-':>12}{stored_bytes:>12.0f}")
    print(f"{'relay CPU per message, send to receipt (µs)':<44}{relay_online.cpu * 1e6:>12.1f}"
          f"{relay_waiting.cpu * 1e6:>12.1f}{relay_waiting.cpu / relay_online.cpu:>8.1f}")  # fmt: skip
    print(f"{'relay database bytes per message, held':<44}{relay_online.stored:>12.0f}{relay_waiting.stored:>12.0f}")
    print(
        f"drain {drain:,} waiting items: relay reads+deletes {relay_drain_wall * 1e3:.0f} ms wall "
        f"({relay_drain_cpu * 1e3:.0f} ms CPU, pages of {PAGE}); "
        f"client opens all in {client_drain * 1e3:.0f} ms CPU"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
