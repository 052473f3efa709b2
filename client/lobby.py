"""The demo's open room: two people who start Susurro on one machine land in it with no invite step. Pure.

With a ``Lobby`` the session, once joined, looks for the open room of that
label: if the relay has none, it creates it (open); if another client
created it first (``label_taken``), it looks again; once the log is verified
and we are not a member, it adds itself (an open room allows that). Nothing
here trusts the relay more than a ``/join`` would: the room is verified like
any other, and one that turns out invite-only is left alone. A few tries at
most (``MAX_TRIES``); each refusal past them is an ordinary ``room_refused``.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from susurro.crypto import EntryKind, RoomPolicy, RoomState
from susurro.protocol import Frame, RoomError, name_key

from .rooms import RoomBook

#: The label of the demo's open room.
DEMO_ROOM = "lobby"
#: Finds and creates one lobby tries before leaving the rest to the user.
MAX_TRIES = 3


@dataclass(slots=True)
class Lobby:
    label: str = DEMO_ROOM
    tries: int = 0
    #: Request ids of our find or create, whose refusals are ours to handle.
    requests: set[str] = field(default_factory=set)

    def start(self, book: RoomBook, now: int) -> list[Frame]:
        """After joining: find the lobby, unless we are in it already (a reconnect)."""
        state = book.state(self.label)
        if state is not None and book.identity.public in state.members:
            return []
        return self._find(book)

    def _find(self, book: RoomBook) -> list[Frame]:
        if self.tries >= MAX_TRIES:
            return []
        self.tries += 1
        request = book.find(self.label)
        self.requests.add(request.id)
        return [request]

    def refused(self, error: RoomError, book: RoomBook, now: int) -> list[Frame] | None:
        """Our find or create was refused: what to send instead (None: not ours, the book reports it)."""
        if error.id not in self.requests:
            return None
        self.requests.discard(error.id)
        if error.code == "no_such_room":
            request = book.create(self.label, RoomPolicy.OPEN, now)
            self.requests.add(request.id)
            return [request]
        if error.code == "label_taken":  # someone created it just before us
            return self._find(book)
        return None

    def ready(self, state: RoomState, book: RoomBook, now: int) -> list[Frame]:
        """The lobby's log is verified: add ourselves if it is open and we are not in it."""
        own = book.identity.public
        if name_key(state.label) != name_key(self.label) or own in state.members:
            return []
        if state.policy is not RoomPolicy.OPEN:
            return []  # someone made a room of that label invite-only: it is not the demo's
        return [book.change(state.room_id, EntryKind.ADD, book.own_name, own, now)]
