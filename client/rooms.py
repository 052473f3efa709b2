"""The client's rooms: verified membership logs, and what they mean for sending. Pure.

``RoomBook`` holds, per room, the state its membership log proves
(``crypto.membership``), verified here from the ``create`` entry or from a
head verified before. It takes the relay's ``room_log``/``room_update``
frames and returns events and the frames to send next (fetch the rest, retry
a change that lost a race); it never touches a socket or a clock.

The relay is trusted for nothing here:

- entries that do not verify are refused (``room_bad_log``) and the last
  verified state stays;
- a label that is not the one signed in the ``create`` entry is a
  ``room_label_changed`` warning;
- a history that differs from one verified before, or a message signed at a
  head we know another hash for, is a ``room_fork``;
- a head older than one we verified, or a message signed at a head the relay
  will not serve, is ``room_withheld``;
- a name the relay lists as online that the log does not hold is
  ``room_not_a_member``; such a name gets no ciphertext anyway, because
  ``recipients`` only ever picks members of the verified log;
- a label is pinned to the room id it first named here; the relay serving
  another room under it is ``room_label_moved`` (rooms are keyed by id, the
  label is only shown);
- a member the log names with another identity key than the one pinned for
  that name is ``room_key_mismatch``, and is skipped like a changed key;
- a head newer than the verified one (from the relay, or a message of
  someone who is a member by the verified log) holds our own sends
  (``send_gate``) until the log is verified that far: a withheld removal must
  not keep the removed member receiving. A member's claim the relay will not
  back holds them ``HEAD_CLAIM_WAIT`` at most, and none once its signer is no
  longer a member, so one member cannot stop a room for good by signing a
  head that does not exist;
- after a ``room_fork`` nothing more is sealed to the room (``SendGate.FORKED``):
  a branch we do not follow may hold removals.
"""

from __future__ import annotations

import enum
import hmac
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field

from susurro.crypto import (
    EntryKind,
    IdentityKey,
    LogRules,
    RoomEntry,
    RoomLogError,
    RoomMember,
    RoomPolicy,
    RoomState,
    create_entry,
    entry_hash,
    short_room_id,
    verify_log,
)
from susurro.crypto.seal import SignedHead
from susurro.protocol import (
    ErrorCode,
    Frame,
    ProtocolError,
    RoomAppend,
    RoomCreate,
    RoomError,
    RoomFetch,
    RoomFind,
    RoomList,
    RoomLog,
    RoomUpdate,
    name_key,
    normalize_name,
)

from . import events as ev
from .events import WarningKind
from .room_events import RoomAlert, RoomCreated, RoomReady, RoomWarning, describe
from .room_sending import Addressing, address, addressed_names

#: Times a change is re-signed after losing a race for the head (``room_conflict``).
MAX_RETRIES = 3
#: Messages whose signed head we wait to see in the log, per room (a relay must not grow this).
MAX_PENDING_HEADS = 64
#: Seconds a head signed into a member's message, that the relay will not serve, holds our
#: sends to the room. After that the claim is dropped (its ``room_withheld`` warning stays)
#: and we seal at the verified head again: without a bound one member signing a head that
#: does not exist would stop everyone else sending for good (spec review S4, finding 1).
HEAD_CLAIM_WAIT = 300.0
#: Rooms of one relay whose label pin and verified head outlive the process (a client's own file).
MAX_REMEMBERED_ROOMS = 1024


@dataclass(frozen=True, slots=True)
class RememberedRoom:
    """What a client keeps of a room between runs: its label (the pin) and the head it verified."""

    room_id: bytes
    label: str
    seq: int
    hash: bytes


def _valid_name(text: str) -> bool:
    try:
        return normalize_name(text) == text
    except ProtocolError:
        return False


RULES = LogRules(name_key=name_key, name_ok=_valid_name)


