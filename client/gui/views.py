"""The presenter's derived views: the sidebar, the header, the member list, the status bar, the title."""

from __future__ import annotations

from susurro.client.link import LinkState
from susurro.crypto import IdentityPublicKey
from susurro.crypto.fingerprint import fingerprint

from .panes import ROOM, PaneState, short_fp
from .room_view import RoomInfo, is_room_key
from .updates import (
    ConversationItem,
    ConversationKind,
    RosterRow,
    RosterRows,
    ShowConversation,
    Sidebar,
    Status,
    Title,
    Update,
)


class Views(PaneState):
    """What the window's fixed parts show now, and moving between conversations."""

    def send_block_reason(self) -> str:
        if self.connection is LinkState.RECONNECTING:
            return self.strings("reason_reconnecting")
        return self.strings("reason_disconnected")

    def status(self) -> Status:
        s = self.strings
        connection = {
            LinkState.CONNECTING: s("status_connecting", relay=self.relay),
            LinkState.JOINING: s("status_connecting", relay=self.relay),
            LinkState.JOINED: s("status_connected", relay=self.relay),
            LinkState.RECONNECTING: self.reason,
            LinkState.CLOSED: s("status_disconnected", reason=self.reason),
        }[self.connection]
        connected = self.connection is LinkState.JOINED
        # While reconnecting lines are held and sent once the room is back, so typing stays on.
        can_send = connected or self.connection is LinkState.RECONNECTING
        if connected:
            reason = ""
        elif can_send:
            reason = s("held_hint")
        else:
            reason = s("sending_disabled", reason=self.send_block_reason())
        return Status(
            connection=connection,
            relay=self.relay,
            fingerprint=s("status_fingerprint", fingerprint=self.fingerprint) if self.fingerprint else "",
            e2e=s("status_e2e") if connected else s("status_not_connected"),
            can_send=can_send,
            reason=reason,
            secure=connected,
            offer_reconnect=self.connection is LinkState.CLOSED,
        )

    def unread_total(self) -> int:
        return sum(pane.unread for pane in self._panes.values())

    def title(self) -> Title:
        base = self.strings("window_title", name=self.name) if self.name else self.strings("app_title")
        total = self.unread_total()
        return Title(text=f"({total}) {base}" if total else base)

    def sidebar(self) -> Sidebar:
        s = self.strings
        items = [
            ConversationItem(
                key=ROOM,
                kind=ConversationKind.ROOM,
                label=s("room_tab"),
                unread=self._pane(ROOM).unread,
                selected=self.selected == ROOM,
            )
        ]
        rooms = sorted(self.rooms.values(), key=lambda r: (r.label.casefold(), r.room_id))
        for info in rooms:
            if info.joined or info.key in self._panes:
                items.append(
                    ConversationItem(
                        key=info.key,
                        kind=ConversationKind.ROOM,
                        label=info.label,
                        tag=f"#{info.short_id}",
                        unread=self._pane(info.key).unread,
                        selected=self.selected == info.key,
                    )
                )
        for key in self._order:
            if key in self.tabs and not is_room_key(key):
                items.append(
                    ConversationItem(
                        key=key,
                        kind=ConversationKind.DIRECT,
                        label=key,
                        unread=self._pane(key).unread,
                        selected=self.selected == key,
                        trust=self._trust(key) if key in self.members else "gone",
                    )
                )
        return Sidebar(items=tuple(items))

    def show(self) -> ShowConversation:
        key = self.selected
        if key == ROOM:
            others = len(self.members)
            return ShowConversation(key=key, header=self.strings("room_header", count=others + 1))
        if is_room_key(key):
            info = self.rooms.get(key)
            if info is None:
                return ShowConversation(key=key, header=key)
            online = sum(1 for m in info.members if self._online(m))
            return ShowConversation(
                key=key,
                header=self.strings("room_header_members", room=info.display, count=len(info.members), online=online),
            )
        return ShowConversation(key=key, header=key, trust=self._trust(key) if key in self.members else "gone")

    def roster(self) -> RosterRows:
        """The people here, or, with a room on screen, the members its signed log names."""
        if is_room_key(self.selected) and self.selected in self.rooms:
            return self._room_roster(self.rooms[self.selected])
        s = self.strings
        rows = []
        if self.name:
            rows.append(
                RosterRow(
                    name=self.name,
                    label=s("you_suffix", name=self.name),
                    fingerprint=short_fp(self.fingerprint),
                    trust="self",
                    trust_label=s("trust_self"),
                    is_self=True,
                    tooltip=s("tooltip_self", name=self.name, fingerprint=self.fingerprint),
                )
            )
        for name in sorted(self.members):
            member = self.members[name]
            trust = self._trust(name)
            rows.append(
                RosterRow(
                    name=name,
                    label=name,
                    fingerprint=short_fp(member.fingerprint),
                    trust=trust,
                    trust_label=s(f"trust_{trust}"),
                    is_self=False,
                    tooltip=s(
                        "tooltip_member", name=name, fingerprint=member.fingerprint, trust=s(f"trust_{trust}_long")
                    ),
                )
            )
        return RosterRows(rows=tuple(rows), title=s("roster_title"))

    def _room_roster(self, info: RoomInfo) -> RosterRows:
        s = self.strings
        rows = []
        for member in sorted(info.members, key=lambda m: (not self._is_me(m), m.name.casefold())):
            online = self._online(member)
            fp = fingerprint(IdentityPublicKey(member.identity_key))
            if self._is_me(member):
                trust, label = "self", s("you_suffix", name=member.name)
            else:
                present = self.members.get(member.name)
                trust = (
                    self._trust(member.name)
                    if present is not None and online
                    else self.trust_of(member.name, member.identity_key).value
                )
                label = member.name
            presence = s("member_online") if online else s("member_offline")
            trust_label = s(f"trust_{trust}")
            rows.append(
                RosterRow(
                    name=member.name,
                    label=label,
                    fingerprint=short_fp(fp) if online else presence,
                    trust=trust,
                    trust_label=trust_label,
                    is_self=self._is_me(member),
                    online=online,
                    tooltip=s(
                        "tooltip_room_member",
                        name=member.name,
                        fingerprint=fp,
                        trust=s(f"trust_{trust}_long") if trust != "self" else s("trust_self"),
                        presence=presence,
                    ),
                )
            )
        admin = any(m.admin for m in info.members if self._is_me(m))
        return RosterRows(
            rows=tuple(rows),
            title=s("members_title", room=info.display),
            room=info.key if info.joined else "",
            admin=info.joined and admin,
        )

    def invite_check(self, room: str, name: str) -> str | None:
        """Why ``name`` cannot be invited to ``room`` (None: it can); the core checks the pin again."""
        info = self.rooms.get(room)
        if info is None or not info.joined:
            return self.strings("room_not_member", room=self._label(room))
        if any(m.name.casefold() == name.casefold() for m in info.members):
            return self.strings("err_invite_member", name=name, room=info.display)
        return None

    def invite_candidates(self, room: str) -> list[str]:
        """People present who are not members of ``room`` yet (seen here, so their keys are pinned)."""
        info = self.rooms.get(room)
        members = {m.identity_key for m in info.members} if info is not None else set()
        return sorted((n for n, m in self.members.items() if m.identity_key not in members), key=str.casefold)

    def open_tab(self, name: str) -> list[Update]:
        """The user asked for the direct conversation with ``name`` (double-click, Enter, Ctrl+K)."""
        if name == ROOM:
            return self.select(ROOM)
        # Someone away who is in one of our rooms can be written to: the message waits for them.
        in_a_room = any(m.name == name for info in self.rooms.values() for m in info.members)
        if name == self.name or (name not in self.members and not in_a_room):
            return []
        return self.select(name)

    def select(self, key: str) -> list[Update]:
        """Show conversation ``key`` (creating its sidebar entry): its unread count is read."""
        if key != ROOM and not is_room_key(key):
            self.tabs.add(key)
        self.selected = key
        self._pane(key).unread = 0
        return [self.sidebar(), self.show(), self.title(), self.roster()]

    def close_tab(self, key: str) -> list[Update]:
        """Close a direct conversation (Ctrl+W); the room stays. Back to the room."""
        if key == ROOM or key not in self.tabs:
            return []
        self.tabs.discard(key)
        self._panes.pop(key, None)
        self._order = [k for k in self._order if k != key]
        if self.selected == key:
            return self.select(ROOM)
        return [self.sidebar(), self.title()]

    def set_focus(self, focused: bool) -> list[Update]:
        """The window gained or lost the keyboard focus: the shown conversation's unread is read."""
        self.focused = focused
        if focused and self._pane(self.selected).unread:
            self._pane(self.selected).unread = 0
            return [self.sidebar(), self.title()]
        return []

    def jump_targets(self) -> list[tuple[str, str]]:
        """What Ctrl+K offers: (key, label) for every conversation and every member to message."""
        targets = [(item.key, item.label) for item in self.sidebar().items]
        targets += [(name, name) for name in sorted(self.members) if name not in self.tabs]
        return targets

    def _notices_for(self, name: str, text: str) -> list[Update]:
        """A join or leave notice in the room, and in the direct conversation with that member if open."""
        out: list[Update] = self._notice(ROOM, text)
        if name in self.tabs:
            out += self._notice(name, text)
            out += [self.show()] if self.selected == name else []
        return out

    def _room_header(self) -> list[Update]:
        """A room on screen: its header counts who is online, so it follows joins and leaves."""
        return [self.show()] if is_room_key(self.selected) else []
