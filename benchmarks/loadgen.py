"""The load generator: many chat clients in one process, one selector loop.

``relay_load`` starts a few of these workers as separate processes and drives
them over a pipe: connect N clients to a server, run a step at a fixed offered
rate, report what arrived, close. Three dialects:

- ``susurro``: the real join (challenge, signed hello, welcome), then valid
  ``send`` frames to every other member, one real sealed ciphertext reused for
  every recipient (the relay cannot tell). Receivers do not open or verify
  anything: they count ``deliver`` frames (verification would cost ~36 µs
  each and measure this process, not the relay; ``crypto_cost`` measures the
  client side).
- ``frame``: the baselines' wire, a 4-byte length and the payload.
- ``irc``: NICK/USER, JOIN one channel, PRIVMSG to it.

Every message carries ``x<20 digits>z``: the sender's ``time.monotonic_ns()``
(one system-wide clock on Linux, so comparable across processes). In Susurro
it is the message id, which the relay echoes in each ``deliver``; elsewhere it
is the text. Receivers find it with one regular expression per read, which
both counts deliveries and gives their latency. The sender also notes when
the kernel took a message's last byte: the upload time, which is what a
Susurro message (one ciphertext per recipient: 300 KB at N = 1,000) spends
before the relay can have read it, and an IRC line (300 bytes) does not.
After a step that fell short, ``collect`` keeps reading and counts the
copies that still arrive, so a late copy is told from a lost one.

Each copy gets two latencies. The read time is when this process read it;
with the generators at nice +10 on the server's two cores, a copy that
reached the socket early may be read late, and that delay is the
generator's. The arrival time is when the kernel queued it: every socket
asks for ``SO_TIMESTAMPNS``, and each read (``recvmsg_into``) returns the
wall-clock time of the last segment it took, which ``ArrivalClock`` turns
into ``monotonic_ns`` with an offset measured at the step's start. One read
gets one timestamp: every copy in it is given the latest arrival among
them, so an arrival latency is never understated. A read without one (not
Linux, the option refused, or a segment that came before Linux switched
stamping on: it does so for the whole host, later, from a work queue, when
the first socket asks) falls back to the read time and is counted.

Every loop here is bounded by a deadline; nothing waits forever.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import os
import re
import selectors
import socket
import struct
import sys
import termios
import time
from array import array
from collections import deque
from dataclasses import dataclass, field
from multiprocessing.connection import Connection
from typing import Any

PAYLOAD_BYTES = 296  # a padded Susurro ciphertext of a short message
MARKER_PLACEHOLDER = "x" + "0" * 20 + "z"
#: Bytes kept from the end of one read to find a marker split across reads.
TAIL_BYTES = 128
#: A client's unsent bytes above this mean the server stopped reading from it:
#: further messages are counted as offered but refused.
WBUF_LIMIT = 8 * 1024 * 1024
RECV_SIZE = 256 * 1024
MAX_LATENCY_SAMPLES = 100_000
#: The longest poll of a step whose messages have all been sent (it still reads).
IDLE_POLL = 0.02
#: How often a step looks at how far its clients' reading is behind (one FIONREAD per client).
UNREAD_CHECK_INTERVAL = 0.25
CHANNEL = b"#bench"
#: A Susurro ``keepalive`` frame, whole, and the ``keepalive_ack`` that answers it.
KEEPALIVE = b"\x00\x00\x00\x10\x82\xa1v\x01\xa1t\xa9keepalive"
KEEPALIVE_ACK = b"\x00\x00\x00\x14\x82\xa1v\x01\xa1t\xadkeepalive_ack"
#: How a Susurro welcome frame begins (msgpack map: v, then t = "welcome").
WELCOME_TYPE = b"\xa1t\xa7welcome"
#: Linux's socket option (and control message type, the same number) for a
#: nanosecond receive timestamp; Python 3.11's ``socket`` has no name for it.
SO_TIMESTAMPNS = 35
SCM_TIMESTAMPNS = SO_TIMESTAMPNS
#: The timestamp's payload: a ``struct timespec`` (seconds, nanoseconds) of CLOCK_REALTIME.
TIMESPEC = struct.Struct("qq")
#: Room for one such control message, with its header and alignment.
ANCILLARY_SPACE = socket.CMSG_SPACE(TIMESPEC.size) if hasattr(socket, "CMSG_SPACE") else 64
_SOL_SOCKET = socket.SOL_SOCKET
_TIMESPEC_SIZE = TIMESPEC.size
_unpack_timespec = TIMESPEC.unpack

PATTERNS = {
    # Only deliver frames: the sender's ack echoes the id too, and must not count.
    "susurro": re.compile(rb"\xa7deliver\xa4from.{1,40}?\xa2id\xb6x(\d{20})z", re.S),
    "frame": re.compile(rb"x(\d{20})z"),
    "irc": re.compile(rb"x(\d{20})z"),
}


def ask_arrival_timestamps(sock: socket.socket) -> bool:
    """Ask the kernel to stamp what ``sock`` receives; False where it cannot (then reads fall back)."""
    try:
        sock.setsockopt(socket.SOL_SOCKET, SO_TIMESTAMPNS, 1)
    except OSError:
        return False
    return True


def kernel_arrival_ns(ancdata: list[tuple[int, int, bytes]], offset: int = 0) -> int | None:
    """``recvmsg``'s ``SCM_TIMESTAMPNS`` as CLOCK_REALTIME nanoseconds less ``offset``, or None without one.

    On the generator's hot path (a read per copy or few), so written flat: the
    socket asks for nothing else, and the stamp, when there is one, comes first.
    """
    if ancdata:
        level, kind, data = ancdata[0]
        if kind == SCM_TIMESTAMPNS and level == _SOL_SOCKET and len(data) == _TIMESPEC_SIZE:
            seconds, nanoseconds = _unpack_timespec(data)
            return seconds * 1_000_000_000 + nanoseconds - offset
    return None


class ArrivalClock:
    """The offset that turns the kernel's wall-clock receive stamps into the senders' ``monotonic_ns``.

    It is taken once (at each step's start): within a 2-second step NTP may
    slew the wall clock by microseconds at most, and a step of the clock
    would show as a step's odd latencies.
    """

    def __init__(self) -> None:
        self.offset = 0
        self.measure()

    def measure(self) -> None:
        self.offset = time.time_ns() - time.monotonic_ns()

    def monotonic(self, realtime_ns: int) -> int:
        return realtime_ns - self.offset


def read_stamped(sock: socket.socket, buffers: list[bytearray], clock: ArrivalClock) -> tuple[int, int | None]:
    """One read into ``buffers``: (bytes read, arrival in ``monotonic_ns`` or None if the kernel gave none)."""
    count, ancdata, _flags, _address = sock.recvmsg_into(buffers, ANCILLARY_SPACE)
    return count, kernel_arrival_ns(ancdata, clock.offset)


@dataclass(eq=False)
class Client:
    name: str
    sock: socket.socket
    state: str = "connecting"
    tail: bytes = b""
    wbuf: bytearray = field(default_factory=bytearray)
    # One message is ``head + marker + after`` per part: Susurro sends one
    # frame per ``max_recipients`` recipients when the room is larger.
    parts: list[tuple[bytes, bytes]] = field(default_factory=list)
    writing: bool = False
    closed: bool = False
    join_sent: bool = False
    # susurro handshake only
    decoder: Any = None
    identity: Any = None
    session: Any = None
    max_recipients: int = 1024
    # Upload tracking: bytes queued and bytes the kernel took, since connect, and
    # for each message of a step the queued total at its end and its stamp.
    queued_total: int = 0
    sent_total: int = 0
    uploads: deque[tuple[int, int]] = field(default_factory=deque)


class Worker:
    def __init__(self, pipe: Connection) -> None:
        self.pipe = pipe
        self.selector = selectors.DefaultSelector()
        self.selector.register(pipe.fileno(), selectors.EVENT_READ, None)
        self.clients: list[Client] = []
        self.dialect = "frame"
        self.pattern = PATTERNS["frame"]
        self.disconnected = 0
        self.last_rx = 0.0
        # the current step's window and tallies
        self.t0 = 0
        self.t1 = 0
        self.latencies = array("q")
        #: The same copies, in the same order, timed at the kernel's arrival.
        self.arrivals = array("q")
        #: Copies of the step timed at their read because the read had no timestamp.
        self.unstamped = 0
        self.clock = ArrivalClock()
        self.lat_max = 0
        #: Per message of the step: from its stamp until the kernel took its last byte.
        self.upload_latencies = array("q")
        self.step_delivered = 0
        self.pings: list[Client] = []
        self.everyone: list[str] = []
        self.built = True
        # Reads go into one buffer and are copied out at their size, as the
        # relay reads: a 256 KiB bytes object per recv, shrunk to the ~400
        # bytes of a copy, can cost the allocator a trim and fresh pages per
        # read (over 1,000 socket pairs alone: 20-26 µs a read against 6-7).
        self.recv_buffer = bytearray(RECV_SIZE)
        self.recv_view = memoryview(self.recv_buffer)
        self.recv_buffers = [self.recv_buffer]  # recvmsg_into's argument, made once

    # --- the command loop -----------------------------------------------------

    def run(self) -> None:
        while True:
            # Between commands the clients are still served (reads, keepalive
            # answers): the other worker may still be joining its share.
            while not self.pipe.poll(0):
                self._poll(0.05)
            command = self.pipe.recv()
            kind = command[0]
            if kind == "connect":
                self.pipe.send(self.connect(*command[1:]))
            elif kind == "step":
                self.pipe.send(self.step(*command[1:]))
            elif kind == "collect":
                self.pipe.send(self.collect(*command[1:]))
            elif kind == "prepare":
                self.prepare()
                self.pipe.send(("prepared",))
            elif kind == "close":
                self.close_all()
                self.pipe.send(("closed",))
            elif kind == "stop":
                self.close_all()
                self.pipe.send(("stopped",))
                return

    # --- connecting -------------------------------------------------------------

    def connect(
        self, dialect: str, host: str, port: int, names: list[str], everyone: list[str], batch: int, timeout: float
    ) -> tuple[str, int, str, float]:
        """Connect and join ``names`` in batches; returns ("ready", count, problems, seconds until joined)."""
        self.dialect = dialect
        self.pattern = PATTERNS[dialect]
        started = time.monotonic()
        deadline = started + timeout
        problems: list[str] = []
        for start in range(0, len(names), batch):
            group: list[Client] = []
            for name in names[start : start + batch]:
                try:
                    sock = socket.create_connection((host, port), timeout=max(0.1, deadline - time.monotonic()))
                except OSError as exc:
                    problems.append(f"{name}: connect failed ({exc})")
                    continue
                sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
                ask_arrival_timestamps(sock)
                sock.setblocking(False)
                client = Client(name=name, sock=sock, state="handshake")
                self.selector.register(sock, selectors.EVENT_READ, client)
                self.clients.append(client)
                group.append(client)
                self._begin_handshake(client)
            while any(c.state == "handshake" for c in group) and time.monotonic() < deadline:
                self._poll(0.05)
            for client in group:
                if client.state == "handshake":
                    problems.append(f"{client.name}: no welcome within the time limit")
                    self._drop(client)
            if time.monotonic() >= deadline:
                problems.append("connect phase ran out of time")
                break
        joined_after = time.monotonic() - started
        # Messages are built at the first step: idle and storm clients never
        # send, and 5,000 clients' templates for a 10,000-member room would be
        # 15 GB (each lists every recipient).
        self.everyone = everyone
        self.built = False
        ready = sum(1 for c in self.clients if c.state == "ready")
        # Let the burst of join announcements drain before anyone measures.
        self._settle(0.3, 5.0)
        return ("ready", ready, "; ".join(problems[:5]), joined_after)

    def _begin_handshake(self, client: Client) -> None:
        if self.dialect == "susurro":
            from susurro.crypto import IdentityKey, SessionKey
            from susurro.protocol import FrameDecoder

            client.decoder = FrameDecoder(16 * 1024 * 1024)
            client.identity = IdentityKey.generate()
            client.session = SessionKey.generate()
        elif self.dialect == "irc":
            nick = client.name.encode()
            self._write(client, b"NICK " + nick + b"\r\nUSER " + nick + b" 0 * :bench\r\n")

    def _handshake_data(self, client: Client, data: bytes) -> None:
        if self.dialect == "frame":
            client.tail += data
            if len(client.tail) >= 6:
                client.state = "ready"
                client.tail = b""
        elif self.dialect == "irc":
            buf = client.tail + data
            self._answer_pings(client, buf)
            if b" 001 " in buf and not client.join_sent:
                client.join_sent = True
                self._write(client, b"JOIN " + CHANNEL + b"\r\n")
            if b" 366 " in buf:
                client.state = "ready"
                client.tail = b""
            else:
                client.tail = buf[-4096:]
        else:
            self._susurro_handshake(client, data)

    def _susurro_handshake(self, client: Client, data: bytes) -> None:
        from susurro.crypto import SessionCertificate, join_proof
        from susurro.protocol import RELAY_FRAMES, Challenge, Error, Hello, Welcome, decode_frame, encode

        client.decoder.feed(data)
        while (payload := client.decoder.next_payload()) is not None:
            if WELCOME_TYPE in payload[:48]:
                # Decoding a welcome validates every member of the room: at
                # 10,000 members that is the generator's time, not the relay's.
                client.state = "ready"
                client.decoder = None
                return
            frame = decode_frame(payload, RELAY_FRAMES, max_bin_len=client.decoder.max_frame)
            if isinstance(frame, Challenge):
                client.max_recipients = frame.max_recipients
                issued = int(time.time())
                cert = SessionCertificate.issue(client.identity, client.name, client.session.public, issued)
                hello = Hello(
                    name=client.name,
                    ik=client.identity.public,
                    sk=client.session.public,
                    cert=cert.signature,
                    issued_at=issued,
                    proof=join_proof(client.identity, frame.nonce, client.name, client.session.public),
                )
                self._write(client, encode(hello))
            elif isinstance(frame, Welcome):
                client.state = "ready"
                client.decoder = None
                return
            elif isinstance(frame, Error):
                client.state = f"refused: {frame.code} {frame.detail}"
                return

    def _build_messages(self, everyone: list[str]) -> None:
        """Each client's message as ``head + marker + after``, built once."""
        if self.dialect == "frame":
            for c in self.clients:
                c.parts = [(PAYLOAD_BYTES.to_bytes(4, "big"), b"p" * (PAYLOAD_BYTES - len(MARKER_PLACEHOLDER)))]
        elif self.dialect == "irc":
            for c in self.clients:
                tail = b" " + b"p" * (PAYLOAD_BYTES - len(MARKER_PLACEHOLDER) - 1) + b"\r\n"
                c.parts = [(b"PRIVMSG " + CHANNEL + b" :", tail)]
        else:
            from susurro.protocol import Send, encode

            ciphertext = _real_ciphertext()
            for c in self.clients:
                others = [name for name in everyone if name != c.name]
                c.parts = []
                for start in range(0, len(others), c.max_recipients):
                    to = {name: ciphertext for name in others[start : start + c.max_recipients]}
                    frame = encode(Send(id=MARKER_PLACEHOLDER, to=to), max_frame=16 * 1024 * 1024)
                    at = frame.index(MARKER_PLACEHOLDER.encode())
                    c.parts.append((frame[:at], frame[at + len(MARKER_PLACEHOLDER) :]))

    # --- one measured step ----------------------------------------------------------

    def prepare(self) -> None:
        """Build the clients' messages before a sweep's first step, outside its timing: at N = 2,000
        a Susurro message is 600 KB per client, and building them inside the first step once took
        longer than the step (nothing sent), and at N = 1,000 made it start late with a burst."""
        if not self.built:
            self._build_messages(self.everyone)
            self.built = True

    def step(self, t0: int, seconds: float, rate: float, drain_max: float) -> dict[str, Any]:
        """Send at ``rate`` msgs/s (all our clients together) from ``t0`` for ``seconds``."""
        self.prepare()
        ready = [c for c in self.clients if c.state == "ready" and not c.closed]
        self.t0, self.t1 = t0, t0 + int(seconds * 1e9)
        self.latencies = array("q")
        self.arrivals = array("q")
        self.unstamped = 0
        self.clock.measure()
        self.upload_latencies = array("q")
        self.lat_max = 0
        lost_before = self.disconnected
        scheduled = sent = refused = 0
        while time.monotonic_ns() < t0:
            self._poll(min(0.01, max(0.0, (t0 - time.monotonic_ns()) / 1e9)))
        interval = 1e9 / rate if rate > 0 else 0.0
        # The messages of this step; with none (a rate below one per step) or
        # all of them sent, the loop only reads until the step's end: it used to
        # compute its next due time as t0 + 0 (or 0 * inf) and poll with no
        # timeout, spinning a core that the server under test needed.
        total = int((self.t1 - t0) / interval) if interval else 0
        # The most any one client had waiting unread in its socket during the step.
        max_unread = 0
        check_every = int(UNREAD_CHECK_INTERVAL * 1e9)
        next_check = t0 + check_every
        while ready:
            now = time.monotonic_ns()
            if now >= self.t1:
                break
            if now >= next_check:
                next_check = now + check_every
                max_unread = max(max_unread, self.most_unread())
            due = min(int((now - t0) / interval) + 1, total) if total else 0
            while scheduled < due:
                client = ready[scheduled % len(ready)]
                scheduled += 1
                if client.closed or len(client.wbuf) > WBUF_LIMIT:
                    refused += 1
                    continue
                now_ns = time.monotonic_ns()
                message = b"".join(head + b"x%020dz" % now_ns + after for head, after in client.parts)
                client.uploads.append((client.queued_total + len(message), now_ns))
                self._write(client, message)
                sent += 1
            if scheduled < total:
                self._poll(min(0.002, max(0.0, (t0 + scheduled * interval - time.monotonic_ns()) / 1e9)))
            else:
                self._poll(min(IDLE_POLL, max(0.0, (self.t1 - time.monotonic_ns()) / 1e9)))
        lagged = max(0, total - scheduled)
        self._settle(0.3, drain_max)
        unsent = sum(len(c.wbuf) for c in self.clients)
        samples, arrivals = self.latencies, self.arrivals
        delivered = self.step_delivered = len(samples)
        if len(samples) > MAX_LATENCY_SAMPLES:
            stride = len(samples) // MAX_LATENCY_SAMPLES + 1
            samples, arrivals = samples[::stride], arrivals[::stride]
        for client in self.clients:
            client.uploads.clear()  # a message still not uploaded has no upload time
        return {
            "uploads": self.upload_latencies.tobytes(),
            "scheduled": scheduled,
            "sent": sent,
            "refused": refused,
            "lagged": lagged,
            "delivered": delivered,
            "latencies": samples.tobytes(),
            "arrivals": arrivals.tobytes(),
            "unstamped": self.unstamped,
            "lat_max": self.lat_max,
            "lost_clients": self.disconnected - lost_before,
            "unsent_bytes": unsent,
            "max_unread_bytes": max_unread,
        }

    def most_unread(self) -> int:
        """The most bytes any ready client has waiting unread in its socket now (``unread_bytes``)."""
        return max((unread_bytes(c.sock) for c in self.clients if c.state == "ready" and not c.closed), default=0)

    def collect(self, quiet: float, limit: float) -> dict[str, Any]:
        """After a step that fell short: keep reading (until ``quiet`` s without a delivery,
        ``limit`` s at most) and count the step's copies that arrive late."""
        self._settle(quiet, limit)
        # Counted from the step's own tally: copies read between the step's
        # report and this command are late too.
        return {"late": len(self.latencies) - self.step_delivered}

    def _settle(self, quiet: float, limit: float) -> None:
        """Keep reading until nothing arrived for ``quiet`` seconds (at most ``limit``)."""
        start = time.monotonic()
        self.last_rx = start
        while True:
            now = time.monotonic()
            pending = any(c.wbuf for c in self.clients if not c.closed)
            if now - start >= limit or (now - self.last_rx >= quiet and not pending):
                return
            self._poll(0.02)

    # --- I/O ------------------------------------------------------------------------

    def _poll(self, timeout: float) -> None:
        for key, mask in self.selector.select(timeout):
            client = key.data
            if client is None:
                continue  # the pipe: commands are read between phases
            if mask & selectors.EVENT_READ:
                self._read(client)
            if mask & selectors.EVENT_WRITE and not client.closed:
                self._flush(client)

    def _read(self, client: Client) -> None:
        try:
            count, arrived = read_stamped(client.sock, self.recv_buffers, self.clock)
        except BlockingIOError:
            return
        except OSError:
            count, arrived = 0, None
        if not count:
            self._drop(client)
            return
        data = bytes(self.recv_view[:count])
        self.last_rx = time.monotonic()
        if client.state == "handshake":
            try:
                self._handshake_data(client, data)
            except Exception as exc:  # a refused or garbled join: report, not crash
                client.state = f"failed: {exc}"
            if client.state not in ("handshake", "ready"):
                self._drop(client)
            return
        buf = client.tail + data
        found = self.pattern.findall(buf)
        if found:
            end = buf.rfind(found[-1]) + len(found[-1]) + 1
            client.tail = buf[max(end, len(buf) - TAIL_BYTES) :]
            now = time.monotonic_ns()
            # Only this step's messages (stamped at or after its start) count;
            # the last burst of a step may be stamped just past its end.
            t0 = self.t0
            stamps = [t for t in map(int, found) if t >= t0]
            if stamps:
                self._record(stamps, now, arrived)
        else:
            client.tail = buf[-TAIL_BYTES:]
        if self.dialect == "irc" and b"PING" in buf:
            self._answer_pings(client, buf)
        elif self.dialect == "susurro" and KEEPALIVE in buf:
            # As a real client does: a member that never answers is dropped
            # after --idle-timeout, and an idle run of 10,000 lasts longer.
            self._write(client, KEEPALIVE_ACK)

    def _record(self, stamps: list[int], now: int, arrived: int | None) -> None:
        """One read's copies of this step: their latency at the read and at the kernel's arrival."""
        lat = [now - t for t in stamps]
        self.latencies.extend(lat)
        top = max(lat)
        if top > self.lat_max:
            self.lat_max = top
        if arrived is None:
            self.unstamped += len(stamps)
            self.arrivals.extend(lat)
        else:
            self.arrivals.extend([arrived - t for t in stamps])

    def _answer_pings(self, client: Client, buf: bytes) -> None:
        for line in buf.split(b"\r\n"):
            if line.startswith(b"PING"):
                self._write(client, b"PONG" + line[4:] + b"\r\n")

    def _write(self, client: Client, data: bytes) -> None:
        if client.closed:
            return
        client.wbuf += data
        client.queued_total += len(data)
        self._flush(client)

    def _flush(self, client: Client) -> None:
        try:
            n = client.sock.send(client.wbuf)
        except BlockingIOError:
            n = 0
        except OSError as exc:
            if exc.errno not in (errno.EAGAIN, errno.EWOULDBLOCK):
                self._drop(client)
                return
            n = 0
        if n:
            del client.wbuf[:n]
            client.sent_total += n
            uploads = client.uploads
            if uploads and uploads[0][0] <= client.sent_total:
                now = time.monotonic_ns()
                while uploads and uploads[0][0] <= client.sent_total:
                    self.upload_latencies.append(now - uploads.popleft()[1])
        want = selectors.EVENT_READ | (selectors.EVENT_WRITE if client.wbuf else 0)
        if client.writing != bool(client.wbuf):
            client.writing = bool(client.wbuf)
            self.selector.modify(client.sock, want, client)

    def _drop(self, client: Client) -> None:
        if client.closed:
            return
        client.closed = True
        client.wbuf.clear()
        if client.state == "ready":
            self.disconnected += 1
        with contextlib.suppress(KeyError, ValueError):
            self.selector.unregister(client.sock)
        client.sock.close()

    def close_all(self) -> None:
        for client in self.clients:
            self._drop(client)
        self.clients.clear()


def unread_bytes(sock: socket.socket) -> int:
    """Bytes the kernel holds for ``sock`` that it has not read yet (Linux ``FIONREAD``; 0 if unknown).

    Where the server's copies wait when the generator, not the server, is slow to read them."""
    try:
        out = fcntl.ioctl(sock.fileno(), termios.FIONREAD, b"\0\0\0\0")
    except (OSError, ValueError):
        return 0
    return int.from_bytes(out, sys.byteorder)


def _real_ciphertext() -> bytes:
    """One short message really sealed for one recipient: the size the relay sees."""
    from susurro.crypto import BoxCache, IdentityKey, Recipient, SessionKey, seal_message

    peer = SessionKey.generate()
    sealed = seal_message(
        identity=IdentityKey.generate(),
        boxes=BoxCache(SessionKey.generate()),
        sender="bench",
        recipients=[
            Recipient(name="peer", identity_key=IdentityKey.generate().public, session_key=peer.public, counter=1)
        ],
        body="a benchmark message",
        msg_id="m1",
        sent_at=int(time.time() * 1000),
        room="main",
    )
    return sealed["peer"]


def worker_main(pipe: Connection, nice: int = 0) -> None:
    """Entry point of a worker process; ``nice`` lowers its CPU priority (see ``relay_load --gen-nice``)."""
    if nice:
        os.nice(nice)
    try:
        Worker(pipe).run()
    except (EOFError, KeyboardInterrupt):
        pass
