"""relay_load's ports: a port something else listens on is skipped, never measured.

Two benchmark runs on one machine (or a test's relay on a fixed port) once
shared a port: the second server could not bind and exited, and the harness
found the first one listening and measured it instead.
"""

from __future__ import annotations

import socket

from benchmarks.relay_load import PORT_LIMIT, Ports, port_is_free
from benchmarks.servers import HOST


def _held_port() -> socket.socket:
    """A socket listening on a benchmark port (21000-21999) that was free."""
    for port in range(21900, PORT_LIMIT):
        if not port_is_free(port):
            continue
        holder = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        try:
            holder.bind((HOST, port))
        except OSError:
            holder.close()
            continue
        holder.listen(1)
        return holder
    raise AssertionError("no free benchmark port to hold")


def test_a_port_another_process_listens_on_is_skipped() -> None:
    with _held_port() as holder:
        held = holder.getsockname()[1]
        assert not port_is_free(held)
        ports = Ports(held)
        taken = ports.take()
        assert taken != held and taken > held
        assert port_is_free(taken)
