"""The relay's I/O threads: a few epoll loops, each owning a share of the connections.

Each ``EventLoop`` thread waits on one ``epoll`` for its connections'
sockets (level-triggered, non-blocking) and for a wake-up pipe, reads every
ready socket once per pass, hands complete frames to ``RelayCore``, runs its
timers (handshake deadline, keepalive, idle timeout, unfinished-frame
deadline, flood pacing, send timeout), and at the end of the pass flushes
every outbox that pass routed to: one ``send`` per recipient per pass
(``outbox.Batch``). No thread per connection, so an idle member costs a
few objects and its kernel socket, and a message to a room costs one
system call per recipient whatever it fans out from.

``Link`` is one connection's I/O state. It splits the byte stream into
frames itself (the length prefix is all it reads) so that it can

- pace a fast sender by not reading its socket (``ratelimit``),
- count only complete frames as signs of life, and give a started frame
  a deadline (``--frame-timeout``), and
- count the bytes it holds against the relay's ``MemoryBudget``,

and hands the core whole frames only; a bad length prefix goes to the core
as it is, which refuses it with the same errors as before.

Only a link's own loop touches its socket's reads, its read buffer and its
timers. Writes may come from any loop (a message routed by another loop's
reader) through the outbox, which serializes them; ``request_write`` and
``cut`` are the thread-safe ways in.
"""

from __future__ import annotations

import contextlib
import fcntl
import heapq
import itertools
import logging
import math
import os
import select
import socket
import ssl
import struct
import sys
import termios
import threading
import time
from collections import deque
from collections.abc import Callable
from typing import TYPE_CHECKING

from susurro.protocol import Error, ErrorCode, encode
from susurro.transport import TLSStream

from .core import Connection
from .idle import IdleAction, IdleWatch
from .outbox import Batch, FlushPool, Outbox, use_batch
from .ratelimit import RateLimiter, Verdict

if TYPE_CHECKING:
    from .server import RelayServer

log = logging.getLogger("susurro.relay")

#: Bytes read from one socket per pass: one pass serves every ready socket
#: once, so a busy sender cannot starve the others.
RECV_SIZE = 64 * 1024
#: How long a loop holds the writes of its passes before sending them
#: (corking, as ngircd and ergo do): every frame routed to a member within
#: it leaves in one ``send``. Without it a pass that routed one message
#: costs one system call per recipient, which at moderate load was most of
#: the relay's CPU (decision 37). Bounded, so a frame waits at most this long.
WRITE_CORK = 0.001
#: A pass that wrote to at least this many outboxes is a fan-out worth holding
#: (``RelayConfig.fanout_hold``): past its cork it is flushed only once a poll
#: finds nothing more to read, or when the hold runs out. A copy to a member
#: costs a loopback ``send`` of 12-17 µs whatever it carries, so at N = 1,000
#: two messages flushed together cost half the sends of two flushed apart;
#: smaller passes (rooms up to 255) keep the plain cork, and their latency.
FANOUT_HOLD_OUTBOXES = 256
#: How often a loop looks again at connections paused because the memory budget is full.
BUDGET_RETRY = 0.05
#: Shortest flood-control pause, so float rounding never makes a timer spin.
MIN_PAUSE = 0.001
_PREFIX = 4
#: A frame's length prefix, read in place (no slice of the buffer per frame).
_LENGTH = struct.Struct(">I")
_READ = select.EPOLLIN | select.EPOLLRDHUP
_WRITE = select.EPOLLOUT
_HANGUP = select.EPOLLHUP | select.EPOLLERR


def flush_due(now: float, flush_at: float, hold_until: float, reads: int, outboxes: int) -> bool:
    """Whether a pass's corked writes leave now: once the cork (``flush_at``) is over, unless
    the pass wrote to ``FANOUT_HOLD_OUTBOXES`` or more outboxes and read more input (``reads``)
    before its hold (``hold_until``) ran out. Then the loop polls once more without waiting
    (the cork is over) and flushes as soon as a pass reads nothing: messages that arrived
    while the last one was routed leave with it, and the hold bounds what its first copy waits."""
    if now < flush_at:
        return False
    return not (reads and outboxes >= FANOUT_HOLD_OUTBOXES and now < hold_until)


