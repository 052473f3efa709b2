"""Mailboxes and prekeys, one contract for every backend: each test runs on a real SQLite
file (relay/store/mailbox.py) and on a real Redis (relay/store/redis_mailbox.py).

The clock is passed in (no sleeping); "restart" is closing every handle and,
for Redis, restarting redis-server on its append-only file
(``tests/helpers/stores.py``). Two handles are two relay processes.
"""

from __future__ import annotations

import dataclasses
import threading
from pathlib import Path

import pytest

from susurro.relay.store.mailbox import (
    RECEIPT_RESERVE_DIVISOR,
    MailboxLimits,
    MailboxStore,
    MailKind,
    PrekeyStore,
    Put,
    Refusal,
    Refused,
    SQLitePrekeyStore,
    Stored,
    StoredOneTimePrekey,
    StoredSignedPrekey,
    TooManyPrekeys,
)
from susurro.relay.store.sqlite import Database
from tests.helpers.stores import StoreBackend

BOB, CAROL = b"B" * 32, b"C" * 32
ALICE, MALLORY = b"A" * 32, b"M" * 32
DAY = 86_400.0


def put(recipient: bytes = BOB, sender_key: bytes = ALICE, n: int = 0, size: int = 300) -> Put:
    sender = {ALICE: "alice", MALLORY: "mallory"}.get(sender_key, "x")
    return Put(
        recipient=recipient,
        sender=sender,
        sender_key=sender_key,
        msg_id=f"m{n}",
        kind=MailKind.MESSAGE,
        ct=bytes([n % 256]) * size,
    )


def fetch_all(store: MailboxStore, recipient: bytes = BOB, now: float = 0.0) -> list[str]:
    return [i.msg_id for i in store.fetch(recipient, after=0, max_items=10_000, max_bytes=1 << 30, now=now)]


def test_items_come_out_in_order_and_survive_a_restart(store_backend: StoreBackend) -> None:
    store = store_backend.mailboxes()
    results = store.put([put(n=n) for n in range(5)], now=100.0)
    assert all(isinstance(r, Stored) for r in results)
    store_backend.restart()
    again = store_backend.mailboxes()
    assert fetch_all(again, now=200.0) == [f"m{n}" for n in range(5)]
    items = again.fetch(BOB, after=0, max_items=10, max_bytes=1 << 20, now=200.0)
    assert items[0].sender == "alice" and items[0].ct == bytes(300) and items[0].kind is MailKind.MESSAGE


def test_an_item_is_deleted_only_when_its_owner_confirms_it(store_backend: StoreBackend) -> None:
    store = store_backend.mailboxes()
    (bob_item,) = store.put([put(BOB, n=1)], now=0.0)
    (carol_item,) = store.put([put(CAROL, n=2)], now=0.0)
    assert isinstance(bob_item, Stored) and isinstance(carol_item, Stored)
    assert store.confirm(BOB, [carol_item.item]) == 0  # bob cannot delete carol's mail
    assert fetch_all(store, CAROL) == ["m2"]
    assert fetch_all(store, BOB) == ["m1"]  # not confirmed yet: served again
    assert store.confirm(BOB, [bob_item.item]) == 1
    assert fetch_all(store, BOB) == []


def test_a_full_mailbox_refuses_new_items_and_keeps_the_old_ones(store_backend: StoreBackend) -> None:
    store = store_backend.mailboxes(MailboxLimits(max_items=3, max_per_sender=10))
    results = store.put([put(n=n) for n in range(5)], now=0.0)
    assert [type(r) for r in results] == [Stored, Stored, Stored, Refused, Refused]
    assert results[3] == Refused(Refusal.MAILBOX_FULL)
    assert fetch_all(store) == ["m0", "m1", "m2"]


def test_the_byte_bound_counts_ciphertext_bytes(store_backend: StoreBackend) -> None:
    store = store_backend.mailboxes(MailboxLimits(max_bytes=1000, max_per_sender=10))
    results = store.put([put(n=n, size=400) for n in range(3)], now=0.0)
    assert [type(r) for r in results] == [Stored, Stored, Refused]
    assert store.usage(BOB) == (2, 800)


