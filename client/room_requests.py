"""Our room requests until the relay answers them, and changes signed again after a lost race. Pure.

``RoomRequests`` numbers each request, remembers what it asked (a fetch of
which room, our create's entry, our append's entry and its seq), and hands
that back when the answer comes (``answered``), so ``rooms.RoomBook`` can read
an answer that carries no entries of its own. A change that lost the race for
the head (``room_conflict``) is kept and signed again on the new head once the
log caught up (``resign``), ``MAX_RETRIES`` times at most.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from susurro.crypto import EntryKind, IdentityKey, RoomLogError, RoomPolicy, RoomState, create_entry
from susurro.protocol import ErrorCode, RoomAppend, RoomCreate, RoomError, RoomFetch, RoomFind, RoomList

#: Times a change is re-signed after losing a race for the head (``room_conflict``).
MAX_RETRIES = 3

#: Seconds a fetch may go unanswered on a connection before it is given up and the user told: an honest
#: relay answers a page at once, and a fetch awaited for ever blocks the room's later fetches until the
#: next welcome. A check's fetches have ``room_invites.CHECK_WAIT`` instead (timed from its last page).
FETCH_WAIT = 30.0


@dataclass(slots=True)
class Change:
    """A membership change we sign, until the relay takes it."""

    room_id: bytes
    kind: EntryKind
    subject_name: str
    subject_ik: bytes
    policy: RoomPolicy | None
    tries: int = 0
    #: The signed entry last sent for it, and its sequence number.
    entry: bytes = b""
    seq: int = 0


@dataclass(frozen=True, slots=True)
class Answered:
    """What a request id stood for, taken when its answer came."""

    #: Our create's entry (None: the request was no create).
    created: bytes | None
    #: Our change (None: the request was no change).
    own: Change | None
    #: The room a fetch asked for (None: the request was no fetch).
    fetched: bytes | None = None
    #: The label a find asked for (None: the request was no find): the answer is the room the user
    #: asked for only if its signed label is this one.
    sought: str | None = None
    #: The entry a fetch asked from (None: the request was no fetch): an answer from elsewhere is not its.
    fetched_from: int | None = None


class RoomRequests:
    """Room requests in flight, by id. ``state_of(room_id)`` is the verified state a change continues."""

    def __init__(self, identity: IdentityKey, own_name: str, state_of: Callable[[bytes], RoomState | None]) -> None:
        self._identity = identity
        self._own_name = own_name
        self._state_of = state_of
        self._fetching: dict[str, bytes] = {}  # request id -> room
        self._fetch_from: dict[str, int] = {}  # request id of a fetch -> the entry it asked from
        self._changes: dict[str, Change] = {}  # request id -> change awaiting its answer
        self._creating: dict[str, bytes] = {}  # request id -> create entry
        self._finding: dict[str, str] = {}  # request id of a find -> the label it asked for
        self._retry: list[Change] = []  # changes that lost a race, re-signed once caught up
        self._fetch_since: dict[str, float] = {}  # request id of a fetch -> the first tick that saw it out
        self._ids = 0

    def _next_id(self, prefix: str) -> str:
        self._ids += 1
        return f"{prefix}{self._ids}"

    def create(self, label: str, policy: RoomPolicy, now: int) -> RoomCreate:
        entry = create_entry(self._identity, name=self._own_name, label=label, policy=policy, time=now).to_bytes()
        request = RoomCreate(id=self._next_id("c"), entry=entry)
        self._creating[request.id] = entry
        return request

    def find(self, label: str) -> RoomFind:
        request = RoomFind(id=self._next_id("f"), label=label)
        self._finding[request.id] = label
        return request

    def list_rooms(self) -> RoomList:
        return RoomList(id=self._next_id("l"))

    def fetch(self, room_id: bytes, from_seq: int) -> RoomFetch:
        request = RoomFetch(id=self._next_id("g"), room=room_id, from_seq=from_seq)
        self._fetching[request.id] = room_id
        self._fetch_from[request.id] = from_seq
        return request

    def change(self, change: Change, now: int) -> RoomAppend:
        return self._sign(change, self._next_id("a"), now)

    def _sign(self, change: Change, request_id: str, now: int) -> RoomAppend:
        state = self._state_of(change.room_id)
        if state is None:
            raise ValueError("that room is not verified here yet")
        entry = state.next_entry(
            self._identity,
            kind=change.kind,
            subject_name=change.subject_name,
            subject_ik=change.subject_ik,
            time=now,
            policy=change.policy,
        ).to_bytes()
        state.extend([entry])  # raises RoomLogError: say so before the relay does
        change.entry, change.seq = entry, state.head.seq + 1
        self._changes[request_id] = change
        return RoomAppend(id=request_id, room=change.room_id, entries=(entry,))

    def answered(self, request_id: str) -> Answered:
        """The request ``request_id`` was answered: what it stood for (nothing is awaited for it any more)."""
        created = self._creating.pop(request_id, None)
        own = self._changes.pop(request_id, None)
        sought = self._finding.pop(request_id, None)
        return Answered(
            created, own, self._fetching.pop(request_id, None), sought, self._fetch_from.pop(request_id, None)
        )

    def fetched_rooms(self) -> list[bytes]:
        """The rooms of the fetches out now (one entry a fetch)."""
        return list(self._fetching.values())

    def catching_up(self, room_id: bytes) -> bool:
        """A fetch of this room's log is on its way (its answer may still bring the entries we lack)."""
        return room_id in self._fetching.values()

    def overdue(self, now: float) -> list[bytes]:
        """On a tick: the rooms with a fetch out ``FETCH_WAIT`` seconds or more, oldest first and once each,
        timed from the first tick that saw it out (no clock here: a second late at most)."""
        self._fetch_since = {rid: self._fetch_since.get(rid, now) for rid in self._fetching}
        late = [self._fetching[rid] for rid, since in self._fetch_since.items() if now - since >= FETCH_WAIT]
        return list(dict.fromkeys(late))

    def lost(self) -> list[bytes]:
        """The connection ended: every fetch out went on it, and none will be answered now (the next
        connection never answers the old request ids). The rooms they asked for, oldest first and once
        each; nothing is awaited for them any more (review s9-fixes finding 1: a push's fetch lost so kept
        ``catching_up`` true, and every later push of the room fetched nothing, for the whole process)."""
        rooms = list(dict.fromkeys(self._fetching.values()))
        self._fetching.clear()
        self._fetch_from.clear()
        return rooms

    def give_up(self, room_id: bytes) -> None:
        """Stop awaiting this room's fetches (they went unanswered too long)."""
        self._fetching = {rid: room for rid, room in self._fetching.items() if room != room_id}
        self._fetch_from = {rid: seq for rid, seq in self._fetch_from.items() if rid in self._fetching}

    def refused(self, error: RoomError) -> tuple[bytes | None, RoomFetch | None]:
        """The relay refused request ``error.id``: (its room, or None; the fetch to retry a lost race, or None).

        A change that lost the race for the head is kept: once the log caught
        up with whoever changed the room first, ``resign`` signs it again.
        """
        change = self._changes.pop(error.id, None)
        self._creating.pop(error.id, None)
        self._finding.pop(error.id, None)
        room_id = self._fetching.pop(error.id, None)
        self._fetch_from.pop(error.id, None)
        if change is not None and error.code == ErrorCode.ROOM_CONFLICT and change.tries < MAX_RETRIES:
            change.tries += 1
            self._retry.append(change)
            state = self._state_of(change.room_id)
            return change.room_id, self.fetch(change.room_id, 0 if state is None else state.head.seq + 1)
        return (change.room_id if change is not None else room_id), None

    def resign(self, room_id: bytes, now: int) -> list[RoomAppend]:
        """The changes to ``room_id`` that lost a race, signed again on the verified head."""
        out: list[RoomAppend] = []
        for change in [c for c in self._retry if c.room_id == room_id]:
            self._retry.remove(change)
            try:
                out.append(self._sign(change, self._next_id("a"), now))
            except (RoomLogError, ValueError):
                continue  # the change no longer fits (someone else made it): nothing to retry
        return out
