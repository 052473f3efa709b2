"""Sockets and threads around ``RelayCore``: this module only moves bytes.

Threads: one acceptor; per connection one reader (recv -> core.receive) and
one writer (drains the connection's ``Outbox`` with ``sendall``). No lock is
held during any socket call. A connection whose outbox overflows is cut at
once with ``shutdown(SHUT_RDWR)``, which also unblocks its writer.
"""

from __future__ import annotations

import contextlib
import logging
import math
import select
import socket
import ssl
import threading
import time
from collections.abc import Callable

from . import tls as relay_tls
from .config import FLUSH_TIMEOUT, RelayConfig
from .core import Connection, RelayCore, is_loopback
from .fdlimit import descriptors_needed, ensure_fd_limit
from .idle import IdleAction, IdleWatch
from .outbox import Outbox

log = logging.getLogger("susurro.relay")

#: msgpack's C unpacker keeps about 40 KiB of parser state on the stack, and a
#: 32 KiB thread stack segfaults it; 512 KiB leaves a wide margin for logging
#: and tracebacks while keeping a thousand connections' stacks small.
THREAD_STACK_SIZE = 512 * 1024
RECV_SIZE = 64 * 1024
#: The smallest accept queue; it grows with --max-clients (the kernel caps it at somaxconn).
LISTEN_BACKLOG = 512
MAX_LISTEN_BACKLOG = 65535


def listen_backlog(max_clients: int) -> int:
    """Room for a whole room reconnecting at once after a relay restart."""
    return max(LISTEN_BACKLOG, min(max_clients, MAX_LISTEN_BACKLOG))


def format_address(host: str, port: int) -> str:
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


