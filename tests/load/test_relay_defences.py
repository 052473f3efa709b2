"""Defences of the event-loop relay against real sockets.

Dribbled frames, unfinished frames past their budget, the memory budget,
members behind on a backlog, idle pre-join sockets. Each test shows the
defence working and would fail without it; everyone else keeps chatting.
Counts and states, never wall-clock times.
"""

from __future__ import annotations

import logging
import secrets
import socket
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from susurro.protocol import Ack, Deliver, Error, Joined, Keepalive
from susurro.relay import RelayServer
from susurro.relay import server as relay_server_module
from tests.helpers.hostile_client import (
    Closed,
    HostileClient,
    NoFrame,
    assert_pair_can_chat,
    connect,
    length_prefix,
)
from tests.helpers.system import WAIT, log_lines, wait_until

Factory = Callable[..., RelayServer]


@pytest.fixture
def clients() -> Iterator[list[HostileClient]]:
    opened: list[HostileClient] = []
    try:
        yield opened
    finally:
        for client in opened:
            client.close()


def member(server: RelayServer, clients: list[HostileClient], name: str, **kwargs: Any) -> HostileClient:
    client = connect(server, **kwargs)
    clients.append(client)
    client.join(name)
    return client


def closed_within(client: HostileClient, seconds: float, tick: Callable[[], None]) -> list[Any]:
    """Call ``tick`` every 0.1 s until the relay closes ``client``; the frames it sent before."""
    frames: list[Any] = []
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        try:
            frames.append(client.recv_frame(timeout=0.1))
            continue
        except Closed:
            return frames
        except NoFrame:
            pass
        try:
            tick()
        except OSError:
            return frames
    raise AssertionError(f"still connected after {seconds:g} s; it sent {frames!r}")


# --- dribbled partial frames ---------------------------------------------------------------


def test_dribbled_bytes_of_an_unfinished_frame_do_not_reset_the_idle_timer(
    relay_factory: Factory, clients: list[HostileClient], caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="susurro.relay")
    server = relay_factory(idle_ping=0.3, idle_timeout=0.9, frame_timeout=600.0)
    dribbler = member(server, clients, "dribbler")
    dribbler.send_raw(length_prefix(100_000) + b"\x81")  # a frame of 100 kB, begun
    # One byte a tenth of a second: before, each reset the timer and it stayed for ever.
    frames = closed_within(dribbler, 10.0, lambda: dribbler.send_raw(b"\x00"))
    errors = [f for f in frames if isinstance(f, Error)]
    assert [e.code for e in errors] == ["idle_timeout"]
    assert any(isinstance(f, Keepalive) for f in frames)
    wait_until(lambda: bool(log_lines(caplog.records, "leave name=dribbler ")), "the leave line")
    assert log_lines(caplog.records, "leave name=dribbler ")[0].split()[3] == "reason=idle_timeout"
    assert_pair_can_chat(server)


def test_a_started_frame_must_complete_by_the_frame_timeout(
    relay_factory: Factory, clients: list[HostileClient], caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="susurro.relay")
    server = relay_factory(frame_timeout=0.5, idle_ping=30.0, idle_timeout=60.0)
    slow = member(server, clients, "slow")
    slow.send_raw(length_prefix(50_000) + b"\x81")
    frames = closed_within(slow, 10.0, lambda: slow.send_raw(b"\x00" * 100))
    errors = [f for f in frames if isinstance(f, Error)]
    assert len(errors) == 1 and errors[0].code == "idle_timeout"
    assert "is not complete" in errors[0].detail
    wait_until(lambda: bool(log_lines(caplog.records, "leave name=slow ")), "the leave line")
    assert log_lines(caplog.records, "leave name=slow ")[0].split()[3] == "reason=frame_timeout"
    assert_pair_can_chat(server)


def test_unfinished_frames_past_their_budget_cut_the_largest_holder_first(
    relay_factory: Factory, clients: list[HostileClient], caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="susurro.relay")
    server = relay_factory(max_partial_bytes=300 * 1024, frame_timeout=600.0)
    small = member(server, clients, "small")
    medium = member(server, clients, "medium")
    big = member(server, clients, "big")
    for client, size in ((small, 20_000), (medium, 100_000)):
        client.send_raw(length_prefix(900_000) + b"\x81" + b"\x00" * size)
    wait_until(lambda: server.budget.inbound >= 120_000, "the relay holds both unfinished frames")
    big.send_raw(length_prefix(900_000) + b"\x81" + b"\x00" * 250_000)  # 370 kB in all: past 300 KiB
    big_error = big.expect_error("full", skip=("joined",))
    assert "held the most" in big_error.detail
    big.expect_closed()
    wait_until(lambda: bool(log_lines(caplog.records, "leave name=big ")), "big's leave line")
    assert log_lines(caplog.records, "leave name=big ")[0].split()[3] == "reason=memory"
    wait_until(lambda: server.budget.inbound < 300 * 1024, "the relay let go of big's bytes")
    # The smaller holders are still connected.
    assert server.core.connection_count == 2
    assert not log_lines(caplog.records, "leave name=small ") and not log_lines(caplog.records, "leave name=medium ")
    assert_pair_can_chat(server)


# --- one memory budget -------------------------------------------------------------------------


