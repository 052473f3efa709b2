"""One behaviour for every ``RoomStore``: each test runs on SQLite (a real file) and on a real Redis.

The relay's room handling (``relay/rooms.py``) is written against the
interface, so a backend that differs in any of this would change what
members see: a label claimed twice, an append landing on a head that moved,
entries read back altered or out of order, a removed member still listed.
"Two handles" are what two relay processes are: two ``Database`` objects on
one file, or two Redis clients on one server.
"""

from __future__ import annotations

import threading
from collections.abc import Callable

import pytest

from susurro.relay.cluster.connect import open_redis
from susurro.relay.store import HeadMoved, LabelTaken, MemberRecord, RoomStore, StoreError
from susurro.relay.store.redis import RedisRoomStore
from tests.helpers.redis_server import RedisServer
from tests.helpers.stores import StoreBackend
from tests.helpers.system import WAIT

Opener = Callable[[], RoomStore]

ALICE, BOB, CAROL = b"A" * 32, b"B" * 32, b"C" * 32
#: Entries are opaque bytes to the store: every byte value, and a NUL, must come back as stored.
ENTRY0 = bytes(range(256))
ENTRY1, ENTRY2, ENTRY3 = b"\x00entry-1\xff", b"entry-2", b"\x9c" * 1024


@pytest.fixture
def open_store(store_backend: StoreBackend) -> Opener:
    """Call it for a handle on one shared backend (each call: another "relay process")."""
    return store_backend.rooms


@pytest.fixture
def store(open_store: Opener) -> RoomStore:
    return open_store()


def create(
    store: RoomStore,
    room_id: bytes,
    label: str,
    *,
    creator: bytes = ALICE,
    open: bool = False,
    members: tuple[MemberRecord, ...] | None = None,
) -> None:
    store.create_room(
        room_id=room_id,
        label=label,
        label_key=label.casefold(),
        creator=creator,
        open=open,
        entry=ENTRY0,
        members=members if members is not None else (MemberRecord(creator, "alice", True),),
    )


def rid(n: int) -> bytes:
    return bytes([n]) * 32


def test_a_created_room_reads_back_field_for_field(store: RoomStore) -> None:
    create(store, rid(1), "Ops", members=(MemberRecord(ALICE, "alice", True), MemberRecord(BOB, "bob", False)))
    room = store.room(rid(1))
    assert room is not None
    assert (room.room_id, room.label, room.creator, room.open) == (rid(1), "Ops", ALICE, False)
    assert (room.head_seq, room.head_hash, room.members) == (0, rid(1), 2)
    assert store.room_by_label("ops") == room
    assert store.room_by_label("Ops") is None  # looked up by the label key, which the caller computes
    assert store.entries(rid(1), 0, 10) == [ENTRY0]
    assert sorted(store.members(rid(1)), key=lambda m: m.name) == [
        MemberRecord(ALICE, "alice", True),
        MemberRecord(BOB, "bob", False),
    ]
    assert store.was_member(rid(1), BOB) and not store.was_member(rid(1), CAROL)
    assert (store.room_count(), store.rooms_created_by(ALICE), store.rooms_created_by(BOB)) == (1, 1, 0)


def test_unknown_rooms_and_labels_are_none_or_empty(store: RoomStore) -> None:
    assert store.room(rid(9)) is None and store.room_by_label("nowhere") is None
    assert store.entries(rid(9), 0, 10) == [] and store.members(rid(9)) == []
    assert not store.was_member(rid(9), ALICE)
    assert store.rooms_of(ALICE, 10) == [] and store.open_rooms(10) == []
    assert store.room_count() == 0


def test_a_taken_label_key_names_the_room_holding_it(store: RoomStore) -> None:
    create(store, rid(1), "Ops")
    with pytest.raises(LabelTaken) as taken:
        create(store, rid(2), "OPS", creator=BOB)
    assert taken.value.args[0] == "Ops"
    with pytest.raises(LabelTaken):  # the same create entry (room id) again, under another label
        create(store, rid(1), "other")
    assert store.room_count() == 1 and store.room_by_label("other") is None
    assert store.rooms_created_by(BOB) == 0 and store.rooms_of(BOB, 10) == []


