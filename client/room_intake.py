"""Room messages from peers: judged against the membership log verified here, held while it is fetched.

A room message is shown only if its sender is a member of the room by the
log verified here, at the head it signed and now; one signed beyond that
head waits (``room_hold``) until the log is fetched that far, or until the
fetch is given up, and the messages of a room that is only an invitation
wait apart. Only a message that passed every room check moves its sender's
counters (``Incoming``'s replay guard, through ``count``). ``incoming.Incoming``
opens every message and hands room messages here.
"""

from __future__ import annotations

import dataclasses
from collections import OrderedDict
from collections.abc import Callable

from susurro.crypto import IdentityPublicKey, OpenedMessage, RoomState, SessionPublicKey, fingerprint
from susurro.crypto.trust import TrustState
from susurro.protocol import Frame

from . import events as ev
from .counters import MAILBOX_VIA, Arrival
from .events import WarningKind
from .gap_hold import GapHold
from .peer import Peer
from .room_events import RoomAlert, RoomMessage, RoomWarning
from .room_hold import MAX_HELD_ROOM_MESSAGES, HeldRoomMessage, HeldRoomMessages, let_go
from .rooms import RoomBook

#: ``Incoming``'s replay guard on a copy that passed every room check: the warnings before it, and
#: whether it is shown.
Count = Callable[[str, IdentityPublicKey, OpenedMessage, Arrival], tuple[list[ev.Event], bool]]


def _about(state: RoomState, kind: WarningKind, detail: str, peer: Peer) -> RoomAlert:
    """A warning about ``peer``'s message to the verified room of ``state``."""
    return RoomAlert(kind=kind, detail=detail, sender=peer.name, room=state.label, room_id=state.room_id)


class RoomIntake:
    """The room messages of one session: judged, or held for their room's log (``held``)."""

    def __init__(
        self, own_identity_key: IdentityPublicKey, rooms: RoomBook | None, gaps: GapHold, count: Count
    ) -> None:
        self._own_identity_key = own_identity_key
        #: Without a book (tests of one room's chat), room messages are refused as from non-members.
        self._rooms = rooms
        self._gaps = gaps
        self._count = count
        #: Room fetches a message asked for (its head is beyond ours), for the session to send.
        self._room_requests: list[Frame] = []
        #: Room messages signed at a head beyond the log verified here, until it gets there.
        self.held = HeldRoomMessages()
        self._gaps.mail_held = self.held.holds_mail
        #: (sender, message id) of room messages from our mailbox not shown yet (held for their log).
        self._waited: OrderedDict[tuple[str, str], None] = OrderedDict()

    def take_room_requests(self) -> list[Frame]:
        requests, self._room_requests = self._room_requests, []
        return requests

    def message(self, peer: Peer, opened: OpenedMessage, now: float, arrival: Arrival | None) -> list[ev.Event]:
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
            return self._judge(peer, opened, arrival)
        events, requests = self._rooms.check_message_head(head, peer.name, peer.identity_key)
        self._room_requests.extend(requests)
        if self._rooms.invites.invited(head.room_id):  # apart: unanswered invitations take no honest room's place
            return events + [let_go(item) for item in self.held.add_invited(head.room_id, peer, opened, now, arrival)]
        if self.held.waiting_for(head.room_id) or not self._rooms.reached(head.room_id, head.seq):
            if self.held.add(head.room_id, peer, opened, now, arrival):
                return events
            detail = (
                f"{peer.name} sent a message to room {opened.inner.room[:40]!r} whose membership log has not "
                f"been verified that far, and too many messages already wait for room logs ({self.held.limit} "
                f"in all, {self.held.per_sender} from one sender); not shown"
            )
            alert = RoomAlert(
                kind=RoomWarning.WITHHELD, detail=detail, sender=peer.name, room=opened.inner.room, room_id=head.room_id
            )
            return [*events, alert]
        return events + self._judge(peer, opened, arrival)

    def waited(
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
        return self._mark_waited(self.message(author, opened, now, Arrival(None, MAILBOX_VIA)))

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
        if rooms is None or not len(self.held):
            return []
        events: list[ev.Event] = [let_go(item) for item in self.held.set_aside(rooms.invites.invited)]
        if now is not None:
            for room_id in self.held.overdue(now):
                events.extend(rooms.give_up_fetches(room_id))

        def ready(item: HeldRoomMessage) -> bool:
            head = item.opened.inner.head
            assert head is not None
            if rooms.invites.invited(item.room_id):
                return False  # an invitation: it waits (set aside, bounded) for the user to accept or decline
            return rooms.reached(item.room_id, head.seq) or not rooms.catching_up(item.room_id)

        for item in self.held.release(ready):
            events.extend(self._judge(item.peer, item.opened, item.arrival))
        self._gaps.settle()  # the last waiting one judged: the drain is over
        return self._mark_waited(events) if self._waited else events

    def abandon_held(self, reason: str) -> list[ev.Event]:
        """The session ended with room messages still waiting for their log: say so, never drop them silently."""
        held = self.held.release(lambda item: True)
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

    def _judge(self, peer: Peer, opened: OpenedMessage, arrival: Arrival | None) -> list[ev.Event]:
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
