"""Two relay nodes' cluster facades on one real Redis: the cluster's scenario at the level the
relay's core will call (alice on node 1; bob and carol on node 2)."""

from __future__ import annotations

import hashlib
import threading
from collections.abc import Callable

import pytest
import redis

from susurro.relay.cluster.connect import open_redis
from susurro.relay.cluster.node import (
    Admission,
    ClusterDown,
    ClusterNode,
    ClusterUp,
    Event,
    Inbound,
    NameLost,
    Outcome,
    Reason,
    RemoteJoined,
    RemoteLeft,
)
from susurro.relay.cluster.streams import MAX_ENTRY_BYTES, Sender
from tests.helpers.redis_server import RedisServer
from tests.helpers.system import wait_until

ADMITTED = Admission.ADMITTED


def ik(name: str) -> bytes:
    """A made-up identity key for ``name`` (the node stores and compares it; it never verifies it)."""
    return hashlib.sha256(name.encode()).digest()


def cluster_node(server: RedisServer, node: str, **kw: float) -> ClusterNode:
    cluster = ClusterNode(open_redis(server.url, server.password), node, refresh_interval=0, **kw)
    cluster.start()
    return cluster


def of(kind: type, events: list[Event]) -> list[Event]:
    return [e for e in events if isinstance(e, kind)]


def two_nodes(server: RedisServer, **kw: float) -> tuple[ClusterNode, ClusterNode]:
    node1, node2 = cluster_node(server, "n1", **kw), cluster_node(server, "n2", **kw)
    assert node1.admit("alice", "alice", "c1", b"alice's member", ik("alice")) is ADMITTED
    assert node2.admit("bob", "bob", "c2", b"bob's member", ik("bob")) is ADMITTED
    assert node2.admit("carol", "carol", "c3", b"carol's member", ik("carol")) is ADMITTED
    assert [e.name for e in node2.poll(now=0) if isinstance(e, RemoteJoined)] == ["alice"]
    assert sorted(e.name for e in node1.poll(now=0) if isinstance(e, RemoteJoined)) == ["bob", "carol"]
    return node1, node2


def test_a_send_across_nodes_is_one_entry_and_its_report_is_exact(redis_server: RedisServer) -> None:
    node1, node2 = two_nodes(redis_server)
    unreachable = node1.send(1, {"bob": b"frame for bob", "carol": b"frame for carol", "zed": b"?"}, now=0)
    assert unreachable == {"zed": Reason.NOT_PRESENT}
    (inbound,) = of(Inbound, node2.poll(now=0))
    assert isinstance(inbound, Inbound) and dict(inbound.frames) == {
        "bob": b"frame for bob",
        "carol": b"frame for carol",
    }
    node2.answer(inbound, delivered=["bob"], missing=["carol"])  # carol's outbox was full, say
    (outcome,) = of(Outcome, node1.poll(now=1))
    assert outcome == Outcome(1, ("bob",), ("carol",), Reason.REFUSED)
    assert len(node1.pending) == 0


def test_a_sender_first_seen_in_the_poll_that_reads_its_message_is_announced_before_it(
    redis_server: RedisServer,
) -> None:
    """alice joins node 1 and writes to bob before node 2 has seen her; node 2 reads her message in the
    same poll as the refresh that first lists her. Her arrival must still come before her message (the
    relay hands them to bob in this order), once: else bob's client refuses the message as unknown_sender."""
    node1, node2 = cluster_node(redis_server, "n1"), cluster_node(redis_server, "n2")
    assert node2.admit("bob", "bob", "c2", b"bob's member", ik("bob")) is ADMITTED
    node2.poll(now=0)  # a refresh: nobody else yet
    node1.poll(now=0)  # node 1 sees bob
    assert node1.admit("alice", "alice", "c1", b"alice's member", ik("alice")) is ADMITTED
    node1.send(1, {"bob": b"frame for bob"}, now=0, sender=Sender("alice", "m1", 1, b"alice's member"))
    events = node2.poll(now=1)  # refresh_interval 0: this poll reads the entry and refreshes
    order = [e for e in events if isinstance(e, (RemoteJoined, Inbound))]
    assert [type(e) for e in order] == [RemoteJoined, Inbound]
    assert order[0] == RemoteJoined("alice", b"alice's member")
    assert node2.where("alice") == "n1"
    assert of(RemoteJoined, node2.poll(now=2)) == []  # the next refresh finds her known


