"""The relay's limits against real sockets: flood control, keepalive, per-address
limit, silent sockets at the handshake timeout, slow consumers, clients killed
mid-frame, and no thread or descriptor left behind by any of them.

Every test also checks that everyone else kept every message: one misbehaving
client never costs another member a frame. Counts, not wall-clock times.
"""

from __future__ import annotations

import contextlib
import logging
import secrets
import selectors
import socket
import time
from collections.abc import Callable
from typing import Any

import pytest

from susurro.protocol import Ack, Deliver, Frame, Joined, Keepalive, KeepaliveAck, Left, Ping, Pong
from susurro.protocol.limits import PROTOCOL_VERSION
from susurro.relay import RelayServer
from tests.helpers.hostile_client import (
    HostileClient,
    assert_can_chat,
    assert_pair_can_chat,
    connect,
    joined_client,
    raw_frame,
)
from tests.helpers.system import WAIT, log_lines, open_fds, wait_until

Factory = Callable[..., RelayServer]


def room(server: RelayServer, member: Any, names: list[str]) -> dict[str, HostileClient]:
    """Join ``names`` in order; every member has seen every later join when this returns."""
    members: dict[str, HostileClient] = {}
    for name in names:
        members[name] = member(server, name)
    for index, name in enumerate(names):
        for _ in names[index + 1 :]:
            members[name].expect_frame(Joined)
    return members


def read_until(client: HostileClient, done: Callable[[list[Frame]], bool], limit: int = 100_000) -> list[Frame]:
    """Read frames until ``done(frames so far)``; each read bounded by WAIT, the count by ``limit``."""
    frames: list[Frame] = []
    while not done(frames):
        assert len(frames) < limit, "far more frames than the test sent"
        frames.append(client.recv_frame(timeout=WAIT))
    return frames


def tally(frames: list[Frame], *, left: str) -> tuple[list[Deliver], list[Ack], bool]:
    delivers = [f for f in frames if isinstance(f, Deliver)]
    acks = [f for f in frames if isinstance(f, Ack)]
    return delivers, acks, Left(name=left) in frames


# --- flood control --------------------------------------------------------------


def test_a_flood_is_slowed_then_cut_while_everyone_elses_messages_arrive(
    relay_factory: Factory, member: Any, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="susurro.relay")
    server = relay_factory(rate_burst=20, rate_per_second=10.0, rate_grace=1.0)
    names = [f"m{i}" for i in range(9)]
    members = room(server, member, [*names, "flooder"])
    flooder = members.pop("flooder")
    # 2,000 frames in one write: far past the burst, faster than any refill.
    flood = b"".join(
        raw_frame({"v": PROTOCOL_VERSION, "t": "send", "id": f"f{i}", "to": {n: b"\xff" * 40 for n in names}})
        for i in range(2000)
    )
    flooder.sock.settimeout(0.2)  # the relay stops reading it: send what the kernel takes
    rounds = 10  # each honest member sends 10 frames: within its own burst
    for r in range(rounds):
        if r == 1:
            with contextlib.suppress(OSError):
                flooder.sock.sendall(flood)
        for sender in names:
            others = {n: secrets.token_bytes(60) for n in names if n != sender}
            members[sender].send_message(f"{sender}-{r}", others)
    honest_expected = rounds * (len(names) - 1)

    def complete(frames: list[Frame]) -> bool:
        delivers, acks, left = tally(frames, left="flooder")
        return left and len(acks) == rounds and sum(d.sender != "flooder" for d in delivers) >= honest_expected

    for name in names:
        delivers, acks, _ = tally(read_until(members[name], complete), left="flooder")
        honest = [d for d in delivers if d.sender != "flooder"]
        assert len(honest) == honest_expected, f"{name} lost honest messages"
        assert {d.id for d in honest} == {f"{s}-{r}" for s in names if s != name for r in range(rounds)}
        # The flood was paced, not let through: the burst, then one frame per token until the cut.
        flooded = [d.id for d in delivers if d.sender == "flooder"]
        assert 20 <= len(flooded) < 2000
        assert flooded == [f"f{i}" for i in range(len(flooded))], "paced frames keep their order"
        assert all(not a.missing for a in acks), "every honest send was delivered to all"
    refusals = log_lines(caplog.records, "reject name=flooder ")
    # Nothing was dropped along the way: one refusal, the one that ends the connection.
    assert len(refusals) == 1 and "code=rate_limited" in refusals[0] and "closing" in refusals[0]
    wait_until(lambda: bool(log_lines(caplog.records, "leave name=flooder ")), "the flooder's leave line")
    assert log_lines(caplog.records, "leave name=flooder ")[0].split()[3] == "reason=rate_limited"
    assert_pair_can_chat(server)


