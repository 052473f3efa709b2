"""The client's socket edge: a ``ClientSession`` driven by one reader thread.

Frames from the relay become events on a thread-safe queue, which the CLI or
the GUI drains on its own thread. One lock guards the session and the socket's
send side, so the reader (answering the challenge) and the user (sending a
message) never interleave half-frames.

Only sockets, threads and the clock live here; the calls the views make
on the live session are ``live_calls.LiveCalls``. What to do with our messages
(held, watched for acks) is ``outgoing.Outgoing``; whether and when to
reconnect is ``reconnect.ReconnectPolicy``; both are sans-I/O and take ``now``.
"""

from __future__ import annotations

import contextlib
import dataclasses
import queue
import select
import socket
import ssl
import threading
import time
from collections.abc import Sequence

from susurro.protocol import Ping, encode

from . import events as ev
from .clock import wall_clock
from .events import WarningKind
from .link import LinkState
from .live_calls import LiveCalls
from .outgoing import ACK_TIMEOUT, MAX_HELD, Outgoing
from .reconnect import RELAY_DEAD_AFTER, Addresses, Backoff, Decision, Liveness, ReconnectPolicy, RelayWatch
from .session import ClientSession
from .sockets import SEND_TIMEOUT, ConnectFailed, cut, format_address, open_socket, readable

CLOSE_TIMEOUT = 2.0
RECV_SIZE = 64 * 1024
#: The reader wakes at least this often (seconds) for timers: key rotation, overdue acks.
TICK = 1.0


