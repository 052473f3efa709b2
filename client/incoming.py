"""Messages from peers: opened, checked, and turned into ``Message`` or a warning.

A ``deliver`` becomes a ``Message`` only if it decrypts with one of our
session keys, its signature verifies under the sender's identity key, it is
addressed to us, it is not a replay, and its counter is in order (a gap is
reported beside it). The signed recipient list is compared with the keys we
hold for the same names, which shows a key the relay substituted for
someone else.
"""

from __future__ import annotations

import dataclasses
from collections import OrderedDict

from susurro.crypto import (
    CryptoError,
    DecryptFailed,
    IdentityPublicKey,
    OpenedMessage,
    ReplayGuard,
    RoomState,
    SessionPublicKey,
    fingerprint,
    fingerprint_bytes,
    open_message,
)
from susurro.crypto.history import HistoryRecord
from susurro.crypto.trust import TrustState
from susurro.protocol import Deliver, Frame

from . import events as ev
from .admission import Members
from .counters import MAILBOX_VIA, Arrival, conversation_of
from .events import WarningKind
from .gap_hold import GapHold
from .history import history_conversation
from .peer import Peer
from .room_events import RoomAlert, RoomMessage, RoomWarning
from .room_hold import MAX_HELD_ROOM_MESSAGES, HeldRoomMessage, HeldRoomMessages, let_go
from .rooms import RoomBook
from .rotation import OwnSessionKeys


def _about(state: RoomState, kind: WarningKind, detail: str, peer: Peer) -> RoomAlert:
    """A warning about ``peer``'s message to the verified room of ``state``."""
    return RoomAlert(kind=kind, detail=detail, sender=peer.name, room=state.label, room_id=state.room_id)


