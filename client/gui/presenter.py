"""What the window shows for each event and each typed line: pure, no Tk.

``ChatState`` takes the core's events and the user's input and answers with
small *updates* (a line for a conversation, a banner, the sidebar's
conversation list, the people list, a status bar, a desktop notification).
The Tk window only draws updates, so everything a user would see can be
tested here without a display, and the window has no logic worth testing
beyond "it draws what it was told".

Conversations are keyed by a string: ``ROOM`` for the group, a member's name
for the direct conversation with that member. The sidebar is a generic list
of ``ConversationItem`` (kind, label, unread count, selected), so rooms can
be added to it as another kind without changing the window.
"""

from __future__ import annotations

import datetime
import enum
import hashlib
import itertools
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from susurro.client import commands
from susurro.client import events as ev
from susurro.client.events import WarningKind
from susurro.client.link import LinkState
from susurro.client.printable import printable
from susurro.crypto.trust import TrustState

from .strings import Strings

ROOM = ""  # the group conversation; direct conversations use the peer's name

#: Sender colours: this many, picked per member from a hash of the name (the window maps them per theme).
SENDER_COLOURS = 8
#: Consecutive messages from one sender within this many seconds share one name header.
RUN_SECONDS = 5 * 60
#: Longest body shown in a desktop notification.
NOTIFY_BODY_CHARS = 120


class ConversationKind(enum.Enum):
    """What a sidebar entry is; rooms (issue 12) add their own entries of kind ``ROOM``."""

    ROOM = "room"
    DIRECT = "direct"


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


# --- updates: what the window is told to draw --------------------------------------


@dataclass(frozen=True, slots=True, kw_only=True)
class Line:
    """One entry in a conversation pane.

    ``kind``: ``message`` (someone else's), ``own``, ``notice`` (join, leave,
    status), ``error`` (a local refusal such as a bad command) or ``day`` (a
    day separator). ``ref`` names an own message so its delivery note can be
    updated later. ``continued``: same sender as the line before, so the
    window draws no name (and no trust shield) again.
    """

    conversation: str
    kind: str
    text: str
    sender: str = ""
    clock: str = ""
    trust: str = ""
    colour: int = 0
    continued: bool = False
    ref: str = ""
    note: str = ""


@dataclass(frozen=True, slots=True, kw_only=True)
class UnreadMarker:
    """Draw the "new messages" rule here in ``conversation`` (and remove an older one)."""

    conversation: str
    text: str


@dataclass(frozen=True, slots=True, kw_only=True)
class DeliveryNote:
    """Replace the note after own message ``ref`` ("sending…" → "✓ delivered to …")."""

    ref: str
    text: str
    ok: bool


@dataclass(frozen=True, slots=True, kw_only=True)
class Banner:
    """A warning shown above a conversation, never inside it as a message.

    ``name`` is set for a changed key, with ``accept`` offering the button
    that unblocks sending to that member.
    """

    conversation: str
    kind: str
    text: str
    name: str = ""
    accept: bool = False


@dataclass(frozen=True, slots=True, kw_only=True)
class BannersResolved:
    """Remove the changed-key banners about ``name`` (the new key was accepted)."""

    name: str


@dataclass(frozen=True, slots=True, kw_only=True)
class RosterRow:
    name: str
    label: str
    fingerprint: str
    trust: str
    trust_label: str
    is_self: bool
    #: What a tooltip says: the whole name, the whole fingerprint, the trust in words.
    tooltip: str = ""


@dataclass(frozen=True, slots=True, kw_only=True)
class RosterRows:
    rows: tuple[RosterRow, ...]


@dataclass(frozen=True, slots=True, kw_only=True)
class ConversationItem:
    """One entry of the sidebar."""

    key: str
    kind: ConversationKind
    label: str
    unread: int
    selected: bool
    #: The trust state of the peer of a direct conversation ("" for a room): its shield.
    trust: str = ""


@dataclass(frozen=True, slots=True, kw_only=True)
class Sidebar:
    items: tuple[ConversationItem, ...]


