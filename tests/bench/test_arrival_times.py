"""The load generator's arrival times: the kernel's receive stamp of a read, on real loopback sockets.

A copy's arrival latency is what the server controls; its read latency adds
the generator's own delay in reading it. These tests check the stamp is
asked for, parsed, put on the senders' clock, and falls back (counted) where
the kernel gives none. Every wait is bounded; no test asserts a duration.
"""

from __future__ import annotations

import selectors
import socket
import sys
import time
from collections.abc import Iterator
from contextlib import AbstractContextManager, contextmanager
from multiprocessing import Pipe

import pytest

from benchmarks.loadgen import (
    SCM_TIMESTAMPNS,
    TIMESPEC,
    ArrivalClock,
    Client,
    Worker,
    ask_arrival_timestamps,
    kernel_arrival_ns,
    read_stamped,
)
from tests.helpers.loopback import connected_pair

#: The longest any test waits for a loopback byte to become readable, or for the kernel to stamp one.
READABLE_WAIT = 5.0


def loopback_pair() -> AbstractContextManager[tuple[socket.socket, socket.socket]]:
    """A connected TCP pair on 127.0.0.1 (an ephemeral port): (sender, receiver)."""
    return connected_pair(READABLE_WAIT)


def wait_readable(sock: socket.socket) -> None:
    with selectors.DefaultSelector() as selector:
        selector.register(sock, selectors.EVENT_READ)
        assert selector.select(READABLE_WAIT), "the loopback byte never became readable"


@pytest.fixture(scope="module")
def stamping_on() -> Iterator[None]:
    """Linux turns receive timestamps on for the whole host when the first socket asks, but later,
    from a work queue: a segment that arrives before then has no stamp. One socket that asks is held
    open for these tests (the switch stays on while any does), and used until a read comes stamped."""
    if sys.platform != "linux":
        pytest.skip("SO_TIMESTAMPNS is Linux's")
    buffers, clock = [bytearray(64)], ArrivalClock()
    with loopback_pair() as (sender, receiver):
        assert ask_arrival_timestamps(receiver)
        deadline = time.monotonic() + READABLE_WAIT
        while True:
            sender.sendall(b"w")
            wait_readable(receiver)
            if read_stamped(receiver, buffers, clock)[1] is not None:
                break
            assert time.monotonic() < deadline, "the kernel never stamped a read (SO_TIMESTAMPNS)"
            time.sleep(0.01)
        yield


@pytest.mark.usefixtures("stamping_on")
def test_a_read_carries_the_kernels_arrival_before_the_read() -> None:
    clock = ArrivalClock()
    buffer = bytearray(1024)
    with loopback_pair() as (sender, receiver):
        assert ask_arrival_timestamps(receiver)
        sent = time.monotonic_ns()
        sender.sendall(b"x" * 100)
        wait_readable(receiver)
        time.sleep(0.02)  # the copy waits in the socket, as one does for a preempted generator
        before_read = time.monotonic_ns()
        count, arrived = read_stamped(receiver, [buffer], clock)
    assert count == 100
    assert arrived is not None, "the kernel gave no SCM_TIMESTAMPNS"
    # On the senders' clock: after the send began, and before this process began to read it.
    assert sent <= arrived < before_read


def test_a_socket_that_did_not_ask_has_no_arrival() -> None:
    buffer = bytearray(1024)
    with loopback_pair() as (sender, receiver):
        sender.sendall(b"y")
        wait_readable(receiver)
        count, arrived = read_stamped(receiver, [buffer], ArrivalClock())
    assert (count, arrived) == (1, None)


def test_the_timestamp_is_parsed_from_its_control_message_only() -> None:
    stamp = TIMESPEC.pack(1_700_000_000, 123_456_789)
    assert kernel_arrival_ns([(socket.SOL_SOCKET, SCM_TIMESTAMPNS, stamp)]) == 1_700_000_000_123_456_789
    assert kernel_arrival_ns([]) is None
    assert kernel_arrival_ns([(socket.IPPROTO_TCP, SCM_TIMESTAMPNS, stamp)]) is None  # another level
    assert kernel_arrival_ns([(socket.SOL_SOCKET, SCM_TIMESTAMPNS + 1, stamp)]) is None  # another type
    assert kernel_arrival_ns([(socket.SOL_SOCKET, SCM_TIMESTAMPNS, stamp[:8])]) is None  # cut short
    assert kernel_arrival_ns([(socket.SOL_SOCKET, SCM_TIMESTAMPNS, stamp)], offset=123_456_789) == 1_700_000_000 * 10**9


def test_the_clock_offset_maps_the_wall_clock_onto_monotonic() -> None:
    clock = ArrivalClock()
    assert clock.monotonic(clock.offset + 42) == 42
    clock.offset = 1_000
    clock.measure()  # a new step takes the offset again
    assert clock.offset != 1_000


@contextmanager
def worker_reading(stamped: bool) -> Iterator[tuple[Worker, socket.socket]]:
    """A generator worker with one ready client whose socket does (or does not) ask for arrival stamps."""
    ours, theirs = Pipe()
    worker = Worker(theirs)
    try:
        with loopback_pair() as (server_side, client_side):
            if stamped:
                assert ask_arrival_timestamps(client_side)
            client_side.setblocking(False)
            client = Client(name="c", sock=client_side, state="ready")
            worker.selector.register(client_side, selectors.EVENT_READ, client)
            worker.clients.append(client)
            yield worker, server_side
    finally:
        worker.selector.close()
        ours.close()
        theirs.close()


def read_two_copies(worker: Worker, server_side: socket.socket) -> None:
    """The server sends one read's worth holding two copies (frame dialect), stamped now."""
    worker.t0 = time.monotonic_ns()
    stamp = b"x%020dz" % worker.t0
    server_side.sendall(b"\x00\x00\x00\x16" + stamp + b"\x00\x00\x00\x16" + stamp)
    deadline = time.monotonic() + READABLE_WAIT
    while len(worker.latencies) < 2 and time.monotonic() < deadline:
        worker._poll(0.05)
    assert len(worker.latencies) == 2, "the worker did not read both copies"


@pytest.mark.usefixtures("stamping_on")
def test_the_worker_times_each_copy_at_its_arrival() -> None:
    with worker_reading(stamped=True) as (worker, server_side):
        read_two_copies(worker, server_side)
    assert worker.unstamped == 0
    assert len(worker.arrivals) == 2
    # Both copies came in one read, so they share its one (latest) arrival, never after their read.
    assert worker.arrivals[0] == worker.arrivals[1]
    assert all(0 <= a <= r for a, r in zip(worker.arrivals, worker.latencies, strict=True))


def test_a_read_without_a_stamp_falls_back_to_its_read_time_and_is_counted() -> None:
    with worker_reading(stamped=False) as (worker, server_side):
        read_two_copies(worker, server_side)
    assert worker.unstamped == 2
    assert list(worker.arrivals) == list(worker.latencies)
