"""Room messages that wait for their room's membership log, both ways. Pure.

A room message is signed at its sender's view of the log (its head). Two
things must not happen while the log verified here is behind a head someone
showed us:

- a message *from* a member is not judged by an old log: it waits here
  (``HeldRoomMessages``) until the log is fetched and verified that far, and
  is then shown if its sender is a member, or flagged if not. Dropping it
  (what happened before) lost messages from members added since our head.
- a message *to* the room is not sealed to an old member list: a removal the
  relay withholds from us would keep the removed member receiving. It waits
  (``WaitingRoomSends``) while the log is fetched, and is sent at the new
  head, or reported not sent if the relay will not serve it.

Both are bounded by named constants; what does not fit is refused and
reported, never dropped silently.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass

from susurro.crypto import OpenedMessage

from . import events as ev
from .counters import Arrival
from .events import WarningKind
from .peer import Peer
from .room_events import RoomAlert, RoomWarning
from .rooms import RoomBook

#: Room messages from others held until their room's log catches up, across all rooms.
MAX_HELD_ROOM_MESSAGES = 256
#: Of those, from one sender (by identity key): one sender's messages for rooms that do not
#: exist, or at heads that do not, cannot take every place (spec review S4, finding 1).
MAX_HELD_PER_SENDER = 32
#: Messages of rooms that are only invitations (not accepted yet), held apart from the shared hold
#: above so that invitations nobody answers never take its places from honest rooms: at most this many
#: in all and ``MAX_HELD_PER_INVITATION`` for one room, the oldest let go first (with a warning).
MAX_HELD_INVITED = 32
MAX_HELD_PER_INVITATION = 4
#: Our own room messages held until the log reaches the newest head we know of.
MAX_WAITING_ROOM_SENDS = 32
#: Seconds a room's log may take to come after we asked for it; past that, the relay is taken
#: to withhold it (the same patience as for a message's ack, ``outgoing.ACK_TIMEOUT``).
ROOM_LOG_WAIT = 30.0


@dataclass(frozen=True, slots=True)
class HeldRoomMessage:
    room_id: bytes
    peer: Peer
    opened: OpenedMessage
    #: When it arrived (the session's clock).
    since: float = 0.0
    #: How it came, for its counter check once judged (None: counted already).
    arrival: Arrival | None = None


class HeldRoomMessages:
    """Opened, checked room messages whose signed head is beyond the log verified here, in arrival order."""

    def __init__(self, limit: int = MAX_HELD_ROOM_MESSAGES, per_sender: int = MAX_HELD_PER_SENDER) -> None:
        self.limit = limit
        self.per_sender = per_sender
        self._items: list[HeldRoomMessage] = []
        #: Messages of rooms that are only invitations, apart (``MAX_HELD_INVITED``), in arrival order.
        self._invited: list[HeldRoomMessage] = []

    def __len__(self) -> int:
        return len(self._items) + len(self._invited)

    def waiting_for(self, room_id: bytes) -> bool:
        """Messages of this room wait already: a later one queues behind them, so the room keeps its order."""
        return any(item.room_id == room_id for item in (*self._invited, *self._items))

    def holds_mail(self) -> bool:
        """A message from our mailbox waits among them (its counter is still to be checked)."""
        return any(item.arrival is not None and item.arrival.session is None for item in (*self._invited, *self._items))

    def add_invited(
        self, room_id: bytes, peer: Peer, opened: OpenedMessage, now: float, arrival: Arrival | None = None
    ) -> list[HeldRoomMessage]:
        """Hold a message of a room that is only an invitation, apart; the ones let go to make room."""
        self._invited.append(HeldRoomMessage(room_id, peer, opened, now, arrival))
        return self._trim_invited()

    def set_aside(self, invited: Callable[[bytes], bool]) -> list[HeldRoomMessage]:
        """Messages held for a room that turned out to be an invitation leave the shared hold for the
        invitations' part (they would otherwise wait there for as long as nobody answers); the ones let go."""
        moving = [item for item in self._items if invited(item.room_id)]
        if not moving:
            return []
        self._items = [item for item in self._items if item not in moving]
        self._invited.extend(moving)
        return self._trim_invited()

    def _trim_invited(self) -> list[HeldRoomMessage]:
        """Past either bound of the invitations' part, its oldest message (of the fullest room) goes."""
        dropped: list[HeldRoomMessage] = []
        while True:
            counts = Counter(item.room_id for item in self._invited)
            full = next((room for room, n in counts.items() if n > MAX_HELD_PER_INVITATION), None)
            if full is None and len(self._invited) <= MAX_HELD_INVITED:
                return dropped
            victim = next(item for item in self._invited if full is None or item.room_id == full)
            self._invited.remove(victim)
            dropped.append(victim)

    def add(
        self, room_id: bytes, peer: Peer, opened: OpenedMessage, now: float, arrival: Arrival | None = None
    ) -> bool:
        """False when full, or full for this sender: the caller flags the message as not shown."""
        if len(self._items) >= self.limit:
            return False
        if sum(item.peer.identity_key == peer.identity_key for item in self._items) >= self.per_sender:
            return False
        self._items.append(HeldRoomMessage(room_id, peer, opened, now, arrival))
        return True

    def overdue(self, now: float) -> list[bytes]:
        """Rooms whose oldest held message has waited ``ROOM_LOG_WAIT`` or more (an invitation's wait for
        the user, not for a log)."""
        return list(dict.fromkeys(item.room_id for item in self._items if now - item.since >= ROOM_LOG_WAIT))

    def release(self, ready: Callable[[HeldRoomMessage], bool]) -> list[HeldRoomMessage]:
        """The held messages ``ready`` lets go, in order; a room's later messages stay behind its first waiting one."""
        out: list[HeldRoomMessage] = []
        blocked: set[bytes] = set()
        self._invited = self._release(self._invited, ready, out, blocked)  # a room's older messages first
        self._items = self._release(self._items, ready, out, blocked)
        return out

    @staticmethod
    def _release(
        items: list[HeldRoomMessage],
        ready: Callable[[HeldRoomMessage], bool],
        out: list[HeldRoomMessage],
        blocked: set[bytes],
    ) -> list[HeldRoomMessage]:
        kept: list[HeldRoomMessage] = []
        for item in items:
            if item.room_id not in blocked and ready(item):
                out.append(item)
            else:
                blocked.add(item.room_id)
                kept.append(item)
        return kept


