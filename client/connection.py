"""The client's socket edge: a ``ClientSession`` driven by one reader thread.

Frames from the relay become events on a thread-safe queue, which the CLI or
the GUI drains on its own thread. One lock guards the session and the socket's
send side, so the reader (answering the challenge) and the user (sending a
message) never interleave half-frames.
"""

from __future__ import annotations

import contextlib
import dataclasses
import math
import queue
import secrets
import select
import socket
import ssl
import threading
import time

from susurro.protocol import Ping, encode

from . import events as ev
from . import tls as client_tls
from .reconnect import (
    ACK_TIMEOUT,
    MAX_HELD,
    AckWatch,
    Backoff,
    HeldMessage,
    HeldMessages,
    retry_after_refusal,
)
from .session import ClientSession, SendError, State

CONNECT_TIMEOUT = 10.0
#: A relay that stops reading must not freeze the user: a send that cannot
#: complete in this time ends the connection (the message is then reported as
#: of unknown delivery, never silently lost).
SEND_TIMEOUT = 10.0
CLOSE_TIMEOUT = 2.0
RECV_SIZE = 64 * 1024
#: The reader wakes at least this often (seconds) for timers: key rotation, overdue acks.
TICK = 1.0
#: A relay silent this long is pinged; silent this long after that, it is presumed gone
#: and the connection is started over. (The relay pings a quiet member after 60 s.)
RELAY_PING_AFTER = 90.0
RELAY_DEAD_AFTER = 180.0
#: Endings where the relay's byte stream broke: reported as a warning before the reconnect.
BROKEN_STREAM_CODES = frozenset({"bad_frame", "frame_too_large"})


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


def renew_session(old: ClientSession) -> ClientSession:
    """A fresh session for a reconnect: same identity, name, relay label and trust store, new session key."""
    return ClientSession(
        old.identity,
        old.name,
        relay=old.relay,
        trust=old.trust,
        strict=old.strict,
        rotate_after_messages=old.rotate_after_messages,
        rotate_after_seconds=old.rotate_after_seconds,
        # Certified strictly later than every certificate of the old session, so
        # peers can tell the new session from a replay of the old one.
        issued_after=old.certificate_time,
    )


