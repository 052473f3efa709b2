"""Sockets and threads around ``RelayCore``: this module only moves bytes.

Threads: one acceptor; ``--io-threads`` event loops (``relay/loop.py``),
each owning a share of the connections' sockets, reads and writes; and one
short-lived thread per TLS handshake in progress (bounded by
``HandshakeGate``), so a slow handshake never stalls the acceptor or a loop.
There is no thread per connection: an idle member costs a few objects.

The acceptor also keeps the pre-join quota: connections that
have not joined get at most ``pending_quota`` slots, and when those (or all
of ``--max-clients``) are taken, the oldest connection that has still not
joined after ``PENDING_GRACE`` is cut to make room, so idle sockets cannot
keep a real member out.
"""

from __future__ import annotations

import contextlib
import gc
import logging
import socket
import ssl
import threading
import time
from collections import OrderedDict
from collections.abc import Callable
from typing import TYPE_CHECKING

from susurro.protocol import ErrorCode
from susurro.transport import TLSStream

from . import tls as relay_tls
from .budget import MemoryBudget
from .config import FLUSH_TIMEOUT, RelayConfig
from .core import Backend, RelayCore, is_loopback
from .fdlimit import descriptors_needed, ensure_fd_limit
from .loop import EventLoop, Link
from .memory import MemoryWatcher
from .outbox import Outbox, set_shared_meter

if TYPE_CHECKING:
    from .cluster.router import ClusterRouter

log = logging.getLogger("susurro.relay")

#: Stack of the relay's own threads. msgpack's C unpacker keeps about 40 KiB of
#: parser state on the stack and a 32 KiB stack segfaults it; 512 KiB leaves a
#: wide margin for logging and tracebacks.
THREAD_STACK_SIZE = 512 * 1024
#: The smallest accept queue; it grows with --max-clients (the kernel caps it at somaxconn).
LISTEN_BACKLOG = 512
MAX_LISTEN_BACKLOG = 65535
#: A connection younger than this is never cut for the pre-join quota: in a
#: join storm every client gets at least this long to send its hello.
PENDING_GRACE = 1.0


def listen_backlog(max_clients: int) -> int:
    """Room for a whole room reconnecting at once after a relay restart."""
    return max(LISTEN_BACKLOG, min(max_clients, MAX_LISTEN_BACKLOG))


def format_address(host: str, port: int) -> str:
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


#: The collector's first-generation threshold in the ``susurro-relay`` process (Python's default
#: is 700). A fan-out allocates a few tuples a copy (the roster's lookup, the copies' list) that
#: live until the message is routed: at 700 a message to 500 members ran the young collection
#: about twice, each time walking the message's live tuples. At 20,000 most of them are freed
#: before a collection comes (relay_core_cost at N = 500 under cachegrind: -6 % instructions a
#: delivery; N = 10 the same). Only cyclic garbage waits longer for it: a closed connection's
#: Link and Outbox referred to each other (its callbacks) until ``Link.finish`` let go of them,
#: so now they are freed by reference counting at close (review-s9-wide 3).
GC_YOUNG_THRESHOLD = 20_000


def tune_collector() -> None:
    """Set the relay process's collector thresholds (``GC_YOUNG_THRESHOLD``); the older
    generations keep theirs. For the ``susurro-relay`` command, not a relay run inside a client."""
    _, older, oldest = gc.get_threshold()
    gc.set_threshold(GC_YOUNG_THRESHOLD, older, oldest)