class SendGate(enum.Enum):
    """May we seal a message to a room now? Only at the newest head we know of."""

    #: The verified head is the newest any member or the relay has shown us.
    OPEN = "open"
    #: A newer head was shown and the log is being fetched: hold the message.
    WAIT = "wait"
    #: A newer head was shown and the relay would not serve it: do not send.
    WITHHELD = "withheld"
    #: Two histories of the room were shown: do not send (a branch we do not follow may remove members).
    FORKED = "forked"


# --- the book ------------------------------------------------------------------


@dataclass(slots=True)
class _Claim:
    """The highest head one member signed into a message, beyond the log verified here."""

    seq: int
    sender: str
    #: When it first held our sends (``HEAD_CLAIM_WAIT`` counts from here; None: not yet).
    since: float | None = None


@dataclass(slots=True)
class _Span:
    """Entries ``start`` up to (not including) ``end`` during which a key was a member, under ``name``."""

    start: int
    name: str
    end: int | None = None


@dataclass(slots=True)
class _Room:
    state: RoomState
    #: seq -> hash of every entry verified, to recognise a history that forks.
    hashes: list[bytes]
    #: (seq, hash, sender) of messages signed at a head beyond ours, until the log gets there.
    pending: list[tuple[int, bytes, str]] = field(default_factory=list)
    #: Names the relay said were online, as of its last frame.
    online: tuple[str, ...] = ()
    #: The highest log seq the relay showed us (its head), whether or not what it served for it verified.
    newest: int = 0
    #: identity key of a member (by the verified log) -> the head it claimed beyond ours.
    claims: dict[bytes, _Claim] = field(default_factory=dict)
    #: identity key -> when it was a member, for "a member at the head a message was signed at".
    spans: dict[bytes, list[_Span]] = field(default_factory=dict)
    #: Why the room's history is known to have forked (empty: it is not).
    forked: str = ""
    #: The fetch sent after a reconnect, until answered: sends wait for it (empty: none).
    refreshing: str = ""


@dataclass(slots=True)
class _Change:
    room_id: bytes
    kind: EntryKind
    subject_name: str
    subject_ik: bytes
    policy: RoomPolicy | None
    tries: int = 0
    #: The signed entry last sent for it, and its sequence number.
    entry: bytes = b""
    seq: int = 0