def _kernel_unread(fd: int) -> int:
    """Bytes in the socket's kernel receive queue not yet read (Linux FIONREAD)."""
    try:
        out = fcntl.ioctl(fd, termios.FIONREAD, b"\0\0\0\0")
    except OSError:
        return 1  # unknown: not caught up
    return int.from_bytes(out, sys.byteorder)


def _kernel_unsent(fd: int) -> int:
    """Bytes in the socket's kernel send queue not yet acknowledged by the peer (Linux SIOCOUTQ)."""
    try:
        out = fcntl.ioctl(fd, termios.TIOCOUTQ, b"\0\0\0\0")
    except OSError:
        return 0
    return int.from_bytes(out, sys.byteorder)


class Link:
    """One connection's I/O state, owned by one ``EventLoop``."""

    __slots__ = (
        "_mask",
        "_mask_lock",
        "budget_paused",
        "closing",
        "conn",
        "drain_deadline",
        "fd",
        "finished",
        "frame_started",
        "handshake_deadline",
        "idle",
        "inbuf",
        "kernel_unsent",
        "limiter",
        "loop",
        "outbox",
        "paused_until",
        "registered",
        "sock",
        "timer_at",
        "tls",
        "want_write",
    )

    def __init__(
        self,
        loop: EventLoop,
        sock: socket.socket,
        tls: TLSStream | None,
        outbox: Outbox,
        started: float,
    ) -> None:
        config = loop.server.config
        self.loop = loop
        self.sock = sock
        self.tls = tls
        self.fd = sock.fileno()
        self.outbox = outbox
        self.conn: Connection | None = None
        self.inbuf = bytearray()
        self.kernel_unsent = 0
        self.handshake_deadline = started + config.handshake_timeout
        self.idle = IdleWatch(config.idle_ping, config.idle_timeout, started)
        self.limiter = RateLimiter(config.rate_burst, config.rate_per_second, started, config.rate_grace)
        self.frame_started: float | None = None
        self.paused_until: float | None = None
        self.budget_paused = False
        self.closing = False  # no more reads; flushing what is queued
        self.finished = False  # socket closed
        self.drain_deadline = 0.0
        self.timer_at = math.inf
        self.want_write = False
        self.registered = False
        self._mask = 0
        self._mask_lock = threading.Lock()

    # --- thread-safe entry points ------------------------------------------------

    def request_write(self) -> None:
        """The outbox has bytes the kernel would not take: flush again once writable."""
        with self._mask_lock:
            if self.finished:
                return
            self.want_write = True
            self._apply_mask()
        if threading.get_ident() == self.loop.ident:
            self.loop.schedule(self, time.monotonic() + self.loop.server.config.send_timeout)
        else:
            self.loop.call_soon(self._send_timer)

    def _send_timer(self) -> None:
        self.loop.schedule(self, time.monotonic() + self.loop.server.config.send_timeout)

    def cut(self) -> None:
        """Abort both directions from any thread; the owning loop then sees the end and closes."""
        with contextlib.suppress(OSError):
            self.sock.shutdown(socket.SHUT_RDWR)

    # --- events mask ----------------------------------------------------------------

    def _apply_mask(self) -> None:
        """Register the events this link waits for (caller holds ``_mask_lock``)."""
        reading = not (self.closing or self.budget_paused or self.paused_until is not None)
        mask = (_READ if reading else 0) | (_WRITE if self.want_write else 0)
        if not self.registered or mask == self._mask:
            return
        self._mask = mask
        with contextlib.suppress(OSError, ValueError):
            self.loop.epoll.modify(self.fd, mask)

    def update_mask(self) -> None:
        with self._mask_lock:
            if not self.finished:
                self._apply_mask()

    def register(self) -> None:
        with self._mask_lock:
            reading = not (self.closing or self.budget_paused or self.paused_until is not None)
            self._mask = (_READ if reading else 0) | (_WRITE if self.want_write else 0)
            self.loop.epoll.register(self.fd, self._mask)
            self.registered = True

    # --- events (owning loop only) ------------------------------------------------

    def on_writable(self, now: float) -> None:
        self.outbox.flush()
        with self._mask_lock:
            if self.outbox.drained and self.want_write and not self.finished:
                self.want_write = False
                self._apply_mask()
        if self.closing and self.outbox.drained:
            self.finish()

    def on_readable(self, now: float, hangup: bool = False) -> None:
        if self.closing:
            return
        if hangup and (self.paused_until is not None or self.budget_paused):
            # Reset or error while we are not reading: the connection is gone.
            self.close(self.outbox.close_reason or "connection lost")
            return
        server = self.loop.server
        if server.budget.full():
            self.budget_paused = True
            self.update_mask()
            self.loop.budget_waiting.append(self)
            server.trim_partial_frames()
            return
        try:
            # Into the loop's one buffer: no 64 KiB object allocated and shrunk
            # per read (cheaper, and the allocator does not fragment under churn).
            count = self.sock.recv_into(self.loop.recv_buffer)
        except (BlockingIOError, InterruptedError):
            return
        except OSError as exc:
            self.close(self.outbox.close_reason or f"connection lost ({exc.__class__.__name__})")
            return
        ended = not count
        data: bytes | memoryview = self.loop.recv_view[:count]
        if self.tls is not None:
            try:
                data, tls_ended = self.tls.decrypt(bytes(data))
            except ssl.SSLError as exc:
                self.close(f"connection lost (TLS: {exc.reason or exc.__class__.__name__})")
                return
            ended = ended or tls_ended
        if data:
            self.inbuf += data
            self.loop.meter.inbound += len(data)
            self.process(now)
            if self.inbuf and server.budget.partial_over(server.budget.inbound):
                server.trim_partial_frames()
        if ended and not self.closing:
            self.close(self.outbox.close_reason or "closed by client")

    def process(self, now: float) -> None:
        """Hand every complete frame the pacing allows to the core."""
        conn = self.conn
        assert conn is not None
        core = self.loop.server.core
        buf = self.inbuf
        size = len(buf)
        start = 0
        ok = True
        held = False
        while not self.closing:
            if size - start < _PREFIX:
                break
            length = _LENGTH.unpack_from(buf, start)[0]
            if length == 0 or length > conn.decoder.max_frame:
                # The core refuses a bad length prefix with the errors it always has.
                ok = core.receive(conn, bytes(buf[start:]))
                start = size
                break
            end = start + _PREFIX + length
            if end > size:
                break
            if not conn.joined:
                # One frame at a time: a hello changes the frame limit for what follows.
                ok = core.receive(conn, bytes(buf[start:end]))
                start = end
                self.idle.heard(now)
                if not ok:
                    break
                if conn.joined:
                    self.loop.server.joined(self)
                    self.loop.schedule(self, now + self.idle.ping_after)
                continue
            allowed = self.limiter.allowance(now)
            if allowed < 1:
                held = True
                verdict = self.limiter.hold(now)
                if verdict is Verdict.DISCONNECT:
                    self.refuse(ErrorCode.RATE_LIMITED, self._flood_detail(), "rate_limited")
                    ok = True
                else:
                    self.pause(now + max(MIN_PAUSE, self.limiter.delay(now)))
                break
            # As many complete frames as the tokens allow, in one call.
            count = 1
            while count < allowed and size - end >= _PREFIX:
                following = _LENGTH.unpack_from(buf, end)[0]
                if following == 0 or following > conn.decoder.max_frame or end + _PREFIX + following > size:
                    break
                end += _PREFIX + following
                count += 1
            self.limiter.spend(count)
            # Whole frames within the limit, as split here: the core parses them in place.
            ok = core.receive_frames(conn, bytes(buf[start:end]) if start or end < size else bytes(buf))
            start = end
            self.idle.heard(now)
            if not ok:
                break
        if start:
            del buf[:start]
            self.loop.meter.inbound -= start
        if not ok and not self.closing:
            self.close(self.outbox.close_reason or conn.close_reason or ("bye" if conn.joined else "refused"))
            return
        if self.closing:
            return
        if not held and self.limiter.throttled and not _kernel_unread(self.fd):
            # Everything it sent is handled: a client that waits for its answers is not flooding.
            self.limiter.caught_up()
        if buf and self.paused_until is None:
            # An unfinished frame: it must complete by its deadline (counted from its first byte).
            if start or self.frame_started is None:
                self.frame_started = now
                self.loop.schedule(self, now + self.loop.server.config.frame_timeout)
        else:
            self.frame_started = None

    def _flood_detail(self) -> str:
        limiter = self.limiter
        return (
            f"kept sending too fast for {limiter.grace:g} s (at most {limiter.rate:g} frames/s after a burst of "
            f"{limiter.burst}); closing"
        )

    def pause(self, until: float) -> None:
        """Stop reading until ``until``: the sender's TCP window fills and it slows down."""
        self.paused_until = until
        self.frame_started = None
        self.update_mask()
        self.loop.schedule(self, until)

    def resume_budget(self, now: float) -> None:
        self.budget_paused = False
        self.update_mask()

    def check(self, now: float) -> None:
        """Timers: called by the loop when this link's earliest deadline is due."""
        if self.finished:
            return
        config = self.loop.server.config
        if self.closing:
            if now >= self.drain_deadline:
                self.finish()
            else:
                self.loop.schedule(self, self.drain_deadline)
            return
        conn = self.conn
        assert conn is not None
        core = self.loop.server.core
        outbox = self.outbox
        if outbox.blocked_since is not None and not outbox.drained:
            stuck = max(outbox.progress_at, outbox.blocked_since)
            if now - stuck >= config.send_timeout:
                outbox.abort("write failed")
                self.close("write failed")
                return
            next_at = stuck + config.send_timeout
        else:
            next_at = math.inf
        if outbox.progress_at:
            self.idle.draining(outbox.progress_at)
        # Most of a backlog waits in the kernel's send buffer, not the outbox:
        # bytes leaving it since the last look are a sign of life too.
        unsent = _kernel_unsent(self.fd)
        if unsent != self.kernel_unsent:
            if unsent < self.kernel_unsent:
                self.idle.draining(now)
            self.kernel_unsent = unsent
        if not conn.joined:
            if now >= self.handshake_deadline:
                core.handshake_timed_out(conn)
                self.close("handshake_timeout")
                return
            next_at = min(next_at, self.handshake_deadline)
        else:
            action, wait = self.idle.due(now)
            if action is IdleAction.DROP:
                core.idle_timed_out(conn)
                self.close("idle_timeout")
                return
            if action is IdleAction.PING:
                core.keepalive(conn)
            next_at = min(next_at, now + wait)
        if self.frame_started is not None:
            due = self.frame_started + config.frame_timeout
            if now >= due:
                detail = f"a frame was started {now - self.frame_started:.0f} s ago and is not complete"
                self.refuse(ErrorCode.IDLE_TIMEOUT, detail, "frame_timeout")
                return
            next_at = min(next_at, due)
        if self.paused_until is not None:
            if now >= self.paused_until:
                self.paused_until = None
                self.update_mask()
                self.process(now)
                if self.closing:
                    return
                # process() may have paused it again. Asked through a call: mypy still takes the
                # attribute for the None set above, and compiled code checks that it is (TypeError).
                again = self._paused_until()
                if again is not None:
                    next_at = min(next_at, again)
            else:
                next_at = min(next_at, self.paused_until)
        self.loop.schedule(self, next_at)

    def _paused_until(self) -> float | None:
        return self.paused_until

    # --- the end ----------------------------------------------------------------------

    def refuse(self, code: ErrorCode, detail: str, reason: str) -> None:
        """Send ``error{code}`` and close: for the limits the I/O layer itself enforces."""
        label = self.conn.label() if self.conn is not None else f"fd={self.fd}"
        address = self.conn.address if self.conn is not None else "-"
        log.warning("reject %s addr=%s code=%s detail=%s", label, address, code.value, detail)
        self.outbox.offer(encode(Error(code=code.value, detail=detail)))
        if self.conn is not None:
            self.conn.close_reason = reason
        self.close(reason)

    def close(self, reason: str) -> None:
        """Leave the room, stop reading, flush what is queued (bounded), then close the socket."""
        if self.closing:
            return
        self.closing = True
        self.paused_until = None
        if self.inbuf:
            self.loop.meter.inbound -= len(self.inbuf)
            self.inbuf = bytearray()
        self.frame_started = None
        server = self.loop.server
        if self.conn is not None:
            server.core.disconnect(self.conn, reason)
        server.forget_pending(self)
        self.outbox.close(reason)
        self.outbox.flush()
        if self.outbox.drained:
            self.finish()
            return
        with self._mask_lock:
            # Ended on the next writable event once drained: a flush thread may be
            # sending the rest right now, and would not tell this loop when it is done.
            self.want_write = True
            self._apply_mask()
        self.drain_deadline = time.monotonic() + server.flush_timeout
        self.loop.schedule(self, self.drain_deadline)

    def finish(self) -> None:
        """Close the socket (after FIN, so the peer reads what was sent first)."""
        with self._mask_lock:
            if self.finished:
                return
            self.finished = True
            if self.registered:
                with contextlib.suppress(OSError, ValueError):
                    self.loop.epoll.unregister(self.fd)
        self.outbox.abort(self.outbox.close_reason or "closed")
        # A flush thread may still be in this outbox's send: the socket closes after it
        # returns (and what it held is counted as dropped only then).
        if not self.outbox.settle():
            log.warning("closing fd=%d while a send to it has not returned", self.fd)
        if self.conn is not None and self.conn.joined:
            dropped = self.outbox.take_dropped()
            if dropped:
                self.loop.server.core.report_dropped(self.conn, dropped, self.outbox.close_reason)
        if self.tls is not None:
            with contextlib.suppress(OSError, ValueError):
                self.tls.shutdown(socket.SHUT_WR)  # close_notify, best effort
        with contextlib.suppress(OSError):
            self.sock.shutdown(socket.SHUT_WR)
        with contextlib.suppress(OSError):
            self.sock.shutdown(socket.SHUT_RDWR)
        self.sock.close()
        # The outbox's callbacks and the core's end hook point back at this link: let go of them,
        # so a closed connection is freed by reference counting, not left for the collector
        # (whose young threshold the relay raises: relay.server.GC_YOUNG_THRESHOLD).
        self.outbox.on_overflow = self.outbox.on_blocked = None
        if self.conn is not None:
            self.conn.end = None
        self.loop.forget(self)