class Incoming:
    def __init__(
        self,
        own_name: str,
        own_identity_key: IdentityPublicKey,
        keys: OwnSessionKeys,
        members: Members,
        replay: ReplayGuard,
        rooms: RoomBook | None = None,
        gaps: GapHold | None = None,
    ) -> None:
        self._own_name = own_name
        self._own_identity_key = own_identity_key
        self._keys = keys
        self._members = members
        self._replay = replay
        #: Gap judgements held while our mailbox drains (shared with the mailbox's own path).
        self._gaps = gaps if gaps is not None else GapHold()
        #: Without a book (tests of one room's chat), room messages are refused as from non-members.
        self._rooms = rooms
        #: Room fetches a message asked for (its head is beyond ours), for the session to send.
        self._room_requests: list[Frame] = []
        #: Room messages signed at a head beyond the log verified here, until it gets there.
        self._held = HeldRoomMessages()
        self._gaps.mail_held = self._held.holds_mail
        #: (sender, message id) of room messages from our mailbox not shown yet (held for their log).
        self._waited: OrderedDict[tuple[str, str], None] = OrderedDict()
        #: Resends of messages already shown: (sender, identity key, msg_id), to confirm again.
        self._duplicates: list[tuple[str, IdentityPublicKey, str]] = []

    def take_room_requests(self) -> list[Frame]:
        requests, self._room_requests = self._room_requests, []
        return requests

    def take_duplicates(self) -> list[tuple[str, IdentityPublicKey, str]]:
        """Copies of messages shown before that came again (the sender had no receipt): confirm them again."""
        duplicates, self._duplicates = self._duplicates, []
        return duplicates

    def deliver(self, deliver: Deliver, now: float = 0.0) -> list[ev.Event]:
        peer = self._members.get(deliver.sender)
        if peer is None:
            return [
                ev.Warning(
                    kind=WarningKind.UNKNOWN_SENDER,
                    detail=f"a message claimed to be from {deliver.sender!r}, who is not in the room",
                    sender=deliver.sender,
                )
            ]
        try:
            opened, via = self._open(deliver, peer)
        except CryptoError as exc:  # each failed check has its own kind
            return [ev.Warning(kind=WarningKind.of_crypto(exc.kind), detail=str(exc), sender=peer.name)]
        inner = opened.inner
        arrival = Arrival(peer.session_key, via)
        if inner.head is not None:  # counted only once every room check passed (``_judge_room_message``)
            return self._room_message(peer, opened, now, arrival)
        out, shown = self._count(peer.name, peer.identity_key, opened, arrival)
        if not shown:
            return out
        out.extend(self._cross_check_recipients(peer.name, inner.to))
        out.append(
            ev.Message(
                sender=peer.name,
                text=inner.body,
                to=inner.recipient_names,
                direct=inner.direct,
                msg_id=inner.msg_id,
                sent_at=inner.sent_at,
                trust=peer.trust,
                identity_key=peer.identity_key,
            )
        )
        return out

    def _count(
        self, sender: str, identity_key: IdentityPublicKey, opened: OpenedMessage, arrival: Arrival
    ) -> tuple[list[ev.Event], bool]:
        """The replay guard's word on a copy that passed every other check: the warnings that go
        before it (a gap, a late fill) and whether it is shown (not a replay, not a resend).

        Only here does a copy move its sender's counters: one refused for any
        other reason (a stranger's room message, a room that does not exist)
        must not create a stream or skip numbers in it.
        """
        inner, head = opened.inner, opened.inner.head
        stream = (identity_key, conversation_of(inner.direct, inner.room, None if head is None else head.room_id))
        try:
            check = self._replay.check(
                arrival.session, sender, inner.msg_id, opened.counter, stream, digest=opened.digest, via=arrival.via
            )
        except CryptoError as exc:  # Replay
            return [ev.Warning(kind=WarningKind.of_crypto(exc.kind), detail=str(exc), sender=sender)], False
        if check.duplicate:  # resent to our new session: shown already, so only confirmed again
            self._duplicates.append((sender, identity_key, inner.msg_id))
            return [], False
        return [*self._gaps.judge(check, sender, stream, opened.counter, waited=arrival.session is None)], True

    def _room_message(self, peer: Peer, opened: OpenedMessage, now: float, arrival: Arrival | None) -> list[ev.Event]:
        """A room message is shown only if its sender is a member by the log verified here.

        Its signed head is checked against that log (a fork, or a head the
        relay will not serve). One signed beyond the verified head waits
        until the log is fetched that far (``release_held``), so a member
        added since is not taken for a stranger; whom it was for is the log's
        members minus the signed exceptions, the same for every recipient.
        """
        head = opened.inner.head
        assert head is not None
        if self._rooms is None:
            return self._judge_room_message(peer, opened, arrival)
        events, requests = self._rooms.check_message_head(head, peer.name, peer.identity_key)
        self._room_requests.extend(requests)
        if self._rooms.invites.invited(head.room_id):  # apart: unanswered invitations take no honest room's place
            return events + [let_go(item) for item in self._held.add_invited(head.room_id, peer, opened, now, arrival)]
        if self._held.waiting_for(head.room_id) or not self._rooms.reached(head.room_id, head.seq):
            if self._held.add(head.room_id, peer, opened, now, arrival):
                return events
            detail = (
                f"{peer.name} sent a message to room {opened.inner.room[:40]!r} whose membership log has not "
                f"been verified that far, and too many messages already wait for room logs ({self._held.limit} "
                f"in all, {self._held.per_sender} from one sender); not shown"
            )
            alert = RoomAlert(
                kind=RoomWarning.WITHHELD, detail=detail, sender=peer.name, room=opened.inner.room, room_id=head.room_id
            )
            return [*events, alert]
        return events + self._judge_room_message(peer, opened, arrival)

    def waited_room_message(
        self, sender: str, identity_key: IdentityPublicKey, trust: TrustState, opened: OpenedMessage, now: float
    ) -> list[ev.Event]:
        """A room message that waited in our mailbox (opened by ``Mailbox``): judged like one delivered
        live, against the verified log at its signed head, held while that log is fetched, and counted
        in its sender's stream only once it passed."""
        # Its sender may be away: a stand-in with no session (room checks use the name, key and trust).
        author = Peer(
            name=sender,
            identity_key=identity_key,
            session_key=SessionPublicKey(bytes(32)),
            issued_at=0,
            fingerprint=fingerprint(identity_key),
            trust=trust,
        )
        self._waited[(sender, opened.inner.msg_id)] = None
        while len(self._waited) > MAX_HELD_ROOM_MESSAGES:
            self._waited.popitem(last=False)
        return self._mark_waited(self._room_message(author, opened, now, Arrival(None, MAILBOX_VIA)))

    def _mark_waited(self, events: list[ev.Event]) -> list[ev.Event]:
        """Room messages that came from our mailbox say so (``waited``), also once released from holding."""
        out: list[ev.Event] = []
        for e in events:
            if isinstance(e, RoomMessage) and self._waited.pop((e.sender, e.msg_id), False) is None:
                e = dataclasses.replace(e, waited=True)
            out.append(e)
        return out

    def release_held(self, now: float | None = None) -> list[ev.Event]:
        """After a room frame (and on each tick, with ``now``): held messages whose room's log is now
        verified far enough, or will not be.

        A room still being fetched keeps its messages; once the fetch is over,
        or has gone unanswered for ``ROOM_LOG_WAIT``, each is judged by the
        log verified here (the book says the relay withholds the rest).
        """
        rooms = self._rooms
        if rooms is None or not len(self._held):
            return []
        events: list[ev.Event] = [let_go(item) for item in self._held.set_aside(rooms.invites.invited)]
        if now is not None:
            for room_id in self._held.overdue(now):
                events.extend(rooms.give_up_fetches(room_id))

        def ready(item: HeldRoomMessage) -> bool:
            head = item.opened.inner.head
            assert head is not None
            if rooms.invites.invited(item.room_id):
                return False  # an invitation: it waits (set aside, bounded) for the user to accept or decline
            return rooms.reached(item.room_id, head.seq) or not rooms.catching_up(item.room_id)

        for item in self._held.release(ready):
            events.extend(self._judge_room_message(item.peer, item.opened, item.arrival))
        self._gaps.settle()  # the last waiting one judged: the drain is over
        return self._mark_waited(events) if self._waited else events

    def abandon_held(self, reason: str) -> list[ev.Event]:
        """The session ended with room messages still waiting for their log: say so, never drop them silently."""
        held = self._held.release(lambda item: True)
        if not held:
            return []
        senders = ", ".join(dict.fromkeys(item.peer.name for item in held))
        detail = (
            f"{len(held)} room message(s) from {senders} waited for their room's membership log and were not "
            f"shown: the connection ended ({reason})"
        )
        first = held[0]
        return [
            RoomAlert(
                kind=RoomWarning.WITHHELD, detail=detail, sender=first.peer.name, room=first.opened.inner.room,
                room_id=first.room_id,
            )
        ]  # fmt: skip

    def _judge_room_message(self, peer: Peer, opened: OpenedMessage, arrival: Arrival | None) -> list[ev.Event]:
        """Shown if every room check passes and then its counter (``arrival`` None: counted already)."""
        inner = opened.inner
        head = inner.head
        assert head is not None
        events: list[ev.Event] = []
        desk = None if self._rooms is None else self._rooms.invites
        # A room declined, or checked and found not ours: there is no log here to judge it by.
        if desk is not None and (unfollowed := desk.unfollowed(peer.name, inner.room, head.room_id)) is not None:
            return [unfollowed]
        state = None if self._rooms is None else self._rooms.state(head.room_id)
        if state is not None and inner.room != state.label:
            detail = (
                f"{peer.name} signed a message to room {inner.room[:40]!r}, but room {state.label}#{state.short_id} "
                f"is labelled {state.label!r} in its signed log; not shown"
            )
            events.append(_about(state, RoomWarning.LABEL_CHANGED, detail, peer))
            return events
        # A member both at the head it signed and by our newest verified log (spec review S4, finding 2):
        # a removed member quoting the head before its removal is not shown, nor one added after its head.
        at_head = {} if self._rooms is None else self._rooms.members_at(head.room_id, head.seq)
        if state is None or peer.identity_key not in state.members or peer.identity_key not in at_head:
            label = inner.room if state is None or self._rooms is None else self._rooms.display(state)
            events.append(
                RoomAlert(
                    kind=RoomWarning.NOT_A_MEMBER,
                    detail=f"{peer.name} sent a message to room {label[:40]!r}, where the log verified here does "
                    f"not list them as a member (now and at entry {head.seq}, where they signed it); not shown",
                    sender=peer.name,
                    room=inner.room if state is None else state.label,
                    room_id=head.room_id,
                )
            )
            return events
        assert self._rooms is not None
        if self._rooms.conflicts(head):  # a member's head with another history: room_fork_claimed said so
            return events
        if self._own_identity_key not in at_head:  # "not in skipped" alone lets a member write to anyone
            detail = (
                f"{peer.name} sent you a message to room {self._rooms.display(state)}, of which you were not a "
                f"member at entry {head.seq}, where they signed it; not shown"
            )
            events.append(ev.Warning(kind=WarningKind.NOT_ADDRESSED_TO_ME, detail=detail, sender=peer.name))
            return events
        gone = sorted(name for ik, name in at_head.items() if ik not in state.members)
        if gone:
            detail = (
                f"{peer.name} sealed this message at entry {head.seq} of room {self._rooms.display(state)}, before "
                f"the log verified here (entry {state.head.seq}) let {', '.join(gone[:5])} go: they may have got it"
            )
            events.append(_about(state, RoomWarning.STALE_SENDER_HEAD, detail, peer))
        if arrival is not None:
            counted, shown = self._count(peer.name, peer.identity_key, opened, arrival)
            if not shown:
                return counted
            events = counted + events
        events.append(
            RoomMessage(
                sender=peer.name,
                text=inner.body,
                to=self._rooms.addressed(head, inner.skipped, peer.identity_key),
                direct=False,
                msg_id=inner.msg_id,
                sent_at=inner.sent_at,
                trust=peer.trust,
                identity_key=peer.identity_key,
                room=state.label,
                room_id=state.room_id,
            )
        )
        return events

    def _open(self, deliver: Deliver, peer: Peer) -> tuple[OpenedMessage, bytes]:
        """Open with our current session key, or a previous one within its grace period; and which opened it."""
        keys = self._keys.opening_boxes()
        for index, boxes in enumerate(keys):
            try:
                opened = open_message(
                    boxes=boxes,
                    ciphertext=deliver.ct,
                    relay_sender=deliver.sender,
                    sender_identity_key=peer.identity_key,
                    sender_session_key=peer.session_key,
                    own_name=self._own_name,
                    own_identity_key=self._own_identity_key,
                )
            except DecryptFailed:
                if index == len(keys) - 1:
                    raise
                continue
            return opened, bytes(boxes.own.public)
        raise AssertionError("unreachable")

    def _cross_check_recipients(self, sender: str, to: tuple[tuple[str, bytes], ...]) -> list[ev.Event]:
        """Compare the signed recipient list with the keys we hold for the same names.

        The sender signed which identity key it encrypted to for each member.
        If that differs from the key we hold for the member, the relay gave
        one of us a substituted key: someone may be reading along.
        """
        out: list[ev.Event] = []
        for name, fp in to:
            peer = self._members.get(name)
            if peer is not None and fingerprint_bytes(peer.identity_key) != fp:
                out.append(
                    ev.Warning(
                        kind=WarningKind.RECIPIENT_KEY_MISMATCH,
                        detail=f"{sender} encrypted this message to a different identity key for {name} than the "
                        f"one you have ({peer.fingerprint}); one of you was given a substituted key",
                        sender=sender,
                    )
                )
        return out