class RelayServer:
    """A running relay: ``start()`` binds and serves in background threads."""

    def __init__(self, config: RelayConfig) -> None:
        if config.io_threads < 1:
            raise ValueError("io_threads must be at least 1")
        self.config = config
        backend: Backend | None = None
        self.cluster: ClusterRouter | None = None
        if config.cluster is not None:
            # Imported only when clustered: it needs the ``redis`` package (the ``cluster`` extra).
            from .cluster.router import open_cluster

            backend, self.cluster = open_cluster(config.cluster, config.cluster_password_file, config)
        self.core = RelayCore(config, backend=backend)
        if self.cluster is not None:
            self.cluster.attach(self.core)
        self.budget = MemoryBudget(config.memory_budget, config.max_partial_bytes)
        set_shared_meter(self.budget.shared)
        # Gives the allocator's free memory back after a burst (joins, a large fan-out): relay/memory.py.
        self.memory = MemoryWatcher(lambda: self.budget.used)
        self.flush_timeout = FLUSH_TIMEOUT
        self._listener: socket.socket | None = None
        self._acceptor: threading.Thread | None = None
        self._loops: list[EventLoop] = []
        self._stopping = threading.Event()
        self._stopped = threading.Event()
        self._threads_lock = threading.Lock()
        self._threads: set[threading.Thread] = set()  # TLS handshakes in progress
        self._pending_lock = threading.Lock()
        self._pending: OrderedDict[Link, float] = OrderedDict()
        self._trimming = threading.Lock()
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
        self._loops = [EventLoop(self, index) for index in range(self.config.io_threads)]
        for loop in self._loops:
            loop.start()
        if self.cluster is not None:
            self.cluster.start()
        self._acceptor = threading.Thread(target=self._accept_loop, name="relay-acceptor", daemon=True)
        self._acceptor.start()
        if self.config.memory_trim:
            self.memory.start()
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
        if self._acceptor is not None:
            self._acceptor.join(1.0)
        self.core.shutdown(reason)
        for loop in self._loops:
            loop.call_soon(lambda loop=loop: self._stop_loop(loop))  # type: ignore[misc]
        deadline = time.monotonic() + FLUSH_TIMEOUT + 1.0
        for loop in self._loops:
            loop.thread.join(max(0.0, deadline - time.monotonic()))
        for thread in self._live_threads():
            thread.join(1.0)
        if self.cluster is not None:
            self.cluster.close()
        self.memory.stop()
        self._stopped.set()

    def _stop_loop(self, loop: EventLoop) -> None:
        loop.stopping = True
        for link in list(loop.links.values()):
            link.close("shutdown")

    def thread_count(self) -> int:
        """The relay's threads now: acceptor, I/O loops, TLS handshakes in progress."""
        loops = sum(loop.thread.is_alive() for loop in self._loops)
        acceptor = int(self._acceptor is not None and self._acceptor.is_alive())
        return acceptor + loops + len(self._live_threads())

    def _live_threads(self) -> list[threading.Thread]:
        with self._threads_lock:
            return [t for t in self._threads if t.is_alive()]

    # --- accepting ----------------------------------------------------------------

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
                    self._admit(sock, address, ip, time.monotonic())
            except Exception:
                log.exception("could not start a connection")
                _cut(sock)
                sock.close()

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
        with self._threads_lock:
            self._threads.add(thread)
        thread.start()

    def _tls_then_admit(self, sock: socket.socket, address: str, ip: str, started: float) -> None:
        assert self._tls is not None
        try:
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
            self._admit(sock, address, ip, started, stream)
        except Exception:
            log.exception("could not start a TLS connection")
            _cut(sock)
            sock.close()
        finally:
            # A finished thread must not stay referenced (it once leaked per connection).
            with self._threads_lock:
                self._threads.discard(threading.current_thread())

    def _admit(self, sock: socket.socket, address: str, ip: str, started: float, tls: TLSStream | None = None) -> None:
        sock.setblocking(False)
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        loop = min(self._loops, key=lambda candidate: candidate.size)
        outbox = Outbox(self.config.outbox_bytes, sock.send, seal=tls.encrypt if tls is not None else None)
        link = Link(loop, sock, tls, outbox, started)
        outbox.on_overflow = link.cut
        outbox.on_blocked = link.request_write
        self._make_room()
        conn = self.core.connect(outbox, address, ip)
        if conn is None:  # refused (full, per-address): the error is already sent
            link.finished = True
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_WR)
            sock.close()
            return
        link.conn = conn
        conn.end = _ender(link)
        with self._pending_lock:
            self._pending[link] = started
        loop.adopt(link)

    # --- the pre-join quota ----------------------------------------------------------

    def _make_room(self) -> None:
        """Cut the oldest connection still not joined if pre-join slots or all slots are taken."""
        quota = self.config.pending_quota
        with self._pending_lock:
            if not self._pending:
                return
            if self.core.connection_count < self.config.max_clients and len(self._pending) < quota:
                return
            victim, since = next(iter(self._pending.items()))
            if time.monotonic() - since < PENDING_GRACE:
                return
            del self._pending[victim]
        done = threading.Event()

        def cut() -> None:
            try:
                if victim.conn is not None and not victim.conn.joined and not victim.closing:
                    detail = "other connections are waiting to join and this one has not; try again"
                    victim.refuse(ErrorCode.FULL, detail, "pending_quota")
            finally:
                done.set()

        victim.loop.call_soon(cut)
        done.wait(1.0)  # so the slot is free before this connection asks for one

    def joined(self, link: Link) -> None:
        self.forget_pending(link)

    def forget_pending(self, link: Link) -> None:
        with self._pending_lock:
            self._pending.pop(link, None)

    # --- the memory budget -------------------------------------------------------------

    def trim_partial_frames(self) -> None:
        """Past the share for unfinished input, cut the connections holding the most of it."""
        over = self.budget.partial_over(self.budget.inbound)
        if not over or not self._trimming.acquire(blocking=False):
            return
        try:
            holders = sorted(
                (link for loop in self._loops for link in list(loop.links.values()) if link.inbuf and not link.closing),
                key=lambda link: len(link.inbuf),
                reverse=True,
            )
            for link in holders:
                if over <= 0:
                    break
                over -= len(link.inbuf)
                link.loop.call_soon(lambda link=link: _cut_for_memory(link))  # type: ignore[misc]
        finally:
            self._trimming.release()


def _ender(link: Link) -> Callable[[str], None]:
    """``Connection.end`` for ``link``: the core asks, from any thread, and the link's own loop closes it."""

    def end(reason: str) -> None:
        with contextlib.suppress(OSError):  # the loop has stopped (its wake-up pipe is closed): so has the link
            link.loop.call_soon(lambda: link.close(reason))

    return end


def _cut_for_memory(link: Link) -> None:
    if not link.closing:
        detail = "the relay's memory for unfinished frames is full, and this connection held the most"
        link.refuse(ErrorCode.FULL, detail, "memory")


def _cut(sock: socket.socket) -> None:
    """Abort both directions; unblocks any thread in accept or recv on ``sock``."""
    with contextlib.suppress(OSError):
        sock.shutdown(socket.SHUT_RDWR)