class RelayServer:
    """A running relay: ``start()`` binds and serves in background threads."""

    def __init__(self, config: RelayConfig) -> None:
        self.config = config
        self.core = RelayCore(config)
        self._listener: socket.socket | None = None
        self._acceptor: threading.Thread | None = None
        self._stopping = threading.Event()
        self._stopped = threading.Event()
        self._threads_lock = threading.Lock()
        self._threads: set[threading.Thread] = set()
        self._sockets: dict[Connection, socket.socket] = {}
        self._tls: ssl.SSLContext | None = None
        self._handshakes = relay_tls.HandshakeGate(
            config.max_clients, config.max_per_ip, lambda ip: config.limit_loopback or not is_loopback(ip)
        )

    @property
    def address(self) -> tuple[str, int]:
        assert self._listener is not None, "not started"
        host, port = self._listener.getsockname()[:2]
        return host, port

    def start(self) -> tuple[str, int]:
        """Bind and serve. Raises ``OSError`` (cannot listen) or ``ResourceLimitError`` (fd limit)."""
        ensure_fd_limit(descriptors_needed(self.config.max_clients))
        threading.stack_size(THREAD_STACK_SIZE)
        if self.config.tls_cert is not None:  # TLSConfigError says which file is wrong
            self._tls = relay_tls.server_context(self.config.tls_cert, self.config.tls_key)
        infos = socket.getaddrinfo(self.config.host, self.config.port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)
        family = infos[0][0]
        listener = socket.socket(family, socket.SOCK_STREAM)
        try:
            listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            if family == socket.AF_INET6:
                # '::' should accept IPv4 too, as operators expect of a public bind.
                with contextlib.suppress(OSError):
                    listener.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 0)
            listener.bind(infos[0][4])
            listener.listen(listen_backlog(self.config.max_clients))
        except BaseException:
            listener.close()
            raise
        self._listener = listener
        self._acceptor = threading.Thread(target=self._accept_loop, name="relay-acceptor", daemon=True)
        self._acceptor.start()
        return self.address

    def wait(self, timeout: float | None = None) -> bool:
        """Block until the relay has stopped; True if it did."""
        return self._stopped.wait(timeout)

    def stop(self, reason: str = "stopped by its operator") -> None:
        """Send ``shutdown`` to everyone, flush for up to FLUSH_TIMEOUT, close."""
        if self._stopping.is_set():
            self._stopped.wait(FLUSH_TIMEOUT + 1)
            return
        self._stopping.set()
        if self._listener is not None:
            _cut(self._listener)  # wakes the acceptor: close() alone does not on Linux
            with contextlib.suppress(OSError):
                self._listener.close()
        self._handshakes.cut_all()
        self.core.shutdown(reason)
        with self._threads_lock:
            sockets = dict(self._sockets)
        for conn in sockets:
            outbox = conn.outbox
            if isinstance(outbox, Outbox):
                outbox.close("shutdown")
        deadline = time.monotonic() + FLUSH_TIMEOUT
        for thread in self._live_threads():
            thread.join(max(0.0, deadline - time.monotonic()))
        for sock in sockets.values():
            _cut(sock)
        for thread in self._live_threads():
            thread.join(1.0)
        if self._acceptor is not None:
            self._acceptor.join(1.0)
        self._stopped.set()

    def thread_count(self) -> int:
        return len(self._live_threads())

    def _live_threads(self) -> list[threading.Thread]:
        with self._threads_lock:
            self._threads = {t for t in self._threads if t.is_alive()}
            return list(self._threads)

    # --- threads ----------------------------------------------------------------

    def _accept_loop(self) -> None:
        assert self._listener is not None
        while not self._stopping.is_set():
            try:
                sock, peer = self._listener.accept()
            except OSError:
                if self._stopping.is_set():
                    return
                log.exception("accept failed")
                time.sleep(0.1)  # e.g. EMFILE: do not spin
                continue
            try:
                address, ip = format_address(*peer[:2]), peer[0]
                if self._tls is not None:
                    self._admit_tls(sock, address, ip)
                else:
                    self._admit(sock, address, ip=ip)
            except Exception:
                log.exception("could not start a connection")
                _cut(sock)

    def _admit_tls(self, sock: socket.socket, address: str, ip: str) -> None:
        """Hand the TLS handshake to its own thread; the acceptor moves on at once."""
        refused = self._handshakes.enter(sock, ip)
        if refused is not None:
            log.warning("reject addr=%s code=full detail=%s", address, refused)
            _cut(sock)
            sock.close()
            return
        thread = threading.Thread(
            target=self._tls_then_admit, args=(sock, address, ip, time.monotonic()), name="relay-tls", daemon=True
        )
        self._track(thread)
        thread.start()

    def _tls_then_admit(self, sock: socket.socket, address: str, ip: str, started: float) -> None:
        assert self._tls is not None
        try:
            stream = relay_tls.accept(sock, self._tls, started + self.config.handshake_timeout)
        except Exception as exc:  # any failure ends only this connection
            log.info("tls-fail addr=%s reason=%s", address, relay_tls.describe(exc))
            _cut(sock)
            sock.close()
            return
        finally:
            self._handshakes.leave(sock)
        if self._stopping.is_set():
            _cut(sock)
            sock.close()
            return
        self._admit(stream, address, started, ip)  # type: ignore[arg-type]  # TLSStream has the socket calls we use

    def _admit(self, sock: socket.socket, address: str, started: float | None = None, ip: str = "") -> None:
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        if type(sock) is socket.socket:
            # A plain socket stays in blocking mode: producers write to it with
            # MSG_DONTWAIT (``_direct_sender``) and the writer bounds its own
            # sends by send_timeout (``_sender_within``). A socket timeout
            # would make every send wait for writability first.
            send_now = _direct_sender(sock)
        else:
            # Bounds every blocking send: a client that stops reading with a
            # nearly full outbox is cut after this long, not waited for forever.
            # The reader never blocks in recv (it polls first), so this is the
            # send timeout only.
            sock.settimeout(self.config.send_timeout)
            send_now = None
        outbox = Outbox(self.config.outbox_bytes, on_overflow=lambda: _cut(sock), send_now=send_now)
        conn = self.core.connect(outbox, address, ip)
        if conn is None:  # full: flush the error frame, then close
            outbox.close("full")
            writer = threading.Thread(target=self._write_loop, args=(sock, outbox, None), daemon=True)
            self._track(writer)
            writer.start()
            return
        writer = threading.Thread(
            target=self._write_loop, args=(sock, outbox, conn), name=f"relay-w{conn.id}", daemon=True
        )
        reader = threading.Thread(
            target=self._read_loop, args=(sock, outbox, conn, writer, started), name=f"relay-r{conn.id}", daemon=True
        )
        with self._threads_lock:
            self._sockets[conn] = sock
        self._track(writer)
        self._track(reader)
        writer.start()
        reader.start()

    def _track(self, thread: threading.Thread) -> None:
        with self._threads_lock:
            self._threads.add(thread)

    def _read_loop(
        self, sock: socket.socket, outbox: Outbox, conn: Connection, writer: threading.Thread, started: float | None
    ) -> None:
        reason = "closed by client"
        # The handshake deadline counts from connect (TLS included), not per recv: a
        # client trickling one byte at a time must not hold a connection slot forever.
        deadline = (time.monotonic() if started is None else started) + self.config.handshake_timeout
        idle = IdleWatch(self.config.idle_ping, self.config.idle_timeout, time.monotonic())
        poller = select.poll()  # no descriptor of its own, unlike epoll; no FD_SETSIZE cap, unlike select
        poller.register(sock, select.POLLIN)
        try:
            while True:
                now = time.monotonic()
                if not conn.joined:
                    wait = deadline - now
                    if wait <= 0:
                        self.core.handshake_timed_out(conn)
                        reason = "handshake_timeout"
                        break
                else:
                    action, wait = idle.due(now)
                    if action is IdleAction.DROP:
                        self.core.idle_timed_out(conn)
                        reason = "idle_timeout"
                        break
                    if action is IdleAction.PING:
                        self.core.keepalive(conn)
                if not _readable(sock, poller, wait):
                    continue  # the deadline and idle checks above decide
                try:
                    data = sock.recv(RECV_SIZE)
                except (BlockingIOError, TimeoutError):
                    continue  # a spurious wakeup (TLS record not complete yet)
                except OSError as exc:
                    reason = outbox.close_reason or f"connection lost ({exc.__class__.__name__})"
                    break
                if not data:
                    reason = outbox.close_reason or "closed by client"
                    break
                idle.heard(time.monotonic())
                if not self.core.receive(conn, data):
                    reason = outbox.close_reason or conn.close_reason or ("bye" if conn.joined else "refused")
                    break
        except Exception:
            reason = "internal error"
            log.exception("reader for conn=%d failed", conn.id)
        finally:
            self.core.disconnect(conn, reason)
            outbox.close(reason)
            writer.join(FLUSH_TIMEOUT)
            _cut(sock)
            sock.close()
            with self._threads_lock:
                self._sockets.pop(conn, None)

    def _write_loop(self, sock: socket.socket, outbox: Outbox, conn: Connection | None) -> None:
        send_all = _sender_within(sock, self.config.send_timeout)
        try:
            # Everything queued goes out in one call: one system call and one
            # wake-up per batch, not per frame (see docs/performance.md).
            while (data := outbox.take_all()) is not None:
                send_all(data)
        except OSError:
            outbox.abort("write failed")
            _cut(sock)
        except Exception:
            log.exception("writer failed")
            outbox.abort("internal error")
        finally:
            # Let the peer see EOF after the last frame; the reader closes the fd.
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_WR)
            if conn is None:
                sock.close()