@dataclass(frozen=True, slots=True, kw_only=True)
class ShowConversation:
    """Bring ``key``'s pane to the front (it exists: a ``Sidebar`` listed it first)."""

    key: str
    header: str
    trust: str = ""


@dataclass(frozen=True, slots=True, kw_only=True)
class Status:
    connection: str
    relay: str
    fingerprint: str
    e2e: str
    can_send: bool
    reason: str = ""
    #: Connected: the e2e label may be drawn as reassurance (green); otherwise it is greyed.
    secure: bool = False
    #: A relay that refused us: the window offers a Reconnect button.
    offer_reconnect: bool = False


@dataclass(frozen=True, slots=True, kw_only=True)
class Notify:
    """A desktop notification (the window decides how: notify-send, else bell and title)."""

    title: str
    body: str


@dataclass(frozen=True, slots=True, kw_only=True)
class Title:
    text: str


Update = (
    Line
    | UnreadMarker
    | DeliveryNote
    | Banner
    | BannersResolved
    | RosterRows
    | Sidebar
    | ShowConversation
    | Status
    | Notify
    | Title
)


@dataclass(frozen=True, slots=True, kw_only=True)
class Outgoing:
    """A message the user asked to send: ``to`` is None for the room."""

    ref: str
    text: str
    to: tuple[str, ...] | None
    conversation: str


def clock(millis: int | None = None) -> str:
    return time.strftime("%H:%M", time.localtime(millis / 1000 if millis is not None else None))


def day_of(millis: int | None = None) -> datetime.date:
    return datetime.date.fromtimestamp(millis / 1000 if millis is not None else time.time())


@dataclass(slots=True)
class _Sent:
    conversation: str
    msg_id: str = ""


@dataclass(slots=True)
class _Pane:
    """What the presenter remembers about one conversation's pane, to group lines."""

    day: datetime.date | None = None
    last_sender: str = ""
    last_at: float = 0.0
    unread: int = 0


