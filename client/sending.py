"""Sending a message: who it is sealed to, the ``send`` frame, and the session's send path. Pure.

- ``choose_recipients``: trust decides who a message is encrypted to, and who
  is skipped (a changed key; not verified in strict mode);
- ``seal_send``: the signed message and the ``send`` frame for it;
- ``Sender``: ``ClientSession``'s part that sends to everyone present, to
  named members (with waiting copies for those who are away, when the
  mailbox is on), or to a room's verified members. It queues bytes; the
  session decides whether sending is allowed at all.
"""

from __future__ import annotations

import secrets
from collections.abc import Callable, Mapping, Sequence

from susurro.crypto import BoxCache, CryptoError, IdentityKey, IdentityPublicKey, MessageTooLarge, Recipient, SignedHead
from susurro.crypto.history import HistoryRecord
from susurro.crypto.membership import RoomMember
from susurro.crypto.seal import SignedMessage, seal_online, sign_message
from susurro.crypto.trust import TrustState
from susurro.protocol import Frame, LocalProtocolError, Send, encode

from . import events as ev
from .admission import Members
from .counters import SendCounters, conversation_of
from .errors import SendError
from .handshake import Handshake
from .history import History, history_conversation
from .mailbox import Mailbox, WaitingCopy
from .outgoing import PendingAcks
from .peer import Peer
from .resend import Resender
from .room_hold import WaitingRoomSend, WaitingRoomSends, forked_reason, not_sent, waiting_notice, withheld_reason
from .rooms import RoomBook, SendGate
from .rotation import OwnSessionKeys
from .trust_actions import TrustActions

#: The one room of this version (signed into every message).
ROOM = "main"


def choose_recipients(members: Members, to: list[str] | None, *, strict: bool) -> tuple[list[Peer], tuple[str, ...]]:
    """Who a message is encrypted to, and who is skipped (key changed, or not verified in strict mode).

    ``to=None`` is the whole room; raises ``SendError`` when nobody can get it.
    """
    if to is None:
        candidates = list(members)
        if not candidates:
            raise SendError("nobody else is in the room")
    else:
        candidates = []
        for name in dict.fromkeys(to):  # each recipient once, in order: one counter step each
            peer = members.get(name)
            if peer is None:
                raise SendError(f"{name} is not in the room")
            candidates.append(peer)
    targets = [p for p in candidates if _may_encrypt_to(p, strict)]
    blocked = [p for p in candidates if not _may_encrypt_to(p, strict)]
    if not targets:
        raise SendError("not sent: " + "; ".join(_blocked_reason(p) for p in blocked))
    return targets, tuple(p.name for p in blocked)


def _may_encrypt_to(peer: Peer, strict: bool) -> bool:
    if peer.trust is TrustState.CHANGED:
        return False
    return peer.trust is TrustState.VERIFIED or not strict


def _blocked_reason(peer: Peer) -> str:
    if peer.trust is TrustState.CHANGED:
        return (
            f"{peer.name}'s identity key changed; compare safety numbers, then accept the new key "
            f"(/verify {peer.name}, /accept {peer.name})"
        )
    return f"{peer.name} is not verified and strict mode is on (/verify {peer.name})"


