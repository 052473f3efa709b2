"""The session's side of messages that wait: mailbox frames in, receipts for what was shown out. Pure.

``Mailbox`` keeps the prekeys, the waiting copies and the receipts; this part
is what ``ClientSession`` does with it on each read: answer the relay's
mailbox frames, and once a read's messages are shown (and saved), confirm
them to their senders.
"""

from __future__ import annotations

from collections.abc import Callable

from susurro.crypto.trust import TrustStore
from susurro.protocol import Bundles, Frame, Mail, MailEnd, Posted, PrekeysHeld

from . import events as ev
from .admission import Members
from .gap_hold import GapHold
from .incoming import Incoming
from .mailbox import Mailbox

#: The relay frames this part answers (the relay sends them only to a client that published prekeys).
MAIL_FRAMES: tuple[type[Frame], ...] = (PrekeysHeld, Bundles, Posted, Mail, MailEnd)


class MailPath:
    def __init__(
        self,
        mailbox: Mailbox,
        trust: TrustStore,
        members: Members,
        wall_clock: Callable[[], float],
        incoming: Incoming | None = None,
        gaps: GapHold | None = None,
    ) -> None:
        self.mailbox = mailbox
        #: This session's hold on gap judgements, shared by live and waiting copies (the mailbox outlives us).
        self._gaps = gaps if gaps is not None else GapHold()
        mailbox.gaps = self._gaps
        if incoming is not None:  # room messages that waited are judged by the same room checks as live ones
            mailbox.judge_room = incoming.waited_room_message
        self._incoming = incoming
        self._trust = trust
        self._members = members
        self._wall_clock = wall_clock

    def joined(self, now: float) -> list[Frame]:
        """Frames to send once the relay welcomed us (prekeys, fetching what waits); from now until
        ``mail_end`` (or ``GAP_HOLD_SECONDS`` on the session's clock ``now``) gaps are held."""
        self._gaps.open(now)
        return self.mailbox.joined(self._wall_clock())

    def receive(self, frame: Frame) -> tuple[list[ev.Event], list[Frame]]:
        """Events and frames to send for one of ``MAIL_FRAMES``."""
        if isinstance(frame, PrekeysHeld):
            return [], self.mailbox.on_prekeys_held(frame, self._wall_clock())
        if isinstance(frame, Bundles):
            return self.mailbox.on_bundles(frame)
        if isinstance(frame, Posted):
            return self.mailbox.on_posted(frame), []
        if isinstance(frame, Mail):
            events = self.mailbox.on_mail(frame)
            # A room message signed past the log verified here asked for the rest of the log.
            return events, self._incoming.take_room_requests() if self._incoming is not None else []
        self._gaps.end()  # MailEnd: what waited has come; a gap still open is warned (the session takes it)
        return [], []

    def after_read(self, events: list[ev.Event]) -> list[Frame]:
        """Frames to send after a read's events were kept: what the mailbox confirms, then receipts."""
        # Confirmed only now, after the prekey ring and the history were saved (at-least-once).
        out = self.mailbox.flush()
        # Receipts for what was shown: the senders learn it was delivered from us, not from the relay.
        for event in events:
            if isinstance(event, ev.Message):
                contact = self._trust.contact(event.sender)
                peer = self._members.get(event.sender)
                key = peer.identity_key if peer is not None else contact.identity_key if contact else None
                if key is not None:
                    self.mailbox.shown(event.sender, key, event.msg_id)
        out.extend(self.mailbox.receipts(int(self._wall_clock() * 1000)))
        return out