def test_append_extends_the_log_and_replaces_the_membership(store: RoomStore) -> None:
    create(store, rid(1), "ops")
    store.append_entries(
        room_id=rid(1),
        expected_seq=0,
        entries=[ENTRY1, ENTRY2],
        head_hash=b"h2",
        open=True,
        members=[MemberRecord(ALICE, "alice", True), MemberRecord(BOB, "bob", True)],
    )
    room = store.room(rid(1))
    assert room is not None and (room.head_seq, room.head_hash, room.open, room.members) == (2, b"h2", True, 2)
    assert store.entries(rid(1), 0, 10) == [ENTRY0, ENTRY1, ENTRY2]
    store.append_entries(
        room_id=rid(1),
        expected_seq=2,
        entries=[ENTRY3],
        head_hash=b"h3",
        open=False,
        members=[MemberRecord(BOB, "bob", True)],
    )
    assert store.members(rid(1)) == [MemberRecord(BOB, "bob", True)]
    assert store.was_member(rid(1), ALICE)  # removed, but may still read the log up to their removal
    assert store.rooms_of(ALICE, 10) == []
    assert [r.label for r in store.rooms_of(BOB, 10)] == ["ops"]
    assert store.open_rooms(10) == []
    assert store.entries(rid(1), 3, 10) == [ENTRY3]


@pytest.mark.parametrize("expected", [0, 2, -1], ids=["behind", "ahead", "nonsense"])
def test_an_append_on_another_head_changes_nothing(store: RoomStore, expected: int) -> None:
    create(store, rid(1), "ops")
    store.append_entries(
        room_id=rid(1),
        expected_seq=0,
        entries=[ENTRY1],
        head_hash=b"h1",
        open=False,
        members=[MemberRecord(ALICE, "a", True)],
    )
    before = (store.room(rid(1)), store.entries(rid(1), 0, 10), store.members(rid(1)))
    with pytest.raises(HeadMoved):
        store.append_entries(
            room_id=rid(1),
            expected_seq=expected,
            entries=[ENTRY2],
            head_hash=b"hx",
            open=True,
            members=[MemberRecord(BOB, "bob", True)],
        )
    assert (store.room(rid(1)), store.entries(rid(1), 0, 10), store.members(rid(1))) == before
    assert store.rooms_of(BOB, 10) == [] and not store.was_member(rid(1), BOB) and store.open_rooms(10) == []


def test_an_append_to_a_room_that_does_not_exist_is_head_moved(store: RoomStore) -> None:
    with pytest.raises(HeadMoved):
        store.append_entries(room_id=rid(5), expected_seq=0, entries=[ENTRY1], head_hash=b"h", open=False, members=[])
    assert store.room(rid(5)) is None and store.entries(rid(5), 0, 10) == []


def test_entries_page_by_sequence_number(store: RoomStore) -> None:
    create(store, rid(1), "ops")
    log = [ENTRY0] + [f"entry {i}".encode() for i in range(1, 40)]
    for seq in range(1, 40):
        store.append_entries(
            room_id=rid(1), expected_seq=seq - 1, entries=[log[seq]], head_hash=b"h", open=False, members=[]
        )
    assert store.entries(rid(1), 0, 1000) == log
    assert store.entries(rid(1), 5, 3) == log[5:8]
    assert store.entries(rid(1), 38, 10) == log[38:]
    assert store.entries(rid(1), 40, 10) == []
    assert store.entries(rid(1), 0, 0) == []


def test_index_queries_sort_by_label_key_and_stop_at_the_limit(store: RoomStore) -> None:
    labels = ["m", "b", "ab", "a", "é", "z"]  # by bytes of the key: a < ab < b < m < z < é
    for i, label in enumerate(labels):
        create(store, rid(i + 1), label, open=label != "m", members=(MemberRecord(ALICE, "alice", True),))
    assert [r.label for r in store.rooms_of(ALICE, 100)] == ["a", "ab", "b", "m", "z", "é"]
    assert [r.label for r in store.rooms_of(ALICE, 2)] == ["a", "ab"]
    assert [r.label for r in store.open_rooms(100)] == ["a", "ab", "b", "z", "é"]
    assert [r.label for r in store.open_rooms(3)] == ["a", "ab", "b"]
    assert store.room_by_label("é") is not None and store.room_count() == 6 and store.rooms_created_by(ALICE) == 6


def test_a_second_handle_sees_everything_the_first_wrote(open_store: Opener) -> None:
    first, second = open_store(), open_store()
    create(first, rid(1), "ops", members=(MemberRecord(ALICE, "alice", True), MemberRecord(BOB, "bob", False)))
    first.append_entries(
        room_id=rid(1),
        expected_seq=0,
        entries=[ENTRY1],
        head_hash=b"h1",
        open=True,
        members=[MemberRecord(BOB, "b", True)],
    )
    assert second.room(rid(1)) == first.room(rid(1))
    assert second.entries(rid(1), 0, 10) == [ENTRY0, ENTRY1]
    assert second.members(rid(1)) == [MemberRecord(BOB, "b", True)]
    assert [r.room_id for r in second.open_rooms(10)] == [rid(1)]
    with pytest.raises(LabelTaken):
        create(second, rid(2), "OPS")
    with pytest.raises(HeadMoved):
        second.append_entries(room_id=rid(1), expected_seq=0, entries=[ENTRY2], head_hash=b"x", open=True, members=[])