def test_no_report_in_time_is_not_delivered(redis_server: RedisServer) -> None:
    node1, _ = two_nodes(redis_server)  # node 2 never answers
    node1.send(2, {"bob": b"f"}, now=100)
    assert of(Outcome, node1.poll(now=105)) == []
    assert of(Outcome, node1.poll(now=110)) == [Outcome(2, (), ("bob",), Reason.NO_REPORT)]


def test_one_name_on_two_nodes_at_once_has_one_holder(redis_server: RedisServer) -> None:
    node1, node2 = two_nodes(redis_server)
    assert node1.admit("bob", "bob", "c9", b"an impostor", ik("bob")) is Admission.NAME_HELD
    assert node1.admit("dave", "dave", "c4", b"dave", ik("dave")) is ADMITTED
    assert node2.admit("dave", "dave", "c5", b"dave again", ik("dave")) is Admission.NAME_HELD
    node1.depart("dave", "dave")
    assert node2.admit("dave", "dave", "c5", b"dave again", ik("dave")) is ADMITTED


def test_a_node_that_stops_is_seen_leaving_and_its_names_come_free(redis_server: RedisServer) -> None:
    node1, node2 = two_nodes(redis_server, ttl=0.3)
    # node 2 stops refreshing (a SIGKILLed process; tests/cluster/test_presence_and_names.py kills a real one).
    left: list[str] = []

    def both_left() -> bool:
        left.extend(e.name for e in node1.poll(now=0) if isinstance(e, RemoteLeft))
        return len(left) == 2

    wait_until(both_left, "node 1 to see bob and carol leave")
    assert sorted(left) == ["bob", "carol"]
    # Node 2 renewed bob's name claim before his presence (``ClusterNode.poll``): by the time he is
    # seen leaving, his name is free, so bob reconnecting to node 1 at once is admitted.
    assert node1.admit("bob", "bob", "c6", b"bob, reconnected to node 1", ik("bob")) is ADMITTED
    assert of(NameLost, node2.poll(now=0)) == [NameLost("bob")]


def test_redis_down_reports_not_delivered_once_then_recovers(redis_factory: Callable[..., RedisServer]) -> None:
    server = redis_factory()
    node1, node2 = two_nodes(server)
    server.stop()
    assert node1.send(3, {"bob": b"f"}, now=0) == {"bob": Reason.CLUSTER_DOWN}
    events = node1.poll(now=0) + node1.poll(now=1)
    assert len(of(ClusterDown, events)) == 1  # said once, not once per poll
    assert node1.admit("erin", "erin", "c7", b"e", ik("erin")) is Admission.UNCHECKED  # cannot be checked: refused
    server.restart()  # empty: every node writes its members and claims again
    assert of(ClusterUp, node1.poll(now=2)) == [ClusterUp()]
    node2.poll(now=2)
    node1.poll(now=3)
    assert node1.where("bob") == "n2"
    assert node1.send(4, {"bob": b"again"}, now=3) == {}
    (inbound,) = of(Inbound, node2.poll(now=3))
    assert isinstance(inbound, Inbound) and inbound.frames == (("bob", b"again"),)


def test_copies_too_large_to_cross_are_refused_not_said_cluster_down(redis_server: RedisServer) -> None:
    """review-s9-fixes 4: an entry over MAX_ENTRY_BYTES is not stored, and its recipients were said
    cluster_down ("the relay cannot reach the store it shares"), untrue: Redis is fine. They are refused, at
    once (publishing at once) or as an Outcome (the relay's publisher thread); the node stays up."""
    node1, node2 = two_nodes(redis_server)
    assert node1.send(5, {"bob": bytes(MAX_ENTRY_BYTES)}, now=0) == {"bob": Reason.REFUSED}
    assert len(node1.pending) == 0 and node1.up
    queued = ClusterNode(open_redis(redis_server.url, redis_server.password), "n3", refresh_interval=0, queued=True)
    queued.start()
    queued.poll(now=0)
    assert queued.where("bob") == "n2"
    assert queued.send(6, {"bob": bytes(MAX_ENTRY_BYTES), "carol": b"f"}, now=0) == {}
    queued.publish_queued(1.0)
    assert of(Outcome, queued.poll(now=0)) == [Outcome(6, (), ("bob", "carol"), Reason.REFUSED)]
    assert queued.up
    assert of(Inbound, node2.poll(now=0)) == []


