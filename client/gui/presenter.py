"""What the window shows for each event and each typed line: pure, no Tk.

``ChatState`` takes the core's events and the user's input and answers with
small *updates* (a line for a conversation, a banner, the sidebar's
conversation list, the people list, a status bar, a desktop notification).
The Tk window only draws updates, so everything a user would see can be
tested here without a display, and the window has no logic worth testing
beyond "it draws what it was told".

Conversations are keyed by a string: ``ROOM`` for everyone present on the
relay, ``room_key(room_id)`` (``#`` and the room id in hex, which no name can
be) for a room of signed membership, a member's name for the direct
conversation with that member. The sidebar is a generic list of
``ConversationItem`` (kind, label, short room id, unread count, selected).

A room's members come from its verified log (``RoomInfo``, which the app
reads from the core's ``RoomBook`` when a room event arrives); who of them
is online is the relay's roster matched by identity key. Per-message
delivery is ``delivery.Tracked``: one tick from the relay, a clock while it
waits in a mailbox, two ticks only from the recipient's signed receipt.

``ChatState`` is made of parts that only add methods, over
``panes.PaneState`` (every field, and writing a line into a pane): ``views``
(the sidebar, the header, the member list, the status bar, the title),
``ticks`` (delivery notes from acks and signed receipts), ``pages`` (history
pages), ``room_updates`` (room events) and ``composing`` (typed lines); the
updates themselves are ``updates``. What each event from the core does is
here.
"""

from __future__ import annotations

from dataclasses import dataclass

from susurro.client import events as ev
from susurro.client.events import WarningKind
from susurro.client.link import LinkState
from susurro.client.printable import printable
from susurro.client.room_events import (
    RoomAlert,
    RoomEvent,
    RoomMessage,
)
from susurro.client.room_invites import (
    AcceptWaiting,
    CheckDropped,
    CheckWaiting,
    InvitationDropped,
    InvitationReceived,
)
from susurro.crypto.trust import TrustState
from susurro.protocol import ErrorCode

from .composing import Composing
from .invitations import InvitationViews
from .pages import HistoryPages
from .panes import ROOM, safe_lines, short_fp, trust_of
from .room_updates import RoomUpdates
from .room_view import RoomInfo, room_key
from .updates import Banner, BannersResolved, Notify, UnreadMarker, Update

#: Longest body shown in a desktop notification.
NOTIFY_BODY_CHARS = 120


