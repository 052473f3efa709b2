"""Messages from peers: opened, checked, and turned into ``Message`` or a warning.

A ``deliver`` becomes a ``Message`` only if it decrypts with one of our
session keys, its signature verifies under the sender's identity key, it is
addressed to us, it is not a replay, and its counter is in order (a gap is
reported beside it). The signed recipient list is compared with the keys we
hold for the same names, which shows a key the relay substituted for
someone else. A room message (one signed at a room's head) is opened here
and judged by ``room_intake.RoomIntake``, against the room's verified log.
"""

from __future__ import annotations

from susurro.crypto import (
    CryptoError,
    DecryptFailed,
    IdentityPublicKey,
    OpenedMessage,
    ReplayGuard,
    fingerprint_bytes,
    open_message,
)
from susurro.crypto.history import HistoryRecord
from susurro.crypto.trust import TrustState
from susurro.protocol import Deliver, Frame

from . import events as ev
from .admission import Members
from .counters import Arrival, conversation_of
from .events import WarningKind
from .gap_hold import GapHold
from .history import history_conversation
from .peer import Peer
from .room_events import RoomMessage
from .room_intake import RoomIntake
from .rooms import RoomBook
from .rotation import OwnSessionKeys


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
        #: Room messages: judged against the verified log, or held for it (``room_intake``).
        self.room_intake = RoomIntake(own_identity_key, rooms, self._gaps, self._count)
        #: Resends of messages already shown: (sender, identity key, msg_id), to confirm again.
        self._duplicates: list[tuple[str, IdentityPublicKey, str]] = []

    def take_room_requests(self) -> list[Frame]:
        return self.room_intake.take_room_requests()

    def waited_room_message(
        self, sender: str, identity_key: IdentityPublicKey, trust: TrustState, opened: OpenedMessage, now: float
    ) -> list[ev.Event]:
        """A room message that waited in our mailbox (``RoomIntake.waited``)."""
        return self.room_intake.waited(sender, identity_key, trust, opened, now)

    def release_held(self, now: float | None = None) -> list[ev.Event]:
        """Held room messages whose log is now verified far enough, or will not be (``RoomIntake``)."""
        return self.room_intake.release_held(now)

    def abandon_held(self, reason: str) -> list[ev.Event]:
        """The session ended with room messages held: said, never dropped (``RoomIntake``)."""
        return self.room_intake.abandon_held(reason)

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
            return self.room_intake.message(peer, opened, now, arrival)
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