@dataclass
class ChatState:
    """The view model of one signed-in window."""

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
    _panes: dict[str, _Pane] = field(default_factory=dict)
    _order: list[str] = field(default_factory=list)
    _sent: dict[str, _Sent] = field(default_factory=dict)
    _by_msg_id: dict[str, str] = field(default_factory=dict)
    _early: dict[str, ev.Delivery] = field(default_factory=dict)
    _refs: itertools.count[int] = field(default_factory=lambda: itertools.count(1))

    # --- events from the core ---------------------------------------------------

    def apply(self, event: ev.Event) -> list[Update]:
        """The updates one event from the core produces."""
        s = self.strings
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
            return [self.roster(), self.sidebar(), *self._notices_for(member.name, text)]
        if isinstance(event, ev.Left):
            self.members.pop(event.name, None)
            return [self.roster(), self.sidebar(), *self._notices_for(event.name, s("left_notice", name=event.name))]
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
            return [Banner(conversation=where, kind="key_changed", text=text, name=event.name, accept=True),
                    self.roster(), self.sidebar()]
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
            self.reason = s("status_reconnecting", delay=f"{max(1, round(event.delay))}")
            return [self.status()]
        return []

    def _warning(self, event: ev.Warning) -> list[Update]:
        s = self.strings
        where = event.sender if event.sender in self.tabs else ROOM
        if event.kind is WarningKind.MESSAGE_HELD:  # not a failed check: the line itself says it is waiting
            return []
        text = s.warning(event.kind, printable(event.detail), sender=event.sender or "")
        return [Banner(conversation=where or ROOM, kind=event.kind, text=text)]

    def _message(self, event: ev.Message) -> list[Update]:
        s = self.strings
        updates: list[Update] = []
        conversation = ROOM
        if event.direct:
            conversation = event.sender
            if conversation not in self.tabs:
                self.tabs.add(conversation)
        pane = self._pane(conversation)
        visible = self.focused and conversation == self.selected
        if not visible:
            if pane.unread == 0:
                updates.append(UnreadMarker(conversation=conversation, text=s("unread_marker")))
            pane.unread += 1
        updates.extend(self._line(conversation, "message", safe_lines(event.text), sender=event.sender,
                                  trust=trust_of(event), at_millis=event.sent_at))
        if not visible:
            updates += [self.sidebar(), self.title()]
            if self.notifications:
                where = s("notify_direct") if event.direct else s("room_tab")
                body = event.text if len(event.text) <= NOTIFY_BODY_CHARS else event.text[:NOTIFY_BODY_CHARS] + "…"
                updates.append(Notify(title=s("notify_title", sender=event.sender, where=where), body=printable(body)))
        return updates

    def _delivery(self, event: ev.Delivery) -> list[Update]:
        ref = self._by_msg_id.get(event.msg_id)
        if ref is None:  # the ack beat the send job's answer: keep it for ``sent``
            self._early[event.msg_id] = event
            return []
        s = self.strings
        parts: list[str] = []
        missing = tuple(event.missing)
        skipped = tuple(event.skipped)
        if missing:
            parts.append(s("not_delivered_to", names=", ".join(missing)))
        if skipped:
            parts.append(s("not_encrypted_to", names=", ".join(skipped)))
        if not parts:
            parts.append(s("delivered_to", names=", ".join(event.delivered)))
        elif event.delivered:
            parts.insert(0, s("delivered_to", names=", ".join(event.delivered)))
        return [DeliveryNote(ref=ref, text="; ".join(parts), ok=not missing and not skipped)]

    # --- input from the user ----------------------------------------------------

    def compose(self, raw: str, conversation: str) -> tuple[Outgoing | commands.Command | None, list[Update]]:
        """Turn what the user typed in ``conversation`` into a message to send, a command, or a refusal.

        Lines are parsed by ``commands.parse``, the terminal client's parser:
        ``/msg NAME TEXT`` opens (and sends in) the direct conversation with
        NAME, ``/who`` and ``/help`` answer here, and ``/verify``,
        ``/verified``, ``/accept``, ``/strict`` and ``/quit`` come back as the
        command for the app to carry out. ``//`` sends a line that starts with
        ``/``. Refusals the view can decide (not connected, unknown member,
        changed key) never reach the core.
        """
        s = self.strings
        command = commands.parse(raw.strip("\n"))
        if command is None:
            return None, []
        to: tuple[str, ...] | None = None if conversation == ROOM else (conversation,)
        updates: list[Update] = []
        origin = conversation  # refusals are shown where the user typed
        if isinstance(command, commands.Unknown):
            return None, self._error(origin, s("unknown_command", command=printable(command.word)))
        if isinstance(command, commands.Usage):
            if command.command is commands.Name.MSG:
                return None, self._error(origin, s("usage_msg"))
            return None, self._error(origin, s("usage", usage=s.usage(command.usage)))
        if isinstance(command, commands.Plain):
            if command.command is commands.Name.WHO:  # answered here; returned so the composer clears
                return command, self.who(origin)
            if command.command is commands.Name.HELP:
                return command, self._help(origin)
            return command, []  # /quit
        if isinstance(command, commands.OnMember):
            if command.name not in self.members:
                return None, self._error(origin, s("not_in_room", name=printable(command.name)))
            return command, []
        if isinstance(command, commands.Strict):
            return command, []
        if isinstance(command, commands.Direct):
            conversation, to, text = command.name, (command.name,), command.text
        else:
            text = command.text
        if to is not None and to[0] not in self.members:
            return None, self._error(origin, s("not_in_room", name=printable(to[0])))
        if self.connection not in (LinkState.JOINED, LinkState.RECONNECTING):  # reconnecting: the core holds it
            return None, self._error(origin, s("not_sent", reason=self.send_block_reason()))
        if to is not None and to[0] in self.blocked:
            return None, self._error(origin, s("not_sent", reason=s("reason_key_changed", name=to[0])))
        if conversation != self.selected:
            updates += self.select(conversation)
        ref = f"m{next(self._refs)}"
        self._sent[ref] = _Sent(conversation=conversation)
        note = s("sending") if self.connection is LinkState.JOINED else s("held_note")
        updates += self._line(conversation, "own", safe_lines(text), sender=self.name, ref=ref, note=note)
        return Outgoing(ref=ref, text=text, to=to, conversation=conversation), updates

    def who(self, conversation: str = ROOM) -> list[Update]:
        """``/who``: everyone here, one line each, with the fingerprint and trust in words."""
        s = self.strings
        out: list[Update] = []
        for row in self.roster().rows:
            out += self._notice(conversation, s("who_line", name=row.label, fingerprint=short_fp(row.fingerprint),
                                                trust=row.trust_label))
        return out

    def _help(self, conversation: str) -> list[Update]:
        s = self.strings
        out: list[Update] = self._notice(conversation, s("help_intro"))
        for name, (usage, _what) in commands.USAGE.items():
            out += self._notice(conversation, s("help_line", usage=s.usage(usage), what=s(f"help_{name.value}")))
        return out

    def notice(self, text: str, conversation: str = ROOM) -> list[Update]:
        """A line of the app's own (a relay started here, a key created)."""
        return self._notice(conversation, text)

    def error(self, text: str, conversation: str = ROOM) -> list[Update]:
        """A refusal the app learned of later (a trust action, a failed reconnect)."""
        return self._error(conversation, text)

    def sent(self, ref: str, msg_id: str) -> list[Update]:
        """The core accepted message ``ref`` as ``msg_id``; its ack may already be here."""
        self._by_msg_id[msg_id] = ref
        early = self._early.pop(msg_id, None)
        return self._delivery(early) if early is not None else []

    def send_failed(self, ref: str, reason: str) -> list[Update]:
        return [DeliveryNote(ref=ref, text=self.strings("not_sent", reason=self.strings.reason(reason)), ok=False)]

    def open_tab(self, name: str) -> list[Update]:
        """The user asked for the direct conversation with ``name`` (double-click, Enter, Ctrl+K)."""
        if name == ROOM:
            return self.select(ROOM)
        if name == self.name or name not in self.members:
            return []
        return self.select(name)

    def select(self, key: str) -> list[Update]:
        """Show conversation ``key`` (creating its sidebar entry): its unread count is read."""
        if key != ROOM:
            self.tabs.add(key)
        self.selected = key
        self._pane(key).unread = 0
        return [self.sidebar(), self.show(), self.title()]

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

    # --- derived views ------------------------------------------------------------

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
        items = [ConversationItem(key=ROOM, kind=ConversationKind.ROOM, label=s("room_tab"),
                                  unread=self._pane(ROOM).unread, selected=self.selected == ROOM)]
        for key in self._order:
            if key in self.tabs:
                items.append(ConversationItem(key=key, kind=ConversationKind.DIRECT, label=key,
                                              unread=self._pane(key).unread, selected=self.selected == key,
                                              trust=self._trust(key) if key in self.members else "gone"))
        return Sidebar(items=tuple(items))

    def show(self) -> ShowConversation:
        key = self.selected
        if key == ROOM:
            others = len(self.members)
            return ShowConversation(key=key, header=self.strings("room_header", count=others + 1))
        return ShowConversation(key=key, header=key, trust=self._trust(key) if key in self.members else "gone")

    def roster(self) -> RosterRows:
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
                    tooltip=s("tooltip_member", name=name, fingerprint=member.fingerprint,
                              trust=s(f"trust_{trust}_long")),
                )
            )
        return RosterRows(rows=tuple(rows))

    # --- helpers ----------------------------------------------------------------------

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

    def _notices_for(self, name: str, text: str) -> list[Update]:
        """A join or leave notice in the room, and in the direct conversation with that member if open."""
        out: list[Update] = self._notice(ROOM, text)
        if name in self.tabs:
            out += self._notice(name, text)
            out += [self.show()] if self.selected == name else []
        return out


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
