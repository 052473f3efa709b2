"""A generator that reads behind the server is said so in the step's note.

Past saturation a member whose socket holds megabytes it has not read is not keeping pace,
and the relay evicts it (its 1 MiB outbox). The step then loses members because of the
generator, and its note must say so (``reading_behind_note``), as ``generator-bound`` says a
generator fell behind its sending schedule. These tests use real loopback sockets: the
kernel's own count of unread bytes (FIONREAD). Every wait is bounded.
"""

from __future__ import annotations

import selectors
import socket
import time
from contextlib import AbstractContextManager
from multiprocessing import Pipe

from benchmarks.loadgen import Client, Worker, unread_bytes
from benchmarks.relay_load import READ_BEHIND_BYTES, StepResult, format_row, reading_behind_note
from tests.helpers.loopback import connected_pair

#: The longest a test waits for bytes sent on loopback to be in the receiver's queue.
ARRIVAL_WAIT = 5.0
#: Fits in a loopback socket's buffers without a reader.
SENT = 64 * 1024


def loopback_pair() -> AbstractContextManager[tuple[socket.socket, socket.socket]]:
    """A connected TCP pair on 127.0.0.1: (sender, receiver)."""
    return connected_pair(ARRIVAL_WAIT)


def wait_unread(sock: socket.socket, count: int) -> int:
    """``unread_bytes(sock)`` once it reaches ``count`` (or what it is when the wait runs out)."""
    deadline = time.monotonic() + ARRIVAL_WAIT
    seen = unread_bytes(sock)
    while seen < count and time.monotonic() < deadline:
        time.sleep(0.01)
        seen = unread_bytes(sock)
    return seen


def test_unread_bytes_counts_what_the_kernel_holds_until_it_is_read() -> None:
    with loopback_pair() as (sender, receiver):
        assert unread_bytes(receiver) == 0
        sender.sendall(b"c" * SENT)
        assert wait_unread(receiver, SENT) == SENT
        receiver.settimeout(ARRIVAL_WAIT)
        got = 0
        while got < SENT:
            chunk = receiver.recv(SENT - got)
            assert chunk, "the sender's bytes ended early"
            got += len(chunk)
        assert unread_bytes(receiver) == 0


def test_a_worker_reports_the_most_any_ready_client_left_unread() -> None:
    ours, theirs = Pipe()
    worker = Worker(theirs)
    try:
        with loopback_pair() as (server_a, client_a), loopback_pair() as (server_b, client_b):
            for name, sock in (("a", client_a), ("b", client_b)):
                client = Client(name=name, sock=sock, state="ready")
                worker.selector.register(sock, selectors.EVENT_READ, client)
                worker.clients.append(client)
            assert worker.most_unread() == 0
            server_a.sendall(b"a" * 1000)
            server_b.sendall(b"b" * SENT)
            wait_unread(client_a, 1000)
            wait_unread(client_b, SENT)
            assert worker.most_unread() == SENT
            worker.clients[1].closed = True  # a dropped client no longer counts
            assert worker.most_unread() == 1000
            client_a.close()  # a socket closed under it (fileno -1) counts as nothing, never raises
            assert worker.most_unread() == 0
    finally:
        worker.selector.close()
        ours.close()
        theirs.close()


def test_a_step_reports_what_a_client_it_could_not_read_left_unread() -> None:
    # The wiring from the step's loop to its answer: one ready client the worker never reads (not
    # in its selector), holding SENT bytes unread before the step, and a step long enough for two
    # looks (UNREAD_CHECK_INTERVAL 0.25 s) that sends nothing (rate 0).
    ours, theirs = Pipe()
    worker = Worker(theirs)
    worker.built = True  # no messages to build: the step sends none
    try:
        with loopback_pair() as (server_side, client_side):
            worker.clients.append(Client(name="c", sock=client_side, state="ready"))
            server_side.sendall(b"u" * SENT)
            assert wait_unread(client_side, SENT) == SENT
            answer = worker.step(time.monotonic_ns(), 0.6, 0.0, 0.5)
            assert answer["max_unread_bytes"] == SENT
    finally:
        worker.selector.close()
        ours.close()
        theirs.close()


def test_the_note_names_a_generator_reading_behind_and_only_then() -> None:
    assert reading_behind_note(0) == ""
    assert reading_behind_note(READ_BEHIND_BYTES - 1) == ""
    assert reading_behind_note(READ_BEHIND_BYTES) != ""
    note = reading_behind_note(READ_BEHIND_BYTES + READ_BEHIND_BYTES // 2)
    assert note.startswith("generators read behind")
    # Not "generator-bound", which ends a sweep at a passing step: this note only tells.
    assert "generator-bound" not in note
    assert "1.5 MiB" in note


def test_a_failed_step_noted_only_for_reading_behind_is_still_marked_saturated() -> None:
    def row(note: str, p99_ms: float) -> StepResult:
        return StepResult("susurro", 10, 1.0, 1.0, 100.0, 1.0, p99_ms, 1.0, None, None, None, note)

    behind = reading_behind_note(2 * READ_BEHIND_BYTES)
    assert "saturated" in format_row(row(behind, 500.0))
    assert "saturated" in format_row(row("", 500.0))
    assert "saturated" not in format_row(row(behind, 5.0))  # passed: only the note
    assert "saturated" not in format_row(row("lost 2 clients", 500.0))