@dataclass
class ChatState(HistoryPages, RoomUpdates, InvitationViews, Composing):
    """The view model of one signed-in window."""

    # --- events from the core ---------------------------------------------------

    def apply(self, event: ev.Event, room: RoomInfo | None = None) -> list[Update]:
        """The updates one event from the core produces; ``room``: the room's log now, for a room event."""
        s = self.strings
        if isinstance(event, RoomEvent):
            invitation = self.invitation_event(event)
            if isinstance(event, InvitationReceived | InvitationDropped | CheckWaiting | CheckDropped | AcceptWaiting):
                # no room of ours: nothing else to draw
                return invitation
            return invitation + self._room_event(event, room)
        if isinstance(event, ev.Receipt):
            return self._receipt(event)
        if isinstance(event, ev.Connected):
            again = bool(self.name)  # a reconnect: same window, fresh session
            self.name, self.fingerprint, self.reason = event.name, event.fingerprint, ""
            self.connection = LinkState.JOINED
            self.relay = event.relay or self.relay
            self.members.clear()  # a fresh session (also after a reconnect): the roster follows
            text = (
                s("reconnected", relay=self.relay)
                if again
                else s("you_joined", name=self.name, fingerprint=self.fingerprint)
            )
            return [self.title(), self.status(), *self._notice(ROOM, text), self.roster(), self.sidebar()]
        if isinstance(event, ev.Roster):
            self.members = {m.name: m for m in event.members}
            names = ", ".join(sorted(self.members))
            text = s("here_notice", names=names) if names else s("alone_notice")
            return [self.roster(), self.sidebar(), *self._notice(ROOM, text)]
        if isinstance(event, ev.Joined):
            member = event.member
            self.members[member.name] = member
            text = s("joined_notice", name=member.name, fingerprint=short_fp(member.fingerprint))
            return [self.roster(), self.sidebar(), *self._notices_for(member.name, text), *self._room_header()]
        if isinstance(event, ev.Left):
            self.members.pop(event.name, None)
            return [
                self.roster(),
                self.sidebar(),
                *self._notices_for(event.name, s("left_notice", name=event.name)),
                *self._room_header(),
            ]
        if isinstance(event, ev.Message):
            return self._message(event)
        if isinstance(event, ev.Delivery):
            return self._delivery(event)
        if isinstance(event, ev.KeyChanged):  # before Warning: it is one, with a decision attached
            self.blocked.add(event.name)
            text = s(
                "banner_key_changed",
                name=event.name,
                old=short_fp(event.old_fingerprint),
                new=short_fp(event.new_fingerprint),
            )
            where = event.name if event.name in self.tabs else ROOM
            return [
                Banner(conversation=where, kind="key_changed", text=text, name=event.name, accept=True),
                self.roster(),
                self.sidebar(),
            ]
        if isinstance(event, ev.TrustUpdated):
            member = event.member
            self.members[member.name] = member
            if member.trust is not TrustState.CHANGED:
                self.blocked.discard(member.name)
            return [self.roster(), self.sidebar(), BannersResolved(name=member.name)]
        if isinstance(event, ev.Warning):
            return self._warning(event)
        if isinstance(event, ev.Disconnected):
            self.connection, self.reason = LinkState.CLOSED, s.reason(event.reason, event.code)
            return [self.status(), *self._notice(ROOM, s("status_disconnected", reason=self.reason))]
        if isinstance(event, ev.Reconnecting):
            self.connection = LinkState.RECONNECTING
            delay = f"{max(1, round(event.delay))}"
            if event.code == ErrorCode.CLUSTER_DOWN:  # the relay answered and refused: say why, as the terminal
                self.reason = s("status_refused_retrying", reason=s.reason(event.reason, event.code), delay=delay)
            else:
                self.reason = s("status_reconnecting", delay=delay)
            return [self.status()]
        return []

    def _warning(self, event: ev.Warning) -> list[Update]:
        s = self.strings
        where = event.sender if event.sender in self.tabs else ROOM
        if isinstance(event, RoomAlert) and room_key(event.room_id) in self.rooms:
            where = room_key(event.room_id)
        if event.kind is WarningKind.MESSAGE_HELD:  # not a failed check: the line itself says it is waiting
            return []
        text = s.warning(event.kind, printable(event.detail), sender=event.sender or "")
        return [Banner(conversation=where or ROOM, kind=event.kind, text=text)]

    def _message(self, event: ev.Message) -> list[Update]:
        s = self.strings
        updates: list[Update] = []
        conversation = ROOM
        if isinstance(event, RoomMessage):
            conversation = room_key(event.room_id)
        elif event.direct:
            conversation = event.sender
            if conversation not in self.tabs:
                self.tabs.add(conversation)
        pane = self._pane(conversation)
        self._shown(pane, event.msg_id)
        visible = self.focused and conversation == self.selected
        if not visible:
            if pane.unread == 0:
                updates.append(UnreadMarker(conversation=conversation, text=s("unread_marker")))
            pane.unread += 1
        updates.extend(
            self._line(
                conversation,
                "message",
                safe_lines(event.text),
                sender=event.sender,
                trust=trust_of(event),
                at_millis=event.sent_at,
            )
        )
        if not visible:
            updates += [self.sidebar(), self.title()]
            if self.notifications:
                where = s("notify_direct") if event.direct else self._label(conversation)
                body = event.text if len(event.text) <= NOTIFY_BODY_CHARS else event.text[:NOTIFY_BODY_CHARS] + "…"
                updates.append(Notify(title=s("notify_title", sender=event.sender, where=where), body=printable(body)))
        return updates
