"""The client's socket edge: a ``ClientSession`` driven by one reader thread.

Frames from the relay become events on a thread-safe queue, which the CLI or
the GUI drains on its own thread. One lock guards the session and the socket's
send side, so the reader (answering the challenge) and the user (sending a
message) never interleave half-frames.
"""

from __future__ import annotations

import contextlib
import queue
import socket
import ssl
import threading
import time

from . import events as ev
from . import tls as client_tls
from .session import ClientSession, SendError

CONNECT_TIMEOUT = 10.0
#: A relay that stops reading must not freeze the user: a send that cannot
#: complete in this time ends the connection (the message is then reported as
#: of unknown delivery, never silently lost).
SEND_TIMEOUT = 10.0
CLOSE_TIMEOUT = 2.0
RECV_SIZE = 64 * 1024


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


class RelayConnection:
    def __init__(self, session: ClientSession, sock: socket.socket, events: queue.Queue[object]) -> None:
        self.session = session
        self.events = events
        self._sock = sock
        self._lock = threading.Lock()
        self._reader = threading.Thread(target=self._read_loop, name="susurro-reader", daemon=True)

    @classmethod
    def open(
        cls,
        session: ClientSession,
        host: str,
        port: int,
        events: queue.Queue[object],
        *,
        send_timeout: float = SEND_TIMEOUT,
        tls: ssl.SSLContext | None = None,
    ) -> RelayConnection:
        """Connect and start reading; ``tls`` from ``client.tls.client_context`` turns on TLS."""
        connection = cls(session, open_socket(host, port, send_timeout=send_timeout, tls=tls), events)
        connection._reader.start()
        return connection

    def send_message(self, text: str, to: list[str] | None = None) -> str:
        """Seal and send; raises ``SendError`` with the reason if it cannot."""
        with self._lock:
            msg_id = self.session.send_message(text, time.time(), to)
            try:
                self._flush()
            except OSError as exc:
                # Part of a frame may be out: the stream is unusable. Cutting it
                # makes the reader end the session, which reports this message
                # (and any other awaiting an ack) as of unknown delivery.
                self._cut()
                raise SendError(f"connection to the relay lost ({exc.strerror or exc.__class__.__name__})") from None
        return msg_id

    # --- trust: the core decides, events go on the queue like everything else ---

    def safety_number(self, name: str) -> str:
        """Raises ``TrustError`` if ``name`` is not present."""
        with self._lock:
            return self.session.safety_number(name)

    def mark_verified(self, name: str) -> None:
        with self._lock:
            produced = self.session.mark_verified(name)
        for event in produced:
            self.events.put(event)

    def accept_key(self, name: str) -> None:
        with self._lock:
            produced = self.session.accept_key(name)
        for event in produced:
            self.events.put(event)

    def set_strict(self, strict: bool) -> None:
        with self._lock:
            self.session.strict = strict

    def members(self) -> list[ev.MemberInfo]:
        """The verified members now present, sorted by name (a snapshot for views)."""
        with self._lock:
            return [self.session.peers[name].info() for name in self.session.member_names()]

    def close(self) -> None:
        """Leave cleanly: ``bye``, then wait briefly for the relay to hang up.

        Bounded: the ``bye`` send is limited by SEND_TIMEOUT and the wait by
        CLOSE_TIMEOUT, so quitting never hangs on a relay that stopped reading.
        """
        with self._lock:
            self.session.close()
            with contextlib.suppress(OSError):
                self._flush()
        with contextlib.suppress(OSError):
            self._sock.shutdown(socket.SHUT_WR)
        if self._reader.is_alive() and threading.current_thread() is not self._reader:
            self._reader.join(CLOSE_TIMEOUT)
        self._cut()
        self._sock.close()

    def _cut(self) -> None:
        with contextlib.suppress(OSError):
            self._sock.shutdown(socket.SHUT_RDWR)

    def _flush(self) -> None:
        data = self.session.data_to_send()
        if data:
            self._sock.sendall(data)

    def _read_loop(self) -> None:
        reason = "the relay closed the connection"
        try:
            while True:
                try:
                    data = self._sock.recv(RECV_SIZE)
                except TimeoutError:  # the timeout bounds sends; a quiet relay is fine
                    with self._lock:
                        produced = self.session.tick(time.time())  # e.g. a session key rotation by age
                        with contextlib.suppress(OSError):
                            self._flush()
                    for event in produced:
                        self.events.put(event)
                    continue
                except OSError as exc:
                    reason = f"connection to the relay lost ({exc.strerror or exc.__class__.__name__})"
                    break
                if not data:
                    break
                with self._lock:
                    produced = self.session.receive_data(data, time.time())
                    try:
                        self._flush()
                    except OSError as exc:
                        reason = f"connection to the relay lost ({exc.strerror or exc.__class__.__name__})"
                        produced.extend(self.session.connection_lost(reason))
                for event in produced:
                    self.events.put(event)
                if any(isinstance(e, ev.Disconnected) for e in produced):
                    break
        finally:
            with self._lock:
                final = self.session.connection_lost(reason)
            for event in final:
                self.events.put(event)
            self._cut()
