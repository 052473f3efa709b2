"""Two real relays (``RelayServer`` with ``cluster=``, real sockets) sharing one real ``redis-server``:
alice on node 1, bob and carol on node 2, as raw protocol clients so every frame is checked.

Waits are on frames, bounded (a presence refresh is every 3 s, so a member on the other node is
seen within a few seconds); nothing asserts on time."""

from __future__ import annotations

import io
import logging
import math
import queue
import secrets
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from susurro.client import cli, render
from susurro.client import events as ev
from susurro.client.connection import RelayConnection
from susurro.client.prekeyring import PrekeyRing, Publication
from susurro.client.prekeywire import prekeys_frame
from susurro.client.reconnect import Backoff
from susurro.client.session import ClientSession
from susurro.crypto import IdentityKey
from susurro.crypto.prekeys import ONE_TIME_PREKEY_LOW_WATER
from susurro.crypto.trust import TrustStore
from susurro.protocol import (
    Ack,
    BundleFetch,
    Bundles,
    Deliver,
    Dropped,
    DropReason,
    ErrorCode,
    Frame,
    Joined,
    Left,
    MailEnd,
    Member,
    PrekeysHeld,
    Welcome,
    name_key,
)
from susurro.relay import RelayConfig, RelayServer
from susurro.relay.cluster.node import RemoteJoined
from susurro.relay.cluster.presence import REFRESH_INTERVAL, PresenceError
from susurro.relay.core import Connection
from tests.helpers.hostile_client import Closed, HostileClient, NoFrame, connect, joined_client
from tests.helpers.redis_server import RedisServer
from tests.helpers.system import arrivals, wait_until

#: Seconds to see a member of the other node come or go (refresh every 3 s; TTL 10 s), with slack for 2 loaded cores.
CROSS_NODE_WAIT = 30.0
#: Seconds for a held ack: the report timeout is 10 s.
ACK_WAIT = 30.0


@pytest.fixture
def cluster(redis_server: RedisServer) -> Iterator[Callable[..., RelayServer]]:
    """``cluster(**overrides)`` starts one more node on the shared Redis; all are stopped at teardown."""
    started: list[RelayServer] = []

    def node(**overrides: object) -> RelayServer:
        settings: dict[str, object] = {"host": "127.0.0.1", "port": 0, "handshake_timeout": 5.0, **overrides}
        server = RelayServer(RelayConfig(**settings, cluster=redis_server.url))  # type: ignore[arg-type]
        server.start()
        started.append(server)
        return server

    try:
        yield node
    finally:
        for server in started:
            server.stop()


def member(server: RelayServer, name: str) -> HostileClient:
    client = joined_client(server, name)
    client.timeout = CROSS_NODE_WAIT
    return client


def wait_joined(client: HostileClient, *names: str) -> None:
    """``client`` sees each of ``names`` join (in any order), skipping other roster noise."""
    waiting = set(names)
    while waiting:
        frame = client.expect_frame(Joined, skip=("left",))
        assert isinstance(frame, Joined)
        waiting.discard(frame.member.name)


def next_of(client: HostileClient, kind: type, skip: tuple[str, ...] = ("joined", "left")) -> object:
    frame = client.expect_frame(kind, skip=skip)
    assert isinstance(frame, kind)
    return frame


def next_ack(client: HostileClient, drops: list[Dropped]) -> Ack:
    """The next ``ack``, keeping any ``dropped`` that comes before it in ``drops``."""
    while True:
        frame = client.recv_frame()  # bounded by the client's timeout
        if isinstance(frame, Ack):
            return frame
        if isinstance(frame, Dropped):
            drops.append(frame)
        elif frame.TYPE not in ("joined", "left"):
            raise AssertionError(f"expected an 'ack' or a 'dropped' frame, got {frame!r}")


def routes(server: RelayServer, name: str, where: RelayServer) -> bool:
    """``server`` routes a send to ``name`` on ``where``: its view of the cluster's presence puts ``name``
    there, and its roster holds the stand-in (both: the roster lags the view by the cluster thread's handling
    of one poll's events, so a stand-in about to be removed as left still answers the roster alone)."""
    assert server.cluster is not None and where.cluster is not None
    node = where.cluster.node.node
    found, _ = server.core.roster.lookup([name])
    return server.cluster.node.where(name) == node and bool(found) and found[0][2].node == node