def test_a_backlog_past_the_burst_is_delayed_and_delivered_not_refused(relay_factory: Factory, member: Any) -> None:
    """60 messages at once (typed through an outage, or held over a reconnect) all arrive."""
    server = relay_factory(rate_burst=20, rate_per_second=40.0)
    alice = member(server, "alice")
    bob = member(server, "bob")
    alice.expect_frame(Joined)
    alice.send_raw(
        b"".join(
            raw_frame({"v": PROTOCOL_VERSION, "t": "send", "id": f"held{i}", "to": {"bob": bytes([i]) * 40}})
            for i in range(60)
        )
    )
    acks = [alice.recv_frame(timeout=WAIT) for _ in range(60)]
    assert acks == [Ack(id=f"held{i}", delivered=("bob",), missing=()) for i in range(60)], "none refused"
    delivered = [bob.recv_frame(timeout=WAIT) for _ in range(60)]
    assert delivered == [Deliver(sender="alice", id=f"held{i}", ct=bytes([i]) * 40) for i in range(60)]
    alice.send_frame(Ping())
    assert isinstance(alice.recv_frame(), Pong)  # still connected


def test_a_short_burst_over_the_limit_is_answered_late_not_refused(relay_factory: Factory, member: Any) -> None:
    server = relay_factory(rate_burst=5, rate_per_second=4.0)
    alice = member(server, "alice")
    alice.send_raw(raw_frame({"v": PROTOCOL_VERSION, "t": "ping"}) * 8)
    frames = [alice.recv_frame(timeout=WAIT) for _ in range(8)]
    assert frames == [Pong()] * 8


def test_a_client_that_waits_for_its_answers_is_paced_for_ever_never_cut(relay_factory: Factory, member: Any) -> None:
    """A client that does not pace but waits for each step's answers (an old one, sending at the rate) is
    delayed, never cut: the relay catches up with it after every step, which ends the throttled spell,
    although its bucket never fills again while the next step arrives at once."""
    server = relay_factory(rate_burst=5, rate_per_second=50.0, rate_grace=1.0)
    alice = member(server, "alice")
    steps, per_step = 40, 10  # 400 frames: 8 s at the rate, eight times the grace, all delayed past the burst
    for _ in range(steps):
        alice.send_raw(raw_frame({"v": PROTOCOL_VERSION, "t": "ping"}) * per_step)
        assert [alice.recv_frame(timeout=WAIT) for _ in range(per_step)] == [Pong()] * per_step


# --- keepalive --------------------------------------------------------------------


def test_a_quiet_member_is_probed_and_dropped_if_it_never_answers(
    relay_factory: Factory, member: Any, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="susurro.relay")
    server = relay_factory(idle_ping=0.3, idle_timeout=0.9)
    mute = member(server, "mute")
    answering = member(server, "answering")
    assert isinstance(mute.expect_frame(Joined), Joined)
    # "answering" answers every keepalive, and is still in the room after "mute" is gone.
    keepalives = 0
    seen: list[Frame] = []
    while Left(name="mute") not in seen or keepalives < 4:
        assert len(seen) < 50
        seen.append(answering.recv_frame())
        if isinstance(seen[-1], Keepalive):
            keepalives += 1
            answering.send_frame(KeepaliveAck())
    # "mute" got one keepalive, then the idle timeout.
    assert isinstance(mute.recv_frame(), Keepalive)
    assert mute.expect_error("idle_timeout").detail == "nothing heard for 0.9 s"
    mute.expect_closed()
    wait_until(lambda: bool(log_lines(caplog.records, "leave name=mute ")), "the leave line")
    assert log_lines(caplog.records, "leave name=mute ")[0].split()[3] == "reason=idle_timeout"
    answering.send_frame(Ping())
    assert isinstance(answering.expect_frame(Pong, skip=("keepalive",)), Pong)