class RoomBook:
    """Every room this client knows, verified. Feed it room frames; ask it whom to send to."""

    def __init__(
        self,
        own_name: str,
        identity: IdentityKey,
        pinned: Callable[[str], bytes | None] | None = None,
        remembered: Iterable[RememberedRoom] = (),
    ) -> None:
        """``pinned(name)`` is the identity key the trust store holds for a name (None: never seen);
        ``remembered``, the rooms an earlier run verified on this relay (``remember`` gives them)."""
        self.own_name = own_name
        self.identity = identity
        self._pinned = pinned if pinned is not None else (lambda name: None)
        #: The identity key the relay's roster has for a name now (None: not present), set by the session:
        #: ``online`` names are the names members joined with, which need not be their names in the log.
        self.roster_key: Callable[[str], bytes | None] = lambda name: None
        self._rooms: dict[bytes, _Room] = {}
        #: name_key(label) -> the room id it named when first seen here (a pin; the relay cannot move it).
        self._by_label: dict[str, bytes] = {}
        self._fetching: dict[str, bytes] = {}  # request id -> room
        self._changes: dict[str, _Change] = {}  # request id -> change awaiting its answer
        self._creating: dict[str, bytes] = {}  # request id -> create entry
        self._retry: list[_Change] = []  # changes that lost a race, re-signed once caught up
        self._ids = 0
        #: Heads verified in an earlier run, until this run's log gets that far: a relay that serves
        #: less is withholding, one that serves another entry there has forked the room.
        self._remembered: dict[bytes, RememberedRoom] = {}
        for old in list(remembered)[:MAX_REMEMBERED_ROOMS]:
            self._remembered[old.room_id] = old
            self._by_label.setdefault(name_key(old.label), old.room_id)

    def remember(self) -> list[RememberedRoom]:
        """The rooms to keep for the next run: each label's pin and the newest head verified."""
        kept = dict(self._remembered)
        for room_id, room in self._rooms.items():
            kept[room_id] = RememberedRoom(room_id, room.state.label, room.state.head.seq, room.state.head.hash)
        return list(kept.values())[-MAX_REMEMBERED_ROOMS:]

    # --- queries -----------------------------------------------------------

    def state(self, room: bytes | str) -> RoomState | None:
        room_id = self._resolve(room)
        entry = self._rooms.get(room_id) if room_id is not None else None
        return entry.state if entry is not None else None

    def rooms(self) -> list[RoomState]:
        return sorted((r.state for r in self._rooms.values()), key=lambda s: name_key(s.label))

    def online(self, room: bytes | str) -> tuple[str, ...]:
        room_id = self._resolve(room)
        entry = self._rooms.get(room_id) if room_id is not None else None
        return entry.online if entry is not None else ()

    def pinned_id(self, label: str) -> bytes | None:
        """The room id this label named when first seen here (this run or a remembered one)."""
        return self._by_label.get(name_key(label))

    def _resolve(self, room: bytes | str) -> bytes | None:
        if isinstance(room, bytes):
            return room
        return self._by_label.get(name_key(room))

    def display(self, state: RoomState) -> str:
        """How a room is shown: its signed label and short id, so two rooms cannot pass for one."""
        return f"{state.label}#{state.short_id}"

    # --- requests ------------------------------------------------------------

    def _next_id(self, prefix: str) -> str:
        self._ids += 1
        return f"{prefix}{self._ids}"

    def create(self, label: str, policy: RoomPolicy, now: int) -> RoomCreate:
        entry = create_entry(self.identity, name=self.own_name, label=label, policy=policy, time=now).to_bytes()
        request = RoomCreate(id=self._next_id("c"), entry=entry)
        self._creating[request.id] = entry
        return request

    def find(self, label: str) -> RoomFind:
        return RoomFind(id=self._next_id("f"), label=label)

    def list_rooms(self) -> RoomList:
        """Ask for the relay's index (ours and the open rooms); ``room_directory`` reads the answer."""
        return RoomList(id=self._next_id("l"))

    def fetch(self, room_id: bytes, from_seq: int) -> RoomFetch:
        request = RoomFetch(id=self._next_id("g"), room=room_id, from_seq=from_seq)
        self._fetching[request.id] = room_id
        return request

    def change(
        self,
        room_id: bytes,
        kind: EntryKind,
        subject_name: str,
        subject_ik: bytes,
        now: int,
        policy: RoomPolicy | None = None,
    ) -> RoomAppend:
        """A signed change continuing our verified head (refused here if the log would refuse it)."""
        change = _Change(room_id, kind, subject_name, subject_ik, policy)
        return self._sign(change, self._next_id("a"), now)

    def _sign(self, change: _Change, request_id: str, now: int) -> RoomAppend:
        room = self._rooms.get(change.room_id)
        if room is None:
            raise ValueError("that room is not verified here yet")
        entry = room.state.next_entry(
            self.identity,
            kind=change.kind,
            subject_name=change.subject_name,
            subject_ik=change.subject_ik,
            time=now,
            policy=change.policy,
        ).to_bytes()
        room.state.extend([entry])  # raises RoomLogError: say so before the relay does
        change.entry, change.seq = entry, room.state.head.seq + 1
        self._changes[request_id] = change
        return RoomAppend(id=request_id, room=change.room_id, entries=(entry,))

    # --- frames from the relay -------------------------------------------------------

    def receive(self, frame: Frame, now: int) -> tuple[list[ev.Event], list[Frame]]:
        """Events for the views and frames to send, for one room frame from the relay."""
        if isinstance(frame, RoomError):
            return self._on_error(frame)
        if not isinstance(frame, (RoomLog, RoomUpdate)):
            return [], []
        request_id = frame.id if isinstance(frame, RoomLog) else ""
        for known in self._rooms.values():
            if request_id and known.refreshing == request_id:
                known.refreshing = ""
        created = self._creating.pop(request_id, None)
        own = self._changes.pop(request_id, None)
        self._fetching.pop(request_id, None)
        events: list[ev.Event] = []
        out: list[Frame] = []
        entries, from_seq = list(frame.entries), frame.from_seq
        if own is not None and not entries:  # our append's answer: the entry is the one we signed
            entries, from_seq = [own.entry], own.seq
        room = self._rooms.get(frame.room)
        if room is None:
            if created is not None:  # our create's answer: we hold the entry
                entries, from_seq = [created], 0
            if not entries or from_seq != 0:
                return [], [self.fetch(frame.room, 0)]
            try:
                state = verify_log(entries[:1], RULES)
            except RoomLogError as exc:
                return [self._alert(RoomWarning.BAD_LOG, frame.label, frame.room, f"{exc.kind}: {exc.detail}")], []
            if state.room_id != frame.room:
                detail = "the relay served another room's log under this id"
                return [self._alert(RoomWarning.BAD_LOG, frame.label, frame.room, detail)], []
            old = self._remembered.get(state.room_id)
            creator = state.members[state.creator]
            room = _Room(
                state=state,
                hashes=[state.room_id],
                newest=0 if old is None else old.seq,
                spans={creator.identity_key: [_Span(0, creator.name)]},
            )
            self._rooms[state.room_id] = room
            events.extend(self._pin_label(state))
            if created is not None:
                events.append(RoomCreated(room=state.label, room_id=state.room_id))
            events.extend(self._check_pins(state, [state.members[state.creator]]))
            entries, from_seq = entries[1:], 1
        before = room.state.head.seq
        applied = self._apply(room, from_seq, entries)
        events.extend(applied)
        events.extend(self._check_remembered(room))
        state = room.state
        if frame.label != state.label:
            detail = (
                f"the relay calls room {self.display(state)} {frame.label[:40]!r}; its signed label is {state.label!r}"
            )
            events.append(self._alert(RoomWarning.LABEL_CHANGED, state.label, state.room_id, detail))
        events.extend(self._check_relay_head(room, frame.head_seq, frame.head_hash))
        # Counted even when the entries that should back it do not verify (fail closed): a log
        # we cannot follow past a refused entry may hold removals after it, so sealing at our
        # stuck head could reach members removed since (spec review S4, finding 4).
        room.newest = max(room.newest, frame.head_seq)
        answered_nothing = isinstance(frame, RoomLog) and state.head.seq == before and created is None and own is None
        if frame.head_seq > state.head.seq and not answered_nothing:
            if state.room_id not in self._fetching.values():
                out.append(self.fetch(state.room_id, state.head.seq + 1))
        elif frame.head_seq > state.head.seq:  # it claims more and serves nothing: asking again would loop
            events.extend(self._settle_pending(room))
        else:
            events.extend(self._settle_pending(room))
            out.extend(self._resign(state.room_id, now))
            if isinstance(frame, RoomLog) and created is None and own is None:
                members = tuple(m.name for m in state.members.values())
                events.append(
                    RoomReady(room=state.label, room_id=state.room_id, members=members, policy=state.policy.value)
                )
        room.online = tuple(frame.online)
        events.extend(self._check_presence(room))
        return events, out

    def give_up_fetches(self, room_id: bytes) -> list[ev.Event]:
        """Our fetches of this room went unanswered too long: the relay is withholding its log."""
        if not self.catching_up(room_id):
            return []  # said already (or nothing was asked)
        self._fetching = {rid: room for rid, room in self._fetching.items() if room != room_id}
        room = self._rooms.get(room_id)
        if room is None:
            return []
        state = room.state
        detail = (
            f"the relay did not serve room {self.display(state)}'s membership log beyond entry {state.head.seq} "
            f"when asked (entry {self.newest_seq(room_id)} was shown to us): it is withholding it"
        )
        return [self._alert(RoomWarning.WITHHELD, state.label, state.room_id, detail)]

    def forget_request(self, request_id: str) -> None:
        """A request whose answer someone else handled (the demo's lobby): stop waiting for it."""
        self._changes.pop(request_id, None)
        self._creating.pop(request_id, None)
        self._fetching.pop(request_id, None)

    def rejoined(self) -> list[Frame]:
        """After a reconnect: fetch every room we are in from our head; sends to it wait for the answer.

        While we were away the relay pushed us nothing, so our head may miss a
        removal; sealing at it would reach the removed member (spec review S4,
        finding 11).
        """
        out: list[Frame] = []
        for room_id, room in self._rooms.items():
            if self.identity.public in room.state.members:
                request = self.fetch(room_id, room.state.head.seq + 1)
                room.refreshing = request.id
                out.append(request)
        return out

    def _on_error(self, error: RoomError) -> tuple[list[ev.Event], list[Frame]]:
        for known in self._rooms.values():
            if known.refreshing == error.id:
                known.refreshing = ""  # refused: the room_refused warning says so, sends are not held for ever
        change = self._changes.pop(error.id, None)
        self._creating.pop(error.id, None)
        room_id = self._fetching.pop(error.id, None)
        if change is not None and error.code == ErrorCode.ROOM_CONFLICT and change.tries < MAX_RETRIES:
            # Someone changed the room first: catch up, then sign again on the new head.
            change.tries += 1
            self._retry.append(change)
            room = self._rooms.get(change.room_id)
            return [], [self.fetch(change.room_id, 0 if room is None else room.state.head.seq + 1)]
        target = change.room_id if change is not None else room_id
        label = self._rooms[target].state.label if target is not None and target in self._rooms else ""
        alert = RoomAlert(
            kind=RoomWarning.REFUSED,
            detail=f"the relay refused: {error.code}: {error.detail}",
            room=label,
            room_id=target or b"",
        )
        return [alert], []

    def _resign(self, room_id: bytes, now: int) -> list[Frame]:
        out: list[Frame] = []
        for change in [c for c in self._retry if c.room_id == room_id]:
            self._retry.remove(change)
            try:
                out.append(self._sign(change, self._next_id("a"), now))
            except (RoomLogError, ValueError):
                continue  # the change no longer fits (someone else made it): nothing to retry
        return out

    # --- applying verified entries -------------------------------------------------------

    def _apply(self, room: _Room, from_seq: int, entries: list[bytes]) -> list[ev.Event]:
        state = room.state
        # Entries we already hold must be the very ones we verified.
        held = 0
        for offset, data in enumerate(entries):
            seq = from_seq + offset
            if seq > state.head.seq:
                break
            if not hmac.compare_digest(entry_hash(data), room.hashes[seq]):
                detail = (
                    f"the relay served another entry {seq} of room {self.display(state)} than the one verified "
                    "here: two versions of this room's history exist"
                )
                return [self._fork(room, detail)]
            held += 1
        entries, from_seq = entries[held:], from_seq + held
        if not entries or from_seq != state.head.seq + 1:
            return []  # nothing new, or a gap: the caller fetches from our head
        events: list[ev.Event] = []
        try:
            after = state.extend(entries)
        except RoomLogError as exc:
            entries = entries[: max(0, exc.seq - from_seq)]  # the ones before the bad entry verified
            after = state.extend(entries)
            detail = f"entry {exc.seq} of room {self.display(state)} does not verify ({exc.kind}: {exc.detail})"
            events.append(self._alert(RoomWarning.BAD_LOG, state.label, state.room_id, detail))
        room.hashes.extend(entry_hash(data) for data in entries)
        self._record_spans(room, from_seq, entries)
        room.state = after
        joined = [member for ik, member in after.members.items() if ik not in state.members]
        return describe(state, entries, self.identity.public) + self._check_pins(state, joined) + events

    @staticmethod
    def _record_spans(room: _Room, from_seq: int, entries: list[bytes]) -> None:
        for offset, data in enumerate(entries):  # verified already: parsing cannot fail
            entry = RoomEntry.from_bytes(data)
            spans = room.spans.setdefault(entry.subject_ik, [])
            if entry.kind is EntryKind.ADD:
                spans.append(_Span(from_seq + offset, entry.subject_name))
            elif entry.kind in (EntryKind.REMOVE, EntryKind.LEAVE) and spans:
                spans[-1].end = from_seq + offset

    def members_at(self, room_id: bytes, seq: int) -> dict[bytes, str]:
        """Identity key -> name of the members at entry ``seq`` (at most our verified head) of the log verified here."""
        room = self._rooms.get(room_id)
        if room is None:
            return {}
        seq = min(seq, room.state.head.seq)
        return {
            ik: span.name
            for ik, spans in room.spans.items()
            for span in spans
            if span.start <= seq and (span.end is None or seq < span.end)
        }

    # --- heads: the relay's, and the ones senders sign ---------------------------------

    def _check_relay_head(self, room: _Room, head_seq: int, head_hash: bytes) -> list[ev.Event]:
        state = room.state
        if head_seq < state.head.seq:
            detail = (
                f"the relay says room {self.display(state)} ends at entry {head_seq}, "
                f"but entry {state.head.seq} was verified here: it is replaying an old head or withholding changes"
            )
            return [self._alert(RoomWarning.WITHHELD, state.label, state.room_id, detail)]
        if head_seq < len(room.hashes) and not hmac.compare_digest(head_hash, room.hashes[head_seq]):
            detail = f"the relay's head of room {self.display(state)} is not the entry {head_seq} verified here"
            return [self._fork(room, detail)]
        return []

    def _fork(self, room: _Room, detail: str, sender: str | None = None) -> RoomAlert:
        """Two histories of one room: say so, and seal nothing more to it (the other may remove members)."""
        room.forked = room.forked or detail
        shown = f"{detail}; nothing more is sent to the room from here"
        return self._alert(RoomWarning.FORK, room.state.label, room.state.room_id, shown, sender)

    def forked(self, room_id: bytes) -> str:
        """Why the room's history is known to have forked here, or ""."""
        room = self._rooms.get(room_id)
        return "" if room is None else room.forked

    def check_message_head(
        self, head: SignedHead, sender: str, sender_ik: bytes = b""
    ) -> tuple[list[ev.Event], list[Frame]]:
        """A room message was signed at ``head``: does the sender see the log we see?

        Same seq, other hash: a fork. Ahead of us: fetch, and if the relay will
        not serve that far, it is withholding membership changes. Only a
        member by the verified log (``sender_ik``) holds our sends with such a
        head, and for ``HEAD_CLAIM_WAIT`` at most.
        """
        room = self._rooms.get(head.room_id)
        if room is None:
            return [], [self.fetch(head.room_id, 0)]
        state = room.state
        if head.seq < len(room.hashes):
            if not hmac.compare_digest(head.hash, room.hashes[head.seq]):
                detail = (
                    f"{sender} signed a message at entry {head.seq} of room {self.display(state)} with another "
                    "history than the one verified here: the room's log has forked"
                )
                return [self._fork(room, detail, sender)], []
            return [], []
        if sender_ik in state.members:
            claim = room.claims.get(sender_ik)
            if claim is None:
                room.claims[sender_ik] = _Claim(head.seq, sender)
            elif head.seq > claim.seq:  # a higher claim does not restart the wait
                claim.seq = head.seq
        if len(room.pending) < MAX_PENDING_HEADS:
            room.pending.append((head.seq, head.hash, sender))
        return [], [self.fetch(state.room_id, state.head.seq + 1)]

    def _settle_pending(self, room: _Room) -> list[ev.Event]:
        """After a fetch that reached the relay's head: every pending head must be in the log."""
        events: list[ev.Event] = []
        state = room.state
        for seq, digest, sender in room.pending:
            if seq >= len(room.hashes):
                detail = (
                    f"{sender} signed a message at entry {seq} of room {self.display(state)}, but the relay serves "
                    f"the log only up to entry {state.head.seq}: it is withholding membership changes"
                )
                events.append(self._alert(RoomWarning.WITHHELD, state.label, state.room_id, detail, sender))
            elif not hmac.compare_digest(digest, room.hashes[seq]):
                detail = f"{sender} signed a message at another entry {seq} of room {self.display(state)}: a fork"
                events.append(self._fork(room, detail, sender))
        room.pending.clear()
        if not events and room.newest > state.head.seq:
            detail = (
                f"the relay says room {self.display(state)} reaches entry {room.newest} but serves it only up to "
                f"entry {state.head.seq}: it is withholding membership changes"
            )
            events.append(self._alert(RoomWarning.WITHHELD, state.label, state.room_id, detail))
        return events

    def _check_remembered(self, room: _Room) -> list[ev.Event]:
        """Once this run's log reaches the head an earlier run verified, it must be that very entry."""
        old = self._remembered.get(room.state.room_id)
        if old is None or room.state.head.seq < old.seq:
            return []  # not there yet: ``newest`` holds our sends, the settle says if the relay withholds
        del self._remembered[old.room_id]
        if hmac.compare_digest(room.hashes[old.seq], old.hash):
            return []
        state = room.state
        detail = (
            f"the relay served another entry {old.seq} of room {self.display(state)} than the one verified here "
            "in an earlier run: two versions of this room's history exist"
        )
        return [self._alert(RoomWarning.FORK, state.label, state.room_id, detail)]

    # --- pins: labels to room ids, member names to pinned keys --------------------------

    def _pin_label(self, state: RoomState) -> list[ev.Event]:
        key = name_key(state.label)
        known = self._by_label.setdefault(key, state.room_id)
        if known == state.room_id:
            return []
        first = self._rooms[known].state if known in self._rooms else None
        shown = self.display(first) if first is not None else f"{state.label}#{short_room_id(known)}"
        detail = (
            f"the relay now serves another room labelled {state.label!r} ({self.display(state)}) than the one "
            f"known here as {shown}; they are kept apart, and {state.label!r} still means {shown}"
        )
        return [self._alert(RoomWarning.LABEL_MOVED, state.label, state.room_id, detail)]

    def pin_agrees(self, member_name: str, identity_key: bytes) -> bool:
        """The trust store has no key for this name, or exactly this one."""
        pinned = self._pinned(member_name)
        return pinned is None or hmac.compare_digest(pinned, identity_key)

    def _check_pins(self, state: RoomState, members: Iterable[RoomMember]) -> list[ev.Event]:
        """A log entry binds a name to a key; the trust store may know that name with another key."""
        events: list[ev.Event] = []
        for member in members:
            if member.identity_key == self.identity.public or self.pin_agrees(member.name, member.identity_key):
                continue
            detail = (
                f"room {self.display(state)} lists {member.name} with another identity key than the one pinned "
                f"for {member.name} here; nothing is encrypted to that key until you accept it"
            )
            events.append(self._alert(RoomWarning.KEY_MISMATCH, state.label, state.room_id, detail, member.name))
        return events

    # --- our own sends: only at the newest head known ----------------------------------------

    def send_gate(self, room_id: bytes, now: float) -> SendGate:
        """Whether a message to ``room_id`` may be sealed now (see ``SendGate``)."""
        room = self._rooms.get(room_id)
        if room is None:
            return SendGate.OPEN
        if room.forked:
            return SendGate.FORKED
        if room.refreshing:
            return SendGate.WAIT
        self._drop_claims(room, now)
        if self.newest_seq(room_id) <= room.state.head.seq:
            return SendGate.OPEN
        return SendGate.WAIT if self.catching_up(room_id) else SendGate.WITHHELD

    @staticmethod
    def _drop_claims(room: _Room, now: float) -> None:
        """Claims the log now backs, whose signer is no longer a member, or that held our sends long enough."""
        state = room.state
        for ik, claim in list(room.claims.items()):
            claim.since = now if claim.since is None else claim.since
            if claim.seq <= state.head.seq or ik not in state.members or now - claim.since >= HEAD_CLAIM_WAIT:
                del room.claims[ik]

    def newest_seq(self, room_id: bytes) -> int:
        room = self._rooms.get(room_id)
        if room is None:
            return 0
        return max(room.newest, room.state.head.seq, *(claim.seq for claim in room.claims.values()))

    def catching_up(self, room_id: bytes) -> bool:
        """A fetch of this room's log is on its way (its answer may still bring the entries we lack)."""
        return room_id in self._fetching.values()

    def reached(self, room_id: bytes, seq: int) -> bool:
        """The log verified here reaches entry ``seq`` of this room."""
        room = self._rooms.get(room_id)
        return room is not None and seq <= room.state.head.seq

    def _listed_member(self, state: RoomState, name: str) -> bool:
        """A name the relay lists as online is a member: by its roster key, else by the log's name (spec S4, 12)."""
        key = self.roster_key(name)
        return key in state.members if key is not None else state.member_named(name) is not None

    def _check_presence(self, room: _Room) -> list[ev.Event]:
        state = room.state
        strangers = [name for name in room.online if not self._listed_member(state, name)]
        if not strangers:
            return []
        shown = ", ".join(strangers[:5])
        detail = (
            f"the relay lists {shown} as present in room {self.display(state)}, but the room's log does not: "
            "nothing is encrypted to them"
        )
        return [self._alert(RoomWarning.NOT_A_MEMBER, state.label, state.room_id, detail)]

    # --- sending ---------------------------------------------------------------------

    def addressing(
        self,
        room: bytes | str,
        present: Mapping[bytes, str],
        may_encrypt: Iterable[bytes] | None = None,
    ) -> Addressing:
        """Whom a message to ``room`` goes to (``room_sending.address``); KeyError for a room not verified here."""
        room_id = self._resolve(room)
        entry = self._rooms.get(room_id) if room_id is not None else None
        if entry is None:
            raise KeyError("no verified room by that name here")
        allowed = set(present) if may_encrypt is None else set(may_encrypt)
        # A member whose (name, key) disagrees with the trust store's pin is skipped like a changed key.
        allowed = {ik for ik in allowed if (m := entry.state.member(ik)) is None or self.pin_agrees(m.name, ik)}
        return address(entry.state, self.identity.public, present, allowed)

    def addressed(self, head: SignedHead, skipped: Iterable[tuple[str, bytes]], sender_ik: bytes) -> tuple[str, ...]:
        """The names a room message was for: the members at its head (``room_sending.addressed_names``)."""
        return addressed_names(self.members_at(head.room_id, head.seq), skipped, sender_ik)

    def is_member(self, room_id: bytes, identity_key: bytes) -> bool:
        room = self._rooms.get(room_id)
        return room is not None and identity_key in room.state.members

    def _alert(
        self, kind: WarningKind, label: str, room_id: bytes, detail: str, sender: str | None = None
    ) -> RoomAlert:
        return RoomAlert(kind=kind, detail=detail, sender=sender, room=label, room_id=room_id)