def _readable(sock: socket.socket, poller: select.poll, timeout: float) -> bool:
    """Wait up to ``timeout`` seconds for bytes (or EOF, or an error) on ``sock``."""
    pending = getattr(sock, "pending", None)  # a TLS socket may hold decrypted bytes already
    if pending is not None and pending() > 0:
        return True
    return bool(poller.poll(max(1, math.ceil(timeout * 1000))))


def _sender_within(sock: socket.socket, timeout: float) -> Callable[[bytes], None]:
    """``sendall`` for the writer, bounded by ``timeout`` seconds per batch.

    A socket with a timeout (a TLS stream) bounds its own ``sendall``. A plain
    socket stays in blocking mode for ``_direct_sender``, so the bound is kept
    here: non-blocking sends, and ``poll`` for room in between. Raises
    ``TimeoutError`` (an ``OSError``) when the client stops reading that long.
    """
    flag = getattr(socket, "MSG_DONTWAIT", 0)
    if type(sock) is not socket.socket or not flag or sock.gettimeout() is not None:
        return sock.sendall
    poller = select.poll()
    poller.register(sock, select.POLLOUT)

    def send_all(data: bytes) -> None:
        view = memoryview(data)
        deadline = time.monotonic() + timeout
        while view:
            try:
                view = view[sock.send(view, flag) :]
                continue
            except BlockingIOError:
                pass
            remaining = deadline - time.monotonic()
            if remaining <= 0 or not poller.poll(max(1, math.ceil(remaining * 1000))):
                raise TimeoutError(f"no room to send for {timeout:g} s")

    return send_all


def _direct_sender(sock: socket.socket) -> Callable[[bytes], int] | None:
    """A send on ``sock`` that never blocks, for producers to call from any thread.

    Only for a plain socket in blocking mode, where ``MSG_DONTWAIT`` makes one
    call non-blocking without touching the socket's mode (a socket with a
    timeout would first wait for writability). TLS streams keep to their
    writer thread: one TLS record stream must have one writer.
    """
    flag = getattr(socket, "MSG_DONTWAIT", 0)
    if type(sock) is not socket.socket or not flag or sock.gettimeout() is not None:
        return None
    send = sock.send
    return lambda data: send(data, flag)


def _cut(sock: socket.socket) -> None:
    """Abort both directions; unblocks any thread in recv or sendall on ``sock``."""
    with contextlib.suppress(OSError):
        sock.shutdown(socket.SHUT_RDWR)