class RelayConnection:
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
    ) -> None:
        self.session = session
        self.events = events
        self._sock = sock
        self._lock = threading.Lock()
        self._closing = threading.Event()
        self._address = address
        self._tls = tls
        self._send_timeout = send_timeout
        self._reconnect = reconnect and address is not None
        self._backoff = backoff or Backoff()
        self._acks = AckWatch(ack_timeout)
        self._held = HeldMessages(max_held)
        #: Held messages sent after a reconnect -> who they were meant for when typed.
        self._resent: dict[str, tuple[str, ...]] = {}
        self._ever_joined = False
        self._name_taken_seen = 0
        self._given_up = False
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
    ) -> RelayConnection:
        """Connect and start reading; ``tls`` from ``client.tls.client_context`` turns on TLS.

        The first connection must succeed (``ConnectFailed`` otherwise, so a
        typo in the address is reported at once); later ones are retried.
        """
        connection = cls(
            session,
            open_socket(host, port, send_timeout=send_timeout, tls=tls),
            events,
            address=(host, port),
            tls=tls,
            send_timeout=send_timeout,
            reconnect=reconnect,
            backoff=backoff,
            ack_timeout=ack_timeout,
            max_held=max_held,
        )
        connection._reader.start()
        return connection

    def send_message(self, text: str, to: list[str] | None = None) -> str:
        """Seal and send; raises ``SendError`` with the reason if it cannot.

        While a reconnect is under way the message is held (up to ``max_held``)
        and sent once the room is joined again, or reported in a ``Delivery``
        with everyone missing if that never happens.
        """
        with self._lock:
            if self.session.state is not State.JOINED and self._ever_joined and self._will_retry():
                return self._hold(text, to)
            msg_id = self.session.send_message(text, time.time(), to)
            self._acks.sent(msg_id, time.monotonic())
            try:
                self._flush()
            except OSError as exc:
                # Part of a frame may be out: the stream is unusable. Cutting it
                # makes the reader end the session, which reports this message
                # (and any other awaiting an ack) as of unknown delivery.
                self._cut()
                raise SendError(f"connection to the relay lost ({exc.strerror or exc.__class__.__name__})") from None
        return msg_id

    @property
    def held(self) -> int:
        """Messages waiting for a reconnect."""
        with self._lock:
            return len(self._held)

    # --- trust: the core decides, events go on the queue like everything else ---

    def safety_number(self, name: str) -> str:
        """Raises ``TrustError`` if ``name`` is not present."""
        with self._lock:
            return self.session.safety_number(name)

    def mark_verified(self, name: str, compared: str | None = None) -> None:
        """``compared``: the safety number the user compared (refused if the key changed since)."""
        with self._lock:
            produced = self.session.mark_verified(name, compared)
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

    def recipients_of(self, msg_id: str) -> tuple[tuple[str, ...], tuple[str, ...]]:
        """(encrypted to, skipped) for a message still awaiting its ack; empty once acked."""
        with self._lock:
            return self.session.recipients_of(msg_id)

    def members(self) -> list[ev.MemberInfo]:
        """The verified members now present, sorted by name (a snapshot for views)."""
        with self._lock:
            return [self.session.peers[name].info() for name in self.session.member_names()]

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
        _cut(sock)
        sock.close()

    # --- internals ------------------------------------------------------------------

    def _will_retry(self) -> bool:
        return self._reconnect and not self._closing.is_set() and not self._given_up

    def _hold(self, text: str, to: list[str] | None) -> str:
        if not text.strip():
            raise SendError("empty message")
        intended = tuple(dict.fromkeys(to)) if to is not None else tuple(self.session.member_names())
        msg_id = secrets.token_hex(8)
        if not self._held.add(HeldMessage(msg_id, text, tuple(to) if to is not None else None, intended)):
            raise SendError(
                f"not connected to the relay, and {self._held.limit} messages are already waiting to be sent"
            )
        self.events.put(
            ev.Warning(kind="message_held", detail=f"not connected: message {msg_id} will be sent after reconnecting")
        )
        return msg_id

    def _cut(self) -> None:
        _cut(self._sock)

    def _flush_or_cut(self) -> None:
        """Flush from the reader's timers; a failed send may have left half a frame,
        so the connection is cut and the reader ends the session (which reports
        what was unacknowledged) instead of writing more after it."""
        try:
            self._flush()
        except OSError:
            self._cut()

    def _flush(self) -> None:
        data = self.session.data_to_send()
        if data:
            self._sock.sendall(data)

    def _run(self) -> None:
        sock = self._sock
        while True:
            reason, code = self._serve(sock)
            if self._closing.is_set():
                self._report_held("the connection was closed")
                return
            if code == "name_taken":
                self._name_taken_seen += 1
            retry = self._reconnect and retry_after_refusal(
                code, ever_joined=self._ever_joined, name_taken_seen=self._name_taken_seen
            )
            if not retry:
                self._given_up = True
                self._report_held(reason)
                self.events.put(ev.Disconnected(reason=reason, code=code))
                return
            if code in BROKEN_STREAM_CODES:  # survived: say so, then start over
                self.events.put(ev.Warning(kind="protocol_error", detail=reason))
            next_sock = self._connect_again(reason)
            if next_sock is None:
                return
            sock = next_sock

    def _connect_again(self, reason: str) -> socket.socket | None:
        """Wait with backoff and connect; the new socket with a fresh session, or None once closed."""
        assert self._address is not None
        host, port = self._address
        while True:
            delay = self._backoff.next_delay()
            self.events.put(ev.Reconnecting(delay=delay, attempt=self._backoff.attempt, reason=reason))
            if self._closing.wait(delay):
                self._report_held("the connection was closed")
                return None
            try:
                sock = open_socket(host, port, send_timeout=self._send_timeout, tls=self._tls)
            except ConnectFailed as exc:
                reason = str(exc)
                continue
            with self._lock:
                if self._closing.is_set():
                    sock.close()
                    return None
                self.session = renew_session(self.session)
                self._sock = sock
            return sock

    def _serve(self, sock: socket.socket) -> tuple[str, str | None]:
        """Run the current session on ``sock`` until it ends; returns why (reason, relay's code)."""
        reason = "the relay closed the connection"
        ended: ev.Disconnected | None = None
        poller = select.poll()
        poller.register(sock, select.POLLIN)
        heard = last_tick = time.monotonic()
        pinged = False
        try:
            while ended is None:
                now = time.monotonic()
                if now - last_tick >= TICK:
                    last_tick = now
                    ended = self._tick(now)
                    if ended is not None:
                        break
                silent = now - heard
                if silent >= RELAY_DEAD_AFTER:
                    reason = f"no answer from the relay for {RELAY_DEAD_AFTER:g} s"
                    break
                if silent >= RELAY_PING_AFTER and not pinged:
                    pinged = True
                    with self._lock:
                        try:
                            sock.sendall(encode(Ping()))
                        except OSError:
                            _cut(sock)
                if not _readable(sock, poller, TICK):
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
                heard, pinged = time.monotonic(), False
                with self._lock:
                    try:
                        produced = self.session.receive_data(data, time.time())
                    except Exception as exc:  # a bug must not kill the reader: warn, start over
                        reason = f"the client could not handle what the relay sent ({exc.__class__.__name__})"
                        produced = [ev.Warning(kind="internal_error", detail=reason)]
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
                self._acks.clear()  # the session reports what was unacknowledged
            ended = self._forward(final) or ended
            _cut(sock)
            sock.close()
        if ended is None:  # closed by the user: the session was already closed
            return reason, None
        return ended.reason, ended.code

    def _tick(self, now: float) -> ev.Disconnected | None:
        """About once a second: the session's timers, and acks that are overdue."""
        with self._lock:
            produced = self.session.tick(time.time())  # e.g. a session key rotation by age
            late = self._acks.overdue(now)
            self._flush_or_cut()
        produced.extend(
            ev.Warning(
                kind="delivery_unknown",
                detail=f"no delivery report from the relay for message {msg_id} after {self._acks.timeout:g} s",
            )
            for msg_id in late
        )
        return self._forward(produced)

    def _forward(self, produced: list[ev.Event]) -> ev.Disconnected | None:
        """Put events on the queue; keep back ``Disconnected``, which ``_run`` decides about."""
        ended: ev.Disconnected | None = None
        joined = False
        for event in produced:
            if isinstance(event, ev.Disconnected):
                ended = event
                continue
            if isinstance(event, ev.Delivery):
                with self._lock:
                    self._acks.settled(event.msg_id)
                    intended = self._resent.pop(event.msg_id, ())
                # A held room message goes to whoever is back when it is sent;
                # anyone it was typed for who is not is reported missing too.
                absent = tuple(n for n in intended if n not in event.delivered and n not in event.missing)
                if absent:
                    event = dataclasses.replace(event, missing=(*event.missing, *absent))
            elif isinstance(event, ev.Connected):
                joined = True
            self.events.put(event)
        if joined:
            self._backoff.reset()
            self._ever_joined = True
            self._name_taken_seen = 0
            self._send_held()
        return ended

    def _send_held(self) -> None:
        """After a (re)join: send what was typed meanwhile, or report why it cannot go."""
        with self._lock:
            held = self._held.take_all()
            refused: list[tuple[HeldMessage, str]] = []
            for message in held:
                to = list(message.to) if message.to is not None else None
                try:
                    msg_id = self.session.send_message(message.text, time.time(), to, msg_id=message.msg_id)
                except SendError as exc:
                    refused.append((message, str(exc)))
                    continue
                self._acks.sent(msg_id, time.monotonic())
                self._resent[msg_id] = message.intended
            self._flush_or_cut()
        for message, why in refused:
            detail = f"message {message.msg_id} could not be sent after reconnecting: {why}"
            self.events.put(ev.Warning(kind="not_sent", detail=detail))
            self.events.put(ev.Delivery(msg_id=message.msg_id, delivered=(), missing=message.intended))

    def _report_held(self, reason: str) -> None:
        with self._lock:
            held = self._held.take_all()
        for message in held:
            self.events.put(
                ev.Warning(kind="not_sent", detail=f"message {message.msg_id} was never sent: {reason}")
            )
            self.events.put(ev.Delivery(msg_id=message.msg_id, delivered=(), missing=message.intended))


def _readable(sock: socket.socket, poller: select.poll, timeout: float) -> bool:
    """Wait up to ``timeout`` seconds for bytes, EOF or an error; TLS may hold bytes poll cannot see."""
    pending = getattr(sock, "pending", None)
    if pending is not None and pending() > 0:
        return True
    return bool(poller.poll(max(1, math.ceil(timeout * 1000))))


def _cut(sock: socket.socket) -> None:
    with contextlib.suppress(OSError):
        sock.shutdown(socket.SHUT_RDWR)