def seal_send(
    identity: IdentityKey,
    boxes: BoxCache,
    sender: str,
    targets: list[Peer],
    text: str,
    *,
    msg_id: str,
    now: float,
    direct: bool,
    max_frame: int,
    counters: SendCounters,
    absent: Sequence[tuple[str, bytes]] = (),
    room: str = ROOM,
    head: SignedHead | None = None,
    skipped: Sequence[tuple[str, bytes]] = (),
) -> tuple[bytes, SignedMessage, list[Recipient]]:
    """The ``send`` frame for ``text`` sealed to each present target with its next counter, the
    signed message (``absent`` members are signed into its ``to`` list too, for their waiting copies),
    and whom it was sealed to (each with its counter: a copy sent again keeps it).

    With ``head`` it is a room message: signed at that log head, naming the ``skipped`` members
    instead of every recipient. The frame is empty when nobody is present. ``SendError`` says why
    it cannot be sent.
    """
    conversation = conversation_of(direct, room, None if head is None else head.room_id)
    recipients = [
        Recipient(
            name=p.name,
            identity_key=p.identity_key,
            session_key=p.session_key,
            counter=counters.next_for(conversation, p.identity_key),
        )
        for p in targets
    ]
    try:
        signed = sign_message(
            identity=identity,
            sender=sender,
            recipients=[*((r.name, r.identity_key) for r in recipients), *absent],
            body=text,
            msg_id=msg_id,
            sent_at=int(now * 1000),
            room=room,
            direct=direct,
            head=head,
            skipped=skipped,
        )
        if not recipients:
            return b"", signed, []
        ciphertexts = seal_online(signed, boxes, recipients)
        return encode(Send(id=msg_id, to=ciphertexts), max_frame=max_frame), signed, recipients
    except MessageTooLarge as exc:
        raise SendError(str(exc)) from None
    except LocalProtocolError:
        raise SendError(
            f"message too large for {len(targets)} recipient(s) under the relay's "
            f"{max_frame}-byte frame limit; shorten it or send it to fewer people"
        ) from None
    except CryptoError as exc:  # e.g. a peer's session key went bad
        raise SendError(f"cannot encrypt: {exc}") from None


