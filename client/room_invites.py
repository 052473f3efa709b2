"""Rooms someone else added us to, until the user accepts or declines them. Pure.

An admin's ``add`` needs no consent, so anyone (throwaway identities, or a
hostile relay with keys of its own) can put us into as many rooms as they
like, and the relay pushes each one. A room we did not create, ask for
(``/join`` of that very label) or accept is therefore an **invitation**:
``rooms.RoomBook`` verifies its whole log once, to know that an admin of it
really added us and who (the signer of the entry that made us a member this
time, never what one page of the log showed), then lets the log go and keeps
only an ``Invitation`` here (the room id, its signed label, the inviter, the
head's sequence number checked), in memory and, between runs, as a
``SavedInvitation`` row of the sealed state file (``localstate``; restored
under the same bounds, and checked again once connected). No log, no head
hashes, no keys, no history, no label pin until the user accepts; accepting
fetches and verifies the log again, as ``/join`` would, and the accepted
record stays (saved too) until that log is followed or refused. Consent
covers one membership: after a leave or a removal, another key's add is an
invitation again (``readded``). A pending room pushed again is checked
again, and withdrawn if its log no longer names us.

``Invitations`` is bounded: ``MAX_INVITATIONS`` pending at once and
``MAX_INVITATIONS_PER_INVITER`` from one identity key. Past either, the
oldest invitation from an inviter the trust store does not know goes first
(then the oldest), with a notice (``InvitationDropped``); an invitation
for a room already pending is not offered twice, and a declined room is not
offered again in this run (``MAX_DECLINED``, the oldest forgotten first).

Checking is bounded too: ``MAX_CHECKING_ROOMS`` logs at a time; a room that
finds them taken waits its turn by its id (``MAX_WAITING_CHECKS``, with a
``CheckWaiting`` notice), and past that is not checked, with a
``CheckDropped`` notice: no check is let go unsaid.
"""

from __future__ import annotations

import enum
import hmac
from collections import OrderedDict
from collections.abc import Callable, Container, Iterable
from dataclasses import dataclass

from susurro.crypto import short_room_id
from susurro.crypto.membership import MAX_ENTRY_TEXT_CHARS
from susurro.protocol import name_key
from susurro.protocol.limits import PUBLIC_KEY_SIZE, ROOM_ID_SIZE

from . import events as ev
from .errors import SendError
from .events import WarningKind
from .room_events import RoomAlert, RoomEvent, RoomWarning
from .room_log import KnownRoom

#: Invitations pending at once: a flood of adds costs at most this many small records.
MAX_INVITATIONS = 32
#: Of those, from one inviter (by identity key): one identity cannot take every place.
MAX_INVITATIONS_PER_INVITER = 4
#: Rooms declined in this run that are not offered again when their log grows.
MAX_DECLINED = 256
#: Logs of rooms we did not ask for, verified at once to tell an invitation from junk (each is let go
#: once decided): a relay pushing many rooms at once costs at most this many logs in memory.
MAX_CHECKING_ROOMS = 4
#: Rooms waiting for one of those places, by id only (fetched from ``create`` when a place frees): past
#: this, a room is not checked and the user is told which and why (``CheckDropped``).
MAX_WAITING_CHECKS = 32
#: How long a check keeps its place waiting for the relay's answer: then it is given up, said, and its place
#: freed for the rooms waiting (review-s8-hygiene L1: a relay that never answered held the places for the
#: whole connection, and every later invitation waited unchecked). As long as a room message waits for a log.
CHECK_WAIT = 30.0
#: Rooms whose integrity warning was shown while they were only checked: one warning a room, not one
#: an entry or a member (a room nobody accepted is not worth a flood of alarms).
MAX_ALERTED_ROOMS = MAX_DECLINED
#: Rooms consented to (accepted, asked for) whose log is still on its way: each one is the user's act.
MAX_CONSENTED = MAX_DECLINED
#: The only warnings of a room being checked that are shown: its log does not verify, or forks.
_INTEGRITY = frozenset({RoomWarning.BAD_LOG, RoomWarning.FORK})


#: Rooms pushed to us and not checked yet (being checked, or waiting their turn), kept for the next run
#: by id only (review-s8-hygiene L3: a restart forgot them, and an invitation among them was never said).
MAX_SAVED_CHECKS = MAX_CHECKING_ROOMS + MAX_WAITING_CHECKS
#: The highest head a saved invitation may name (a room's log is far shorter; a bound for a damaged file).
MAX_SAVED_SEQ = 2**32
#: Invitations accepted whose log had not arrived, kept for the next run (the newest): with the pending
#: ones, a relay's rows in the state file are at most ``MAX_SAVED_INVITATIONS``.
MAX_SAVED_ACCEPTED = MAX_INVITATIONS
MAX_SAVED_INVITATIONS = MAX_INVITATIONS + MAX_SAVED_ACCEPTED
#: The most fields a saved invitation's row may have: this client writes 5 or 6; a later one may add fields
#: that an older reader can ignore (a row is a few hundred bytes whatever it holds).
MAX_ROW_FIELDS = 16


class NoInvitation(SendError):
    """No pending invitation answers to that name (accepted, declined or let go meanwhile)."""


class TooManyAccepted(SendError):
    """``MAX_SAVED_ACCEPTED`` rooms accepted are still waiting for their logs: the state file keeps no more,
    so one more accept would be lost at quit (review-s8-ifix L6). The invitation stays pending."""