def test_a_clean_shutdown_under_a_full_redis_still_withdraws_and_frees_its_names(redis_server: RedisServer) -> None:
    """review-s9-fixes 6: a full Redis (noeviction, as deploy/redis.conf sets it) refuses the tombstone's SET
    and any command queued in a MULTI, so the withdraw's transaction failed whole: the members stayed listed,
    and the shutdown skipped releasing the names and keys, so bob moving to node 1 was refused name_taken for
    up to 10 s. The tombstone now goes alone, DEL and ZREM outside a transaction; without the tombstone node 1
    only holds node 2's members over until they expire."""
    node1, node2 = two_nodes(redis_server)
    with redis_server.client() as raw:
        raw.config_set("maxmemory-policy", "noeviction")
        raw.config_set("maxmemory", 1)  # full: every command that may use memory is refused
        try:
            with pytest.raises(redis.exceptions.OutOfMemoryError):
                raw.set(b"probe", b"1")
            node2.close()
            assert not raw.exists(b"susurro:presence:n2")
            assert raw.zscore(b"susurro:presence:nodes", b"n2") is None
            claims = [b"susurro:name:bob", b"susurro:name:carol"]
            claims += [b"susurro:identity:" + ik(name).hex().encode() for name in ("bob", "carol")]
            assert raw.exists(*claims) == 0
        finally:
            raw.config_set("maxmemory", 0)
    assert node1.admit("bob", "bob", "c8", b"bob's member", ik("bob")) is ADMITTED  # free at once


def test_a_refresh_renews_the_name_claims_before_the_presence(redis_server: RedisServer) -> None:
    """Renewed first, a claim lapses no later than its member's presence (why: ``ClusterNode.poll``).
    Redis's MONITOR shows the order the commands reached it in."""
    _, node2 = two_nodes(redis_server)
    order: list[str] = []
    with redis_server.client() as raw, raw.monitor() as monitor:
        node2.poll(now=1)  # refresh_interval 0: a refresh at every poll
        while not {"claim", "presence"} <= set(order):
            command = monitor.next_command()["command"]  # bounded: the client's socket timeout
            if "susurro:name:" in command:
                order.append("claim")
            elif command.startswith("HSET") and "susurro:presence:" in command:
                order.append("presence")
    assert order.index("claim") < order.index("presence")


def test_many_nodes_admitting_one_name_at_the_same_instant_admit_it_once(redis_server: RedisServer) -> None:
    """``admit`` claims and announces in one script (one round trip for the I/O thread); it stays a
    claim only one holder can win, and only the winner announces the member."""
    nodes = [cluster_node(redis_server, f"n{i}") for i in range(8)]
    for round_ in range(10):
        name = f"name{round_}"
        barrier = threading.Barrier(len(nodes))
        won = [False] * len(nodes)

        def take(i: int, barrier: threading.Barrier = barrier, won: list[bool] = won, name: str = name) -> None:
            barrier.wait(30)
            won[i] = nodes[i].admit(name, name, "c", f"record of n{i}".encode(), ik(name)) is ADMITTED

        threads = [threading.Thread(target=take, args=(i,)) for i in range(len(nodes))]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(30)
        assert sum(won) == 1, won
        winner = won.index(True)
        view = nodes[0].presence.snapshot()
        assert view[name].node == f"n{winner}" and view[name].record == f"record of n{winner}".encode()
        assert nodes[winner].claims.holder(name) == f"n{winner}/c"
    nodes[0].admit("again", "again", "c", b"r", ik("again"))
    assert (
        nodes[0].admit("again", "again", "c", b"r", ik("again")) is ADMITTED
    )  # a retried claim by its holder is still its own
    nodes[0].depart("again", "again")
    assert nodes[0].claims.holder("again") is None and "again" not in nodes[0].presence.snapshot()


def test_one_identity_key_under_two_names_has_one_session_in_the_whole_cluster(redis_server: RedisServer) -> None:
    """One session per identity key (decision 53) across nodes, as on one relay: the key is claimed beside
    the name, so a second session of it under another name is refused on any node, and on the same node."""
    node1, node2 = two_nodes(redis_server)
    assert node1.admit("alice-laptop", "alice-laptop", "c8", b"alice again", ik("alice")) is Admission.IDENTITY_HELD
    assert node2.admit("alice-phone", "alice-phone", "c9", b"alice again", ik("alice")) is Admission.IDENTITY_HELD
    # Nothing of the refused session was announced or kept.
    assert "alice-laptop" not in node1.presence.snapshot() and node1.claims.holder("alice-laptop") is None
    node1.depart("alice", "alice")  # her session ends: the key is free for the next one
    assert node2.admit("alice-phone", "alice-phone", "c9", b"alice again", ik("alice")) is ADMITTED


