"""Presence and name claims across relay nodes, on a real Redis; a "node" is a Presence/NameClaims
pair with its own Redis client, and the node that dies is a real process killed with SIGKILL."""

from __future__ import annotations

import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable

import pytest
import redis

from susurro.relay.cluster.connect import open_redis
from susurro.relay.cluster.names import CLAIM_TTL, ClaimError, NameClaims
from susurro.relay.cluster.presence import (
    HOLD_MARGIN,
    MAX_RECORD_BYTES,
    PRESENCE_TTL,
    REFRESH_INTERVAL,
    Presence,
    PresenceError,
    Present,
    arrivals,
    departures,
)
from tests.helpers.redis_server import RedisServer
from tests.helpers.system import WAIT, wait_until

#: A short TTL for the tests that wait for an expiry (the defaults are checked separately).
SHORT_TTL = 1.0


def node(server: RedisServer, name: str, ttl: float = PRESENCE_TTL) -> tuple[Presence, NameClaims]:
    client = open_redis(server.url, server.password)
    return Presence(client, name, ttl=ttl), NameClaims(client, name, ttl=ttl)


def test_the_defaults_make_a_dead_node_s_members_leave_within_15_seconds() -> None:
    # Expired by Redis within the TTL of the last refresh, seen by the others at their next poll.
    assert PRESENCE_TTL + REFRESH_INTERVAL <= 15
    assert REFRESH_INTERVAL * 3 <= PRESENCE_TTL  # two late refreshes are not a death
    assert CLAIM_TTL == PRESENCE_TTL  # a dead node's names are free when its members are gone


# --- presence ------------------------------------------------------------------------------


def test_members_of_every_node_are_seen_by_every_node(redis_server: RedisServer) -> None:
    (one, _), (two, _) = node(redis_server, "n1"), node(redis_server, "n2")
    one.join("alice", b"alice's member record")
    two.join("bob", b"bob's")
    two.join("carol", b"carol's")
    for view in (one, two):
        assert view.snapshot() == {
            "alice": Present("n1", b"alice's member record"),
            "bob": Present("n2", b"bob's"),
            "carol": Present("n2", b"carol's"),
        }
        assert view.nodes() == ["n1", "n2"]
    two.leave("bob")
    assert set(one.snapshot()) == {"alice", "carol"}


def test_a_node_s_presence_carries_a_ttl_that_refresh_renews(redis_server: RedisServer) -> None:
    presence, _ = node(redis_server, "n1")
    presence.join("alice", b"a")
    with redis_server.client() as raw:
        key = b"susurro:presence:n1"
        assert 0 < raw.pttl(key) <= PRESENCE_TTL * 1000
        raw.pexpire(key, 50)  # as if the node's last refresh were long ago
        wait_until(lambda: not raw.exists(key), "the presence hash to expire")
        assert presence.snapshot() == {}
        presence.refresh()  # the node is alive after all: everything is written again
        assert presence.snapshot() == {"alice": Present("n1", b"a")}
        assert 0 < raw.pttl(key) <= PRESENCE_TTL * 1000


def test_a_clean_shutdown_withdraws_at_once(redis_server: RedisServer) -> None:
    (one, _), (two, _) = node(redis_server, "n1"), node(redis_server, "n2")
    one.join("alice", b"a")
    two.join("bob", b"b")
    one.withdraw()
    assert two.snapshot() == {"bob": Present("n2", b"b")} and two.nodes() == ["n2"]


def test_redis_restarted_empty_gets_every_member_back_at_the_next_refresh(
    redis_factory: Callable[..., RedisServer],
) -> None:
    server = redis_factory()  # no persistence: a restart loses everything
    (one, claims), (two, _) = node(server, "n1"), node(server, "n2")
    one.join("alice", b"a")
    assert claims.claim("alice", "c1")
    server.stop()
    with pytest.raises(PresenceError):
        one.join("dave", b"d")  # kept locally, written once Redis is back
    with pytest.raises(ClaimError):
        claims.claim("dave", "c2")
    server.restart()
    assert two.snapshot() == {}
    one.refresh()
    assert claims.refresh() == []  # expired with Redis and still free: taken back
    assert two.snapshot() == {"alice": Present("n1", b"a"), "dave": Present("n1", b"d")}
    assert claims.holder("alice") == "n1/c1"