def test_one_sender_cannot_fill_a_mailbox_for_everyone_else(store_backend: StoreBackend) -> None:
    store = store_backend.mailboxes(MailboxLimits(max_items=10, max_per_sender=4))
    flood = store.put([put(sender_key=MALLORY, n=n) for n in range(10)], now=0.0)
    assert sum(isinstance(r, Stored) for r in flood) == 4
    assert flood[4] == Refused(Refusal.SENDER_QUOTA)
    assert all(isinstance(r, Stored) for r in store.put([put(n=n) for n in range(4)], now=0.0))


def test_the_last_twentieth_of_a_mailbox_is_for_receipts(store_backend: StoreBackend) -> None:
    # Messages from many senders fill a mailbox; the owner's receipts still have a place. Run once with the
    # reserve taken out (caps the same for both kinds): the first receipt was mailbox_full.
    store = store_backend.mailboxes(MailboxLimits(max_items=40, max_bytes=40_000, max_per_sender=10))
    flood = store.put([put(sender_key=bytes([k]) * 32, n=n) for k in range(5) for n in range(10)], now=0.0)
    assert sum(isinstance(r, Stored) for r in flood) == 40 - 40 // RECEIPT_RESERVE_DIVISOR
    assert flood[-1] == Refused(Refusal.MAILBOX_FULL)
    receipts = [dataclasses.replace(put(sender_key=bytes([9]) * 32, n=n), kind=MailKind.RECEIPT) for n in range(3)]
    assert [type(r) for r in store.put(receipts, now=0.0)] == [Stored, Stored, Refused]  # the reserve, no more
    assert store.usage(BOB)[0] == 40
    bytes_full = store_backend.mailboxes(MailboxLimits(max_items=1000, max_bytes=2_000, max_per_sender=100))
    assert [type(r) for r in bytes_full.put([put(CAROL, n=n, size=500) for n in range(4)], now=0.0)] == [
        Stored,
        Stored,
        Stored,
        Refused,  # 1,900 bytes for messages: the fourth would be 2,000
    ]
    receipt = dataclasses.replace(put(CAROL, n=9, size=100), kind=MailKind.RECEIPT)
    assert isinstance(bytes_full.put([receipt], now=0.0)[0], Stored)


def test_items_expire_after_the_ttl(store_backend: StoreBackend) -> None:
    store = store_backend.mailboxes(MailboxLimits(ttl=14 * DAY))
    store.put([put(n=1)], now=0.0)
    store.put([put(n=2)], now=10 * DAY)
    assert fetch_all(store, now=13 * DAY) == ["m1", "m2"]
    assert fetch_all(store, now=14 * DAY + 1) == ["m2"]  # hidden at once, deleted at the next write
    assert store.expire(now=14 * DAY + 1) == 1
    assert store.usage(BOB) == (1, 300)


def test_fetch_pages_by_count_and_bytes_but_always_makes_progress(store_backend: StoreBackend) -> None:
    store = store_backend.mailboxes()
    store.put([put(n=n, size=1000) for n in range(10)], now=0.0)
    first = store.fetch(BOB, after=0, max_items=4, max_bytes=1 << 20, now=0.0)
    assert [i.msg_id for i in first] == ["m0", "m1", "m2", "m3"]
    by_bytes = store.fetch(BOB, after=first[-1].item, max_items=100, max_bytes=2500, now=0.0)
    assert [i.msg_id for i in by_bytes] == ["m4", "m5"]
    one = store.fetch(BOB, after=0, max_items=100, max_bytes=10, now=0.0)  # an item larger than the page
    assert len(one) == 1


# --- prekeys ---------------------------------------------------------------------------


SIGNED = StoredSignedPrekey(key_id=1, public=b"s" * 32, created_at=5, signature=b"g" * 64)


#: The stores' clock in these tests (seconds), and when their one-time prekeys expire unless told.
NOW = 1_800_000_000.0
EXPIRES = int(NOW) + 30 * 86_400


def one_time(first: int, count: int, expires_at: int = EXPIRES) -> list[StoredOneTimePrekey]:
    return [
        StoredOneTimePrekey(key_id=k, public=k.to_bytes(32, "big"), expires_at=expires_at, signature=b"o" * 64)
        for k in range(first, first + count)
    ]


def publish(store: PrekeyStore, keys: list[StoredOneTimePrekey], identity: bytes = BOB, now: float = NOW) -> int:
    return store.publish(name="bob", identity_key=identity, signed=SIGNED, one_time=keys, now=now)