@dataclass(frozen=True, slots=True)
class Invitation:
    """A room an admin added us to, verified once; nothing else of it is kept."""

    room_id: bytes
    #: The label signed in the room's ``create`` entry.
    label: str
    #: The name the room's log gives the admin who signed our ``add``, and that admin's identity key.
    inviter: str
    inviter_key: bytes
    #: The trust store held exactly this key for the inviter's name when the invitation came.
    known_inviter: bool
    #: The head of the log checked: a push beyond it has the room checked again (a removal withdraws it).
    seq: int = 0
    #: The trust store holds another key for the inviter's name: not the person the user knows by it.
    other_key: bool = False
    #: Kept from an earlier run (the sealed state file), not received in this one.
    restored: bool = False

    @property
    def short_id(self) -> str:
        return short_room_id(self.room_id)

    @property
    def shown(self) -> str:
        return f"{self.label}#{self.short_id}"

    def saved(self, *, accepted: bool = False) -> SavedInvitation:
        return SavedInvitation(self.room_id, self.label, self.inviter, self.inviter_key, self.seq, accepted)


@dataclass(frozen=True, slots=True)
class SavedInvitation:
    """A pending invitation as the sealed state file keeps it between runs: the ``Invitation`` without
    the trust store's verdicts on the inviter (taken again from the trust store at the next start). No
    log, entry or head hash: the room's id and signed label are what a followed room's row keeps, and
    the inviter's name and key are what accepting shows of its log. ``accepted``: the user accepted it
    and its log had not arrived yet (fetched again at the next start, not offered again)."""

    room_id: bytes
    label: str
    inviter: str
    inviter_key: bytes
    seq: int
    accepted: bool = False

    def row(self) -> list[object]:
        """A pending one as five fields, the row every reader since e99e110 keeps (a client of before the
        ``accepted`` field read six-field rows as junk and dropped them: review-s8-ifix L5); an accepted one
        as six (an older client cannot follow it anyway, and must not take it for pending)."""
        fields: list[object] = [self.room_id, self.label, self.inviter, self.inviter_key, self.seq]
        return [*fields, True] if self.accepted else fields

    @classmethod
    def from_row(cls, row: object) -> SavedInvitation | None:
        """One row as this client writes it (five fields, or six with ``accepted``), or as a newer one may
        (fields past the sixth, up to ``MAX_ROW_FIELDS``, are a later version's: ignored, so the row is kept);
        None for anything else (left out, never guessed at)."""
        if not isinstance(row, list | tuple) or not 5 <= len(row) <= MAX_ROW_FIELDS:
            return None
        room_id, label, inviter, key, seq, *rest = row
        accepted = rest[0] if rest else False
        if type(accepted) is not bool:
            return None
        if not (isinstance(room_id, bytes) and len(room_id) == ROOM_ID_SIZE):
            return None
        if not (isinstance(key, bytes) and len(key) == PUBLIC_KEY_SIZE):
            return None
        if not all(isinstance(text, str) and 0 < len(text) <= MAX_ENTRY_TEXT_CHARS for text in (label, inviter)):
            return None
        if not (type(seq) is int and 0 < seq <= MAX_SAVED_SEQ):
            return None
        return cls(room_id, label, inviter, key, seq, accepted)


@dataclass(frozen=True, slots=True, kw_only=True)
class InvitationReceived(RoomEvent):
    """``by`` (an admin of the room by its verified log) added us: accept or decline."""

    by: str
    #: The trust store knows ``by`` under this very key.
    known: bool
    #: The trust store knows ``by`` under another key: someone else using the name.
    other_key: bool = False
    #: Kept from an earlier run (the state file): it was waiting when that run ended, and is checked
    #: again once connected (``InviteDesk.restore``); not a new invitation.
    restored: bool = False


@dataclass(frozen=True, slots=True, kw_only=True)
class AcceptWaiting(RoomEvent):
    """The user accepted ``by``'s invitation before the client last quit and the room's log had not come
    (the state file kept the accept): it is asked for again now (review-s8-ifix L1: it was not said, and
    the room was in no list while the relay held its log back)."""

    by: str


class DropReason(enum.Enum):
    """Why a pending invitation was let go."""

    #: ``MAX_INVITATIONS`` were pending.
    TOO_MANY = "too_many"
    #: ``MAX_INVITATIONS_PER_INVITER`` from the same inviter were pending.
    TOO_MANY_FROM_INVITER = "too_many_from_inviter"
    #: Checked again (the log grew), the log no longer lists us: removed before we answered.
    WITHDRAWN = "withdrawn"


@dataclass(frozen=True, slots=True, kw_only=True)
class InvitationDropped(RoomEvent):
    """A pending invitation was let go to make room for a newer one (``/join`` accepts it anyway)."""

    by: str
    reason: DropReason


@dataclass(frozen=True, slots=True, kw_only=True)
class CheckWaiting(RoomEvent):
    """A room we did not ask for waits to be checked: ``MAX_CHECKING_ROOMS`` are being checked now."""

    #: Rooms checked or waiting before it.
    ahead: int


@dataclass(frozen=True, slots=True, kw_only=True)
class CheckDropped(RoomEvent):
    """A room we did not ask for is not checked: every place to check one, and to wait, was taken."""


class AmbiguousInvitation(ValueError):
    """Two pending invitations answer to one label: name the room as LABEL#SHORTID."""