def test_presence_records_and_node_ids_are_bounded(redis_server: RedisServer) -> None:
    client = open_redis(redis_server.url)
    presence = Presence(client, "n1")
    with pytest.raises(ValueError, match=str(MAX_RECORD_BYTES)):
        presence.join("alice", bytes(MAX_RECORD_BYTES + 1))
    for bad in ("", "n:1"):
        with pytest.raises(ValueError):
            Presence(client, bad)
    client.close()


@pytest.mark.parametrize(
    ("before", "after", "left", "arrived"),
    [
        ({}, {"bob": Present("n2", b"b")}, [], ["bob"]),
        ({"bob": Present("n2", b"b")}, {}, ["bob"], []),
        ({"bob": Present("n2", b"b")}, {"bob": Present("n1", b"b")}, ["bob"], []),  # reconnected to us
        ({"bob": Present("n2", b"b")}, {"bob": Present("n3", b"b")}, [], ["bob"]),  # moved between others
        ({"bob": Present("n2", b"b")}, {"bob": Present("n2", b"new key")}, [], ["bob"]),  # rejoined, new session
        ({"me": Present("n1", b"m")}, {}, [], []),  # our own members are our connections' business
    ],
)
def test_departures_and_arrivals_are_a_diff_of_two_snapshots(
    before: dict[str, Present], after: dict[str, Present], left: list[str], arrived: list[str]
) -> None:
    assert departures(before, after, "n1") == left
    assert arrivals(before, after, "n1") == arrived


# --- names ---------------------------------------------------------------------------------


def test_a_name_is_held_by_one_connection_of_one_node(redis_server: RedisServer) -> None:
    (_, one), (_, two) = node(redis_server, "n1"), node(redis_server, "n2")
    assert one.claim("alice", "c1")
    assert one.claim("alice", "c1")  # the same connection again: still its claim
    assert not one.claim("alice", "c2")  # another connection on the same node
    assert not two.claim("alice", "c9")
    assert two.holder("alice") == "n1/c1"
    assert one.release("alice")
    assert two.claim("alice", "c9") and one.holder("alice") == "n2/c9"


def test_many_nodes_claiming_one_name_at_the_same_instant_have_one_winner(redis_server: RedisServer) -> None:
    nodes = [node(redis_server, f"n{i}")[1] for i in range(8)]
    for round_ in range(20):
        barrier = threading.Barrier(len(nodes))
        won: list[bool] = [False] * len(nodes)

        def take(i: int, name: str, barrier: threading.Barrier = barrier, won: list[bool] = won) -> None:
            barrier.wait(WAIT)
            won[i] = nodes[i].claim(name, "c")

        threads = [threading.Thread(target=take, args=(i, f"name{round_}")) for i in range(len(nodes))]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(WAIT)
        assert sum(won) == 1, won
        assert nodes[0].holder(f"name{round_}") == f"n{won.index(True)}/c"


def test_an_expired_claim_taken_by_another_is_lost_not_stolen_back(redis_server: RedisServer) -> None:
    (_, one), (_, two) = node(redis_server, "n1", ttl=0.05), node(redis_server, "n2")
    assert one.claim("alice", "c1")
    wait_until(lambda: one.holder("alice") is None, "n1's claim to expire")
    assert two.claim("alice", "c2")
    assert one.refresh() == ["alice"]  # n1 must end its alice connection
    assert not one.release("alice")  # and cannot free what n2 holds
    assert two.holder("alice") == "n2/c2"