def test_each_one_time_prekey_is_handed_out_once_then_the_signed_prekey_alone(store_backend: StoreBackend) -> None:
    store = store_backend.prekeys()
    assert publish(store, one_time(1, 100)) == 100
    handed = []
    for expected_remaining in range(99, -1, -1):
        bundle = store.take_bundle(BOB, now=NOW)
        assert bundle is not None and bundle.one_time is not None and bundle.remaining == expected_remaining
        handed.append(bundle.one_time.key_id)
    assert sorted(handed) == list(range(1, 101))
    drained = store.take_bundle(BOB, now=NOW)
    assert drained is not None and drained.one_time is None and drained.signed == SIGNED
    assert store.take_bundle(MALLORY, now=NOW) is None


def test_ten_thousand_prekeys_are_refused_whole(store_backend: StoreBackend) -> None:
    store = store_backend.prekeys()
    with pytest.raises(TooManyPrekeys):
        publish(store, one_time(1, 10_000))
    assert store.one_time_count(BOB, now=NOW) == 0
    assert publish(store, one_time(1, 95)) == 95
    with pytest.raises(TooManyPrekeys):
        publish(store, one_time(1000, 6))  # 95 + 6 > 100: nothing of it is stored
    assert publish(store, one_time(1000, 5)) == 100
    assert publish(store, one_time(1, 10)) == 100  # the same keys again are not new ones


def test_prekeys_survive_a_restart(store_backend: StoreBackend) -> None:
    publish(store_backend.prekeys(), one_time(1, 3))
    store_backend.restart()
    store = store_backend.prekeys()
    assert store.mailbox_owner(BOB) == "bob"
    assert store.one_time_count(BOB, now=NOW) == 3


def test_two_relays_on_one_backend_never_hand_out_the_same_one_time_prekey(store_backend: StoreBackend) -> None:
    publish(store_backend.prekeys(), one_time(1, 100))
    stores = [store_backend.prekeys() for _ in range(4)]
    handed: list[int] = []
    lock = threading.Lock()

    def drain(store: PrekeyStore) -> None:
        for _ in range(40):
            bundle = store.take_bundle(BOB, now=NOW)
            if bundle is not None and bundle.one_time is not None:
                with lock:
                    handed.append(bundle.one_time.key_id)

    threads = [threading.Thread(target=drain, args=(store,)) for store in stores]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
    assert sorted(handed) == list(range(1, 101))


def test_two_identities_under_one_name_each_keep_their_own_prekeys(store_backend: StoreBackend) -> None:
    # Bundles are found by identity key: someone else publishing under bob's
    # name (a relay without --registry) does not take over bob's prekeys.
    store = store_backend.prekeys()
    publish(store, one_time(1, 3))
    publish(store, one_time(1, 2), identity=MALLORY)
    assert store.mailbox_owner(BOB) == "bob" and store.mailbox_owner(MALLORY) == "bob"
    bundle = store.take_bundle(BOB, now=NOW)
    assert bundle is not None and bundle.identity_key == BOB and bundle.remaining == 2
    assert store.one_time_count(MALLORY, now=NOW) == 2


def test_an_identity_without_prekeys_has_no_mailbox(store_backend: StoreBackend) -> None:
    store = store_backend.prekeys()
    assert store.mailbox_owner(BOB) is None
    assert store.take_bundle(BOB, now=NOW) is None


# --- both backends, several relays at once ---------------------------------------------------


