"""The presenter's state and its conversation panes: keys, lines, day separators, runs of one sender.

``PaneState`` holds every field of ``ChatState``; the parts above it (views, ticks, history pages, rooms,
composing) only add methods.
"""

from __future__ import annotations

import datetime
import hashlib
import itertools
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from susurro.client import events as ev
from susurro.client.link import LinkState
from susurro.client.printable import printable
from susurro.crypto.trust import TrustState

from .delivery import Tracked
from .room_view import RoomInfo, RoomMemberInfo, is_room_key
from .strings import Strings
from .updates import InvitationItem, Line, Update

ROOM = ""  # the group conversation; direct conversations use the peer's name


#: Sender colours: this many, picked per member from a hash of the name (the window maps them per theme).
SENDER_COLOURS = 8
#: Consecutive messages from one sender within this many seconds share one name header.
RUN_SECONDS = 5 * 60


#: Message ids remembered per pane to drop a history entry already shown live; oldest go first.
MAX_SHOWN_IDS = 20_000


def conversation_key(history_conversation: str) -> str | None:
    """The pane for a conversation of the history (``room:main``, ``room:`` and a room id, ``dm:bob``);
    None for one the window has no pane for (a direct conversation of several people)."""
    if history_conversation == "room:main":
        return ROOM
    kind, _, rest = history_conversation.partition(":")
    if kind == "dm" and rest and "," not in rest:
        return rest
    if kind == "room" and len(rest) == 64 and all(c in "0123456789abcdef" for c in rest):
        return "#" + rest  # a room of signed membership, by its id
    return None


def history_name(key: str) -> str:
    """The history's name for the conversation in pane ``key`` (``conversation_key``'s inverse)."""
    if key == ROOM:
        return "room:main"
    if is_room_key(key):
        return "room:" + key[1:]
    return "dm:" + key


def short_fp(fingerprint: str) -> str:
    """The first two digit groups of a full fingerprint, as lists show it."""
    return " ".join(fingerprint.split(" ")[:2])


def trust_of(obj: ev.MemberInfo | ev.Message) -> str:
    """The trust state of a member or message as text: the key of its words and its shield."""
    return obj.trust.value


def safe_lines(text: str) -> str:
    """Untrusted text made safe to draw (``printable``), keeping its line breaks as real ones."""
    return "\n".join(printable(part) for part in text.split("\n"))


def sender_colour(name: str) -> int:
    """A stable colour index for a member: the same in every window and every run."""
    return hashlib.blake2b(name.casefold().encode(), digest_size=2).digest()[0] % SENDER_COLOURS


def clock(millis: int | None = None) -> str:
    return time.strftime("%H:%M", time.localtime(millis / 1000 if millis is not None else None))


def day_of(millis: int | None = None) -> datetime.date:
    return datetime.date.fromtimestamp(millis / 1000 if millis is not None else time.time())


@dataclass(slots=True)
class _Sent:
    conversation: str
    msg_id: str = ""
    tracked: Tracked = field(default_factory=Tracked)


@dataclass(slots=True)
class _Pane:
    """What the presenter remembers about one conversation's pane, to group lines."""

    day: datetime.date | None = None
    last_sender: str = ""
    last_at: float = 0.0
    unread: int = 0
    #: Message ids on screen (live or from the history), so a page of history never repeats one.
    shown: dict[str, None] = field(default_factory=dict)
    #: The history: the oldest position shown, whether more lie before it, a page being read.
    oldest_seq: int | None = None
    older: bool = True
    loading: bool = False
    history_started: bool = False
    #: The day of the pane's first line (a separator heads it), to join a page of the same day to it.
    first_day: datetime.date | None = None


def fit(text: str, width: int, measure: Callable[[str], int], *, groups: bool = False) -> str:
    """``text`` cut with "…" to fit ``width`` pixels as ``measure`` counts them.

    With ``groups`` (fingerprints) it cuts between space-separated groups,
    never inside one, so a shortened fingerprint still reads as whole groups.
    """
    if width <= 0 or measure(text) <= width:
        return text
    if groups:
        parts = text.split(" ")
        while len(parts) > 1:
            parts.pop()
            candidate = " ".join(parts) + " …"
            if measure(candidate) <= width:
                return candidate
        return "…"
    low, high = 0, len(text)
    while low < high:  # the longest prefix that fits with the ellipsis
        middle = (low + high + 1) // 2
        if measure(text[:middle] + "…") <= width:
            low = middle
        else:
            high = middle - 1
    return text[:low].rstrip() + "…"