#: Warnings that come with a message that is still shown (just before it, about the same sender):
#: the history keeps them with the message, so it never comes back from the history looking clean.
MESSAGE_FLAGS = frozenset({WarningKind.GAP, WarningKind.LATE, WarningKind.RECIPIENT_KEY_MISMATCH})


def shown_records(events: list[ev.Event], own_name: str) -> list[HistoryRecord]:
    """The messages among ``events`` (those just shown), as the history keeps them: with the
    sender's key, its trust state and the warnings that came with each."""
    records: list[HistoryRecord] = []
    flags: dict[str, list[str]] = {}
    for e in events:
        if isinstance(e, ev.Warning) and e.sender is not None and e.kind in MESSAGE_FLAGS:
            flags.setdefault(e.sender, []).append(e.kind.value)
        elif isinstance(e, ev.Message):
            records.append(
                HistoryRecord(
                    conversation=history_conversation(
                        e.direct, e.sender, e.to, own_name, e.room_id if isinstance(e, RoomMessage) else None
                    ),
                    msg_id=e.msg_id,
                    sender=e.sender,
                    sent_at=e.sent_at,
                    outgoing=False,
                    body=e.text,
                    sender_key=e.identity_key,
                    trust=e.trust,
                    warnings=tuple(flags.pop(e.sender, ())),
                )
            )
    return records