def test_many_nodes_admitting_one_identity_key_under_different_names_at_once_admit_it_once(
    redis_server: RedisServer,
) -> None:
    nodes = [cluster_node(redis_server, f"n{i}") for i in range(6)]
    barrier = threading.Barrier(len(nodes))
    admissions: list[Admission | None] = [None] * len(nodes)

    def take(i: int) -> None:
        barrier.wait(30)
        admissions[i] = nodes[i].admit(f"dev{i}", f"dev{i}", "c", b"r", ik("one key"))

    threads = [threading.Thread(target=take, args=(i,)) for i in range(len(nodes))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    assert admissions.count(ADMITTED) == 1, admissions
    assert admissions.count(Admission.IDENTITY_HELD) == len(nodes) - 1, admissions


def test_an_identity_claim_taken_by_another_session_while_it_lapsed_ends_the_member(
    redis_server: RedisServer,
) -> None:
    """The identity's claim is renewed with the name's; if it lapsed (Redis lost it) and another session
    of the key took it meanwhile, the refresh reports the member's claim lost, as for a name."""
    node1, node2 = two_nodes(redis_server)
    with redis_server.client() as raw:
        raw.delete(node1.claims.identity_key(ik("alice")))
    assert node2.admit("alice-phone", "alice-phone", "c9", b"alice elsewhere", ik("alice")) is ADMITTED
    assert of(NameLost, node1.poll(now=0)) == [NameLost("alice")]
    # Her name goes with the lost key, not held for a TTL by a session that is ending.
    assert node1.claims.holder("alice") is None
    # And she leaves node 1's presence in the same refresh: the connection ends without a ``depart`` (the
    # claim is no longer node 1's to free), and kept, node 1 went on announcing her to every node for good.
    assert "alice" not in node1.presence.local
    assert "alice" not in node2.presence.snapshot()
    assert of(RemoteLeft, node2.poll(now=0)) == [RemoteLeft("alice")]
    # A lapsed claim still free is taken back instead.
    with redis_server.client() as raw:
        raw.delete(node2.claims.identity_key(ik("bob")))
    assert of(NameLost, node2.poll(now=0)) == []
    assert node1.admit("bob-2", "bob-2", "c10", b"bob again", ik("bob")) is Admission.IDENTITY_HELD


def test_a_name_or_key_held_here_is_refused_here_even_when_redis_lost_its_claim(redis_server: RedisServer) -> None:
    """Redis lost every key (FLUSHALL; a restart without its append-only file). A hello for alice's name, or
    for her key under another name, on her own node was admitted (Redis called both free), replaced her
    claim in the node's books, and the roster's refusal then freed it: node 1 renewed nothing for alice, who
    stayed connected, and node 2 took her name. Refused on node 1 now; her claim is written back and kept."""
    node1, node2 = two_nodes(redis_server)
    with redis_server.client() as raw:
        raw.flushall()
    assert node1.admit("alice", "alice", "c9", b"mallory as alice", ik("mallory")) is Admission.NAME_HELD
    assert node1.admit("alice-2", "alice-2", "c10", b"alice's laptop", ik("alice")) is Admission.IDENTITY_HELD
    assert of(NameLost, node1.poll(now=0)) == []  # her lapsed claim is free: taken back at the refresh
    assert node2.admit("alice", "alice", "c11", b"alice elsewhere", ik("nobody")) is Admission.NAME_HELD
    # Once she leaves, both are free again on her node.
    node1.depart("alice", "alice")
    assert node1.admit("alice-2", "alice-2", "c12", b"alice's laptop", ik("alice")) is ADMITTED


def test_a_rekey_after_the_claim_was_lost_does_not_announce_the_member_again(redis_server: RedisServer) -> None:
    """The refresh that finds alice's claim lost drops her from node 1's presence; her connection ends a
    moment later, on another thread. A rekey handled in between wrote her back for good (no depart follows)."""
    node1, node2 = two_nodes(redis_server)
    with redis_server.client() as raw:
        raw.set(node1.claims.key("alice"), b"n2/c99")  # another holder's now
    assert of(NameLost, node1.poll(now=0)) == [NameLost("alice")]
    node1.update("alice", b"alice's member, rekeyed")
    assert "alice" not in node1.presence.local
    node1.poll(now=1)
    assert "alice" not in node2.presence.snapshot()
