"""A TLS connection that one reader thread and one writer thread may share.

The relay and the client both run one thread that reads a connection and
another that writes it. A plain socket allows that; an ``ssl.SSLSocket`` does
not: OpenSSL forbids using one ``SSL`` object from two threads at once, and
concurrent ``recv``/``sendall`` on an ``SSLSocket`` corrupts the TLS state or
crashes (CPython issue 151508). So ``TLSStream`` keeps the TLS state in an
``ssl.SSLObject`` over memory buffers and does the socket I/O itself:

- ``_state`` guards the ``SSLObject`` and its two buffers; it is only ever held
  for in-memory work, never across a blocking socket call;
- ``_send`` serializes writes to the socket, so TLS records leave in the order
  they were made (it is always taken before ``_state``, never after);
- reading waits on the plain socket with no lock held, so a reader blocked in
  ``recv`` never delays a writer, and vice versa.

It offers the subset of the socket API the relay and client use (``recv``,
``sendall``, ``settimeout``, ``setsockopt``, ``shutdown``, ``close``), with
the same errors: ``TimeoutError`` and ``OSError`` (``ssl.SSLError`` is one).
End of stream, with or without a TLS ``close_notify``, reads as ``b""``: the
wire protocol is length-framed, so a truncated frame is detected above.
"""

from __future__ import annotations

import contextlib
import socket
import ssl
import threading
import time

#: Bytes read from the socket at a time (a TLS record is at most ~16 KiB).
RECV_SIZE = 64 * 1024


class TLSStream:
    """TLS over a connected socket; build it with ``client`` or ``server``, then ``handshake``."""

    def __init__(self, sock: socket.socket, tls: ssl.SSLObject, incoming: ssl.MemoryBIO, outgoing: ssl.MemoryBIO):
        self._sock = sock
        self._tls = tls
        self._incoming = incoming
        self._outgoing = outgoing
        self._state = threading.Lock()
        self._send = threading.Lock()

    @classmethod
    def client(cls, sock: socket.socket, context: ssl.SSLContext, server_hostname: str) -> TLSStream:
        incoming, outgoing = ssl.MemoryBIO(), ssl.MemoryBIO()
        tls = context.wrap_bio(incoming, outgoing, server_side=False, server_hostname=server_hostname)
        return cls(sock, tls, incoming, outgoing)

    @classmethod
    def server(cls, sock: socket.socket, context: ssl.SSLContext) -> TLSStream:
        incoming, outgoing = ssl.MemoryBIO(), ssl.MemoryBIO()
        return cls(sock, context.wrap_bio(incoming, outgoing, server_side=True), incoming, outgoing)

    @property
    def version(self) -> str | None:
        """The negotiated protocol, e.g. ``'TLSv1.3'`` (None before the handshake)."""
        return self._tls.version()

    def handshake(self, deadline: float) -> None:
        """Complete the TLS handshake by ``deadline`` (``time.monotonic()``).

        Raises ``TimeoutError`` when the peer is too slow, ``ssl.SSLError``
        (``ssl.SSLCertVerificationError`` for a refused certificate) or
        ``OSError`` otherwise. Leaves a socket timeout set: callers set theirs.
        """
        while True:
            failure: ssl.SSLError | None = None
            with self._state:
                try:
                    self._tls.do_handshake()
                    done = True
                except ssl.SSLWantReadError:
                    done = False
                except ssl.SSLError as exc:
                    failure, done = exc, False
            if failure is not None:
                # Send the alert OpenSSL wrote (e.g. "unknown CA"), so the peer
                # can log why, then report the failure here.
                with contextlib.suppress(OSError):
                    self._flush()
                raise failure
            self._flush()
            if done:
                return
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise TimeoutError("TLS handshake did not complete in time")
            self._sock.settimeout(remaining)
            self._feed(self._sock.recv(RECV_SIZE))

    def recv(self, bufsize: int) -> bytes:
        while True:
            with self._state:
                try:
                    data: bytes | None = self._tls.read(bufsize)
                except ssl.SSLWantReadError:
                    data = None
                except (ssl.SSLEOFError, ssl.SSLZeroReturnError):
                    data = b""
                must_flush = self._outgoing.pending > 0
            if must_flush:  # e.g. an alert or a TLS 1.3 key update answer
                self._flush()
            if data is not None:
                return data
            self._feed(self._sock.recv(RECV_SIZE))  # no lock held while waiting

    def sendall(self, data: bytes) -> None:
        with self._send:
            with self._state:
                self._tls.write(data)
                records = self._outgoing.read()
            self._sock.sendall(records)

    # For a caller that does its own non-blocking socket I/O (the relay's
    # event loops): TLS work only, under the same state lock, so one thread
    # may encrypt while another decrypts.

    def encrypt(self, data: bytes) -> bytes:
        """The TLS records carrying ``data``, plus any records TLS itself has queued, in order."""
        with self._state:
            if data:
                self._tls.write(data)
            return self._outgoing.read()

    def decrypt(self, raw: bytes) -> tuple[bytes, bool]:
        """Feed bytes read from the socket (``b""`` at its end): the plaintext now available, and end of stream.

        Raises ``ssl.SSLError`` for records that do not authenticate.
        """
        chunks: list[bytes] = []
        ended = False
        with self._state:
            if raw:
                self._incoming.write(raw)
            else:
                self._incoming.write_eof()
            while True:
                try:
                    chunk = self._tls.read(RECV_SIZE)
                except ssl.SSLWantReadError:
                    break
                except (ssl.SSLEOFError, ssl.SSLZeroReturnError):
                    ended = True
                    break
                if not chunk:
                    ended = True
                    break
                chunks.append(chunk)
        return b"".join(chunks), ended

    @property
    def raw_socket(self) -> socket.socket:
        return self._sock

    def shutdown(self, how: int) -> None:
        """``SHUT_WR`` first says ``close_notify`` if no write is in progress.

        ``SHUT_RDWR`` is the emergency cut other threads use to unblock this
        connection, so it never waits for the send lock.
        """
        if how == socket.SHUT_WR and self._send.acquire(blocking=False):
            try:
                with self._state:
                    with contextlib.suppress(ssl.SSLError):
                        self._tls.unwrap()
                    records = self._outgoing.read()
                if records:
                    with contextlib.suppress(OSError):
                        self._sock.sendall(records)
            finally:
                self._send.release()
        self._sock.shutdown(how)

    def settimeout(self, timeout: float | None) -> None:
        self._sock.settimeout(timeout)

    # The relay's reader polls the descriptor before each ``recv`` (for the
    # idle and handshake deadlines without a recv timeout), and must not wait
    # on it while bytes already sit in the TLS buffers, which poll cannot see.
    def fileno(self) -> int:
        return self._sock.fileno()

    def pending(self) -> int:
        """Bytes received but not yet returned by ``recv`` (decrypted or not)."""
        with self._state:
            return self._tls.pending() + self._incoming.pending

    def setsockopt(self, level: int, option: int, value: int) -> None:
        self._sock.setsockopt(level, option, value)

    def close(self) -> None:
        self._sock.close()

    def _feed(self, data: bytes) -> None:
        with self._state:
            if data:
                self._incoming.write(data)
            else:
                self._incoming.write_eof()

    def _flush(self) -> None:
        with self._send:
            with self._state:
                records = self._outgoing.read()
            if records:
                self._sock.sendall(records)
