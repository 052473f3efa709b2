"""Small things many tests need: bounded polling, free loopback ports, descriptor counts, log lines."""

from __future__ import annotations

import os
import queue
import socket
import time
from collections.abc import Callable, Iterator
from typing import Any

#: Upper bound on any single wait for a condition in these tests, in seconds.
WAIT = 20.0


def wait_until(condition: Callable[[], bool], what: str, timeout: float = WAIT, step: float = 0.02) -> None:
    """Poll ``condition`` until it holds; fail with ``what`` after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"not within {timeout:g} s: {what}")
        time.sleep(step)


def arrivals(events: queue.Queue[Any], timeout: float) -> Iterator[Any]:
    """What arrives on ``events``, as it arrives, for ``timeout`` seconds; then the iteration ends."""
    deadline = time.monotonic() + timeout
    while (remaining := deadline - time.monotonic()) > 0:
        try:
            yield events.get(timeout=remaining)
        except queue.Empty:
            return


def next_event(events: queue.Queue[Any], match: Callable[[Any], bool], what: str, timeout: float = WAIT) -> Any:
    """The first event on ``events`` that ``match`` accepts (others are dropped); fail after ``timeout``."""
    for event in arrivals(events, timeout):
        if match(event):
            return event
    raise AssertionError(f"no {what} within {timeout:g} s")


def free_port() -> int:
    """A loopback port nobody listens on (bound, then released)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def open_fds() -> int:
    """Descriptors this process holds now (Linux /proc)."""
    return len(os.listdir("/proc/self/fd"))


def log_lines(records: list[object], prefix: str) -> list[str]:
    messages = [r.getMessage() for r in records]  # type: ignore[attr-defined]
    return [m for m in messages if m.startswith(prefix)]
