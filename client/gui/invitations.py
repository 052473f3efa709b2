"""The window's invitations: rooms someone added us to, until the user accepts or declines. Pure, no Tk.

The core keeps nothing of such a room but a small record (``room_invites``);
the window lists them in a section of the sidebar (``invitation_list``) with
an Accept and a Decline button each, says each one in the room's pane of
everyone here ("alice invited you to plans #1a2b…"), and forgets it once
answered, let go for a newer one, or followed after all.
"""

from __future__ import annotations

from susurro.client.printable import printable
from susurro.client.room_events import Invited, RoomEvent, RoomReady
from susurro.client.room_invites import (
    MAX_INVITATIONS,
    MAX_INVITATIONS_PER_INVITER,
    AcceptWaiting,
    CheckDropped,
    CheckWaiting,
    DropReason,
    InvitationDropped,
    InvitationReceived,
)

from .panes import ROOM
from .room_view import room_key
from .updates import InvitationItem, InvitationRows, Notify, Update
from .views import Views


class InvitationViews(Views):
    """The invitations part of ``presenter.ChatState``."""

    def invitation_rows(self) -> InvitationRows:
        return InvitationRows(items=tuple(self.invitations.values()))

    def invitation_event(self, event: RoomEvent) -> list[Update]:
        """The updates of an invitation event (a room followed ends its invitation; others: none)."""
        s = self.strings
        room = f"{printable(event.room)} #{event.short_id}"
        if isinstance(event, InvitationReceived):
            key = (
                "invitation_row_other_key"
                if event.other_key
                else "invitation_row"
                if event.known
                else ("invitation_row_stranger")
            )
            text = s(key, by=printable(event.by), room=room)
            self.invitations[event.room_id] = InvitationItem(room_id=event.room_id, room=room, text=text)
            out = self._unlisted(event.room_id)  # re-added after we left: no longer a room of ours
            hint = s("invitation_restored_hint") if event.restored else s("invitation_hint")
            out += self._notice(ROOM, f"{text}. {hint}")
            if self.notifications and not self.focused and not event.restored:  # not news: no pop-up each
                out.append(Notify(title=room, body=text))
            return [*out, self.invitation_rows(), self.sidebar()]
        if isinstance(event, InvitationDropped):
            self.invitations.pop(event.room_id, None)
            many = MAX_INVITATIONS if event.reason is DropReason.TOO_MANY else MAX_INVITATIONS_PER_INVITER
            key = {
                DropReason.TOO_MANY: "invitation_dropped_notice",
                DropReason.WITHDRAWN: "invitation_withdrawn_notice",
            }.get(event.reason, "invitation_dropped_one")
            text = s(key, by=printable(event.by), room=room, count=str(many), label=printable(event.room))
            return [*self._notice(ROOM, text), self.invitation_rows()]
        if isinstance(event, AcceptWaiting):
            return self._notice(ROOM, s("accept_waiting_notice", room=room, by=printable(event.by)))
        if isinstance(event, CheckWaiting):
            return self._notice(ROOM, s("check_waiting_notice", room=room, count=str(event.ahead)))
        if isinstance(event, CheckDropped):
            return self._notice(ROOM, s("check_dropped_notice", room=room, label=printable(event.room)))
        if isinstance(event, Invited | RoomReady) and self.invitations.pop(event.room_id, None) is not None:
            return [self.invitation_rows()]  # followed now (accepted, or joined by its label)
        return []

    def _unlisted(self, room_id: bytes) -> list[Update]:
        """A room of ours that is an invitation again (added back by someone else after we left or were
        removed): the core follows it no more, so its row leaves the sidebar now, not at the next start;
        the window goes to everyone here if it was on the room."""
        key = room_key(room_id)
        if self.rooms.pop(key, None) is None:
            return []
        self._replaying.discard(key)
        return self.select(ROOM) if self.selected == key else []

    def invitation_answered(self, room_id: bytes, accepted: bool) -> list[Update]:
        """The user accepted or declined: the row goes, a line says what happens now."""
        item = self.invitations.pop(room_id, None)
        if item is None:
            return []
        key = "invitation_accepted_notice" if accepted else "invitation_declined_notice"
        return [*self._notice(ROOM, self.strings(key, room=item.room)), self.invitation_rows()]
