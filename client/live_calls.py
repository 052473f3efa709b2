"""What the views ask of the live session: each call under the connection's one lock.

``RelayConnection`` (``connection.py``) owns the socket, the reader thread
and the timers; these are the calls the CLI and the GUI make on it from their
own threads. A call that sends flushes at once; a failed send cuts the
connection, so the reader ends the session and reports what was unacknowledged.
"""

from __future__ import annotations

import queue
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import TypeVar

from susurro.protocol import Frame

from . import events as ev
from .clock import wall_clock
from .errors import SendError
from .mailstate import DeliveryState
from .outgoing import Outgoing
from .reconnect import ReconnectPolicy
from .rooms import RoomBook
from .session import ClientSession

T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class Sent:
    """A message just sealed and queued: its id, whom it was encrypted to and whom it skipped.

    Both empty for a message held for a reconnect (it is sealed when it goes).
    """

    msg_id: str
    addressed: tuple[str, ...] = ()
    skipped: tuple[str, ...] = ()


class LiveCalls:
    """The views' calls; ``RelayConnection`` provides the state they use."""

    session: ClientSession
    events: queue.Queue[object]
    _lock: threading.Lock
    _closing: threading.Event
    _policy: ReconnectPolicy
    _outgoing: Outgoing

    def _flush(self) -> None:
        raise NotImplementedError  # the connection writes to its socket

    def cut(self) -> None:
        raise NotImplementedError

    def _flush_or_raise(self) -> None:
        """Send what the session queued; on failure cut and say why (held under the lock)."""
        try:
            self._flush()
        except OSError as exc:
            # Part of a frame may be out: the stream is unusable. Cutting it
            # makes the reader end the session, which reports this message
            # (and any other awaiting an ack) as of unknown delivery.
            self.cut()
            raise SendError(f"connection to the relay lost ({exc.strerror or exc.__class__.__name__})") from None

    def room_request(self, build: Callable[[RoomBook, int], Frame]) -> None:
        """Send a room request built from the verified logs (``ClientSession.room_request``)."""
        with self._lock:
            self.session.room_request(build, wall_clock())
            self._flush_or_raise()

    def with_rooms(self, act: Callable[[RoomBook], T]) -> T:
        """Change the verified rooms by hand (forget a label's pin, resume after a fork), under the lock."""
        with self._lock:
            return act(self.session.rooms)

    def rooms(self) -> RoomBook:
        """The verified rooms (the book outlives reconnects); read it under no lock only for display."""
        with self._lock:
            return self.session.rooms

    def send(self, text: str, to: list[str] | None = None, *, room: str | bytes | None = None) -> Sent:
        """Seal and send to everyone present, the named members (``to``) or ``room``'s verified members.

        Raises ``SendError`` with the reason if it cannot. While a reconnect is
        under way a message that is not for a room is held (up to
        ``max_held``) and sent once the room is joined again, or reported in a
        ``Delivery`` with everyone missing if that never happens.
        """
        with self._lock:
            closing = self._closing.is_set()
            # Held while away, and also while earlier held lines still wait for the room: order is kept.
            if room is None and (
                self._policy.may_hold(self.session.state, closing=closing)
                or (self._outgoing.waiting and self._policy.will_retry(closing=closing))
            ):
                present = self.session.member_names() or list(self._outgoing.last_present)
                msg_id, notice = self._outgoing.hold(text, to, present)
                self.events.put(notice)
                return Sent(msg_id)
            msg_id = self.session.send_message(text, wall_clock(), to, room=room)
            # Read before the lock is let go: the reader may settle the ack the moment it is,
            # and a settled message no longer says whom it was for.
            addressed, skipped = self.session.recipients_of(msg_id)
            self._outgoing.sent(msg_id, time.monotonic())
            self._flush_or_raise()
        return Sent(msg_id, addressed, skipped)

    def send_message(self, text: str, to: list[str] | None = None) -> str:
        """``send`` to everyone present or the named members; the message id."""
        return self.send(text, to).msg_id

    def send_to_room(self, text: str, room: str | bytes) -> str:
        """``send`` to the members of ``room``'s verified log who are present; the message id."""
        return self.send(text, room=room).msg_id

    @property
    def held(self) -> int:
        """Messages waiting for a reconnect."""
        with self._lock:
            return len(self._outgoing.held)

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

    def delivery_reports(self, msg_ids: Iterable[str]) -> dict[str, dict[str, DeliveryState]]:
        """For those of ``msg_ids`` that waited for someone: who still waits and whose client confirmed it.

        What the mailbox part keeps sealed on disk, so a view can show a message
        from its history as delivered after the sender's own restart.
        """
        with self._lock:
            mailbox = self.session.mailbox
            if mailbox is None:
                return {}
            reports = {msg_id: mailbox.state.deliveries.report(msg_id) for msg_id in msg_ids}
            return {msg_id: report for msg_id, report in reports.items() if report}

    def outstanding(self) -> list[ev.Event]:
        """Each of our messages not yet confirmed by everyone it went to (say it before closing)."""
        with self._lock:
            return self.session.outstanding()

    def unconfirmed(self) -> list[tuple[str, str, tuple[str, ...]]]:
        """(msg_id, text, names) of each message still without everyone's receipt (``outstanding``'s parts)."""
        with self._lock:
            return self.session.unconfirmed()

    def members(self) -> list[ev.MemberInfo]:
        """The verified members now present, sorted by name (a snapshot for views)."""
        with self._lock:
            return [self.session.peers[name].info() for name in self.session.member_names()]
