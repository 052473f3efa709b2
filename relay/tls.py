"""TLS for the relay: the server context, and handshakes off the acceptor thread.

TLS hides metadata (names, who talks to whom, sizes) from the network. It is
not what protects messages: those are end-to-end encrypted, and a relay
without TLS, or a network that breaks it, still cannot read or forge them.

Each TLS handshake runs on its own thread under the relay's handshake
deadline (counted from connect), so a peer that opens a connection and never
finishes TLS cannot stall the acceptor; and at most ``max_clients`` handshakes
run at once (``max_per_ip`` from one address), so such peers cannot pile up
threads or crowd others out either.
"""

from __future__ import annotations

import contextlib
import socket
import ssl
import threading
from collections import Counter
from collections.abc import Callable

from susurro.transport import TLSStream

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


#: Bound on the in-memory handshake ``client_flags`` runs (a few round trips suffice).
_PROBE_ROUNDS = 16


def client_flags(context: ssl.SSLContext, cert_file: str) -> str:
    """What ``susurro-cli`` needs to trust this relay's certificate: ``--tls`` or ``--cafile FILE``.

    Answered by a real handshake in memory between ``context`` and a client
    that trusts the system's certificate authorities (no host name check: the
    name is the user's to give). If that client refuses the certificate,
    users need ``--cafile``: the certificate itself when it is self-signed,
    otherwise the authority that signed it.
    """
    client_side = ssl.create_default_context()
    client_side.check_hostname = False
    bios = [ssl.MemoryBIO() for _ in range(4)]
    client = client_side.wrap_bio(bios[0], bios[1], server_side=False)
    server = context.wrap_bio(bios[2], bios[3], server_side=True)
    done = {"client": False, "server": False}
    for _ in range(_PROBE_ROUNDS):
        for side, obj in (("client", client), ("server", server)):
            if done[side]:
                continue
            try:
                obj.do_handshake()
                done[side] = True
            except ssl.SSLWantReadError:
                pass
            except ssl.SSLCertVerificationError as exc:
                if "self" in str(exc.verify_message or "").lower():
                    return f" --cafile {cert_file}"
                return " --cafile CA-CERT.pem"
            except ssl.SSLError:
                break  # the server side after the client gave up, or an odd context: say the safe thing
        bios[2].write(bios[1].read())
        bios[0].write(bios[3].read())
        if done["client"]:
            return " --tls"
    return " --cafile CA-CERT.pem"


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
    """Counts the TLS handshakes in progress, in all and per source address.

    The per-address bound matters because the relay's per-address connection
    limit applies only once TLS is done: without it, one address opening
    ``limit`` silent connections could keep every other client from starting
    TLS for a whole handshake timeout, again and again.
    """

    def __init__(self, limit: int, per_address: int, counted: Callable[[str], bool] = lambda ip: True) -> None:
        self.limit = limit
        self.per_address = per_address
        self._counted = counted
        self._lock = threading.Lock()
        self._pending: dict[socket.socket, str] = {}
        self._per_ip: Counter[str] = Counter()

    def enter(self, sock: socket.socket, ip: str = "") -> str | None:
        """Admit one more handshake from ``ip``; otherwise the reason it is refused."""
        with self._lock:
            if len(self._pending) >= self.limit:
                return "too many TLS handshakes in progress"
            counted = bool(ip) and self._counted(ip)
            if counted and self._per_ip[ip] >= self.per_address:
                return f"{self.per_address} TLS handshakes from this address in progress"
            self._pending[sock] = ip if counted else ""
            if counted:
                self._per_ip[ip] += 1
            return None

    def leave(self, sock: socket.socket) -> None:
        with self._lock:
            ip = self._pending.pop(sock, "")
            if ip:
                self._per_ip[ip] -= 1
                if self._per_ip[ip] <= 0:
                    del self._per_ip[ip]

    def cut_all(self) -> None:
        """Abort every handshake in progress (their threads then exit)."""
        with self._lock:
            pending = list(self._pending)
        for sock in pending:
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)