def _race(workers: list[Callable[[], None]]) -> list[BaseException | None]:
    """Run every worker at once (released together by a barrier); what each raised, or None."""
    barrier = threading.Barrier(len(workers))
    outcomes: list[BaseException | None] = [None] * len(workers)

    def run(i: int) -> None:
        barrier.wait(WAIT)
        try:
            workers[i]()
        except BaseException as exc:  # recorded and checked by the test
            outcomes[i] = exc

    threads = [threading.Thread(target=run, args=(i,)) for i in range(len(workers))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(WAIT)
    assert not any(thread.is_alive() for thread in threads), "a racing writer did not finish"
    return outcomes


def test_one_label_claimed_from_many_processes_at_once_has_one_owner(open_store: Opener) -> None:
    stores = [open_store() for _ in range(6)]
    for round_ in range(5):
        label = f"race{round_}"
        outcomes = _race(
            [
                (lambda s=s, i=i, r=round_, label=label: create(s, rid(16 * r + i + 1), label, creator=bytes([i]) * 32))
                for i, s in enumerate(stores)
            ]
        )
        winners = [i for i, outcome in enumerate(outcomes) if outcome is None]
        assert len(winners) == 1, outcomes
        assert all(isinstance(o, LabelTaken) and o.args[0] == label for o in outcomes if o is not None), outcomes
        room = stores[0].room_by_label(label)
        assert room is not None and room.room_id == rid(16 * round_ + winners[0] + 1)
    assert stores[0].room_count() == 5


def test_appends_racing_for_one_head_land_exactly_once(open_store: Opener) -> None:
    stores = [open_store() for _ in range(6)]
    create(stores[0], rid(1), "ops")
    for seq in range(5):
        outcomes = _race(
            [
                (
                    lambda s=s, i=i, seq=seq: s.append_entries(
                        room_id=rid(1),
                        expected_seq=seq,
                        entries=[f"by {i} at {seq}".encode()],
                        head_hash=bytes([i]),
                        open=False,
                        members=[MemberRecord(bytes([i]) * 32, f"m{i}", True)],
                    )
                )
                for i, s in enumerate(stores)
            ]
        )
        winners = [i for i, outcome in enumerate(outcomes) if outcome is None]
        assert len(winners) == 1, outcomes
        assert all(isinstance(o, HeadMoved) for o in outcomes if o is not None), outcomes
        (winner,) = winners
        room = stores[1].room(rid(1))
        assert room is not None and (room.head_seq, room.head_hash) == (seq + 1, bytes([winner]))
        assert stores[2].entries(rid(1), seq + 1, 10) == [f"by {winner} at {seq}".encode()]
        assert stores[3].members(rid(1)) == [MemberRecord(bytes([winner]) * 32, f"m{winner}", True)]


# --- Redis only: what an operator's Redis does to the store ----------------------------


def test_redis_down_is_a_store_error_soon_and_the_store_recovers(redis_factory: Callable[..., RedisServer]) -> None:
    """The relay turns ``StoreError`` into a ``room_error`` (internal); a Redis error must never escape as
    another exception type or hang the request, and the same store works again once Redis is back."""
    server = redis_factory(persist=True)
    store = RedisRoomStore(open_redis(server.url, server.password))
    create(store, rid(1), "ops")
    server.stop()
    for call in (
        lambda: store.room(rid(1)),
        lambda: store.rooms_of(ALICE, 10),
        lambda: create(store, rid(2), "other"),
        lambda: store.append_entries(
            room_id=rid(1), expected_seq=0, entries=[ENTRY1], head_hash=b"h", open=False, members=[]
        ),
    ):
        with pytest.raises(StoreError, match="Redis"):
            call()
    server.restart()
    room = store.room(rid(1))
    assert room is not None and room.label == "ops"  # appendonly: the room outlived the restart
    store.append_entries(room_id=rid(1), expected_seq=0, entries=[ENTRY1], head_hash=b"h", open=False, members=[])
    assert store.entries(rid(1), 0, 10) == [ENTRY0, ENTRY1]
    store.close()


def test_two_relays_sharing_one_prefix_see_each_other_and_another_prefix_is_apart(redis_server: RedisServer) -> None:
    node1, node2 = RedisRoomStore(open_redis(redis_server.url)), RedisRoomStore(open_redis(redis_server.url))
    other = RedisRoomStore(open_redis(redis_server.url), prefix="school2:")
    create(node1, rid(1), "ops")
    assert node2.room_by_label("ops") is not None
    assert other.room_by_label("ops") is None and other.room_count() == 0
    create(other, rid(2), "ops")  # another relay's namespace: its own labels
    with redis_server.client() as raw:
        assert all(key.startswith((b"susurro:", b"school2:")) for key in raw.scan_iter())
    for store in (node1, node2, other):
        store.close()
