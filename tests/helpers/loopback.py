"""A connected TCP pair on 127.0.0.1 for tests that need the kernel's real socket behaviour."""

from __future__ import annotations

import socket
from collections.abc import Iterator
from contextlib import contextmanager


@contextmanager
def connected_pair(timeout: float) -> Iterator[tuple[socket.socket, socket.socket]]:
    """(sender, receiver) on an ephemeral port, both blocking with ``timeout``; closed after."""
    with socket.create_server(("127.0.0.1", 0)) as listener:
        sender = socket.create_connection(listener.getsockname(), timeout=timeout)
        receiver, _ = listener.accept()
    with sender, receiver:
        receiver.settimeout(timeout)
        yield sender, receiver
