"""The session's part for what the relay only queued: our send frames paced out, and copies sent again. Pure.

- every ``send`` frame goes out through one ``SendPacer`` (when the connection
  turns pacing on), so resends and held lines never burst past the relay's
  allowance and keep their order;
- every online copy goes into the ``Unconfirmed`` book, and leaves it when
  the recipient's receipt names it or the relay's ``ack`` says it was not
  queued;
- when a recipient is present in a new session (``arrived``), or the relay
  says it threw copies away (``dropped``) for one who is back already or
  still connected, what is due is sealed again to the recipient's present
  session key, with the counter each copy had, and sent under the same
  ``msg_id``.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from dataclasses import dataclass

from susurro.crypto import BoxCache, CryptoError, IdentityPublicKey, Recipient
from susurro.crypto.seal import SignedMessage, seal_online
from susurro.crypto.trust import TrustStore
from susurro.protocol import Dropped, DropReason, LocalProtocolError, Send, encode

from . import events as ev
from .admission import Members
from .errors import SendError
from .events import WarningKind
from .outgoing import PendingAcks
from .pacing import SendPacer
from .peer import Peer
from .unconfirmed import Unconfirmed

#: Sends waiting their turn at once; past it a new message is refused (the relay is not taking them).
MAX_QUEUED_SENDS = 1_000
#: Why a copy waiting in our send queue did not go (the user is told with its delivery report).
_LEFT_FIRST = "left before it went out; it is sent when they are back"
_NOT_SEALED = "could not be sealed again; it is sent when they are back"
#: What a ``dropped`` reason means, for the sender.
_DROPPED_WHY = {
    DropReason.SLOW_READER.value: "was not reading fast enough and was disconnected",
    DropReason.WRITE_FAILED.value: "stopped taking data and was disconnected",
}


@dataclass(frozen=True, slots=True)
class _Outbound:
    """One ``send`` waiting in the paced queue: its frame, and what it was sealed from (to seal it again)."""

    msg_id: str
    signed: SignedMessage
    recipients: tuple[Recipient, ...]
    frame: bytes


class Resender:
    def __init__(
        self,
        book: Unconfirmed,
        pending: PendingAcks,
        members: Members,
        boxes: Callable[[], BoxCache],
        max_frame: Callable[[], int],
        out: bytearray,
    ) -> None:
        self.book = book
        self._pending = pending
        self._members = members
        self._boxes = boxes  # our current session key's (it changes when it rotates)
        self._max_frame = max_frame
        self._out = out
        #: None: frames go out at once (sessions driven by hand: tests, benchmarks).
        self.pacer: SendPacer[_Outbound] | None = None
        self._now = 0.0
        #: What to tell the user at the next chance (the set was full; a resend could not be sealed).
        self.notices: list[ev.Event] = []

    # --- frames out -------------------------------------------------------------------

    def sent(self, msg_id: str, signed: SignedMessage, recipients: list[Recipient], frame: bytes) -> None:
        """A new message sealed to ``recipients``: queue its frame and keep its copies until confirmed."""
        self.notices += self.book.sent(msg_id, signed, recipients, queued=self.pacer is not None)
        self._queue(_Outbound(msg_id, signed, tuple(recipients), frame))

    def clock(self, now: float) -> None:
        """The session was told the time (seconds; the pacer's clock)."""
        self._now = max(self._now, now)

    def check_room(self) -> None:
        """Refuse a new message (``SendError``) while ``MAX_QUEUED_SENDS`` wait their turn already."""
        if self.pacer is not None and len(self.pacer) >= MAX_QUEUED_SENDS:
            raise SendError(
                f"{len(self.pacer)} messages are still waiting to go out to the relay; try again in a moment"
            )

    def _queue(self, item: _Outbound) -> None:
        if self.pacer is None:
            self._out += item.frame
        else:
            self.pacer.queue(item)

    def take(self) -> None:
        """Let out the paced frames allowed now (the last time the session was told, ``clock``).

        A frame goes as it was sealed if its recipients are present under the
        session keys it was sealed to; otherwise it is sealed again for those
        present now, in its place (so nothing newer overtakes it), and the
        copies of those who left are kept for their next session.
        """
        if self.pacer is None:
            return
        out = self.notices
        for item in self.pacer.take(self._now):
            recipients: list[Recipient] = []
            gone: list[tuple[str, str]] = []
            for r in item.recipients:
                peer = self._members.get(r.name)
                if peer is None or peer.identity_key != r.identity_key:
                    self.book.went(item.msg_id, r.identity_key, None)
                    gone.append((r.name, _LEFT_FIRST))
                elif peer.session_key != r.session_key:
                    recipients.append(dataclasses.replace(r, name=peer.name, session_key=peer.session_key))
                else:
                    recipients.append(r)
            changed = bool(gone) or recipients != list(item.recipients)
            frame = item.frame if not changed else self._seal(item.msg_id, item.signed, recipients, out)
            if not frame:
                gone += [(r.name, _NOT_SEALED) for r in recipients]
            if gone:  # the relay's ack will not name them: the sender hears it from us
                out += self._pending.unsent(item.msg_id, gone, frame_went=bool(frame))
            if frame:
                self._out += frame
                for r in recipients:
                    self.book.went(item.msg_id, r.identity_key, r.session_key)

    def _seal(self, msg_id: str, signed: SignedMessage, recipients: list[Recipient], out: list[ev.Event]) -> bytes:
        """The ``send`` frame of ``signed`` for ``recipients`` now (empty, and said in ``out``, if it cannot be)."""
        if not recipients:
            return b""
        try:
            copies = seal_online(signed, self._boxes(), recipients)
            return encode(Send(id=msg_id, to=copies), max_frame=self._max_frame())
        except (CryptoError, LocalProtocolError) as exc:  # e.g. a smaller frame limit on a new relay
            names = ", ".join(r.name for r in recipients)
            detail = f"message {msg_id} could not be sent again to {names}: {exc}"
            out.append(ev.Warning(kind=WarningKind.NOT_SENT, detail=detail))
            for r in recipients:
                self.book.went(msg_id, r.identity_key, None)
            return b""

    # --- what the relay and the recipients say --------------------------------------------

    def settled(self, events: list[ev.Event]) -> None:
        """Copies the relay's ack says it did not queue are reported as not delivered: not kept."""
        for event in events:
            if isinstance(event, ev.Delivery) and event.missing:
                self.book.not_queued(event.msg_id, event.missing)

    def confirmed(self, events: list[ev.Event], trust: TrustStore) -> list[tuple[str, bytes, list[str]]]:
        """Receipts (each verified under the pin of who signed it) end those copies: (name, identity key,
        ids) of the copies sent online that they confirmed, for the record that outlives a restart."""
        delivered: list[tuple[str, bytes, list[str]]] = []
        for event in events:
            if isinstance(event, ev.Receipt):
                contact = trust.contact(event.sender)
                if contact is not None:
                    ours = self.book.confirmed(IdentityPublicKey(contact.identity_key), event.msg_ids)
                    if ours:
                        delivered.append((event.sender, contact.identity_key, ours))
        return delivered

    def dropped(self, frame: Dropped) -> list[ev.Event]:
        """The relay threw away copies it had queued: they go again to the recipient's next session (or now)."""
        present = self._members.get(frame.name)
        self.book.dropped(frame.name, frame.ids, frame.reason, None if present is None else present.session_key)
        why = _DROPPED_WHY.get(frame.reason, "was disconnected")
        if present is not None:
            out = self.arrived(present)
            when = f"they were sent again at once ({frame.name} is connected)"
        else:
            out = []
            when = f"they are sent again when {frame.name} is back"
        detail = (
            f"{len(frame.ids)} of your messages to {frame.name} were lost on the relay before they reached "
            f"them ({frame.name} {why}); {when}"
        )
        return [ev.Warning(kind=WarningKind.DROPPED, detail=detail, sender=frame.name), *out]

    def arrived(self, peer: Peer) -> list[ev.Event]:
        """``peer`` is present in a session: seal again what is due to it, before anything newer."""
        out: list[ev.Event] = []
        for resend in self.book.due(peer.name, peer.identity_key, peer.session_key, queued=self.pacer is not None):
            frame = self._seal(resend.msg_id, resend.signed, [resend.recipient], out)
            if frame:
                self._pending.resent(resend.msg_id)
                self._queue(_Outbound(resend.msg_id, resend.signed, (resend.recipient,), frame))
        return out

    def ended(self) -> list[str]:
        """The session ended: ids of what never went out (due again to its recipients' next session)."""
        if self.pacer is None:
            return []
        unsent = self.pacer.take_unsent()
        for item in unsent:
            for r in item.recipients:
                self.book.went(item.msg_id, r.identity_key, None)
        return [item.msg_id for item in unsent]