def test_a_client_core_answers_keepalives_by_itself(relay_factory: Factory) -> None:
    """A real ``RelayConnection`` stays joined through many idle periods."""
    import queue

    from susurro.client.connection import RelayConnection
    from susurro.client.events import Connected, Disconnected
    from susurro.client.session import ClientSession
    from susurro.crypto import IdentityKey

    server = relay_factory(idle_ping=0.2, idle_timeout=0.6)
    events: queue.Queue[object] = queue.Queue()
    session = ClientSession(IdentityKey.generate(), "quiet")
    host, port = server.address
    connection = RelayConnection.open(session, host, port, events)
    try:
        assert isinstance(events.get(timeout=WAIT), Connected)
        time.sleep(2.0)  # ten keepalive periods of silence from the user: the point of the test
        assert server.core.connection_count == 1
        while not events.empty():
            assert not isinstance(events.get_nowait(), Disconnected)
    finally:
        connection.close()


# --- per-address limit -------------------------------------------------------------


def test_per_address_limit_applies_to_loopback_when_asked(
    relay_factory: Factory, hostile_clients: list[HostileClient]
) -> None:
    server = relay_factory(max_per_ip=2, limit_loopback=True)
    first, second = connect(server), connect(server)
    hostile_clients += [first, second]
    first.challenge()
    second.challenge()
    third = connect(server)
    hostile_clients.append(third)
    third.expect_error("too_many_connections")
    third.expect_closed()
    first.close()
    wait_until(lambda: server.core.connection_count == 1, "the relay noticed the close")
    fourth = connect(server)
    hostile_clients.append(fourth)
    fourth.challenge()  # the slot is free again


def test_loopback_is_exempt_from_the_per_address_limit_by_default(
    relay_factory: Factory, hostile_clients: list[HostileClient]
) -> None:
    server = relay_factory(max_per_ip=2)
    for _ in range(6):
        client = connect(server)
        hostile_clients.append(client)
        client.challenge()
    assert server.core.connection_count == 6


# --- silent sockets -----------------------------------------------------------------


def test_200_silent_sockets_are_closed_at_the_handshake_timeout_while_members_chat(
    relay_factory: Factory, member: Any
) -> None:
    server = relay_factory(handshake_timeout=1.0)
    baseline_threads = server.thread_count()
    # The pair joins first: on a loaded machine its own handshake could outlast the 1 s meant for the silent ones.
    receiver, sender = member(server, "quiet-receiver"), member(server, "quiet-sender")
    receiver.expect_frame(Joined)
    silent: list[socket.socket] = []
    selector = selectors.DefaultSelector()
    try:
        for _ in range(200):
            sock = socket.create_connection(server.address, timeout=WAIT)
            sock.setblocking(False)
            silent.append(sock)
            selector.register(sock, selectors.EVENT_READ)
        # Meanwhile the pair chats through the same relay.
        assert_can_chat(receiver, sender)
        # Every silent socket gets its challenge, then the error, then EOF.
        received = {sock.fileno(): b"" for sock in silent}
        open_count = len(silent)
        deadline = time.monotonic() + WAIT
        while open_count:
            assert time.monotonic() < deadline, f"{open_count} silent sockets still open"
            for key, _ in selector.select(timeout=1.0):
                sock = key.fileobj
                assert isinstance(sock, socket.socket)
                try:
                    data = sock.recv(65536)
                except ConnectionResetError:
                    data = b""
                if data:
                    received[sock.fileno()] += data
                else:
                    selector.unregister(sock)
                    open_count -= 1
        assert all(b"handshake_timeout" in data for data in received.values())
    finally:
        selector.close()
        for sock in silent:
            sock.close()
    wait_until(lambda: server.core.connection_count == 2, "the relay forgot the silent sockets (the pair stays)")
    wait_until(lambda: server.thread_count() == baseline_threads, "relay threads back to baseline")


# --- slow consumer ---------------------------------------------------------------------


