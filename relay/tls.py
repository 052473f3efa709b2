"""TLS for the relay: the server context, and handshakes off the acceptor thread.

TLS hides metadata (names, who talks to whom, sizes) from the network. It is
not what protects messages: those are end-to-end encrypted, and a relay
without TLS, or a network that breaks it, still cannot read or forge them.

Each TLS handshake runs on its own thread under the relay's handshake
deadline (counted from connect), so a peer that opens a connection and never
finishes TLS cannot stall the acceptor; and at most ``max_clients`` handshakes
run at once, so such peers cannot pile up threads either.
"""

from __future__ import annotations

import contextlib
import socket
import ssl
import threading

from transport import TLSStream

#: Oldest protocol version served. TLS 1.0 and 1.1 are deprecated (RFC 8996).
MINIMUM_VERSION = ssl.TLSVersion.TLSv1_2


class TLSConfigError(Exception):
    """The certificate or key cannot be used; the message says which file and why."""


def server_context(cert_file: str, key_file: str | None) -> ssl.SSLContext:
    """A TLS 1.2+ server context; with no ``key_file`` the key is read from ``cert_file``."""
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.minimum_version = MINIMUM_VERSION
    try:
        context.load_cert_chain(cert_file, key_file)
    except FileNotFoundError as exc:
        raise TLSConfigError(f"cannot read {exc.filename or cert_file}: no such file") from None
    except PermissionError as exc:
        raise TLSConfigError(f"cannot read {exc.filename or cert_file}: permission denied") from None
    except ssl.SSLError as exc:
        detail = exc.reason or str(exc)
        raise TLSConfigError(
            f"cannot use certificate {cert_file} with key {key_file}: {detail} "
            "(both must be PEM, and the key must belong to the certificate)"
        ) from None
    except OSError as exc:
        raise TLSConfigError(f"cannot read the certificate or key: {exc.strerror or exc}") from None
    return context


def accept(sock: socket.socket, context: ssl.SSLContext, deadline: float) -> TLSStream:
    """Run the server side of the handshake on ``sock`` by ``deadline``.

    Raises ``TimeoutError``, ``ssl.SSLError`` or ``OSError``; ``describe``
    turns any of them into a short reason for the log.
    """
    stream = TLSStream.server(sock, context)
    stream.handshake(deadline)
    return stream


def describe(exc: BaseException) -> str:
    """One log-friendly word or phrase for a failed handshake."""
    if isinstance(exc, TimeoutError):
        return "timeout"
    if isinstance(exc, ssl.SSLError):
        return (exc.reason or exc.__class__.__name__).lower()
    if isinstance(exc, OSError):
        return exc.strerror or exc.__class__.__name__
    return exc.__class__.__name__


class HandshakeGate:
    """Counts the TLS handshakes in progress and can cut them all at shutdown."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self._lock = threading.Lock()
        self._pending: set[socket.socket] = set()

    def enter(self, sock: socket.socket) -> bool:
        """Admit one more handshake; False if ``limit`` are already running."""
        with self._lock:
            if len(self._pending) >= self.limit:
                return False
            self._pending.add(sock)
            return True

    def leave(self, sock: socket.socket) -> None:
        with self._lock:
            self._pending.discard(sock)

    def cut_all(self) -> None:
        """Abort every handshake in progress (their threads then exit)."""
        with self._lock:
            pending = list(self._pending)
        for sock in pending:
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)
