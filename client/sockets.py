"""Reaching the relay: the address, the socket (with TLS when asked), and two small socket helpers.

Plumbing only: no frames and no decisions. ``RelayConnection`` (``connection.py``) uses it.
"""

from __future__ import annotations

import contextlib
import math
import select
import socket
import ssl

from . import tls as client_tls

CONNECT_TIMEOUT = 10.0
#: A relay that stops reading must not freeze the user: a send that cannot
#: complete in this time ends the connection (the message is then reported as
#: of unknown delivery, never silently lost).
SEND_TIMEOUT = 10.0


class ConnectFailed(Exception):
    """The relay could not be reached; the message says where and why."""


def parse_address(text: str, default_port: int = 12345) -> tuple[str, int]:
    """``HOST:PORT``, ``[V6]:PORT`` or ``HOST`` -> (host, port); ValueError with a reason."""
    text = text.strip()
    if text.startswith("["):
        host, _, rest = text[1:].partition("]")
        port_text = rest[1:] if rest.startswith(":") else ""
    elif text.count(":") == 1:
        host, port_text = text.split(":")
    else:
        host, port_text = text, ""
    if not host:
        raise ValueError(f"{text!r} has no host; use HOST:PORT, e.g. relay.example.org:12345")
    if not port_text:
        return host, default_port
    if not port_text.isdigit() or not 0 < int(port_text) < 65536:
        raise ValueError(f"{port_text!r} is not a valid port (1-65535)")
    return host, int(port_text)


def format_address(address: tuple[str, int]) -> str:
    """(host, port) as ``parse_address`` reads it back: ``HOST:PORT``, or ``[V6]:PORT``."""
    host, port = address
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


#: Relay addresses one ``--server`` may list (the nodes of one cluster).
MAX_ADDRESSES = 16


def parse_addresses(text: str, default_port: int = 12345) -> list[tuple[str, int]]:
    """``a:12345,b:12345``: the nodes of one relay, each as ``parse_address`` reads it; ValueError with a reason.

    A DNS name with several addresses needs no list: connecting tries each address it has.
    """
    parts = [part for part in text.split(",") if part.strip()]
    if not parts:
        raise ValueError(f"{text!r} names no relay; use HOST:PORT, e.g. relay.example.org:12345")
    if len(parts) > MAX_ADDRESSES:
        raise ValueError(f"at most {MAX_ADDRESSES} relay addresses, not {len(parts)}")
    addresses = [parse_address(part, default_port) for part in parts]
    return list(dict.fromkeys(addresses))  # the same node twice is one node


def shown_address(address: tuple[str, int]) -> str:
    """``host:port`` as ``parse_address`` reads it back (an IPv6 host in brackets)."""
    host, port = address
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


def open_socket(
    host: str,
    port: int,
    timeout: float = CONNECT_TIMEOUT,
    send_timeout: float = SEND_TIMEOUT,
    tls: ssl.SSLContext | None = None,
) -> socket.socket:
    """Connect (and with ``tls`` complete the TLS handshake); ``ConnectFailed`` says why not."""
    try:
        sock = socket.create_connection((host, port), timeout=timeout)
    except ConnectionRefusedError:
        raise ConnectFailed(
            f"cannot reach the relay at {host}:{port}: connection refused (is susurro-relay running?)"
        ) from None
    except TimeoutError:
        raise ConnectFailed(f"cannot reach the relay at {host}:{port}: no answer within {timeout:g} s") from None
    except OSError as exc:
        raise ConnectFailed(f"cannot reach the relay at {host}:{port}: {exc.strerror or exc}") from None
    if tls is not None:
        try:
            sock = client_tls.secure(sock, tls, host, port, timeout)  # type: ignore[assignment]  # socket-like
        except client_tls.TLSFailed as exc:
            sock.close()
            raise ConnectFailed(str(exc)) from None
    sock.settimeout(send_timeout)  # bounds sendall; the reader treats a recv timeout as "nothing yet"
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    return sock


def readable(sock: socket.socket, poller: select.poll, timeout: float) -> bool:
    """Wait up to ``timeout`` seconds for bytes, EOF or an error; TLS may hold bytes poll cannot see."""
    pending = getattr(sock, "pending", None)
    if pending is not None and pending() > 0:
        return True
    return bool(poller.poll(max(1, math.ceil(timeout * 1000))))


def cut(sock: socket.socket) -> None:
    with contextlib.suppress(OSError):
        sock.shutdown(socket.SHUT_RDWR)
