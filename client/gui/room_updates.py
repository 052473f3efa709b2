"""The presenter's rooms of signed membership: what each room event adds to the sidebar and the pane."""

from __future__ import annotations

from susurro.client.room_events import (
    Invited,
    MemberAdded,
    MemberRemoved,
    RoomCreated,
    RoomEvent,
    RoomNotice,
    RoomReady,
)

from . import room_view
from .panes import ROOM
from .room_view import RoomInfo, room_key
from .updates import Notify, Update
from .views import Views

#: The notice for a membership change, by (about us?, done by the member themselves?).
_ADDED = {
    (True, True): "you_joined_room_notice",
    (True, False): "invited_notice",
    (False, True): "member_joined_room_notice",
    (False, False): "member_added_notice",
}
_REMOVED = {
    (True, True): "you_left_notice",
    (True, False): "you_removed_notice",
    (False, True): "member_left_room_notice",
    (False, False): "member_removed_notice",
}


class RoomUpdates(Views):
    """Room events as notices, sidebar entries and member lists."""

    def _room_event(self, event: RoomEvent, room: RoomInfo | None) -> list[Update]:
        """Rooms of signed membership: the sidebar, the member list and a notice in the room's pane."""
        s = self.strings
        key = room_key(event.room_id)
        before = self.rooms.get(key)
        if room is not None:
            self.rooms[key] = room
        info = self.rooms.get(key)
        display = info.display if info is not None else f"{event.room} #{event.short_id}"
        out: list[Update] = []
        me = self.name.casefold()
        replay = key in self._replaying
        if replay and not isinstance(event, RoomReady | RoomCreated):
            return [self.sidebar(), self.roster(), *self._room_header()]  # the log again, entry by entry
        if isinstance(event, RoomReady):
            self._replaying.discard(key)
            if replay:
                before = None  # we were away: say who is in it now
        if isinstance(event, RoomCreated):
            policy = s("policy_open") if info is not None and info.open else s("policy_invite")
            out += self.select(key)  # the user asked for it: go there
            out += self._notice(key, s("room_created_notice", room=display, policy=policy))
        elif isinstance(event, Invited) and event.by.casefold() == me:  # we added ourselves: an open room
            out += self._notice(key, s("you_joined_room_notice", room=display))
            if self.selected == ROOM:
                out += self.select(key)  # we joined it (an open room, or the demo's): go there
        elif isinstance(event, Invited):
            out += self._notice(key, s("invited_notice", by=event.by, room=display))
            if self.notifications and not (self.focused and self.selected == key):
                out.append(Notify(title=display, body=s("invited_notice", by=event.by, room=display)))
        elif isinstance(event, MemberAdded | MemberRemoved):
            ours, by_themselves = event.name.casefold() == me, event.by == event.name
            # (ours?, by themselves?) -> what it says: "You joined", "bob added you", "carol joined", ...
            texts = _ADDED if isinstance(event, MemberAdded) else _REMOVED
            out += self._notice(key, s(texts[ours, by_themselves], by=event.by, name=event.name, room=display))
            if isinstance(event, MemberAdded) and ours and by_themselves and self.selected == ROOM:
                out += self.select(key)  # we joined it (an open room, or the demo's): go there
        elif isinstance(event, RoomNotice):
            out += self._notice(key, room_view.notice_text(s, event, display, self.name))
        elif isinstance(event, RoomReady) and info is not None and info.joined and not (before and before.joined):
            names = ", ".join(m.name for m in info.members)
            out += self._notice(key, s("room_members_notice", names=names))
        out += [self.sidebar(), self.roster(), *self._room_header()]
        return out

    def replaying(self, room_id: bytes) -> None:
        """The app asked for this room's log from its start: its entries come again, the room is not new."""
        if room_key(room_id) not in self.rooms:
            self._replaying.add(room_key(room_id))

    def room_forgotten(self, room_id: bytes, label: str, shown: str, conversation: str) -> list[Update]:
        """``/forget-room``: the core no longer knows the room, so neither does the sidebar; the notice goes
        where it was typed, or to everyone here if that was the room's own conversation."""
        key = room_key(room_id)
        self.rooms.pop(key, None)
        self._replaying.discard(key)
        out: list[Update] = self.select(ROOM) if self.selected == key else []
        where = ROOM if conversation == key else conversation
        out += self._notice(where, self.strings("room_forgotten_notice", label=label, room=shown))
        return [*out, self.sidebar()]

    def room_resumed(self, room_id: bytes, shown: str) -> list[Update]:
        """``/resume-room``: sends to the room go on; said in the room's conversation, which is shown."""
        key = room_key(room_id)
        out: list[Update] = self.select(key) if key in self.rooms else []
        where = key if key in self.rooms else ROOM
        return out + self._notice(where, self.strings("room_resumed_notice", room=shown))
