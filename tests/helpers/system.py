"""Small things many tests need: bounded polling, free loopback ports, descriptor counts, log lines."""

from __future__ import annotations

import os
import socket
import time
from collections.abc import Callable

#: Upper bound on any single wait for a condition in these tests, in seconds.
WAIT = 20.0


def wait_until(condition: Callable[[], bool], what: str, timeout: float = WAIT, step: float = 0.02) -> None:
    """Poll ``condition`` until it holds; fail with ``what`` after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"not within {timeout:g} s: {what}")
        time.sleep(step)


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