class EventLoop:
    """One I/O thread: an epoll over its share of the connections, and their timers."""

    def __init__(self, server: RelayServer, index: int) -> None:
        self.server = server
        self.index = index
        self.epoll = select.epoll()
        self._wake_r, self._wake_w = os.pipe()
        os.set_blocking(self._wake_r, False)
        os.set_blocking(self._wake_w, False)
        self.epoll.register(self._wake_r, select.EPOLLIN)
        self.links: dict[int, Link] = {}
        self._timers: list[tuple[float, int, Link]] = []
        self._seq = itertools.count()
        self._calls: deque[Callable[[], None]] = deque()
        self.budget_waiting: list[Link] = []
        self.meter = server.budget.meter()
        threads = server.config.flush_threads
        self.pool = FlushPool(threads, server.budget.meter, f"relay-io{index}") if threads else None
        self.batch = Batch(self.meter, self.pool)
        self.recv_buffer = bytearray(RECV_SIZE)
        self.recv_view = memoryview(self.recv_buffer)
        self.ident: int | None = None
        self.stopping = False
        self.thread = threading.Thread(target=self._run, name=f"relay-io{index}", daemon=True)

    @property
    def size(self) -> int:
        return len(self.links)

    def start(self) -> None:
        self.thread.start()

    # --- thread-safe ------------------------------------------------------------------

    def call_soon(self, call: Callable[[], None]) -> None:
        self._calls.append(call)
        with contextlib.suppress(BlockingIOError):
            os.write(self._wake_w, b"\0")

    def adopt(self, link: Link) -> None:
        """Take over a new connection (from the acceptor or a TLS thread)."""
        self.call_soon(lambda: self._adopt(link))

    # --- loop thread only -------------------------------------------------------------

    def schedule(self, link: Link, when: float) -> None:
        """Make sure ``link.check`` runs by ``when`` (a later entry for it is then stale)."""
        if when < link.timer_at:
            link.timer_at = when
            heapq.heappush(self._timers, (when, next(self._seq), link))

    def forget(self, link: Link) -> None:
        self.links.pop(link.fd, None)
        # A closed connection's timer entry would keep its objects alive until it
        # comes due (a handshake deadline: 10 s of connections at any churn rate);
        # drop such entries once they outnumber the live ones, so churn does not leak memory.
        if len(self._timers) > 2 * len(self.links) + 64:
            self._timers = [entry for entry in self._timers if not entry[2].finished and entry[0] == entry[2].timer_at]
            heapq.heapify(self._timers)

    def _adopt(self, link: Link) -> None:
        if link.finished:
            return
        self.links[link.fd] = link
        link.register()
        if self.stopping:
            link.close("shutdown")
            return
        link.check(time.monotonic())

    def _run(self) -> None:
        self.ident = threading.get_ident()
        use_batch(self.batch)
        epoll = self.epoll
        links = self.links
        wake = self._wake_r
        batch = self.batch
        flush_at = math.inf  # when what the batch holds must leave (WRITE_CORK after its first offer)
        hold = self.server.config.fanout_hold
        hold_until = math.inf  # a large pass's latest flush (``hold`` after its first offer)
        try:
            while not (self.stopping and not links):
                timeout = self._timeout()
                if batch.dirty:
                    corked = max(0.0, flush_at - time.monotonic())
                    timeout = corked if timeout < 0 else min(timeout, corked)
                events = epoll.poll(timeout)
                batch.active = True
                now = time.monotonic()
                reads = 0
                for fd, mask in events:
                    if fd == wake:
                        self._run_calls()
                        continue
                    link = links.get(fd)
                    if link is None:
                        continue
                    try:
                        if mask & _WRITE:
                            link.on_writable(now)
                        if mask & (_READ | _HANGUP) and not link.finished:
                            reads += 1
                            link.on_readable(now, bool(mask & _HANGUP))
                    except Exception:
                        log.exception("I/O for fd=%d failed", fd)
                        self._fail(link)
                self._run_timers(now)
                if batch.dirty:
                    if flush_at == math.inf:
                        flush_at = now + WRITE_CORK
                        hold_until = now + hold
                    if self.stopping or flush_due(now, flush_at, hold_until, reads, len(batch.dirty)):
                        batch.flush()
                        flush_at = hold_until = math.inf
        except Exception:
            log.exception("I/O loop %d failed", self.index)
        finally:
            if self.pool is not None:
                # What the pool was handed leaves first (the sockets are non-blocking).
                self.pool.wait_idle()
            for link in list(links.values()):
                link.finish()
            if self.pool is not None:
                self.pool.stop()
            self.epoll.close()
            os.close(self._wake_r)
            os.close(self._wake_w)

    def _fail(self, link: Link) -> None:
        with contextlib.suppress(Exception):
            link.close("internal error")
        with contextlib.suppress(Exception):
            link.finish()

    def _timeout(self) -> float:
        if self._calls:
            return 0.0
        if self.budget_waiting:
            return BUDGET_RETRY
        if not self._timers:
            return 1.0 if self.stopping else -1
        return max(0.0, min(self._timers[0][0] - time.monotonic(), 3600.0))

    def _run_calls(self) -> None:
        with contextlib.suppress(BlockingIOError):
            while os.read(self._wake_r, 4096):
                pass
        while self._calls:
            call = self._calls.popleft()
            try:
                call()
            except Exception:
                log.exception("I/O loop %d: a call failed", self.index)

    def _run_timers(self, now: float) -> None:
        timers = self._timers
        while timers and timers[0][0] <= now:
            when, _, link = heapq.heappop(timers)
            if when != link.timer_at or link.finished:
                continue  # superseded by an earlier entry, or gone
            link.timer_at = math.inf
            try:
                link.check(now)
            except Exception:
                log.exception("timers for fd=%d failed", link.fd)
                self._fail(link)
        if self.budget_waiting and not self.server.budget.full():
            waiting, self.budget_waiting = self.budget_waiting, []
            for link in waiting:
                if not link.finished:
                    link.resume_budget(now)
        elif self.budget_waiting:
            self.server.trim_partial_frames()