class RelayConnection(LiveCalls):
    """One member's link to the relay, re-established by itself when it breaks.

    The reader thread runs the session; when the connection ends for a reason
    another attempt can fix (lost, reset, garbage from the relay, relay full),
    it emits ``Reconnecting(delay, attempt, reason)``, waits with backoff,
    connects again with a fresh ``ClientSession`` (new session key, same
    identity and trust store), and the usual ``Connected`` + ``Roster``
    follow. ``Disconnected`` means it gave up (an announced shutdown, a
    refusal of our name or keys) or was never joined; closing by the user
    emits nothing.
    """

    def __init__(
        self,
        session: ClientSession,
        sock: socket.socket,
        events: queue.Queue[object],
        *,
        address: tuple[str, int] | None = None,
        tls: ssl.SSLContext | None = None,
        send_timeout: float = SEND_TIMEOUT,
        reconnect: bool = False,
        backoff: Backoff | None = None,
        ack_timeout: float = ACK_TIMEOUT,
        max_held: int = MAX_HELD,
        others: Sequence[tuple[str, int]] = (),
        pace: bool = True,
    ) -> None:
        self.session = session
        if pace:  # a live link paces its sends under the relay's flood allowance (resends, held lines, pastes)
            session.pace_sends()
        self.events = events
        self._sock = sock
        self._lock = threading.Lock()
        self._closing = threading.Event()
        # ``address`` and the other nodes of its cluster, tried in turn on a reconnect.
        self._addresses = Addresses([address, *others]) if address is not None else None
        self._tls = tls
        self._send_timeout = send_timeout
        self._policy = ReconnectPolicy(enabled=reconnect and address is not None, backoff=backoff)
        self._outgoing = Outgoing(ack_timeout=ack_timeout, max_held=max_held)
        self._reader = threading.Thread(target=self._run, name="susurro-reader", daemon=True)

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
        reconnect: bool = True,
        backoff: Backoff | None = None,
        ack_timeout: float = ACK_TIMEOUT,
        max_held: int = MAX_HELD,
        others: Sequence[tuple[str, int]] = (),
        pace: bool = True,
    ) -> RelayConnection:
        """Connect and start reading; ``tls`` from ``client.tls.client_context`` turns on TLS.

        ``others`` are more nodes of the same relay (``--server a:1,b:2``): the
        first connection goes to the first that answers, and a reconnect to the
        next one in turn. The first connection must succeed (``ConnectFailed``
        otherwise, so a typo in the address is reported at once); later ones are retried.
        """
        addresses = Addresses([(host, port), *others])
        sock: socket.socket | None = None
        failures: list[str] = []
        for candidate in addresses.first_attempts():
            try:
                sock = open_socket(*candidate, send_timeout=send_timeout, tls=tls)
            except ConnectFailed as exc:
                failures.append(str(exc))
                continue
            host, port = candidate
            break
        if sock is None:
            raise ConnectFailed("; ".join(failures))
        connection = cls(
            session,
            sock,
            events,
            address=(host, port),
            others=[a for a in addresses.all if a != (host, port)],
            tls=tls,
            send_timeout=send_timeout,
            reconnect=reconnect,
            backoff=backoff,
            ack_timeout=ack_timeout,
            max_held=max_held,
            pace=pace,
        )
        connection._reader.start()
        return connection

    @property
    def address(self) -> tuple[str, int] | None:
        """The relay node in use (or being tried) now: with several, the one a reconnect moved to."""
        return self._addresses.current if self._addresses is not None else None

    @property
    def state(self) -> LinkState:
        """The link as a whole: the live session's state, or ``RECONNECTING``/``CLOSED`` between sessions."""
        with self._lock:
            if self._policy.between_sessions:
                return self._policy.link.state
            return self.session.state

    def close(self) -> None:
        """Leave cleanly: ``bye``, then wait briefly for the relay to hang up.

        Bounded: the ``bye`` send is limited by SEND_TIMEOUT and the wait by
        CLOSE_TIMEOUT, so quitting never hangs on a relay that stopped reading.
        A reconnect in progress stops; held messages are reported as not delivered.
        """
        self._closing.set()
        with self._lock:
            self.session.close()
            with contextlib.suppress(OSError):
                self._flush()
            sock = self._sock
        with contextlib.suppress(OSError):
            sock.shutdown(socket.SHUT_WR)
        if self._reader.is_alive() and threading.current_thread() is not self._reader:
            self._reader.join(CLOSE_TIMEOUT)
        cut(sock)
        sock.close()

    # --- internals ------------------------------------------------------------------

    def _put(self, events: list[ev.Event]) -> None:
        for event in events:
            self.events.put(event)

    def cut(self) -> None:
        cut(self._sock)

    def _flush_orcut(self) -> None:
        """Flush from the reader's timers; a failed send may have left half a frame,
        so the connection is cut and the reader ends the session (which reports
        what was unacknowledged) instead of writing more after it."""
        try:
            self._flush()
        except OSError:
            self.cut()

    def _flush(self) -> None:
        data = self.session.data_to_send()
        if data:
            self._sock.sendall(data)

    def _run(self) -> None:
        sock = self._sock
        while True:
            reason, code = self._serve(sock)
            with self._lock:
                decision = self._policy.ended(code, closing=self._closing.is_set())
            if decision is Decision.CLOSED:
                self._give_up("the connection was closed")
                return
            if decision is Decision.GIVE_UP:
                self._give_up(reason)
                self.events.put(ev.Disconnected(reason=reason, code=code))
                return
            self._put(self._policy.announce(code, reason))  # survived: say so, then start over
            next_sock = self._connect_again(reason, code)
            if next_sock is None:
                return
            sock = next_sock

    def _give_up(self, reason: str) -> None:
        with self._lock:
            produced = self._outgoing.give_up(reason)
        self._put(produced)

    def _connect_again(self, reason: str, code: ev.EndCode | None = None) -> socket.socket | None:
        """Wait with backoff and connect; the new socket with a fresh session, or None once closed."""
        assert self._addresses is not None
        while True:
            attempt = self._policy.next_attempt(reason, code)
            self.events.put(attempt)
            if self._closing.wait(attempt.delay):
                with self._lock:
                    self._policy.close()
                self._give_up("the connection was closed")
                return None
            host, port = self._addresses.advance()  # another node first: this one just went away
            try:
                sock = open_socket(host, port, send_timeout=self._send_timeout, tls=self._tls)
            except ConnectFailed as exc:
                reason, code = str(exc), None
                continue
            with self._lock:
                if self._closing.is_set():
                    sock.close()
                    self._policy.close()
                    return None
                self.session = self.session.renewed()
                self._sock = sock
                self._policy.connected_again()
            return sock

    def _serve(self, sock: socket.socket) -> tuple[str, ev.EndCode | None]:
        """Run the current session on ``sock`` until it ends; returns why (reason, relay's code)."""
        reason = "the relay closed the connection"
        ended: ev.Disconnected | None = None
        poller = select.poll()
        poller.register(sock, select.POLLIN)
        last_tick = time.monotonic()
        watch = RelayWatch(last_tick)
        try:
            while ended is None:
                now = time.monotonic()
                if now - last_tick >= TICK:
                    last_tick = now
                    ended = self._tick(now)
                    if ended is not None:
                        break
                liveness = watch.check(now)
                if liveness is Liveness.GONE:
                    reason = f"no answer from the relay for {RELAY_DEAD_AFTER:g} s"
                    break
                if liveness is Liveness.PING:
                    with self._lock:
                        try:
                            sock.sendall(encode(Ping()))
                        except OSError:
                            cut(sock)
                if not readable(sock, poller, TICK):
                    continue
                try:
                    data = sock.recv(RECV_SIZE)
                except (BlockingIOError, TimeoutError):
                    continue  # e.g. half a TLS record so far
                except OSError as exc:
                    reason = f"connection to the relay lost ({exc.strerror or exc.__class__.__name__})"
                    break
                if not data:
                    break
                watch.heard(time.monotonic())
                with self._lock:
                    try:
                        produced = self.session.receive_data(data, wall_clock())
                    except Exception as exc:  # a bug must not kill the reader: warn, start over
                        reason = f"the client could not handle what the relay sent ({exc.__class__.__name__})"
                        produced = [ev.Warning(kind=WarningKind.INTERNAL_ERROR, detail=reason)]
                        produced.extend(self.session.connection_lost(reason))
                    try:
                        self._flush()
                    except OSError as exc:
                        reason = f"connection to the relay lost ({exc.strerror or exc.__class__.__name__})"
                        produced.extend(self.session.connection_lost(reason))
                ended = self._forward(produced)
        finally:
            with self._lock:
                final = self.session.connection_lost(reason)
                self._outgoing.session_ended(self.session.member_names())  # the session reports the unacked
            ended = self._forward(final) or ended
            cut(sock)
            sock.close()
        if ended is None:  # closed by the user: the session was already closed
            return reason, None
        return ended.reason, ended.code

    def _tick(self, now: float) -> ev.Disconnected | None:
        """About once a second: the session's timers, and acks that are overdue."""
        with self._lock:
            produced = self.session.tick(wall_clock())  # e.g. a session key rotation by age
            produced += self._outgoing.overdue(now, self.session.describe)
            self._flush_orcut()
        ended = self._forward(produced)
        if self._outgoing.waiting:  # held lines whose wait for the room ran out
            self._send_held()
        return ended

    def _forward(self, produced: list[ev.Event]) -> ev.Disconnected | None:
        """Put events on the queue; keep back ``Disconnected``, which ``_run`` decides about."""
        ended: ev.Disconnected | None = None
        joined = arrived = False
        for event in produced:
            if isinstance(event, ev.Disconnected):
                ended = event
                continue
            if isinstance(event, ev.Delivery):
                with self._lock:
                    event = self._outgoing.delivered(event)
            elif isinstance(event, ev.Connected):
                joined = True
                if self._addresses is not None and len(self._addresses.all) > 1:
                    # The session names the relay as given (all its nodes); the user wants the node in use.
                    event = dataclasses.replace(event, relay=format_address(self._addresses.current))
            elif isinstance(event, ev.Joined | ev.Roster):
                arrived = True
            self.events.put(event)
        if joined:
            with self._lock:
                self._policy.joined()
        if joined or (arrived and self._outgoing.waiting):  # someone a held line waits for may be back
            self._send_held()
        return ended

    def _send_held(self) -> None:
        """After a (re)join: send what was typed meanwhile, or report why it cannot go."""
        with self._lock:
            if self.session.state is not LinkState.JOINED:
                return
            refused = self._outgoing.resend(self._send_now, time.monotonic(), self.session.member_names())
            self._flush_orcut()
        self._put(refused)

    def _send_now(self, text: str, to: list[str] | None, msg_id: str) -> str:
        return self.session.send_message(text, wall_clock(), to, msg_id=msg_id)
