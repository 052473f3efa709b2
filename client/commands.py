"""The chat's slash commands, parsed once for both views: a typed line in, a ``Command`` out.

The terminal client and the window understand the same commands because
both call ``parse``; each then acts on the result its own way (the terminal
prints the safety number, the window opens the verify dialog). Pure: no I/O,
no state. A line that starts with ``//`` is a message starting with ``/``.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass

#: A typed line longer than this is refused before parsing (the core has its own, smaller, message limit).
MAX_LINE = 64 * 1024


class Name(str, enum.Enum):
    """The commands, by the word typed after ``/``."""

    MSG = "msg"
    WHO = "who"
    VERIFY = "verify"
    VERIFIED = "verified"
    ACCEPT = "accept"
    STRICT = "strict"
    HELP = "help"
    QUIT = "quit"

    def __str__(self) -> str:
        return str(self.value)


class RoomWord(str, enum.Enum):
    """The room commands, by the word typed after ``/`` (each view carries them out its own way)."""

    CREATE = "create"
    JOIN = "join"
    INVITE = "invite"
    ROOMS = "rooms"
    MEMBERS = "members"
    LEAVE = "leave"
    REMOVE = "remove"
    PROMOTE = "promote"
    FORGET_ROOM = "forget-room"
    RESUME_ROOM = "resume-room"
    INVITES = "invites"
    ACCEPT_INVITE = "accept-invite"
    DECLINE_INVITE = "decline-invite"

    def __str__(self) -> str:
        return str(self.value)


#: How each room command is typed.
ROOM_USAGE: dict[RoomWord, str] = {
    RoomWord.CREATE: "/create LABEL [--open]",
    RoomWord.JOIN: "/join LABEL",
    RoomWord.INVITE: "/invite NAME",
    RoomWord.ROOMS: "/rooms",
    RoomWord.MEMBERS: "/members",
    RoomWord.LEAVE: "/leave",
    RoomWord.REMOVE: "/remove NAME",
    RoomWord.PROMOTE: "/promote NAME",
    RoomWord.FORGET_ROOM: "/forget-room LABEL",
    RoomWord.RESUME_ROOM: "/resume-room LABEL",
    RoomWord.INVITES: "/invites",
    RoomWord.ACCEPT_INVITE: "/accept-invite LABEL",
    RoomWord.DECLINE_INVITE: "/decline-invite LABEL",
}
#: Room commands that take one word: a room's label or a member's name.
_ONE_WORD = frozenset(
    {
        RoomWord.JOIN,
        RoomWord.INVITE,
        RoomWord.REMOVE,
        RoomWord.PROMOTE,
        RoomWord.FORGET_ROOM,
        RoomWord.RESUME_ROOM,
        RoomWord.ACCEPT_INVITE,
        RoomWord.DECLINE_INVITE,
    }
)
#: The flag of ``/create``.
OPEN_FLAG = "--open"

#: Other words for a command.
ALIASES = {"exit": Name.QUIT, "q": Name.QUIT}

#: How each command is typed, and what it does: ``/help`` and the usage lines come from here.
USAGE: dict[Name, tuple[str, str]] = {
    Name.MSG: ("/msg NAME TEXT", "direct message to one member"),
    Name.WHO: ("/who", "list members with their fingerprints and trust"),
    Name.VERIFY: ("/verify NAME", "show the safety number to compare with NAME (in person or by phone)"),
    Name.VERIFIED: ("/verified NAME", "mark NAME verified once the numbers matched"),
    Name.ACCEPT: ("/accept NAME", "accept NAME's changed identity key (compare safety numbers first)"),
    Name.STRICT: ("/strict on|off", "send only to verified members"),
    Name.HELP: ("/help", "this list"),
    Name.QUIT: ("/quit", "leave the room (Ctrl-D works too)"),
}
#: What Tab completes.
WORDS = tuple(f"/{name.value}" for name in USAGE)


@dataclass(frozen=True, slots=True, kw_only=True)
class Say:
    """A message to the conversation the line was typed in."""

    text: str


@dataclass(frozen=True, slots=True, kw_only=True)
class Direct:
    """``/msg NAME TEXT``."""

    name: str
    text: str


@dataclass(frozen=True, slots=True, kw_only=True)
class OnMember:
    """``/verify``, ``/verified`` or ``/accept`` with the member's name."""

    command: Name
    name: str


@dataclass(frozen=True, slots=True, kw_only=True)
class Strict:
    """``/strict on|off``; ``on`` is None for a bare ``/strict`` (say the setting)."""

    on: bool | None


@dataclass(frozen=True, slots=True, kw_only=True)
class Plain:
    """A command without arguments: ``/who``, ``/help``, ``/quit``."""

    command: Name


@dataclass(frozen=True, slots=True, kw_only=True)
class RoomCommand:
    """``/create LABEL [--open]``, ``/join LABEL``, ``/invite NAME``, ``/leave``, ...: a room command."""

    word: RoomWord
    #: The label (``/create``, ``/join``) or the member's name (``/invite``, ``/remove``, ``/promote``).
    arg: str = ""
    #: ``/create LABEL --open``: anyone may join the new room.
    open: bool = False


@dataclass(frozen=True, slots=True, kw_only=True)
class Usage:
    """A known command typed wrong: ``usage`` says how to type it."""

    command: Name | RoomWord
    usage: str


@dataclass(frozen=True, slots=True, kw_only=True)
class Unknown:
    """``/frob``: no such command (``word`` as typed, without the slash)."""

    word: str


Command = Say | Direct | OnMember | Strict | Plain | RoomCommand | Usage | Unknown


def parse(line: str) -> Command | None:
    """What a typed line asks for; None for an empty (or blank) line."""
    if not line.strip():
        return None
    if not line.startswith("/"):
        return Say(text=line)
    if line.startswith("//"):
        return Say(text=line[1:])
    word, _, rest = line[1:].partition(" ")
    lowered = word.lower()
    room_word = next((w for w in RoomWord if w.value == lowered), None)
    if room_word is not None:
        return _room_command(room_word, rest.split())
    name = ALIASES.get(lowered) or next((n for n in Name if n.value == lowered), None)
    if name is None:
        return Unknown(word=word)
    rest = rest.strip()
    if name is Name.MSG:
        target, _, text = rest.partition(" ")
        if not target or not text.strip():
            return Usage(command=name, usage=USAGE[name][0])
        return Direct(name=target, text=text)
    if name in (Name.VERIFY, Name.VERIFIED, Name.ACCEPT):
        if not rest or " " in rest:
            return Usage(command=name, usage=USAGE[name][0])
        return OnMember(command=name, name=rest)
    if name is Name.STRICT:
        setting = rest.lower()
        if setting not in ("on", "off", ""):
            return Usage(command=name, usage=USAGE[name][0])
        return Strict(on=None if not setting else setting == "on")
    return Plain(command=name)


def _room_command(word: RoomWord, args: list[str]) -> RoomCommand | Usage:
    usage = Usage(command=word, usage=ROOM_USAGE[word])
    if word is RoomWord.CREATE:
        labels = [a for a in args if a != OPEN_FLAG]
        if len(labels) != 1 or labels[0].startswith("--") or len(args) > 2:
            return usage
        return RoomCommand(word=word, arg=labels[0], open=OPEN_FLAG in args)
    if word in _ONE_WORD:
        return RoomCommand(word=word, arg=args[0]) if len(args) == 1 else usage
    return RoomCommand(word=word)  # /rooms, /members, /leave: anything after the word is ignored, as before