class Sender:
    """The session's send path; every part it uses belongs to ``ClientSession``, which composes them."""

    def __init__(
        self,
        identity: IdentityKey,
        name: str,
        *,
        keys: OwnSessionKeys,
        handshake: Handshake,
        members: Members,
        counters: SendCounters,
        pending: PendingAcks,
        decisions: TrustActions,
        rooms: RoomBook,
        history: History,
        mailbox: Mailbox | None,
        emit: Callable[[Frame], None],
        resender: Resender,
    ) -> None:
        self.identity = identity
        self.name = name
        self._keys = keys
        self._handshake = handshake
        self._members = members
        self._counters = counters
        self._pending = pending
        self._decisions = decisions
        self.rooms = rooms
        self.history = history
        self.mailbox = mailbox
        self._emit = emit
        self._resender = resender
        #: Our room messages waiting for the room's log to reach the newest head shown to us.
        self.room_waits = WaitingRoomSends()
        #: Events made outside a read (a send that waits): the session hands them out with the next read or tick.
        self.notices: list[ev.Event] = []

    def send(self, text: str, now: float, to: list[str] | None, msg_id: str | None, *, strict: bool) -> str:
        """``ClientSession.send_message`` once the session allows it: to everyone present or named members."""
        self._resender.check_room()
        # A direct message is to one person (receivers refuse more); a few named members get a
        # relay-wide message whose signed ``to`` names just them.
        direct = to is not None and len(dict.fromkeys(to)) == 1
        absent: list[tuple[str, bytes]] = []
        if to is not None and self.mailbox is not None:
            to, absent = self._split_absent(to, strict=strict)
        targets, skipped = choose_recipients(self._members, to, strict=strict) if to != [] else ([], ())
        self._within_limit(len(targets))
        msg_id = msg_id or secrets.token_hex(8)  # a held message keeps the id its sender was shown
        data, signed, sealed_to = seal_send(
            self.identity,
            self._keys.boxes,
            self.name,
            targets,
            text,
            msg_id=msg_id,
            now=now,
            direct=direct,
            max_frame=self._handshake.max_frame,
            counters=self._counters,
            absent=absent,
        )
        conversation = conversation_of(direct, ROOM)
        if absent:
            assert self.mailbox is not None
            copies = [WaitingCopy(n, k, self._counters.next_for(conversation, k)) for n, k in absent]
            for frame in self.mailbox.queue(msg_id, signed, copies):
                self._emit(frame)
        # Only now that the frames exist do counters advance.
        self._counters.advance(conversation, [*(p.identity_key for p in targets), *(k for _, k in absent)])
        names = tuple(p.name for p in targets) + tuple(n for n, _ in absent)
        self.history.add(
            HistoryRecord(
                conversation=history_conversation(direct, self.name, names, self.name),
                msg_id=msg_id,
                sender=self.name,
                sent_at=signed.inner.sent_at,
                outgoing=True,
                body=text,
            )
        )
        if to is not None:
            self._decisions.remember(targets)
        if targets:
            self._keys.count_sent()
            self._pending.add(msg_id, tuple(p.name for p in targets), skipped, text)
            self._resender.sent(msg_id, signed, sealed_to, data)
        return msg_id

    def _within_limit(self, count: int) -> None:
        limit = self._handshake.max_recipients  # the relay's, from its welcome
        if count > limit:
            raise SendError(f"{count} recipients; this relay allows {limit} per message")

    def _split_absent(self, to: list[str], *, strict: bool) -> tuple[list[str], list[tuple[str, bytes]]]:
        """Direct recipients present now, and (pinned name, identity key) of those who are away."""
        assert self.mailbox is not None
        present: list[str] = []
        absent: list[tuple[str, bytes]] = []
        for name in dict.fromkeys(to):
            if self._members.get(name) is not None:
                present.append(name)
                continue
            found = self.mailbox.absent_recipient(name, strict=strict)
            if isinstance(found, str):
                raise SendError(found)
            absent.append(found)
        return present, absent

    def send_to_room(self, text: str, now: float, room: str | bytes, msg_id: str | None, *, strict: bool) -> str:
        """A room message: only to members of the room's verified log who are present, sealed at its head.

        Only at the newest head anyone showed us: while a newer one is fetched the message waits
        (``release_room_sends``); if the relay will not serve it, nothing is sealed (a removal the relay
        withholds must not keep the removed member receiving).
        """
        self._resender.check_room()
        state = self.rooms.state(room)
        if state is None:
            raise SendError(f"no verified room {room!r} here; /join it first")
        gate = self.rooms.send_gate(state.room_id, now)
        if gate is SendGate.FORKED:
            raise SendError(forked_reason(self.rooms, state.room_id))
        if gate is SendGate.WITHHELD:
            self._emit(self.rooms.fetch(state.room_id, state.head.seq + 1))  # it may serve it yet
            raise SendError(withheld_reason(self.rooms, state.room_id))
        if gate is SendGate.WAIT or self.room_waits.waiting_for(state.room_id):
            msg_id = msg_id or secrets.token_hex(8)
            if not self.room_waits.add(WaitingRoomSend(state.room_id, msg_id, text, now)):
                raise SendError(f"not sent: {self.room_waits.limit} messages already wait for room logs to catch up")
            self.notices.append(waiting_notice(self.rooms, state.room_id, msg_id))
            return msg_id
        if self.identity.public not in state.members:
            raise SendError(f"you are not a member of {self.rooms.display(state)}")
        by_key = {p.identity_key: p for p in self._members}
        present = [p for ik, p in by_key.items() if ik in state.members]
        allowed: set[bytes] = set()
        if present:
            try:
                targets, _ = choose_recipients(self._members, [p.name for p in present], strict=strict)
            except SendError:
                targets = []
            allowed = {p.identity_key for p in targets}
        addressing = self.rooms.addressing(state.room_id, {ik: p.name for ik, p in by_key.items()}, allowed)
        # Members of the log who are away get a copy in their mailbox, sealed to their prekeys:
        # the same signed message (room id and head inside it), so they judge it as the others do.
        absent = self._absent_room_members(state.members, by_key, strict=strict)
        if not addressing.recipients and not absent:
            raise SendError(f"nobody else in {self.rooms.display(state)} can get it now")
        peers = [by_key[IdentityPublicKey(ik)] for _, ik in addressing.recipients]
        self._within_limit(len(peers))
        msg_id = msg_id or secrets.token_hex(8)
        conversation = conversation_of(False, state.label, state.room_id)
        data, signed, sealed_to = seal_send(
            self.identity, self._keys.boxes, self.name, peers, text, msg_id=msg_id, now=now,
            direct=False, max_frame=self._handshake.max_frame, counters=self._counters, room=state.label,
            head=addressing.head, skipped=addressing.skipped, absent=absent,
        )  # fmt: skip
        if absent:
            assert self.mailbox is not None
            copies = [WaitingCopy(n, k, self._counters.next_for(conversation, k)) for n, k in absent]
            for frame in self.mailbox.queue(msg_id, signed, copies):
                self._emit(frame)
        self._counters.advance(conversation, [*(p.identity_key for p in peers), *(k for _, k in absent)])
        waiting = {n for n, _ in absent}
        not_reached = tuple(name for name, _ in addressing.skipped) + tuple(
            n for n in addressing.offline if n not in waiting
        )
        if peers:
            self._keys.count_sent()
            self._pending.add(msg_id, tuple(p.name for p in peers), not_reached, text)
            self._resender.sent(msg_id, signed, sealed_to, data)
        elif not_reached:  # nobody present: the relay acks nothing, so those who get nothing are said here
            missing = tuple(n for n in addressing.offline if n not in waiting)
            skipped = tuple(name for name, _ in addressing.skipped)
            self.notices.append(ev.Delivery(msg_id=msg_id, delivered=(), missing=missing, skipped=skipped))
        self.history.add(
            HistoryRecord(
                conversation=history_conversation(False, self.name, (), self.name, state.room_id),
                msg_id=msg_id,
                sender=self.name,
                sent_at=int(now * 1000),
                outgoing=True,
                body=text,
            )
        )
        return msg_id

    def expire_room_waits(self, now: float, *, strict: bool) -> list[ev.Event]:
        """On a tick: a room whose newer log has not come within ``ROOM_LOG_WAIT`` is taken as withheld."""
        overdue = self.room_waits.overdue(now)
        if not overdue:
            return []
        events = [alert for room_id in overdue for alert in self.rooms.give_up_fetches(room_id)]
        return events + self.release_room_sends(now, strict=strict)

    def abandon_room_waits(self, reason: str) -> list[ev.Event]:
        """The session ended: room messages still waiting for their log are reported not sent, not dropped."""
        events: list[ev.Event] = []
        for room_id in self.room_waits.rooms():
            for waiting in self.room_waits.take(room_id):
                events.extend(not_sent(self.rooms, self.identity.public, waiting, f"the connection ended ({reason})"))
        return events

    def _absent_room_members(
        self, members: Mapping[bytes, RoomMember], present: Mapping[IdentityPublicKey, Peer], *, strict: bool
    ) -> list[tuple[str, bytes]]:
        """(name, identity key) of the log's members who are away and may get a waiting copy."""
        if self.mailbox is None:
            return []
        return [
            (member.name, ik)
            for ik, member in members.items()
            if ik != self.identity.public
            and ik not in present
            and self.mailbox.absent_room_member(member.name, ik, strict=strict) is None
        ]

    def release_room_sends(self, now: float, *, strict: bool) -> list[ev.Event]:
        """After a room frame: waiting room messages sent at the new head, or reported not sent and why."""
        events: list[ev.Event] = []
        for room_id in self.room_waits.rooms():
            gate = self.rooms.send_gate(room_id, now)
            if gate is SendGate.WAIT:
                continue
            for waiting in self.room_waits.take(room_id):
                try:
                    if gate is SendGate.FORKED:
                        raise SendError(forked_reason(self.rooms, room_id))
                    if gate is SendGate.WITHHELD:
                        raise SendError(withheld_reason(self.rooms, room_id))
                    self.send_to_room(waiting.text, now, room_id, waiting.msg_id, strict=strict)
                except SendError as exc:
                    events.extend(not_sent(self.rooms, self.identity.public, waiting, str(exc)))
        return events