def test_refresh_renews_the_claims_ttl(redis_server: RedisServer) -> None:
    _, claims = node(redis_server, "n1")
    assert claims.claim("alice", "c1")
    with redis_server.client() as raw:
        raw.pexpire(b"susurro:name:alice", 1000)
        assert claims.refresh() == []
        assert 1000 < raw.pttl(b"susurro:name:alice") <= CLAIM_TTL * 1000


# --- a node that dies ------------------------------------------------------------------------

_NODE = """
import sys, time
from susurro.relay.cluster.connect import open_redis
from susurro.relay.cluster.presence import Presence
from susurro.relay.cluster.names import NameClaims
client = open_redis(sys.argv[1])
ttl = float(sys.argv[2])
presence, claims = Presence(client, "doomed", ttl=ttl), NameClaims(client, "doomed", ttl=ttl)
for name in ("bob", "carol"):
    presence.join(name, name.encode())
    assert claims.claim(name, "c-" + name)
print("ready", flush=True)
while True:
    time.sleep(ttl / 4)
    presence.refresh()
    claims.refresh()
"""


def test_a_node_killed_with_sigkill_loses_its_members_and_names_by_itself(redis_server: RedisServer) -> None:
    survivor, claims = node(redis_server, "n1")
    doomed = subprocess.Popen(
        [sys.executable, "-c", _NODE, redis_server.url, str(SHORT_TTL)],
        stdout=subprocess.PIPE,
        stdin=subprocess.DEVNULL,
    )
    try:
        assert doomed.stdout is not None
        assert doomed.stdout.readline() == b"ready\n"
        before = survivor.snapshot()
        assert set(before) == {"bob", "carol"} and not claims.claim("bob", "c1")
        doomed.send_signal(signal.SIGKILL)
        doomed.wait(WAIT)
        wait_until(lambda: survivor.snapshot() == {}, "the killed node's members to expire", timeout=PRESENCE_TTL + 5)
        assert departures(before, survivor.snapshot(), "n1") == ["bob", "carol"]
        assert "doomed" not in survivor.nodes()
        wait_until(lambda: claims.claim("bob", "c1"), "bob's name to be free again", timeout=CLAIM_TTL + 5)
    finally:
        if doomed.poll() is None:
            doomed.kill()
            doomed.wait(WAIT)
        if doomed.stdout is not None:
            doomed.stdout.close()


def test_redis_unreachable_is_a_typed_error_not_a_hang(redis_factory: Callable[..., RedisServer]) -> None:
    server = redis_factory()
    presence, claims = node(server, "n1")
    server.stop()
    with pytest.raises(PresenceError):
        presence.snapshot()
    with pytest.raises(ClaimError):
        claims.holder("alice")
    assert isinstance(PresenceError("x"), Exception) and not issubclass(PresenceError, redis.RedisError)


def test_a_node_redis_lost_is_held_over_until_it_writes_itself_again_or_expires(
    redis_factory: Callable[..., RedisServer],
) -> None:
    """Redis restarted empty: the first node to refresh read none of the other's members, and its relay
    announced them all leaving (and joining again at the other's next refresh). A node missing from a Redis
    that lost its data (no tombstone: it did not withdraw) counts until the expiry it last announced."""
    server = redis_factory()  # no persistence: a restart loses everything
    (one, _), (two, _) = node(server, "n1"), node(server, "n2", ttl=3.0)
    one.join("alice", b"a")
    two.join("bob", b"b")
    assert set(one.snapshot()) == {"alice", "bob"}
    server.restart()
    one.refresh()  # n1 is back first; n2 has not written itself again yet
    assert one.snapshot() == {"alice": Present("n1", b"a"), "bob": Present("n2", b"b")}
    assert one.held_over == ["n2"] and one.nodes_seen == ["n1", "n2"]
    two.refresh()
    assert one.snapshot() == {"alice": Present("n1", b"a"), "bob": Present("n2", b"b")}
    assert one.held_over == []  # written again: read from Redis, no longer held
    server.restart()
    one.refresh()  # and n2 never comes back (it died with Redis): it leaves when it would have expired
    assert set(one.snapshot()) == {"alice", "bob"}
    wait_until(lambda: set(one.snapshot()) == {"alice"}, "n2's members to expire as it last announced")
    assert one.held_over == []