@dataclass(frozen=True, slots=True)
class WaitingRoomSend:
    room_id: bytes
    msg_id: str
    text: str
    #: When it was typed (the session's clock).
    since: float = 0.0


class WaitingRoomSends:
    """Our messages to rooms whose log is being fetched up to a newer head, in the order typed."""

    def __init__(self, limit: int = MAX_WAITING_ROOM_SENDS) -> None:
        self.limit = limit
        self._items: list[WaitingRoomSend] = []

    def __len__(self) -> int:
        return len(self._items)

    def waiting_for(self, room_id: bytes) -> bool:
        return any(item.room_id == room_id for item in self._items)

    def add(self, item: WaitingRoomSend) -> bool:
        """False when full: the caller refuses the message."""
        if len(self._items) >= self.limit:
            return False
        self._items.append(item)
        return True

    def take(self, room_id: bytes) -> list[WaitingRoomSend]:
        """Every waiting message of one room, in order (the caller sends or reports each)."""
        taken = [item for item in self._items if item.room_id == room_id]
        self._items = [item for item in self._items if item.room_id != room_id]
        return taken

    def rooms(self) -> list[bytes]:
        return list(dict.fromkeys(item.room_id for item in self._items))

    def overdue(self, now: float) -> list[bytes]:
        """Rooms whose oldest waiting message has waited ``ROOM_LOG_WAIT`` or more."""
        return list(dict.fromkeys(item.room_id for item in self._items if now - item.since >= ROOM_LOG_WAIT))


def let_go(item: HeldRoomMessage) -> RoomAlert:
    """A message of an unanswered invitation let go from its bounded hold: said, never dropped silently."""
    detail = (
        f"{item.peer.name} sent a message to room {item.opened.inner.room[:40]!r}, whose invitation you have not "
        f"answered; it was let go unshown: at most {MAX_HELD_INVITED} messages of invitations wait "
        f"({MAX_HELD_PER_INVITATION} a room), the oldest go first"
    )
    return RoomAlert(
        kind=RoomWarning.WITHHELD,
        detail=detail,
        sender=item.peer.name,
        room=item.opened.inner.room,
        room_id=item.room_id,
    )


def withheld_reason(book: RoomBook, room_id: bytes) -> str:
    """Why nothing is sealed to a room the relay will not serve up to the newest head shown to us."""
    state = book.state(room_id)
    assert state is not None
    if book.newest_seq(room_id) <= state.head.seq:  # nothing newer: a member's head claimed another history
        return (
            f"not sent: a member's message claimed another history of room {book.display(state)}'s membership "
            "log than the one verified here; nothing is sealed to the room while that holds (a while at most)"
        )
    return (
        f"not sent: a message or the relay showed entry {book.newest_seq(room_id)} of room "
        f"{book.display(state)}'s membership log, but the relay serves it only up to entry "
        f"{state.head.seq}; nothing is sealed to a room whose members may have changed (a removal withheld)"
    )


def forked_reason(book: RoomBook, room_id: bytes) -> str:
    """Why nothing is sealed to a room whose history was shown to fork."""
    state = book.state(room_id)
    assert state is not None
    return (
        f"not sent: room {book.display(state)}'s membership log has forked ({book.forked(room_id)}); a history "
        "this client does not follow may remove members, so nothing more is sealed to the room"
    )


def waiting_notice(book: RoomBook, room_id: bytes, msg_id: str) -> ev.Warning:
    state = book.state(room_id)
    assert state is not None
    if book.newest_seq(room_id) <= state.head.seq:  # no newer head shown: the fetch after a reconnect
        why = f"room {book.display(state)}'s log is fetched again after the reconnect (it may have changed meanwhile)"
    else:
        why = (
            f"room {book.display(state)}'s membership changed since the log verified here (entry "
            f"{book.newest_seq(room_id)} was shown, entry {state.head.seq} is verified)"
        )
    return ev.Warning(
        kind=WarningKind.ROOM_STALE_HEAD,
        detail=f"message {msg_id} waits: {why}; it is sent once the log is fetched and verified",
    )


def not_sent(book: RoomBook, own_key: bytes, waiting: WaitingRoomSend, why: str) -> list[ev.Event]:
    """A waiting room message that cannot go: a warning, and a report naming every other member and why."""
    state = book.state(waiting.room_id)
    members = () if state is None else tuple(m.name for ik, m in state.members.items() if ik != own_key)
    reason = why.removeprefix("not sent: ")
    return [
        ev.Warning(kind=WarningKind.NOT_SENT, detail=f"message {waiting.msg_id} was not sent: {reason}"),
        ev.Delivery(
            msg_id=waiting.msg_id, delivered=(), missing=(), not_delivered=tuple((name, reason) for name in members)
        ),
    ]
