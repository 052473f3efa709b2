"""Rooms as the window sees them, what it says about them, and what a room command may do from where it
was typed. Pure, no Tk.

The presenter (``presenter.ChatState``) calls these with the rooms' verified
logs as it holds them (``RoomInfo``); nothing here decides membership, it
only turns the core's events and the user's commands into words, and
refuses early what the log already refuses (a non-admin removing someone),
so the core is asked only for what it could sign. The core checks again.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from susurro.client import commands
from susurro.client.commands import RoomWord
from susurro.client.room_events import RoomNotice
from susurro.crypto import EntryKind, RoomPolicy
from susurro.crypto.membership import RoomState, short_room_id

from .strings import Strings


def room_key(room_id: bytes) -> str:
    """The conversation key of a room: ``#`` is in no name, so it never meets a direct conversation."""
    return "#" + room_id.hex()


def is_room_key(key: str) -> bool:
    return key.startswith("#")


@dataclass(frozen=True, slots=True, kw_only=True)
class RoomMemberInfo:
    name: str
    identity_key: bytes
    admin: bool


@dataclass(frozen=True, slots=True, kw_only=True)
class RoomInfo:
    """What the verified log of one room says, for the view."""

    room_id: bytes
    label: str
    open: bool
    members: tuple[RoomMemberInfo, ...]
    #: Our own identity key is in the log.
    joined: bool

    @property
    def key(self) -> str:
        return room_key(self.room_id)

    @property
    def short_id(self) -> str:
        return short_room_id(self.room_id)

    @property
    def display(self) -> str:
        return f"{self.label} #{self.short_id}"


def room_info(state: RoomState, own_identity_key: bytes) -> RoomInfo:
    """A verified room state as the view sees it (members in the order they were added)."""
    return RoomInfo(
        room_id=state.room_id,
        label=state.label,
        open=state.policy is RoomPolicy.OPEN,
        members=tuple(
            RoomMemberInfo(name=m.name, identity_key=m.identity_key, admin=m.admin) for m in state.members.values()
        ),
        joined=own_identity_key in state.members,
    )


def notice_text(strings: Strings, event: RoomNotice, room: str, me: str) -> str:
    """A promotion, demotion or policy change in the window's language (``room``: the room's display)."""
    if event.kind is EntryKind.POLICY:
        key = "policy_open_notice" if event.policy is RoomPolicy.OPEN else "policy_invite_notice"
        return strings(key, by=event.by)
    base = "promoted" if event.kind is EntryKind.PROMOTE else "demoted"
    about_me = event.name.casefold() == me.casefold()
    return strings(f"{base}_you_notice" if about_me else f"{base}_notice", by=event.by, name=event.name, room=room)


#: Commands about the room on screen (the others name their room, or need none).
_IN_A_ROOM = frozenset({RoomWord.MEMBERS, RoomWord.LEAVE, RoomWord.INVITE, RoomWord.REMOVE, RoomWord.PROMOTE})
#: Commands only an admin's signature can carry out.
_ADMIN = frozenset({RoomWord.REMOVE, RoomWord.PROMOTE})


def check(strings: Strings, command: commands.RoomCommand, room: RoomInfo | None, own_key: bytes) -> str | None:
    """Why ``command``, typed in ``room`` (None: not a room's conversation), cannot be done; None: it may."""
    word = command.word
    if word not in _IN_A_ROOM:
        return None
    if room is None:
        return strings("err_not_in_a_room", command=f"/{word.value}")
    if not room.joined:
        return strings("room_not_member", room=room.display)
    me = next((m for m in room.members if m.identity_key == own_key), None)
    if word in _ADMIN and (me is None or not me.admin):
        return strings("err_not_admin", room=room.display)
    if word in _ADMIN:
        member = subject(room, command.arg)
        if member is None:
            return strings("err_not_a_member_of", name=command.arg, room=room.display)
        if member.identity_key == own_key:
            return strings("err_yourself")
    return None


def subject(room: RoomInfo, name: str) -> RoomMemberInfo | None:
    """The member of ``room`` called ``name`` (names compare as the relay compares them: casefolded)."""
    return next((m for m in room.members if m.name.casefold() == name.casefold()), None)


def answer(
    strings: Strings, command: commands.RoomCommand, room: RoomInfo | None, rooms: Iterable[RoomInfo]
) -> list[str]:
    """The lines ``/rooms`` and ``/members`` answer with (the others are carried out by the app)."""
    if command.word is RoomWord.ROOMS:
        joined = sorted((r.display for r in rooms if r.joined), key=str.casefold)
        return [strings("rooms_notice", names=", ".join(joined))] if joined else [strings("rooms_none")]
    if command.word is RoomWord.MEMBERS and room is not None:
        return [strings("room_members_notice", names=", ".join(m.name for m in room.members))]
    return []


def confirm_words(strings: Strings, word: RoomWord, room: RoomInfo, name: str = "") -> tuple[str, str, str]:
    """(title, question, button) of the question asked before removing, promoting or leaving."""
    if word is RoomWord.LEAVE:
        question = strings("confirm_leave_open" if room.open else "confirm_leave", room=room.display, label=room.label)
        return strings("confirm_leave_title", room=room.display), question, strings("do_leave")
    base = "remove" if word is RoomWord.REMOVE else "promote"
    return (
        strings(f"confirm_{base}_title", name=name),
        strings(f"confirm_{base}", name=name, room=room.display),
        strings(f"do_{base}"),
    )