def test_a_node_that_shuts_down_cleanly_is_not_held_over(redis_server: RedisServer) -> None:
    (one, _), (two, _) = node(redis_server, "n1"), node(redis_server, "n2")
    one.join("alice", b"a")
    two.join("bob", b"b")
    assert set(one.snapshot()) == {"alice", "bob"}
    two.withdraw()  # it leaves a tombstone: its members leave at once, as before
    assert one.snapshot() == {"alice": Present("n1", b"a")} and one.held_over == []


def test_a_node_that_died_is_not_held_over_in_the_moment_its_expiry_passes(redis_server: RedisServer) -> None:
    """review-s9-fixes 8: a node's expiry is kept on this process's clock, read a round trip after Redis's, so
    just as a dead node expired from Redis it still had a moment left here: a snapshot then held it one more
    interval and logged that Redis had lost it, untrue. Held only with more than HOLD_MARGIN left, which a
    live node Redis lost has (it refreshed 3 s or less before). This process's clock is the test's here."""
    clock = [1000.0]
    one = Presence(open_redis(redis_server.url), "n1", clock=lambda: clock[0])
    (two, _), (three, _) = node(redis_server, "n2"), node(redis_server, "n3")
    one.join("alice", b"a")
    two.join("bob", b"b")
    three.join("carol", b"c")
    assert set(one.snapshot()) == {"alice", "bob", "carol"}
    with redis_server.client() as raw:  # both vanish from Redis as an expiry or a loss would do it
        raw.delete(b"susurro:presence:n2", b"susurro:presence:n3")
        raw.zrem(b"susurro:presence:nodes", b"n2", b"n3")
    clock[0] += PRESENCE_TTL - HOLD_MARGIN / 2  # a moment before their expiry as kept here
    assert one.snapshot() == {"alice": Present("n1", b"a")} and one.held_over == []
    # Control: lost by Redis with more than the margin left, a node is held over.
    two.join("bob", b"b")
    three.join("carol", b"c")
    clock[0] += 1.0
    assert set(one.snapshot()) == {"alice", "bob", "carol"}
    with redis_server.client() as raw:
        raw.delete(b"susurro:presence:n2")
        raw.zrem(b"susurro:presence:nodes", b"n2")
    clock[0] += PRESENCE_TTL - 2 * HOLD_MARGIN
    assert set(one.snapshot()) == {"alice", "bob", "carol"} and one.held_over == ["n2"]


def test_a_node_redis_restored_from_an_older_save_is_held_over_too(
    redis_factory: Callable[..., RedisServer],
) -> None:
    """review-s9-tidy 1: Redis restarted from an older save (no append-only file) brings back whatever
    marker was in the save, and presence entries whose expiry has passed: the first fix (a random epoch
    token, which the save kept) saw no loss there, and bob left. Judged by the symptom, he is held over."""
    server = redis_factory()
    (one, _), (two, _) = node(server, "n1"), node(server, "n2", ttl=3.0)
    one.join("alice", b"a")
    two.join("bob", b"b")
    assert set(one.snapshot()) == {"alice", "bob"}
    with server.client() as raw:
        raw.save()  # dump.rdb, loaded at the restart
    settle = time.monotonic() + 3.5  # past n2's TTL as saved: the save's presence is stale
    while time.monotonic() < settle:
        one.refresh()
        two.refresh()
        assert set(one.snapshot()) == {"alice", "bob"}
        time.sleep(0.5)
    server.restart()
    one.refresh()
    assert one.snapshot() == {"alice": Present("n1", b"a"), "bob": Present("n2", b"b")}
    assert one.held_over == ["n2"]