class Invitations:
    """The pending invitations, oldest first, and the rooms declined in this run."""

    def __init__(self, limit: int = MAX_INVITATIONS, per_inviter: int = MAX_INVITATIONS_PER_INVITER) -> None:
        self.limit = limit
        self.per_inviter = per_inviter
        self._pending: OrderedDict[bytes, Invitation] = OrderedDict()
        self._declined: OrderedDict[bytes, None] = OrderedDict()
        #: Invitations pushed out by newer ones in this run (the newest ``MAX_DECLINED``).
        self._let_go: OrderedDict[bytes, None] = OrderedDict()

    def __contains__(self, room_id: object) -> bool:
        return room_id in self._pending

    def __len__(self) -> int:
        return len(self._pending)

    def pending(self) -> list[Invitation]:
        return list(self._pending.values())

    def declined(self, room_id: bytes) -> bool:
        return room_id in self._declined

    def wanted(self, room_id: bytes) -> bool:
        """Worth verifying as an invitation: neither pending already nor declined in this run."""
        return room_id not in self._pending and room_id not in self._declined

    def offer(self, invitation: Invitation) -> list[RoomEvent]:
        """Keep ``invitation`` (once), letting older ones go if the bounds say so; the events to show."""
        if not self.wanted(invitation.room_id):
            return []
        events: list[RoomEvent] = []
        same = [i for i in self._pending.values() if i.inviter_key == invitation.inviter_key]
        if len(same) >= self.per_inviter:
            events.append(self._drop(same, DropReason.TOO_MANY_FROM_INVITER))
        if len(self._pending) >= self.limit:
            events.append(self._drop(list(self._pending.values()), DropReason.TOO_MANY))
        self._pending[invitation.room_id] = invitation
        self._let_go.pop(invitation.room_id, None)
        received = InvitationReceived(
            room=invitation.label,
            room_id=invitation.room_id,
            by=invitation.inviter,
            known=invitation.known_inviter,
            other_key=invitation.other_key,
            restored=invitation.restored,
        )
        return [*events, received]

    def _drop(self, among: list[Invitation], reason: DropReason) -> InvitationDropped:
        """The oldest of ``among`` from a name pinned to another key, else from an inviter the trust store
        does not know, else the oldest."""
        victim = next((i for i in among if i.other_key), next((i for i in among if not i.known_inviter), among[0]))
        del self._pending[victim.room_id]
        self._let_go[victim.room_id] = None  # its messages say why they are not shown, not "not a member"
        while len(self._let_go) > MAX_DECLINED:
            self._let_go.popitem(last=False)
        return InvitationDropped(room=victim.label, room_id=victim.room_id, by=victim.inviter, reason=reason)

    def let_go(self, room_id: bytes) -> bool:
        """Pushed out by newer invitations in this run (and not offered again since)."""
        return room_id in self._let_go

    def find(self, room: bytes | str) -> Invitation | None:
        """The pending invitation for a room id, a label, or LABEL#SHORTID; AmbiguousInvitation if a
        label alone names two (a lookalike label is the cheapest way to pass one room for another)."""
        if isinstance(room, bytes):
            return self._pending.get(room)
        label, _, short = room.partition("#")
        matches = [
            i
            for i in self._pending.values()
            if name_key(i.label) == name_key(label) and (not short or i.short_id == short.lower())
        ]
        if len(matches) > 1:
            raise AmbiguousInvitation(", ".join(i.shown for i in matches))
        return matches[0] if matches else None

    def withdraw(self, room_id: bytes) -> list[RoomEvent]:
        """The room's log no longer lists us: the invitation goes, with a notice (none if not pending)."""
        invitation = self._pending.pop(room_id, None)
        if invitation is None:
            return []
        return [
            InvitationDropped(
                room=invitation.label, room_id=room_id, by=invitation.inviter, reason=DropReason.WITHDRAWN
            )
        ]

    def renew(self, invitation: Invitation) -> None:
        """Checked again and still an invitation from the same inviter: keep its place, with the newer head
        (``InviteDesk.checked`` offers one from another inviter as a new invitation instead)."""
        if invitation.room_id in self._pending:
            self._pending[invitation.room_id] = invitation

    def take(self, room_id: bytes) -> Invitation | None:
        """Accepted: no longer pending."""
        return self._pending.pop(room_id, None)

    def undecline(self, room_id: bytes) -> None:
        """Joined after all (``/join``): messages to it are judged by its log again."""
        self._declined.pop(room_id, None)

    def decline(self, room_id: bytes) -> Invitation | None:
        """Declined: no longer pending, and not offered again in this run."""
        invitation = self._pending.pop(room_id, None)
        if invitation is not None:
            self._declined[room_id] = None
            while len(self._declined) > MAX_DECLINED:
                self._declined.popitem(last=False)
        return invitation