@dataclass
class PaneState:
    """The view model's fields, and the lines of a pane every part writes with."""

    strings: Strings
    relay: str = ""
    name: str = ""
    fingerprint: str = ""
    connection: LinkState = LinkState.CONNECTING  # CONNECTING | JOINED | RECONNECTING | CLOSED
    reason: str = ""
    members: dict[str, ev.MemberInfo] = field(default_factory=dict)
    blocked: set[str] = field(default_factory=set)
    tabs: set[str] = field(default_factory=set)
    #: The conversation on screen, and whether the window has the keyboard focus.
    selected: str = ROOM
    focused: bool = True
    notifications: bool = True
    today: Callable[[], datetime.date] = datetime.date.today
    #: How a pinned key compares for a member who is not present (the trust store's ``state``).
    trust_of: Callable[[str, bytes], TrustState] = lambda _name, _key: TrustState.NEW
    #: Rooms by conversation key, as their verified logs say.
    rooms: dict[str, RoomInfo] = field(default_factory=dict)
    #: Our identity key (to find ourselves in room logs); set by the app.
    identity_key: bytes = b""
    #: Rooms someone added us to, waiting for an answer: room id -> its row (``invitations``).
    invitations: dict[bytes, InvitationItem] = field(default_factory=dict)
    _panes: dict[str, _Pane] = field(default_factory=dict)
    _order: list[str] = field(default_factory=list)
    _sent: dict[str, _Sent] = field(default_factory=dict)
    _by_msg_id: dict[str, str] = field(default_factory=dict)
    _early: dict[str, list[ev.Delivery]] = field(default_factory=dict)
    _early_receipts: dict[str, set[str]] = field(default_factory=dict)
    #: Rooms whose whole log was asked for again (after a restart): its entries are not news.
    _replaying: set[str] = field(default_factory=set)
    _refs: itertools.count[int] = field(default_factory=lambda: itertools.count(1))

    def _is_me(self, member: RoomMemberInfo) -> bool:
        return member.identity_key == self.identity_key or (not self.identity_key and member.name == self.name)

    def _online(self, member: RoomMemberInfo) -> bool:
        if self._is_me(member):
            return self.connection is LinkState.JOINED
        present = self.members.get(member.name)
        return present is not None and present.identity_key == member.identity_key

    def _label(self, key: str) -> str:
        if key == ROOM:
            return self.strings("room_tab")
        info = self.rooms.get(key)
        return info.display if info is not None else key

    @staticmethod
    def _shown(pane: _Pane, msg_id: str) -> None:
        pane.shown[msg_id] = None
        while len(pane.shown) > MAX_SHOWN_IDS:
            del pane.shown[next(iter(pane.shown))]

    def _trust(self, name: str) -> str:
        return "changed" if name in self.blocked else trust_of(self.members[name])

    def _pane(self, key: str) -> _Pane:
        pane = self._panes.get(key)
        if pane is None:
            pane = self._panes[key] = _Pane()
            if key != ROOM:
                self._order.append(key)
        return pane

    def _line(
        self,
        conversation: str,
        kind: str,
        text: str,
        *,
        sender: str = "",
        trust: str = "",
        at_millis: int | None = None,
        ref: str = "",
        note: str = "",
    ) -> list[Update]:
        """A line, after a day separator if the day changed, marked ``continued`` within a sender's run."""
        pane = self._pane(conversation)
        out: list[Update] = []
        day = day_of(at_millis)
        if pane.day != day:
            pane.day = day
            pane.last_sender = ""
            pane.first_day = pane.first_day or day
            out.append(Line(conversation=conversation, kind="day", text=self._day_label(day)))
        at = at_millis / 1000 if at_millis is not None else time.time()
        continued = bool(sender) and sender == pane.last_sender and at - pane.last_at < RUN_SECONDS
        pane.last_sender, pane.last_at = sender, at
        out.append(
            Line(
                conversation=conversation,
                kind=kind,
                text=text,
                sender=sender,
                clock=clock(at_millis),
                trust="self" if kind == "own" else trust,
                colour=sender_colour(sender) if sender else 0,
                continued=continued,
                ref=ref,
                note=note,
            )
        )
        return out

    def _day_label(self, day: datetime.date) -> str:
        s = self.strings
        today = self.today()
        if day == today:
            return s("day_today")
        if day == today - datetime.timedelta(days=1):
            return s("day_yesterday")
        weekday = s("weekdays").split(",")[day.weekday()]
        month = s("months").split(",")[day.month - 1]
        return s("day_other", weekday=weekday, day=day.day, month=month, year=day.year)

    def _notice(self, conversation: str, text: str) -> list[Update]:
        return self._line(conversation, "notice", text)

    def _error(self, conversation: str, text: str) -> list[Update]:
        return self._line(conversation, "error", text)