def test_the_memory_budget_delays_senders_instead_of_buffering_without_end(
    relay_factory: Factory, clients: list[HostileClient]
) -> None:
    budget = 4 * 1024 * 1024
    server = relay_factory(memory_budget=budget, outbox_bytes=256 * 1024 * 1024, send_timeout=600.0, rate_per_second=0)
    sloth = member(server, clients, "sloth", rcvbuf=4096)
    sender = member(server, clients, "sender")
    sloth.expect_frame(Joined)
    ct = secrets.token_bytes(64 * 1024)
    count = 200  # 12.5 MiB for the sloth: three times the budget
    peak = 0
    stop = threading.Event()

    def watch() -> None:
        nonlocal peak
        while not stop.is_set():
            peak = max(peak, server.budget.used)
            time.sleep(0.005)

    watcher = threading.Thread(target=watch)
    watcher.start()
    writer = threading.Thread(
        target=lambda: sender.send_raw(b"".join(_send_frame(f"m{i}", {"sloth": ct}) for i in range(count)))
    )
    writer.daemon = True
    sender.sock.settimeout(WAIT)
    writer.start()
    try:
        # The sloth does not read: the relay stops reading the sender once the budget is used up.
        wait_until(lambda: server.budget.used >= budget * 0.9, "the budget filled")
        time.sleep(0.5)  # the point of the test: time passes and the relay holds no more
        acked = _acks_so_far(sender)
        assert len(acked) < count, "the sender was not slowed down"
        assert all(not a.missing for a in acked), "nothing was refused or dropped, only delayed"
        # Now the sloth reads: everything arrives, in order.
        got = [sloth.recv_frame(timeout=WAIT) for _ in range(count)]
        assert [d.id for d in got if isinstance(d, Deliver)] == [f"m{i}" for i in range(count)]
        writer.join(WAIT)
        acked += [sender.recv_frame(timeout=WAIT) for _ in range(count - len(acked))]
        assert [a.id for a in acked] == [f"m{i}" for i in range(count)]
        assert all(a.delivered == ("sloth",) for a in acked)
    finally:
        stop.set()
        watcher.join(WAIT)
    # One recv per I/O thread and one frame past the total, at most.
    assert peak <= budget + 2 * (64 * 1024 + 70 * 1024), f"held {peak} bytes for a budget of {budget}"
    assert_pair_can_chat(server)


def _send_frame(msg_id: str, to: dict[str, bytes]) -> bytes:
    from susurro.protocol import Send, encode

    return encode(Send(id=msg_id, to=to))


def _acks_so_far(client: HostileClient) -> list[Ack]:
    acks: list[Ack] = []
    while True:
        try:
            frame = client.recv_frame(timeout=0.2)
        except NoFrame:
            return acks
        if isinstance(frame, Ack):
            acks.append(frame)


# --- keepalives do not queue behind deliveries ------------------------------------------------


def test_a_member_behind_on_a_backlog_is_alive_while_its_socket_drains(
    relay_factory: Factory, clients: list[HostileClient], caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="susurro.relay")
    server = relay_factory(idle_ping=0.2, idle_timeout=0.6, outbox_bytes=64 * 1024 * 1024, rate_per_second=0)
    behind = member(server, clients, "behind", rcvbuf=8192)
    sender = member(server, clients, "sender")
    behind.expect_frame(Joined)
    ct = secrets.token_bytes(32 * 1024)
    count = 150  # 4.7 MiB queued for "behind" at once
    sender.send_raw(b"".join(_send_frame(f"b{i}", {"behind": ct}) for i in range(count)))
    # "behind" reads slowly and never sends a byte: its keepalive sits behind the backlog,
    # so it cannot answer; its socket keeps taking bytes, so it is alive.
    got: list[Any] = []
    deadline = time.monotonic() + 60
    while len([f for f in got if isinstance(f, Deliver)]) < count:
        assert time.monotonic() < deadline
        got.append(behind.recv_frame(timeout=WAIT))
        if isinstance(got[-1], Error):
            pytest.fail(f"a draining member was dropped: {got[-1]}")
        time.sleep(0.01)  # about 3 MB/s: the backlog takes seconds to drain
    assert [f.id for f in got if isinstance(f, Deliver)] == [f"b{i}" for i in range(count)]
    assert not log_lines(caplog.records, "leave name=behind ")
    # Once drained and still silent, it is probed and dropped as any quiet member is.
    frames = closed_within(behind, 10.0, lambda: None)
    assert [f.code for f in frames if isinstance(f, Error)] == ["idle_timeout"]


# --- pre-join connections have their own quota ------------------------------------------------


def test_idle_pre_join_sockets_cannot_keep_a_member_out(
    relay_factory: Factory, clients: list[HostileClient], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(relay_server_module, "PENDING_GRACE", 0.2)
    server = relay_factory(max_clients=20, max_pending=5)
    alice = member(server, clients, "alice")
    idle: list[socket.socket] = []
    try:
        for _ in range(25):  # more idle sockets than the relay has slots
            idle.append(socket.create_connection(server.address, timeout=WAIT))
            time.sleep(0.05)
        time.sleep(0.3)  # past the grace: they may be cut now
        bob = member(server, clients, "bob")  # a real member still gets in
        alice.expect_frame(Joined)
        assert server.core.connection_count <= 2 + 5 + 1
        # The oldest idle sockets were the ones cut, each told why.
        cut = 0
        for sock in idle[:10]:
            sock.settimeout(WAIT)
            data = b""
            while chunk := sock.recv(65536):
                data += chunk
            cut += b"other connections are waiting to join" in data
        assert cut == 10
    finally:
        for sock in idle:
            sock.close()
    bob.send_message("hi", {"alice": b"\x01" * 40})
    assert alice.expect_frame(Deliver) == Deliver(sender="bob", id="hi", ct=b"\x01" * 40)
    assert isinstance(bob.expect_frame(Ack), Ack)
