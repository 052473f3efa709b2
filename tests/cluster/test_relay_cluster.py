"""Two real relays (``RelayServer`` with ``cluster=``, real sockets) sharing one real ``redis-server``:
alice on node 1, bob and carol on node 2, as raw protocol clients so every frame is checked.

Waits are on frames, bounded (a presence refresh is every 3 s, so a member on the other node is
seen within a few seconds); nothing asserts on time."""

from __future__ import annotations

from collections.abc import Callable, Iterator

import pytest

from susurro.protocol import Ack, Deliver, Joined, Left, Welcome
from susurro.relay import RelayConfig, RelayServer
from tests.helpers.hostile_client import HostileClient, connect, joined_client
from tests.helpers.redis_server import RedisServer
from tests.helpers.system import wait_until

#: Seconds to see a member of the other node come or go (refresh every 3 s; TTL 10 s), with slack for 2 loaded cores.
CROSS_NODE_WAIT = 30.0
#: Seconds for a held ack: the report timeout is 10 s.
ACK_WAIT = 30.0


@pytest.fixture
def cluster(redis_server: RedisServer) -> Iterator[Callable[[], RelayServer]]:
    started: list[RelayServer] = []

    def node() -> RelayServer:
        server = RelayServer(RelayConfig(host="127.0.0.1", port=0, handshake_timeout=5.0, cluster=redis_server.url))
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


def test_members_of_two_nodes_see_each_other_and_a_send_is_reported_exactly(
    cluster: Callable[[], RelayServer],
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


def test_a_name_held_on_one_node_cannot_be_taken_on_the_other(cluster: Callable[[], RelayServer]) -> None:
    node1, node2 = cluster(), cluster()
    with member(node2, "bob"), connect(node1) as impostor:
        impostor.send_frame(impostor.make_hello("bob"))
        error = impostor.expect_error("name_taken")
        assert "another relay" in error.detail


def test_a_node_that_stops_is_seen_leaving(cluster: Callable[[], RelayServer]) -> None:
    node1, node2 = cluster(), cluster()
    with member(node1, "alice") as alice, member(node2, "bob"):
        wait_joined(alice, "bob")
        node2.stop()
        left = next_of(alice, Left, skip=("joined",))
        assert isinstance(left, Left) and left.name == "bob"


def test_redis_down_local_members_are_served_remote_ones_not_delivered_then_it_recovers(
    cluster: Callable[[], RelayServer], redis_server: RedisServer
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
        deliver = next_of(erin, Deliver)
        assert isinstance(deliver, Deliver) and deliver.ct == b"for erin"
        redis_server.restart()  # empty: both nodes write their members and claims again
        for node in (node1, node2):
            assert node.cluster is not None
            wait_until(lambda node=node: node.cluster.node.up, "the nodes to reach Redis again", CROSS_NODE_WAIT)
        alice.send_message("r1", {"bob": b"after the outage"})
        ack = next_of(alice, Ack)
        assert isinstance(ack, Ack) and ack.delivered == ("bob",)
        deliver = next_of(bob, Deliver)  # the first bob gets: what was reported not delivered never came
        assert isinstance(deliver, Deliver) and deliver.ct == b"after the outage"


def test_the_status_section_names_the_node_its_state_and_redis_latency(
    cluster: Callable[[], RelayServer], redis_server: RedisServer
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