def test_relays_storing_for_one_mailbox_at_once_never_pass_its_bounds(store_backend: StoreBackend) -> None:
    limits = MailboxLimits(max_items=25, max_per_sender=10)
    stores = [store_backend.mailboxes(limits) for _ in range(4)]
    senders = [bytes([65 + i]) * 32 for i in range(4)]
    results: list[list[Stored | Refused]] = [[] for _ in stores]
    barrier = threading.Barrier(len(stores))

    def flood(i: int) -> None:
        barrier.wait(30)
        for n in range(20):
            results[i] += stores[i].put([put(sender_key=senders[i], n=100 * i + n, size=10)], now=0.0)

    threads = [threading.Thread(target=flood, args=(i,)) for i in range(len(stores))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
    stored = [sum(isinstance(r, Stored) for r in mine) for mine in results]
    fits, _ = limits.caps(MailKind.MESSAGE)  # 24: the last item is the receipts' reserve
    assert sum(stored) == fits and all(count <= 10 for count in stored), stored
    assert stores[0].usage(BOB) == (fits, 10 * fits)
    numbers = [r.item for mine in results for r in mine if isinstance(r, Stored)]
    assert len(set(numbers)) == fits  # every item its own number
    fetched = stores[1].fetch(BOB, after=0, max_items=100, max_bytes=1 << 20, now=0.0)
    assert [i.item for i in fetched] == sorted(numbers)


def test_a_page_skips_expired_items_and_still_fills(store_backend: StoreBackend) -> None:
    store = store_backend.mailboxes(MailboxLimits(ttl=DAY, max_per_sender=100))
    store.put([put(n=n) for n in range(6)], now=0.0)
    store.put([put(n=n) for n in range(6, 9)], now=DAY)
    page = store.fetch(BOB, after=0, max_items=2, max_bytes=1 << 20, now=1.5 * DAY)
    assert [i.msg_id for i in page] == ["m6", "m7"]


def test_a_confirm_counts_once(store_backend: StoreBackend) -> None:
    first, second = store_backend.mailboxes(), store_backend.mailboxes()
    (item,) = first.put([put(n=1)], now=0.0)
    assert isinstance(item, Stored)
    assert first.confirm(BOB, [item.item, item.item]) == 1
    assert second.confirm(BOB, [item.item]) == 0
    assert second.usage(BOB) == (0, 0)


def test_a_schema_1_database_keeps_its_prekeys_found_by_identity_key(tmp_path: Path) -> None:
    # A relay upgraded in place: its prekeys were stored by name (schema 1).
    database = Database(tmp_path / "relay.sqlite3")
    database.migrate("prekeys", 1, _SCHEMA_1)
    with database.transaction() as db:
        db.execute("INSERT INTO prekey_owners VALUES ('bob', 'Bob', ?, 1.0)", (BOB,))
        db.execute("INSERT INTO signed_prekeys VALUES (?, 1, ?, 5, ?)", (BOB, SIGNED.public, SIGNED.signature))
        db.execute("INSERT INTO one_time_prekeys VALUES (?, 7, ?, ?)", (BOB, b"o" * 32, b"g" * 64))
    store = SQLitePrekeyStore(database)
    assert store.mailbox_owner(BOB) == "Bob"
    bundle = store.take_bundle(BOB, now=NOW)
    assert bundle is not None and bundle.name == "Bob" and bundle.signed == SIGNED
    # Its one-time prekeys were signed without an expiry, which no sender takes now: gone, and
    # their owner, told it holds none, publishes new ones.
    assert bundle.one_time is None and store.one_time_count(BOB, now=NOW) == 0
    assert publish(store, one_time(1, 3)) == 3
    database.close()


def test_expired_one_time_prekeys_are_never_handed_out_nor_counted(store_backend: StoreBackend) -> None:
    store = store_backend.prekeys()
    assert publish(store, one_time(1, 3, expires_at=int(NOW) + 10) + one_time(4, 2, expires_at=int(NOW) + 5)) == 5
    bundle = store.take_bundle(BOB, now=NOW)
    assert bundle is not None and bundle.one_time is not None and bundle.one_time.key_id == 4  # expires first
    assert bundle.one_time.expires_at == int(NOW) + 5
    assert store.one_time_count(BOB, now=NOW + 5) == 3  # key 5 expired at NOW + 5
    bundle = store.take_bundle(BOB, now=NOW + 10)  # and keys 1 to 3 at NOW + 10
    assert bundle is not None and bundle.one_time is None and bundle.remaining == 0
    assert publish(store, one_time(1, 3), now=NOW + 10) == 3  # they no longer count against the bound
    assert publish(store, one_time(9, 2, expires_at=int(NOW)), now=NOW + 10) == 3  # already expired: not kept


_SCHEMA_1 = (
    "CREATE TABLE prekey_owners (name_key TEXT PRIMARY KEY, name TEXT NOT NULL, identity_key BLOB NOT NULL, "
    "updated_at REAL NOT NULL)",
    "CREATE INDEX prekey_owners_by_identity ON prekey_owners (identity_key)",
    "CREATE TABLE signed_prekeys (identity_key BLOB PRIMARY KEY, key_id INTEGER NOT NULL, public BLOB NOT NULL, "
    "created_at INTEGER NOT NULL, signature BLOB NOT NULL)",
    "CREATE TABLE one_time_prekeys (identity_key BLOB NOT NULL, key_id INTEGER NOT NULL, public BLOB NOT NULL, "
    "signature BLOB NOT NULL, PRIMARY KEY (identity_key, key_id)) WITHOUT ROWID",
)