def test_members_of_two_nodes_see_each_other_and_a_send_is_reported_exactly(
    cluster: Callable[..., RelayServer],
) -> None:
    node1, node2 = cluster(), cluster()
    with member(node1, "alice") as alice, member(node2, "bob") as bob, member(node2, "carol") as carol:
        wait_joined(alice, "bob", "carol")
        wait_joined(bob, "alice")
        # Someone joining later learns of everyone, on both nodes, in its welcome.
        with connect(node1) as dave:
            welcome = dave.join("dave")
            assert isinstance(welcome, Welcome)
            assert {m.name for m in welcome.roster} == {"alice", "bob", "carol"}
        alice.send_message("m1", {"bob": b"ct for bob", "carol": b"ct for carol", "zed": b"ct for no one"})
        ack = next_of(alice, Ack)
        assert isinstance(ack, Ack)
        assert sorted(ack.delivered) == ["bob", "carol"] and ack.missing == ("zed",)
        for who, ct in ((bob, b"ct for bob"), (carol, b"ct for carol")):
            deliver = next_of(who, Deliver)
            assert isinstance(deliver, Deliver) and (deliver.sender, deliver.id, deliver.ct) == ("alice", "m1", ct)
        # And back, a direct message from node 2 to node 1.
        bob.send_message("m2", {"alice": b"ct for alice"})
        ack = next_of(bob, Ack)
        assert isinstance(ack, Ack) and ack.delivered == ("alice",) and ack.missing == ()
        deliver = next_of(alice, Deliver)
        assert isinstance(deliver, Deliver) and (deliver.sender, deliver.ct) == ("bob", b"ct for alice")


def test_a_name_held_on_one_node_cannot_be_taken_on_the_other(cluster: Callable[..., RelayServer]) -> None:
    node1, node2 = cluster(), cluster()
    with member(node2, "bob"), connect(node1) as impostor:
        impostor.send_frame(impostor.make_hello("bob"))
        error = impostor.expect_error("name_taken")
        assert "another relay" in error.detail


def test_a_second_session_of_one_identity_key_is_refused_on_the_other_node_before_it_polls(
    cluster: Callable[..., RelayServer],
) -> None:
    """One session per identity key in the whole cluster: node 1 refuses alice's key under another name
    while her session is on node 2, at once, before node 1 has seen her arrive (its stand-in would
    refuse it only after a presence poll, and a stand-in refused here was skipped: both stayed)."""
    node1, node2 = cluster(), cluster()
    with member(node2, "alice") as alice, connect(node1) as laptop:
        assert alice.identity is not None
        laptop.send_frame(laptop.make_hello("alice-laptop", identity=alice.identity))
        error = laptop.expect_error("identity_in_use")
        assert "one at a time" in error.detail
        alice.ping()  # the session present keeps its connection


def test_a_key_that_left_one_node_joins_the_other_under_another_name_at_once(
    cluster: Callable[..., RelayServer], redis_server: RedisServer
) -> None:
    """alice leaves node 2 and her key comes back on node 1 as alice-laptop before node 1 has polled:
    Redis gave the key, so the stand-in node 1 still has for alice is stale, and must not refuse her."""
    node1, node2 = cluster(), cluster()
    with member(node1, "bob") as bob:
        first = member(node2, "alice")
        wait_joined(bob, "alice")  # node 1 holds a stand-in for her key
        assert first.identity is not None
        identity = first.identity
        first.close()  # node 2 frees her claims at once; node 1 hears of it at its next poll (3 s)
        claim = b"susurro:identity:" + identity.public.hex().encode()
        with redis_server.client() as raw:
            wait_until(lambda: not raw.exists(claim), "node 2 to free her key's claim")
        with connect(node1) as laptop:
            laptop.send_frame(laptop.make_hello("alice-laptop", identity=identity))
            welcome = laptop.expect_frame(Welcome, skip=("joined", "left"))
            assert isinstance(welcome, Welcome) and welcome.name == "alice-laptop"


class _RosterSeen:
    """The core's roster as the router sees it, with its ``join`` replaced (the roster is compiled)."""

    def __init__(self, real: Any, join: Callable[..., None]) -> None:
        self._real, self.join = real, join

    def __getattr__(self, name: str) -> Any:
        return getattr(self._real, name)

    def __len__(self) -> int:
        return len(self._real)


class _CoreSeen:
    """The core as the router sees it, with that roster."""

    def __init__(self, real: Any, roster: _RosterSeen) -> None:
        self._real, self.roster = real, roster

    def __getattr__(self, name: str) -> Any:
        return getattr(self._real, name)