class InviteDesk:
    """``rooms.RoomBook``'s part for rooms it did not ask for: check each once, keep an invitation or nothing.

    ``known_inviter(name, key)``: the trust store holds exactly this key for this name;
    ``other_key(name, key)``: it holds another key for this name.
    """

    def __init__(
        self,
        own_key: bytes,
        known_inviter: Callable[[str, bytes], bool],
        other_key: Callable[[str, bytes], bool] = lambda name, key: False,
    ) -> None:
        self._own = own_key
        self._known = known_inviter
        self._other_key = other_key
        self.invitations = Invitations()
        #: Logs being verified only to tell an invitation from junk, then let go (``MAX_CHECKING_ROOMS``).
        self.checking: dict[bytes, KnownRoom] = {}
        #: Rooms waiting for a place among the checks, oldest first (``MAX_WAITING_CHECKS``), and those
        #: whose turn came, fetched from ``create``: each keeps its place until the answer comes.
        self._waiting: OrderedDict[bytes, None] = OrderedDict()
        self._starting: set[bytes] = set()
        #: The events of invitations restored from the state file, until the views are told.
        self._restored: list[RoomEvent] = []
        #: Rooms the user accepted or asked for (or our own key proved ours) whose log is on its way:
        #: until it is fetched to the relay's head, an add of us in any of its pages is consented to. The
        #: value: its signed label when a check or an invitation verified it ("" if not), for the warnings.
        self._consented: OrderedDict[bytes, str] = OrderedDict()
        #: Rooms checked whose log does not name us (the newest ``MAX_DECLINED``).
        self._strangers: OrderedDict[bytes, None] = OrderedDict()
        #: Pending invitations whose room was pushed beyond the head checked: fetched and checked again.
        self._recheck: set[bytes] = set()
        #: Invitations accepted whose log is on its way: a log that no longer lists us is not followed.
        self._accepting: OrderedDict[bytes, Invitation] = OrderedDict()
        #: Pending invitations whose check the relay served cut short of their head: checked again at the
        #: next welcome (only pending ones are kept, so at most ``MAX_INVITATIONS``).
        self._withheld: set[bytes] = set()
        #: When each place to check was first seen taken on a tick, or its check last moved (``overdue_checks``).
        self._check_since: dict[bytes, float] = {}
        #: Checks given up on this connection (``check_overdue``): their late answers start nothing.
        self._given_up: OrderedDict[bytes, None] = OrderedDict()
        #: Rooms whose log was said withheld or refused on this connection (``say_once``).
        self._said: OrderedDict[bytes, None] = OrderedDict()
        #: Rooms that showed their one integrity warning while only checked (``alerts``).
        self._alerted: OrderedDict[bytes, None] = OrderedDict()

    def saved(self) -> list[SavedInvitation]:
        """The invitations to keep for the next run (the state file's rows; nothing else): those pending,
        and those accepted whose log has not reached the relay's head yet (review-s8-hygiene M2: a quit,
        a crash or a dropped connection before the first page used to lose them without a word)."""
        accepted = [i.saved(accepted=True) for i in list(self._accepting.values())[-MAX_SAVED_ACCEPTED:]]
        return accepted + [invitation.saved() for invitation in self.invitations.pending()]

    def waiting_checks(self) -> list[bytes]:
        """The rooms to check that the next run should check still (the state file's ``checks``, ids only):
        those being checked or waiting their turn, oldest first, but pending invitations (saved as rows,
        and checked again anyway) and rooms accepted (fetched anyway); at most ``MAX_SAVED_CHECKS``."""
        ids = dict.fromkeys([*self.checking, *sorted(self._starting), *self._waiting])
        return [r for r in ids if r not in self.invitations and r not in self._accepting][:MAX_SAVED_CHECKS]

    def restore_checks(self, saved: Iterable[bytes], followed: Container[bytes] = ()) -> None:
        """Rooms an earlier run had still to check: they wait their turn again, after the restored
        invitations (fetched from ``create`` at the welcome, four at a time, as any check), without a
        notice each (the user was told when they first waited). A room followed, pending, declined or
        accepted meanwhile is skipped."""
        for room_id in list(saved)[:MAX_SAVED_CHECKS]:
            if room_id in followed or room_id in self._accepting or room_id in self._waiting:
                continue
            if self.invitations.wanted(room_id):
                self._waiting[room_id] = None

    def restore(self, saved: Iterable[SavedInvitation], followed: Container[bytes] = ()) -> None:
        """The invitations an earlier run kept, pending again (oldest first) under the same bounds as any
        (``offer``: 32, 4 from one inviter), the inviter judged by the trust store as it is now; a room
        ``followed`` meanwhile is not offered. Their events wait for ``take_restored``.

        Each one kept is checked again once connected (review-s8-hygiene M1): while we were away the
        relay pushed us nothing, and once removed we are not told of the room's later changes, so a saved
        head proves nothing about now. They wait for a place among the checks without a notice each (the
        user is told of them as restored), are fetched from ``create`` at the welcome (``next_checks``),
        and a log that no longer names us withdraws its invitation with the usual notice."""
        rows = list(saved)[:MAX_SAVED_INVITATIONS]
        for old in [row for row in rows if row.accepted][:MAX_SAVED_ACCEPTED]:
            if old.room_id in self._accepting:
                continue
            self._accepting[old.room_id] = Invitation(
                old.room_id, old.label, old.inviter, old.inviter_key, self._known(old.inviter, old.inviter_key),
                old.seq, self._other_key(old.inviter, old.inviter_key), restored=True,
            )  # fmt: skip
            self.consent(old.room_id, old.label)  # the user's act in the last run: fetched from create at the welcome
            self._restored.append(AcceptWaiting(room=old.label, room_id=old.room_id, by=old.inviter))
        for old in [row for row in rows if not row.accepted][: self.invitations.limit]:
            if old.room_id in followed or old.room_id in self._accepting or not self.invitations.wanted(old.room_id):
                continue
            invitation = Invitation(
                old.room_id, old.label, old.inviter, old.inviter_key, self._known(old.inviter, old.inviter_key),
                old.seq, self._other_key(old.inviter, old.inviter_key), restored=True,
            )  # fmt: skip
            self._restored.extend(self.invitations.offer(invitation))
        for invitation in self.invitations.pending():  # those the bounds kept (32 fit the 32 places to wait)
            if invitation.restored and len(self._waiting) < MAX_WAITING_CHECKS:
                self._recheck.add(invitation.room_id)
                self._waiting[invitation.room_id] = None

    def accepting(self) -> list[bytes]:
        """Rooms accepted whose log has not reached the relay's head (this run, or restored from the last):
        fetched again after a reconnect, until followed (``settled``) or refused (``refused``)."""
        return list(self._accepting)

    def accepted_records(self) -> list[Invitation]:
        """The invitations accepted whose log has not reached the relay's head, oldest first (``/invites``)."""
        return list(self._accepting.values())

    def accepted_record(self, room_id: bytes) -> Invitation | None:
        """The invitation accepted for ``room_id`` whose log has not come yet, kept (None: none)."""
        return self._accepting.get(room_id)

    def refused(self, room_id: bytes) -> Invitation | None:
        """The relay refused the log of a room accepted: it is not fetched again (the refusal is shown)."""
        return self._accepting.pop(room_id, None)

    def take_restored(self) -> list[RoomEvent]:
        """The restored invitations' events, once (at the first welcome, so the views list them)."""
        events, self._restored = self._restored, []
        return events

    def consent(self, room_id: bytes, label: str = "") -> None:
        """The user asked for this room (by its id or its label): its log is followed, not checked.
        ``label``: its signed label, if verified (a check's create, an invitation), kept for the warnings."""
        self._consented[room_id] = label or self._consented.get(room_id, "")
        self._consented.move_to_end(room_id)
        while len(self._consented) > MAX_CONSENTED:
            self._consented.popitem(last=False)
        self._strangers.pop(room_id, None)

    def consented_label(self, room_id: bytes) -> str:
        """The verified label of a room consented to ("" if none was verified): a warning shows label#id."""
        return self._consented.get(room_id, "")

    def consenting(self, room_id: bytes) -> bool:
        """The user's consent to this room covers the log being fetched now (``settled`` ends it)."""
        return room_id in self._consented

    def settled(self, room: KnownRoom) -> list[ev.Event] | None:
        """The followed room's log reached the relay's head: a later add of us by someone else (after we
        left or were removed) is an invitation again, not covered by this consent. An invitation accepted
        whose log no longer lists us (removed before we answered) is not followed: the warning to show,
        or None (followed)."""
        state = room.state
        self._consented.pop(state.room_id, None)
        invitation = self._accepting.pop(state.room_id, None)
        if invitation is None or self._own in state.members:
            return None
        if state.head.seq < invitation.seq:
            # A signed log only grows, and a removal makes it longer: a log that ends before the head
            # the invitation was checked at is the relay withholding the rest, not a removal
            # (review-s8-ifix M1). Still accepted, fetched again at the next welcome.
            self._accepting[state.room_id] = invitation
            detail = (
                f"the relay served the log of room {invitation.shown[:60]} only up to entry {state.head.seq}, "
                f"short of entry {invitation.seq} that invited you: it is holding the rest back; "
                "the room stays accepted and is asked for again when the connection is back"
            )
            return [RoomAlert(kind=RoomWarning.WITHHELD, detail=detail, room=state.label, room_id=state.room_id)]
        detail = (
            f"you accepted the invitation to room {invitation.shown[:60]}, but its log no longer lists you "
            "(removed before you answered); it is not followed"
        )
        return [RoomAlert(kind=RoomWarning.NOT_A_MEMBER, detail=detail, room=state.label, room_id=state.room_id)]

    def consented(self, room_id: bytes, remembered: Container[bytes]) -> bool:
        """Accepted (now, or in an earlier run: ``remembered``): its log is followed, not checked."""
        return room_id in self._consented or room_id in remembered

    def wanted(self, room_id: bytes) -> bool:
        """Worth fetching: not being checked already, and neither declined nor pending (unless a push
        moved a pending room's head: it is checked again, to withdraw it if the log no longer names us)."""
        if room_id in self.checking or room_id in self._waiting or room_id in self._starting:
            return False
        return room_id in self._recheck or self.invitations.wanted(room_id)

    def pushed(self, room_id: bytes, head_seq: int) -> bool:
        """A push of a room we do not follow: True if it is a pending invitation's whose head moved (the
        caller fetches it to check again; bounded like any check by ``MAX_CHECKING_ROOMS``)."""
        invitation = self.invitations.find(room_id)
        if invitation is None or head_seq <= invitation.seq or room_id in self.checking:
            return False
        self._recheck.add(room_id)
        return True

    def may_check(self) -> bool:
        """A place is free to check one more room (the rooms whose turn came keep theirs)."""
        return len(self.checking) + len(self._starting) < MAX_CHECKING_ROOMS

    def check(self, room: KnownRoom) -> None:
        """Start checking an unasked-for room (``may_check`` said there is a place: none is taken from
        another check, which used to drop the oldest without a word and fetch it again from ``create``)."""
        self._starting.discard(room.state.room_id)
        self.checking[room.state.room_id] = room

    def stop_check(self, room_id: bytes) -> None:
        """The user asked for the room being checked (``/join`` of its label): its log is followed instead."""
        self.checking.pop(room_id, None)
        self._check_since.pop(room_id, None)
        self._recheck.discard(room_id)

    def wait(self, room_id: bytes, label: str) -> list[RoomEvent]:
        """No place to check the room now: it waits its turn, with a notice; with every place to wait taken
        too, it is not checked, with a notice saying so (nothing of it is kept but its id while it waits)."""
        queued = len(self.checking) + len(self._starting) + len(self._waiting)
        if queued >= MAX_CHECKING_ROOMS + MAX_WAITING_CHECKS:
            return [CheckDropped(room=label, room_id=room_id)]
        self._waiting[room_id] = None
        return [CheckWaiting(room=label, room_id=room_id, ahead=queued)]

    def answered(self, room_id: bytes) -> bool:
        """A fetch of this room was answered or refused: a place kept for its turn is its own no more (True:
        it had one, so it had waited its turn, and the user was told it would be checked)."""
        if room_id not in self._starting:
            return False
        self._starting.discard(room_id)
        return True

    def next_checks(self, wanted: Callable[[bytes], bool]) -> list[bytes]:
        """The waiting rooms whose turn it is, oldest first (the caller fetches each from ``create``);
        one no longer ``wanted`` (followed, pending or declined meanwhile) is skipped."""
        turn: list[bytes] = []
        while self._waiting and self.may_check():
            room_id, _ = self._waiting.popitem(last=False)
            if wanted(room_id):
                self._starting.add(room_id)
                turn.append(room_id)
        return turn

    def reconnected(self) -> list[bytes]:
        """The connection ended: the fetches of rooms being checked were lost with it (their ids are
        returned, to stop awaiting them). Each waits again, before those that were waiting already (the
        bound counts them all, so none is let go)."""
        self._said.clear()  # a new connection: what it withholds is said again, once
        self._check_since.clear()
        self._given_up.clear()
        lost = [*self.checking, *sorted(self._starting)]
        self._waiting = OrderedDict.fromkeys([*lost, *self._waiting])
        self.checking.clear()
        self._starting.clear()
        for room_id in sorted(self._withheld):  # checks the relay cut short: asked for again, as places allow
            if room_id in self.invitations and len(self._waiting) < MAX_WAITING_CHECKS and room_id not in self._waiting:
                self._recheck.add(room_id)
                self._waiting[room_id] = None
                self._withheld.discard(room_id)
            elif room_id not in self.invitations:
                self._withheld.discard(room_id)
        return lost

    def fetch_lost(self, room_id: bytes) -> None:
        """A fetch from ``create`` of a room we did not ask for (a push's, a room message's) was lost with the
        connection, before anything of the room was verified: it waits its turn to be checked, by id, after
        the checks under way (the relay pushes nothing again, so an add pushed just before the drop was
        otherwise never offered: review s9-fixes finding 1). Not if it is not ``wanted`` (declined, pending
        and not to be checked again, or queued already), nor past the places to wait (its next push asks
        again, as for any push let go)."""
        if not self.wanted(room_id):
            return
        if len(self.checking) + len(self._starting) + len(self._waiting) >= MAX_CHECKING_ROOMS + MAX_WAITING_CHECKS:
            return
        self._waiting[room_id] = None

    def alerts(self, room_id: bytes, events: list[ev.Event]) -> list[ev.Event]:
        """Of a checked room's events, one integrity warning at most (its log does not verify, or forks):
        its members, adds, presence and key mismatches are nobody's business until the user accepts (a
        key mismatch is checked again then), and a hostile room cannot alarm once per member."""
        if room_id in self._alerted:
            return []
        for event in events:
            if isinstance(event, RoomAlert) and event.kind in _INTEGRITY:
                self._alerted[room_id] = None
                while len(self._alerted) > MAX_ALERTED_ROOMS:
                    self._alerted.popitem(last=False)
                return [event]
        return []

    def checked(self, room: KnownRoom, events: list[ev.Event], *, done: bool) -> tuple[list[ev.Event], list[bytes]]:
        """Entries of a checked room verified (``events`` theirs); ``done``: as far as the relay serves.

        Returns the events to show and, for a room our own key proves ours, the room
        id to fetch again and follow (a list of at most one).
        """
        shown = self.alerts(room.state.room_id, events)
        if not done:
            return shown, []
        state = room.state
        del self.checking[state.room_id]
        self._recheck.discard(state.room_id)
        pending = self.invitations.find(state.room_id)
        if pending is not None and state.head.seq < pending.seq:
            return shown + self.withheld_check(state.room_id, state.head.seq), []
        self._withheld.discard(state.room_id)  # checked to its head: no check again at the welcome (finding 6)
        # Decided from the whole verified log, never from the page that ended the check: who signed the
        # entry that made us a member this time (the create's or the add's signer).
        span = room.own_span(self._own)
        if self._own not in state.members or span is None:
            self._strangers[state.room_id] = None  # its messages to us are not addressed to us
            while len(self._strangers) > MAX_DECLINED:
                self._strangers.popitem(last=False)
            return shown + self.invitations.withdraw(state.room_id), []
        if hmac.compare_digest(span.by, self._own):
            # Only our key signs our own create or self-add: a room we made or joined before (another
            # device, a lost state file) is ours, not an invitation.
            self.consent(state.room_id, state.label)
            return shown, [state.room_id]
        invitation = self.invitation(room, span.by, span.start)
        if pending is not None and not hmac.compare_digest(pending.inviter_key, invitation.inviter_key):
            # Removed and added again by another admin while it waited: it is that admin's invitation now,
            # offered as theirs under the same bounds (a silent renew showed the old inviter's name: ifix L4).
            self.invitations.take(state.room_id)
            return shown + list(self.invitations.offer(invitation)), []
        if pending is not None:
            self.invitations.renew(invitation)
            return shown, []
        return shown + list(self.invitations.offer(invitation)), []

    def withheld_check(self, room_id: bytes, head: int | None, *, served: str = "") -> list[ev.Event]:
        """A pending invitation checked again (a push, a restore) whose log the relay served only up to
        ``head``, before the entry it was checked at, or (``head`` None) with no entry from its create: a
        signed log only grows and a removal makes it longer, so that is the relay holding the rest back, not
        a removal (review-s8-ifix M1, the pending half; L2). The invitation stays as it was (neither
        withdrawn nor renewed from the shorter log), the user is told, and it is checked again at the next
        welcome (``reconnected``). Nothing (not pending): nothing to say."""
        pending = self._kept_unconfirmed(room_id)
        if pending is None:
            return []
        how = "no entry from its create" if head is None else f"only up to entry {head}"
        served = (
            f"served the log of room {pending.shown[:60]} {how}, short of entry {pending.seq} its invitation "
            "was checked at"
            if not served
            else f"did not serve the log of room {pending.shown[:60]} up to the entry its invitation was checked "
            f"at {served}"
        )
        detail = (
            f"the relay {served}: it is holding the rest back; the invitation stays and is checked again when "
            "the connection is back"
        )
        return [RoomAlert(kind=RoomWarning.WITHHELD, detail=detail, room=pending.label, room_id=room_id)]

    def refused_check(self, room_id: bytes, why: str) -> list[ev.Event]:
        """The relay refused the fetch that checks a pending invitation again (``why``: its code and words).
        Its word is a hint, so the invitation stays as it was, the user is told with the room's label (the
        warning named none, review-s8-ifix L3), and it is checked again at the next welcome."""
        pending = self._kept_unconfirmed(room_id)
        if pending is None:
            return []
        detail = (
            f"the relay refused the log of room {pending.shown[:60]} ({why[:200]}), so its invitation could not "
            "be checked again: it stays, not confirmed, and is checked again when the connection is back"
        )
        return [RoomAlert(kind=RoomWarning.REFUSED, detail=detail, room=pending.label, room_id=room_id)]

    def overdue_checks(self, now: float) -> list[bytes]:
        """On a tick: the rooms whose check has held its place ``CHECK_WAIT`` seconds or more, timed from the
        first tick that saw the place taken, or that followed the check's last page that moved its head
        (``progressed``): no clock here, and a second late at most."""
        places = [*self.checking, *sorted(self._starting)]
        self._check_since = {room_id: self._check_since.get(room_id, now) for room_id in places}
        return [room_id for room_id, since in self._check_since.items() if now - since >= CHECK_WAIT]

    def progressed(self, room_id: bytes) -> None:
        """A page of the room being checked moved its head: its wait starts again (a long log honestly takes
        longer than ``CHECK_WAIT`` in all: review s9-invites-2 finding 1)."""
        self._check_since.pop(room_id, None)

    def gave_up(self, room_id: bytes) -> bool:
        """Its check was given up on this connection (``check_overdue``): a late answer starts nothing."""
        return room_id in self._given_up

    def holds_place(self, room_id: bytes) -> bool:
        """Being checked, or its turn come (``CHECK_WAIT`` bounds its fetches, not ``FETCH_WAIT``)."""
        return room_id in self.checking or room_id in self._starting

    def check_overdue(self, room_id: bytes, wait: float = CHECK_WAIT) -> list[ev.Event]:
        """The relay did not answer a check within ``wait`` seconds: its place is freed. A pending invitation
        checked again stays (checked again at the next welcome); a room only being checked (or only fetched
        for a push) is said not checked, by its verified label if its create came (the events to show, once
        a connection)."""
        room = self.checking.pop(room_id, None)
        self._starting.discard(room_id)
        self._check_since.pop(room_id, None)
        self._recheck.discard(room_id)
        self._given_up[room_id] = None
        while len(self._given_up) > MAX_ALERTED_ROOMS:
            self._given_up.popitem(last=False)
        late = f"within {wait:.0f} s"
        if room_id in self.invitations:
            return self.withheld_check(room_id, None, served=late)
        if not self.say_once(room_id):
            return []
        label = "" if room is None else room.state.label
        shown = f"{label[:60]}#{short_room_id(room_id)}" if label else f"#{short_room_id(room_id)}"
        detail = (
            f"the relay did not serve the log of room {shown}, which you did not ask for, {late}: it was not checked "
            "(if someone invited you to it, /join it by its label)"
        )
        return [RoomAlert(kind=RoomWarning.WITHHELD, detail=detail, room=label, room_id=room_id)]

    def say_once(self, room_id: bytes) -> bool:
        """True the first time on this connection that a room's log is said withheld or refused (then
        False until the next welcome): a relay pushing the room again and again gets one warning, not one a
        push (review s9-invites finding 5). At most ``MAX_ALERTED_ROOMS`` rooms are remembered."""
        if room_id in self._said:
            return False
        self._said[room_id] = None
        while len(self._said) > MAX_ALERTED_ROOMS:
            self._said.popitem(last=False)
        return True

    def _kept_unconfirmed(self, room_id: bytes) -> Invitation | None:
        """A recheck of this pending invitation ended unconfirmed (withheld or refused): it stays as it was
        and is checked again at the next welcome. The invitation, if the user is to be told now; None if it
        is not pending or was already said on this connection."""
        pending = self.invitations.find(room_id)
        if pending is None:
            return None
        self._recheck.discard(room_id)
        self._keep_for_welcome(room_id)
        return pending if self.say_once(room_id) else None

    def _keep_for_welcome(self, room_id: bytes) -> None:
        """Check this pending invitation again at the next welcome (only pending ones are kept: at most 32)."""
        self._withheld = {kept for kept in self._withheld if kept in self.invitations}
        self._withheld.add(room_id)

    def invitation(self, room: KnownRoom, by_key: bytes, seq: int) -> Invitation:
        """The invitation to ``room`` by the key that signed its entry ``seq`` (our add)."""
        by = room.members_at(seq).get(by_key, "")
        state = room.state
        return Invitation(
            state.room_id, state.label, by, by_key, self._known(by, by_key), state.head.seq, self._other_key(by, by_key)
        )

    def readded(self, room: KnownRoom, since: int) -> list[RoomEvent] | None:
        """A followed room whose log, past entry ``since`` (where the user's consent reached), adds us
        again by another key after we left or were removed: consent ended with that membership, so it is
        an invitation again (the events to show), or None if it stays followed."""
        spans = room.spans.get(self._own, [])
        if len(spans) < 2 or spans[-1].end is not None or spans[-1].start <= since:
            return None
        if hmac.compare_digest(spans[-1].by, self._own):
            return None
        self.invitations.undecline(room.state.room_id)
        return self.invitations.offer(self.invitation(room, spans[-1].by, spans[-1].start))

    def accept(self, room: bytes | str) -> Invitation:
        """Take the invitation up (the caller fetches its log). NoInvitation; AmbiguousInvitation."""
        invitation = self._pending(room)
        why = self.accept_refusal(invitation.room_id)
        if why is not None:
            raise TooManyAccepted(why)
        self.invitations.take(invitation.room_id)
        self._withheld.discard(invitation.room_id)
        self.stop_check(invitation.room_id)  # checked again (a push, a restore): its log is followed instead
        self._waiting.pop(invitation.room_id, None)
        self.consent(invitation.room_id, invitation.label)
        self._accepting[invitation.room_id] = invitation
        while len(self._accepting) > MAX_CONSENTED:
            self._accepting.popitem(last=False)
        return invitation

    def accept_refusal(self, room_id: bytes) -> str | None:
        """Why accepting the invitation to ``room_id`` is refused now, in words, or None: every accepted row
        the state file keeps is taken by rooms whose log has not come (past them an accept was kept in
        memory only, and the oldest were lost at quit: review-s8-ifix L6)."""
        if len(self._accepting) < MAX_SAVED_ACCEPTED or room_id in self._accepting:
            return None
        return (
            f"{MAX_SAVED_ACCEPTED} rooms you accepted are still waiting for their logs from the relay (/invites "
            "lists them): accept this one once one of them has come; its invitation stays"
        )

    def decline(self, room: bytes | str) -> Invitation:
        """Let an invitation go: nothing of the room is kept and nothing is sent (its log still names us a
        member until an admin removes us: accept, then ``/leave``, to tell the room). NoInvitation: none."""
        invitation = self._pending(room)
        self.invitations.decline(invitation.room_id)
        self._recheck.discard(invitation.room_id)
        self._withheld.discard(invitation.room_id)
        return invitation

    def _pending(self, room: bytes | str) -> Invitation:
        """Looked up in the same step as it is acted on: it may have gone since the user saw it."""
        invitation = self.invitations.find(room)
        if invitation is None:
            shown = room.hex()[:8] if isinstance(room, bytes) else room[:40]
            raise NoInvitation(
                f"no invitation to room {shown!r} is waiting (accepted, declined or let go meanwhile: /invites)"
            )
        return invitation

    def followed(self, room_id: bytes) -> None:
        """The room's log is followed now: no longer an invitation, nor declined (consent lasts until the
        log reached the relay's head, ``settled``)."""
        self._recheck.discard(room_id)
        self._withheld.discard(room_id)
        self._waiting.pop(room_id, None)
        self._starting.discard(room_id)
        self.invitations.take(room_id)
        self.invitations.undecline(room_id)

    def invited(self, room_id: bytes) -> bool:
        """Added by someone else and not accepted (pending, or being checked as one, or waiting for it)."""
        return (
            room_id in self.invitations
            or room_id in self.checking
            or room_id in self._waiting
            or room_id in self._starting
        )

    def declined(self, room_id: bytes) -> bool:
        """Declined in this run (and not accepted since)."""
        return self.invitations.declined(room_id)

    def unfollowed(self, sender: str, label: str, room_id: bytes) -> ev.Event | None:
        """The warning for a message to a room we do not follow and know why (declined, let go for newer
        invitations, or its log does not name us), or None. There is no log here to judge it by, and none
        is kept for it."""
        if self.declined(room_id):
            detail = f"{sender} sent a message to room {label[:40]!r}, whose invitation you declined; not shown"
            return RoomAlert(
                kind=WarningKind.ROOM_NOT_ACCEPTED, detail=detail, sender=sender, room=label, room_id=room_id
            )
        if self.invitations.let_go(room_id):
            detail = (
                f"{sender} sent a message to room {label[:40]!r}, whose invitation was let go for newer ones; not "
                f"shown (to accept it after all, type /join {label[:40]})"
            )
            return RoomAlert(
                kind=WarningKind.ROOM_NOT_ACCEPTED, detail=detail, sender=sender, room=label, room_id=room_id
            )
        if room_id in self._strangers:
            detail = (
                f"{sender} sent you a message to room {label[:40]!r}, of which you are not a member by its "
                "verified log; not shown"
            )
            return ev.Warning(kind=WarningKind.NOT_ADDRESSED_TO_ME, detail=detail, sender=sender)
        return None