def test_a_reader_that_stops_is_evicted_while_a_10_member_room_keeps_every_message(
    relay_factory: Factory, member: Any, hostile_clients: list[HostileClient], caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="susurro.relay")
    server = relay_factory(outbox_bytes=64 * 1024)
    names = [f"r{i}" for i in range(10)]
    members = room(server, member, names)
    sloth = connect(server, rcvbuf=4096)
    hostile_clients.append(sloth)
    sloth.join("sloth")
    for name in names:
        members[name].expect_frame(Joined)
    rounds = 15  # within each sender's burst of 20 frames
    big = secrets.token_bytes(60 * 1024)  # the sloth's copy is big, to fill its buffers fast
    for r in range(rounds):
        for sender in names:
            to = {n: secrets.token_bytes(1024) for n in names if n != sender}
            to["sloth"] = big
            members[sender].send_message(f"{sender}-{r}", to)
    expected = rounds * (len(names) - 1)

    def complete(frames: list[Frame]) -> bool:
        delivers, acks, left = tally(frames, left="sloth")
        return left and len(acks) == rounds and len(delivers) >= expected

    for name in names:
        delivers, acks, _ = tally(read_until(members[name], complete), left="sloth")
        assert len(delivers) == expected
        assert {d.id for d in delivers} == {f"{s}-{r}" for s in names if s != name for r in range(rounds)}
        for ack in acks:
            assert set(ack.missing) <= {"sloth"}
            assert set(ack.delivered) == set(names) - {name} | ({"sloth"} - set(ack.missing))
    leave = log_lines(caplog.records, "leave name=sloth ")
    assert leave and leave[0].split()[3] == "reason=slow_consumer"


# --- killed mid-frame ---------------------------------------------------------------------


def test_a_client_killed_mid_frame_leaves_and_nothing_partial_is_forwarded(
    relay_factory: Factory, member: Any, hostile_clients: list[HostileClient]
) -> None:
    server = relay_factory()
    names = [f"w{i}" for i in range(5)]
    members = room(server, member, names)
    victim = connect(server)
    hostile_clients.append(victim)
    victim.join("victim")
    for name in names:
        members[name].expect_frame(Joined)
    # One complete frame, then half of the next, then RST (SO_LINGER 0).
    whole = raw_frame({"v": PROTOCOL_VERSION, "t": "send", "id": "whole", "to": {n: b"\x01" * 300 for n in names}})
    half = raw_frame({"v": PROTOCOL_VERSION, "t": "send", "id": "half", "to": {n: b"\x02" * 300 for n in names}})
    victim.send_raw(whole + half[: len(half) // 2])
    victim.abort()
    for name in names:
        first = members[name].recv_frame()
        assert first == Deliver(sender="victim", id="whole", ct=b"\x01" * 300)
        assert members[name].recv_frame() == Left(name="victim")
    wait_until(lambda: server.core.connection_count == len(names), "the relay dropped the victim")
    for name in names:  # nothing else, in particular no "half", is pending for anyone
        members[name].send_frame(Ping())
        assert isinstance(members[name].recv_frame(), Pong)
    assert_pair_can_chat(server)


# --- no leaks ------------------------------------------------------------------------------


def test_no_thread_or_descriptor_outlives_its_client(relay_factory: Factory) -> None:
    server = relay_factory()
    baseline_threads = server.thread_count()
    baseline_fds = open_fds()
    for cycle in range(3):
        group = [joined_client(server, f"c{cycle}x{i}") for i in range(30)]
        assert server.thread_count() == baseline_threads  # no thread per connection: the I/O loops serve all
        for index, client in enumerate(group):
            if index % 3 == 0:
                client.abort()  # RST
            elif index % 3 == 1:
                client.close()  # FIN
            else:
                client.send_raw(raw_frame({"v": PROTOCOL_VERSION, "t": "bye"}))  # a clean leave
                client.close()
        wait_until(lambda: server.core.connection_count == 0, "every connection forgotten")
        wait_until(lambda: server.thread_count() == baseline_threads, "relay threads back to baseline")
        wait_until(lambda: open_fds() <= baseline_fds, f"descriptors back to {baseline_fds}")