def test_a_stand_in_swept_by_an_admit_before_it_joined_the_roster_leaves_it_at_once(
    cluster: Callable[..., RelayServer], redis_server: RedisServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    """review-s9-fixes 3: node 1's cluster thread records a stand-in for bob (on node 2) and, before it joins
    the roster, bob moves: his hello on node 1 wins the claim and the admit sweeps the stand-in (not joined
    yet, so nothing leaves the roster); the stand-in then joins, and bob's own join meets it: name_taken. The
    stand-in stayed in the roster with no record of it, which no RemoteLeft could remove: a ghost bob on
    node 1, and his name refused there until a restart. Now the cluster thread finds it swept after its join
    and takes it out at once, so bob's join goes through. The threads are held to exactly that order: the
    stand-in's join waits for the sweep, and the admit returns once the announcement is handled."""
    node1, node2 = cluster(), cluster()
    router = node1.cluster
    assert router is not None
    recorded = threading.Event()  # the cluster thread has recorded bob's stand-in and waits to join it
    swept = threading.Event()  # bob's hello on node 1 won the claim and the admit swept the stand-in
    handled = threading.Event()  # the cluster thread is done with the announcement
    real_join, real_left, real_joined = router.core.roster.join, router._remote_left, router._remote_joined

    def join(joiner: Member, peer: Connection, announce: Callable[..., None]) -> None:
        if joiner.name == "bob" and peer.node is not None and not recorded.is_set():
            recorded.set()
            assert swept.wait(CROSS_NODE_WAIT), "bob's hello on node 1 to be admitted"
        real_join(joiner, peer, announce)

    def remote_left(name: str) -> None:
        real_left(name)
        if name == "bob" and recorded.is_set() and not swept.is_set():  # the admit's sweep, on an I/O thread
            swept.set()
            handled.wait(CROSS_NODE_WAIT)

    def remote_joined(event: RemoteJoined) -> None:
        real_joined(event)
        if event.name == "bob":
            handled.set()

    monkeypatch.setattr(router, "_core", _CoreSeen(router.core, _RosterSeen(router.core.roster, join)))
    monkeypatch.setattr(router, "_remote_left", remote_left)
    monkeypatch.setattr(router, "_remote_joined", remote_joined)
    with member(node1, "alice") as alice:
        first = member(node2, "bob")
        assert first.identity is not None
        identity = first.identity
        assert recorded.wait(CROSS_NODE_WAIT), "node 1 to hear of bob"
        first.close()  # node 2 frees his claims at once
        claims = [b"susurro:name:bob", b"susurro:identity:" + identity.public.hex().encode()]
        with redis_server.client() as raw:
            wait_until(lambda: not raw.exists(*claims), "node 2 to free bob's claims")
        with connect(node1) as moved:
            moved.send_frame(moved.make_hello("bob", identity=identity))
            welcome = moved.expect_frame(Welcome, skip=("joined", "left"))  # name_taken with the ghost
            assert isinstance(welcome, Welcome) and welcome.name == "bob"
            assert swept.is_set() and handled.is_set()
            for kind in (Joined, Left, Joined):  # the stand-in came and went, then bob joined here
                next_of(alice, kind, skip=())
            found, _ = node1.core.roster.lookup(["bob"])
            assert [peer.node for _, _, peer in found] == [None]


def test_a_node_that_stops_is_seen_leaving(cluster: Callable[..., RelayServer]) -> None:
    node1, node2 = cluster(), cluster()
    with member(node1, "alice") as alice, member(node2, "bob"):
        wait_joined(alice, "bob")
        node2.stop()
        left = next_of(alice, Left, skip=("joined",))
        assert isinstance(left, Left) and left.name == "bob"


def test_redis_down_local_members_are_served_remote_ones_not_delivered_then_it_recovers(
    cluster: Callable[..., RelayServer], redis_server: RedisServer
) -> None:
    node1, node2 = cluster(), cluster()
    with (
        member(node1, "alice") as alice,
        member(node1, "erin") as erin,
        member(node2, "bob") as bob,
    ):
        wait_joined(alice, "bob")
        wait_joined(bob, "alice")
        redis_server.stop()
        alice.send_message("d1", {"bob": b"for bob", "erin": b"for erin"})
        alice.timeout = ACK_WAIT
        ack = next_of(alice, Ack)
        # Never "delivered" on a guess: bob is reported not delivered, erin (same node) is served.
        assert isinstance(ack, Ack) and ack.delivered == ("erin",) and ack.missing == ("bob",)
        assert ack.reasons == {"bob": "cluster_down"}  # and why, in the ack (docs/protocol.md, *Acks*)
        deliver = next_of(erin, Deliver)
        assert isinstance(deliver, Deliver) and deliver.ct == b"for erin"
        redis_server.restart()  # empty: both nodes write their members and claims again
        for node in (node1, node2):
            assert node.cluster is not None
            wait_until(lambda node=node: node.cluster.node.up, "the nodes to reach Redis again", CROSS_NODE_WAIT)
        # Both up is not yet both seen: a node back first reads a Redis where the other has not written its
        # members again, counts bob gone, and sees him again only at its next refresh (3 s). A send in that
        # window is rightly "not delivered" (bob is not in node 1's roster); under load it was that window
        # the test sent into (session 7). Recovery is node 1 routing to bob on node 2 again, by itself.
        wait_until(lambda: routes(node1, "bob", node2), "node 1 to list bob on node 2 again", CROSS_NODE_WAIT)
        alice.send_message("r1", {"bob": b"after the outage"})
        ack = next_of(alice, Ack)
        assert isinstance(ack, Ack) and ack.delivered == ("bob",)
        deliver = next_of(bob, Deliver)  # the first bob gets: what was reported not delivered never came
        assert isinstance(deliver, Deliver) and deliver.ct == b"after the outage"


def test_a_member_whose_claim_is_lost_is_told_why_and_ended_at_once_and_is_seen_leaving_everywhere(
    cluster: Callable[..., RelayServer], redis_server: RedisServer
) -> None:
    """Redis lost alice's claim and another session took her name (a restart without the append-only file,
    a fail-over): node 1's next refresh (3 s) finds it lost. Her session ends then, with the reason, though
    she sends nothing: it ended at her next frame, and until then two sessions of one name were connected
    for a keepalive interval or more. And she leaves node 1's presence: it went on announcing her, so bob
    on node 2 never saw her leave."""
    node1, node2 = cluster(), cluster()
    with member(node1, "alice") as alice, member(node1, "erin") as erin, member(node2, "bob") as bob:
        wait_joined(bob, "alice", "erin")
        with redis_server.client() as raw:
            # The name is another holder's now (claims are by the name's key: its lookalike skeleton).
            raw.set(b"susurro:name:" + name_key("alice").encode(), b"another-node/1")
        error = alice.expect_error("name_taken", skip=("joined", "left"))
        assert "another session has taken" in error.detail
        alice.expect_closed()  # bounded by CROSS_NODE_WAIT; she sends nothing, not even a keepalive_ack
        for witness in (erin, bob):
            left = next_of(witness, Left, skip=("joined",))
            assert isinstance(left, Left) and left.name == "alice"


def test_the_status_section_names_the_node_its_state_and_redis_latency(
    cluster: Callable[..., RelayServer], redis_server: RedisServer
) -> None:
    router = cluster().cluster
    assert router is not None
    wait_until(lambda: router.latency_ms is not None, "a first Redis latency", CROSS_NODE_WAIT)
    up = router.status()
    assert up["node"] == router.node.node and up["state"] == "up" and up["remote_members"] == 0
    assert isinstance(up["redis_ms"], float) and "error" not in up
    redis_server.stop()
    wait_until(lambda: router.status()["state"] == "down", "the node to see Redis gone", CROSS_NODE_WAIT)
    down = router.status()
    assert down["redis_ms"] is None and "Connection refused" in str(down["error"])


def test_a_hostile_client_speaking_redis_to_a_relay_reaches_nothing(
    cluster: Callable[..., RelayServer], redis_server: RedisServer
) -> None:
    node1 = cluster()
    with member(node1, "alice"), redis_server.client() as raw:
        wait_until(lambda: raw.dbsize() > 0, "the node's first keys in Redis", CROSS_NODE_WAIT)
        before = sorted(raw.scan_iter())
        for attack in (b"FLUSHALL\r\n", b"*1\r\n$8\r\nFLUSHALL\r\n", b"CONFIG SET dir /tmp\r\n"):
            with connect(node1) as hostile:
                hostile.challenge()
                hostile.send_raw(attack)  # a relay speaks only its own framing: this is a bad frame, and the end
                hostile.expect_frame("error")
                hostile.expect_closed()
        assert sorted(raw.scan_iter()) == before


def test_a_hostile_client_cannot_take_a_name_held_on_another_node_in_any_spelling(
    cluster: Callable[..., RelayServer],
) -> None:
    node1, node2 = cluster(), cluster()
    with member(node2, "bob") as bob:
        for spelling in ("bob", "BOB", "Bоb"):  # the last with a Cyrillic o
            with connect(node1) as hostile:
                try:
                    hostile.send_frame(hostile.make_hello(spelling))
                    hostile.expect_frame("error")
                except AssertionError:
                    raise AssertionError(f"{spelling!r} was admitted on node 1 while bob is on node 2") from None
        bob.ping()  # bob keeps his name and his connection


def test_a_flood_for_a_member_of_another_node_costs_that_node_one_outbox_and_redis_nothing_lasting(
    cluster: Callable[..., RelayServer], redis_server: RedisServer
) -> None:
    # Flood control off on node 1: this sender floods on purpose.
    node1, node2 = cluster(rate_per_second=0), cluster(outbox_bytes=64 * 1024)
    with member(node2, "carol") as carol, connect(node2, rcvbuf=4096) as sloth, member(node1, "mallory") as mallory:
        sloth.join("sloth")
        wait_joined(mallory, "carol", "sloth")
        ct = bytes(60 * 1024)
        drops: list[Dropped] = []  # copies node 2 had queued when it evicted sloth: their word may come first
        for i in range(200):  # 12 MB for a member who never reads
            mallory.send_message(f"f{i}", {"sloth": ct})
            ack = next_ack(mallory, drops)
            assert ack.id == f"f{i}"
            if ack.missing:
                assert ack.reasons == {"sloth": "refused"}  # node 2 could not queue it
                break
        else:
            pytest.fail("node 2 never reported its member who does not read as missing")
        left = next_of(carol, Left, skip=("joined",))
        assert isinstance(left, Left) and left.name == "sloth"  # evicted from node 2, as on one relay
        mallory.send_message("after", {"carol": b"still here?"})
        deliver = next_of(carol, Deliver)
        assert isinstance(deliver, Deliver) and deliver.ct == b"still here?"
        assert node2.cluster is not None
        key = node2.cluster.node.streams.stream_key(node2.cluster.node.node)
        with redis_server.client() as raw:
            # What node 2 has read leaves Redis at its next presence refresh: the flood does not stay there.
            wait_until(lambda: raw.xlen(key) <= 1, "node 2's stream trimmed", CROSS_NODE_WAIT)


def test_copies_queued_on_another_node_and_thrown_away_there_are_named_to_their_sender(
    cluster: Callable[..., RelayServer],
) -> None:
    """The cross-node ``dropped``: node 2 evicts a member who does not read, with copies from alice
    (node 1) still in its queue; alice hears which of hers, as she would on one relay. Counts, not times.

    The ``dropped`` and the held ``ack`` of the send that overflowed the queue come back to node 1 by
    different ways (node 2's eviction, its report) and the protocol orders neither before the other
    (docs/protocol.md, *Queued, dropped, delivered*): either may come first."""
    node1, node2 = cluster(rate_per_second=0), cluster(outbox_bytes=256 * 1024)
    with member(node1, "alice") as alice, connect(node2, rcvbuf=4096) as sloth:
        sloth.join("sloth")
        wait_joined(alice, "sloth")
        acked: list[str] = []
        drops: list[Dropped] = []
        for i in range(200):
            alice.send_message(f"m{i:03d}", {"sloth": secrets.token_bytes(200 * 1024)})
            ack = next_ack(alice, drops)
            if "sloth" in ack.delivered:
                acked.append(ack.id)
            if ack.missing:
                break
        else:
            pytest.fail("node 2 never evicted its member who does not read")
        if not drops:
            dropped = next_of(alice, Dropped)
            assert isinstance(dropped, Dropped)
            drops.append(dropped)
        (dropped,) = drops  # one eviction, one sender: one ``dropped``
        assert dropped.name == "sloth" and dropped.reason == DropReason.SLOW_READER.value
        read: set[str] = set()
        while True:
            try:
                frame: Frame = sloth.recv_frame()
            except Closed:
                break
            if isinstance(frame, Deliver):
                read.add(frame.id)
        named = set(dropped.ids)
        assert named and named <= set(acked), "only copies acked as queued are named"
        assert not [i for i in acked if i not in read and i not in named], "acked, never read, and not named"


def test_a_message_from_someone_a_node_has_not_seen_arrive_yet_comes_after_their_joined(
    cluster: Callable[..., RelayServer],
) -> None:
    """Each node learns of the others' members at its presence refresh (every 3 s), so alice, on node 1,
    may see bob and write to him before node 2 has heard of her: node 2 announces her first, from the
    record her message carries, or bob's client refuses it as from someone not in the room."""
    node1, node2 = cluster(), cluster()
    assert node2.cluster is not None
    with member(node2, "bob") as bob:
        node2.cluster.node._next_refresh = float("inf")  # node 2 stops refreshing: it will not see alice join
        with member(node1, "alice") as alice:
            wait_joined(alice, "bob")
            alice.send_message("early", {"bob": b"before node 2 knew alice"})
            first = bob.expect_frame(Joined)
            assert (
                isinstance(first, Joined) and first.member.name == "alice" and first.member.ik == alice.identity.public
            )
            deliver = next_of(bob, Deliver)
            assert isinstance(deliver, Deliver) and deliver.sender == "alice" and deliver.id == "early"
            ack = next_of(alice, Ack)
            assert isinstance(ack, Ack) and ack.delivered == ("bob",)


def test_a_member_whose_one_time_prekeys_run_low_through_another_node_is_told_to_refill(
    cluster: Callable[..., RelayServer],
) -> None:
    """bob publishes on node 2; alice takes one of his one-time prekeys through node 1. Below the low
    mark the owner is told how many are left wherever he is connected, or he would run dry unawares."""
    node1, node2 = cluster(), cluster()
    with member(node1, "alice") as alice, member(node2, "bob") as bob:
        assert bob.identity is not None
        ring = PrekeyRing(bob.identity)
        bob.send_frame(prekeys_frame(ring.on_join(time.time())))  # the signed prekey: nothing held yet
        bob.expect_frame(PrekeysHeld, skip=("joined", "left"))
        bob.expect_frame(MailEnd, skip=("joined", "left"))
        batch = ring.due(time.time(), relay_one_time_count=0)
        assert batch is not None
        bob.send_frame(prekeys_frame(Publication(signed=None, one_time=batch.one_time[:ONE_TIME_PREKEY_LOW_WATER])))
        held = bob.expect_frame(PrekeysHeld, skip=("joined", "left"))
        assert isinstance(held, PrekeysHeld) and held.one_time == ONE_TIME_PREKEY_LOW_WATER
        wait_joined(alice, "bob")  # node 1 sees bob on node 2
        alice.send_frame(BundleFetch(id="f1", keys=(bob.identity.public,), one_time=True))
        bundles = alice.expect_frame(Bundles, skip=("joined", "left"))
        assert isinstance(bundles, Bundles) and bundles.bundles[0].opk is not None
        low = bob.expect_frame(PrekeysHeld, skip=("joined", "left"))
        assert isinstance(low, PrekeysHeld) and low.one_time == ONE_TIME_PREKEY_LOW_WATER - 1


def test_a_prekeys_low_count_for_a_key_goes_to_no_other_key_holding_the_name_on_its_node(
    cluster: Callable[..., RelayServer],
) -> None:
    """bob publishes on node 2 and leaves; a new key takes the name bob there before node 1's next refresh,
    so node 1 still holds a stand-in with the first key. alice's fetch of the first key's one-time prekey
    leaves it low: the count is that key's, and the bob now on node 2 must not get it (node 2 handed it to
    whoever held the name). The barrier: alice's next message to bob leaves node 1 after the notice, on the
    same stream, so once alice has its report node 2 has handled the notice; the new bob gets neither (the
    copy is the first key's too, since session 9), and his next frame is the pong of a ping sent then."""
    node1, node2 = cluster(), cluster()
    with member(node1, "alice") as alice:
        first = member(node2, "bob")
        assert first.identity is not None
        ring = PrekeyRing(first.identity)
        first.send_frame(prekeys_frame(ring.on_join(time.time())))
        first.expect_frame(PrekeysHeld, skip=("joined", "left"))
        first.expect_frame(MailEnd, skip=("joined", "left"))
        batch = ring.due(time.time(), relay_one_time_count=0)
        assert batch is not None
        first.send_frame(prekeys_frame(Publication(signed=None, one_time=batch.one_time[:ONE_TIME_PREKEY_LOW_WATER])))
        first.expect_frame(PrekeysHeld, skip=("joined", "left"))
        wait_joined(alice, "bob")  # node 1 holds a stand-in for bob with the first key
        assert node1.cluster is not None
        node1.cluster.node._next_refresh = math.inf  # node 1 does not refresh again: its stand-in stays stale
        first.close()
        with member(node2, "bob") as second:
            assert second.identity is not None and second.identity.public != first.identity.public
            alice.send_frame(BundleFetch(id="f1", keys=(first.identity.public,), one_time=True))
            bundles = alice.expect_frame(Bundles, skip=("joined", "left"))
            assert isinstance(bundles, Bundles) and bundles.bundles[0].opk is not None  # now below the low mark
            alice.send_message("after", {"bob": b"after the fetch"})
            ack = next_of(alice, Ack)  # node 2 handled the notice first: one stream, read in order
            assert isinstance(ack, Ack) and ack.missing == ("bob",)  # the copy was sealed for the first key
            second.ping()  # nothing before the pong: not a prekeys_held (another key's count), not the copy


def test_a_first_join_while_redis_is_down_is_refused_cluster_down_and_the_client_tries_again_until_it_is_back(
    cluster: Callable[..., RelayServer],
    redis_server: RedisServer,
    tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """No name can be checked while Redis is away, so the join is refused; but not as name_taken, which a
    client takes as final on a first join (it gave up: the name was never anyone's). cluster_down says what
    it is, the relay's log says it, and the real client tries again on its backoff, then joins."""
    node = cluster()
    assert node.cluster is not None
    redis_server.stop()
    wait_until(lambda: not node.cluster.node.up, "the node to see Redis gone", CROSS_NODE_WAIT)
    with caplog.at_level(logging.INFO, logger="susurro.relay"), connect(node) as raw:
        raw.send_frame(raw.make_hello("dave"))
        error = raw.expect_error("cluster_down")
        assert "cannot reach the store it shares" in error.detail
        raw.expect_closed()
    assert any("code=cluster_down" in record.getMessage() for record in caplog.records)
    events: queue.Queue[object] = queue.Queue()
    session = ClientSession(
        IdentityKey.generate(), "erin", relay="cluster", trust=TrustStore.open(tmp_path / "trust.json", key_of=name_key)
    )
    host, port = node.address
    connection = RelayConnection.open(session, host, port, events, backoff=Backoff(initial=0.1, cap=1.0))
    try:
        first = next_event(events, (ev.Reconnecting, ev.Disconnected, ev.Connected))
        assert isinstance(first, ev.Reconnecting), first  # not given up
        assert first.code == ErrorCode.CLUSTER_DOWN
        assert "reach the store it shares" in render.event_to_text(first)  # in the client's words
        redis_server.restart()
        joined = next_event(events, (ev.Connected, ev.Disconnected))
        assert isinstance(joined, ev.Connected) and joined.name == "erin"
    finally:
        connection.close()


def next_event(events: queue.Queue[object], kinds: tuple[type, ...]) -> object:
    """The next event of one of ``kinds`` (others passed over), within CROSS_NODE_WAIT."""
    for event in arrivals(events, CROSS_NODE_WAIT):
        if isinstance(event, kinds):
            return event
    raise AssertionError(f"none of {kinds} within {CROSS_NODE_WAIT:g} s")


def test_a_copy_for_a_key_goes_to_no_other_key_holding_the_name_on_its_node(
    cluster: Callable[..., RelayServer],
) -> None:
    """bob leaves node 2 and a new key takes the name bob there before node 1's next refresh, so node 1 still
    routes to a stand-in with the first key, and alice's copy was sealed for it. Node 2 matched the copy by
    name alone: the new bob got it and alice's ack said delivered. Now it goes with the key node 1 routed to:
    not delivered (``refused``, the name is another key's there), and the new bob gets nothing of it."""
    node1, node2 = cluster(), cluster()
    with member(node1, "alice") as alice:
        first = member(node2, "bob")
        assert first.identity is not None
        wait_joined(alice, "bob")  # node 1 holds a stand-in for bob with the first key
        assert node1.cluster is not None
        node1.cluster.node._next_refresh = math.inf  # node 1 does not refresh again: its stand-in stays stale
        first.close()
        with member(node2, "bob") as second:
            assert second.identity is not None and second.identity.public != first.identity.public
            alice.send_message("m1", {"bob": b"sealed for the first bob"})
            ack = next_of(alice, Ack)
            assert isinstance(ack, Ack)
            assert (ack.delivered, ack.missing, ack.reasons) == ((), ("bob",), {"bob": "refused"})
            second.ping()  # node 2 answered after handling the entry: a copy would have come before the pong


def test_a_redis_restart_does_not_show_the_other_node_s_members_leaving_and_joining_again(
    cluster: Callable[..., RelayServer], redis_server: RedisServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Redis restarted empty loses both nodes' presence at once. The node back first read no member of the
    other, announced each leaving, and joining again at the other's next refresh: members saw bob leave and
    come back. Now a node Redis lost is held over until it writes itself again (or expires as it last
    announced: a dead node still leaves). Node 2 is held back a second after node 1 has written itself again (its
    writes fail, as a node that reaches Redis a moment later), so node 1 is surely back first."""
    node1, node2 = cluster(), cluster()
    assert node1.cluster is not None and node2.cluster is not None
    presence2 = node2.cluster.node.presence
    write = presence2.refresh
    held_back = threading.Event()

    def late_refresh() -> None:
        if held_back.is_set():
            raise PresenceError("presence: held back by the test")
        write()

    monkeypatch.setattr(presence2, "refresh", late_refresh)
    with member(node1, "alice") as alice, member(node2, "bob") as bob:
        wait_joined(alice, "bob")
        wait_joined(bob, "alice")
        held_back.set()
        redis_server.restart()  # same port, nothing kept
        hashes = [f"susurro:presence:{server.cluster.node.node}".encode() for server in (node1, node2)]
        with redis_server.client() as raw:
            wait_until(lambda: raw.exists(hashes[0]), "node 1 written again", CROSS_NODE_WAIT)
            time.sleep(1.0)  # node 1 snapshots right after it writes itself: surely without node 2
            held_back.clear()
            wait_until(lambda: raw.exists(hashes[1]), "node 2 written again", CROSS_NODE_WAIT)
        # Two refreshes more of each node (every 3 s): a flap is announced in them, and undone in them.
        settled = time.monotonic() + 2 * REFRESH_INTERVAL + 1.0
        seen: dict[str, list[str]] = {"alice": [], "bob": []}
        while time.monotonic() < settled:
            for name, client in (("alice", alice), ("bob", bob)):
                try:
                    seen[name].append(client.recv_frame(timeout=0.2).TYPE)
                except Closed:
                    raise
                except NoFrame:
                    pass
        assert seen == {"alice": [], "bob": []}
        alice.send_message("m1", {"bob": b"after the restart"})
        ack = next_of(alice, Ack)
        assert isinstance(ack, Ack) and ack.delivered == ("bob",)


def test_a_terminal_first_join_waits_out_a_redis_outage_longer_than_its_timeout(
    cluster: Callable[..., RelayServer],
    redis_server: RedisServer,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The chat loop gave a first join 20 s from the start whatever the relay said: a client refused
    cluster_down for longer gave up with "no welcome from the relay within 20 s", which was not what
    happened (the relay answered every attempt). Each refusal now starts the wait again from the next
    attempt. The timeout made 1 s here, the outage held past three of them: the real loop joins."""
    monkeypatch.setattr(cli, "JOIN_TIMEOUT", 1.0)
    node = cluster()
    assert node.cluster is not None
    redis_server.stop()
    wait_until(lambda: not node.cluster.node.up, "the node to see Redis gone", CROSS_NODE_WAIT)
    events: queue.Queue[object] = queue.Queue()
    session = ClientSession(
        IdentityKey.generate(), "erin", relay="cluster", trust=TrustStore.open(tmp_path / "trust.json", key_of=name_key)
    )
    host, port = node.address
    connection = RelayConnection.open(session, host, port, events, backoff=Backoff(initial=0.2, cap=0.4))
    said = io.StringIO()
    result: list[int] = []
    loop = threading.Thread(
        target=lambda: result.append(
            cli.run(connection, events, render.Output(True, said), start_input=lambda: events.put(cli.EndOfInput()))
        ),
        daemon=True,
    )
    try:
        loop.start()
        outage_ends = time.monotonic() + 3.5
        while time.monotonic() < outage_ends:
            assert loop.is_alive(), said.getvalue()  # not given up
            time.sleep(0.1)
        assert said.getvalue().count('"code": "cluster_down"') >= 3, said.getvalue()
        redis_server.restart()
        loop.join(CROSS_NODE_WAIT)
        assert not loop.is_alive() and result == [0], said.getvalue()  # joined, then the input ended
        assert '"event": "connected"' in said.getvalue() and "no welcome" not in said.getvalue()
    finally:
        connection.close()
        loop.join(CROSS_NODE_WAIT)
