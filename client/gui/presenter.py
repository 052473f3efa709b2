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
"""

from __future__ import annotations

import datetime
import enum
import hashlib
import itertools
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

from susurro.client import commands
from susurro.client import events as ev
from susurro.client.events import WarningKind
from susurro.client.history import HistoryEntry
from susurro.client.link import LinkState
from susurro.client.mailstate import DeliveryState as WaitState
from susurro.client.printable import printable
from susurro.client.room_events import (
    Invited,
    MemberAdded,
    MemberRemoved,
    RoomAlert,
    RoomCreated,
    RoomEvent,
    RoomMessage,
    RoomNotice,
    RoomReady,
)
from susurro.crypto import IdentityPublicKey
from susurro.crypto.fingerprint import fingerprint
from susurro.crypto.trust import TrustState

from . import room_view
from .delivery import DeliveryState, Tracked, Why
from .room_view import RoomInfo, RoomMemberInfo, is_room_key, room_key
from .strings import Strings

ROOM = ""  # the group conversation; direct conversations use the peer's name

#: Sender colours: this many, picked per member from a hash of the name (the window maps them per theme).
SENDER_COLOURS = 8
#: Consecutive messages from one sender within this many seconds share one name header.
RUN_SECONDS = 5 * 60
#: Longest body shown in a desktop notification.
NOTIFY_BODY_CHARS = 120
#: Receipts kept for messages not on screen yet (their history page may still load); oldest go first.
MAX_EARLY_RECEIPTS = 4_096
#: Message ids remembered per pane to drop a history entry already shown live; oldest go first.
MAX_SHOWN_IDS = 20_000


#: The notice for a membership change, by (about us?, done by the member themselves?).
_ADDED = {(True, True): "you_joined_room_notice", (True, False): "invited_notice",
          (False, True): "member_joined_room_notice", (False, False): "member_added_notice"}
_REMOVED = {(True, True): "you_left_notice", (True, False): "you_removed_notice",
            (False, True): "member_left_room_notice", (False, False): "member_removed_notice"}


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


class ConversationKind(enum.Enum):
    """What a sidebar entry is; each room the user is in has an entry of kind ``ROOM``."""

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
    """Replace the note after own message ``ref`` ("sending…" → "✓ sent to …" → "✓✓ delivered to …").

    ``detail`` names every recipient and where their copy is (the note's tooltip).
    """

    ref: str
    text: str
    ok: bool
    state: DeliveryState = DeliveryState.SENDING
    detail: str = ""


@dataclass(frozen=True, slots=True, kw_only=True)
class HistoryBlock:
    """Older lines of ``conversation`` from the history, to go above what the pane shows.

    ``older``: more lie before them (scrolling up loads the next page); the
    window keeps the view where it was, on the line the user was reading.
    """

    conversation: str
    lines: tuple[Line, ...]
    older: bool
    top_text: str
    #: The block ends on the day the pane's first line is from: the window drops that day's
    #: separator below the block, so one day has one separator however many pages it spans.
    same_day_below: bool = False


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
    #: A room member the relay does not list as present (greyed; nothing reaches them now).
    online: bool = True


@dataclass(frozen=True, slots=True, kw_only=True)
class RosterRows:
    rows: tuple[RosterRow, ...]
    #: The list's heading: the people here, or the members of the room on screen.
    title: str = ""
    #: The room on screen, when the list is its members (the window offers Invite… and Leave room for it).
    room: str = ""
    #: We are an admin of that room (the window offers Remove and Make admin for its members).
    admin: bool = False


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
    #: A room's short id, drawn beside its label so two rooms cannot pass for one.
    tag: str = ""


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
    | HistoryBlock
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
    """A message the user asked to send: ``to`` is None for everyone present or for ``room``."""

    ref: str
    text: str
    to: tuple[str, ...] | None
    conversation: str
    room: bytes | None = None


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
    #: How a pinned key compares for a member who is not present (the trust store's ``state``).
    trust_of: Callable[[str, bytes], TrustState] = lambda _name, _key: TrustState.NEW
    #: Rooms by conversation key, as their verified logs say.
    rooms: dict[str, RoomInfo] = field(default_factory=dict)
    #: Our identity key (to find ourselves in room logs); set by the app.
    identity_key: bytes = b""
    _panes: dict[str, _Pane] = field(default_factory=dict)
    _order: list[str] = field(default_factory=list)
    _sent: dict[str, _Sent] = field(default_factory=dict)
    _by_msg_id: dict[str, str] = field(default_factory=dict)
    _early: dict[str, list[ev.Delivery]] = field(default_factory=dict)
    _early_receipts: dict[str, set[str]] = field(default_factory=dict)
    #: Rooms whose whole log was asked for again (after a restart): its entries are not news.
    _replaying: set[str] = field(default_factory=set)
    _refs: itertools.count[int] = field(default_factory=lambda: itertools.count(1))

    # --- events from the core ---------------------------------------------------

    def apply(self, event: ev.Event, room: RoomInfo | None = None) -> list[Update]:
        """The updates one event from the core produces; ``room``: the room's log now, for a room event."""
        s = self.strings
        if isinstance(event, RoomEvent):
            return self._room_event(event, room)
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
            return [self.roster(), self.sidebar(), *self._notices_for(event.name, s("left_notice", name=event.name)),
                    *self._room_header()]
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

    def _room_header(self) -> list[Update]:
        """A room on screen: its header counts who is online, so it follows joins and leaves."""
        return [self.show()] if is_room_key(self.selected) else []

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

    def _receipt(self, event: ev.Receipt) -> list[Update]:
        """``sender``'s client signed that it showed these: two ticks for them, and only then."""
        out: list[Update] = []
        for msg_id in event.msg_ids:
            ref = self._by_msg_id.get(msg_id)
            if ref is None:
                senders = self._early_receipts.setdefault(msg_id, set())
                senders.add(event.sender)
                while len(self._early_receipts) > MAX_EARLY_RECEIPTS:
                    del self._early_receipts[next(iter(self._early_receipts))]
                continue
            sent = self._sent[ref]
            sent.tracked.receipt(event.sender)
            out.append(self._note(ref))
        return out

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
        updates.extend(self._line(conversation, "message", safe_lines(event.text), sender=event.sender,
                                  trust=trust_of(event), at_millis=event.sent_at))
        if not visible:
            updates += [self.sidebar(), self.title()]
            if self.notifications:
                where = s("notify_direct") if event.direct else self._label(conversation)
                body = event.text if len(event.text) <= NOTIFY_BODY_CHARS else event.text[:NOTIFY_BODY_CHARS] + "…"
                updates.append(Notify(title=s("notify_title", sender=event.sender, where=where), body=printable(body)))
        return updates

    def _delivery(self, event: ev.Delivery) -> list[Update]:
        ref = self._by_msg_id.get(event.msg_id)
        if ref is None:  # the ack beat the send job's answer: keep it for ``sent``
            self._early.setdefault(event.msg_id, []).append(event)
            return []
        sent = self._sent[ref]
        in_room = is_room_key(sent.conversation)
        why: dict[str, Why] = {}
        for name in event.skipped:
            if name in self.blocked:
                why[name] = Why.KEY_CHANGED
            elif in_room and name not in self.members:
                why[name] = Why.AWAY_FROM_ROOM
            else:
                why[name] = Why.NOT_VERIFIED
        sent.tracked.delivery(event, why_skipped=why)
        return [self._note(ref)]

    def _note(self, ref: str) -> DeliveryNote:
        """The line under own message ``ref``, and its tooltip naming everyone."""
        s = self.strings
        tracked = self._sent[ref].tracked
        parts: list[str] = []
        details: list[str] = []
        for state, why, names in tracked.groups():
            joined = ", ".join(names)
            reason = s(f"why_{why.value}") if why is not None else ""
            parts.append(s(f"note_{state.value}", names=joined, reason=reason))
            details += [s(f"detail_{state.value}", name=name, reason=reason) for name in names]
        if not parts:  # the relay took it and nobody was there to hand it to
            parts.append(s("note_nobody"))
        detail = "\n".join([s("detail_title"), *details]) if details else ""
        return DeliveryNote(ref=ref, text=" · ".join(parts), ok=tracked.ok(), state=tracked.summary(), detail=detail)

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
        in_room = conversation == ROOM or is_room_key(conversation)
        to: tuple[str, ...] | None = None if in_room else (conversation,)
        room: bytes | None = None
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
        if isinstance(command, commands.RoomCommand):  # checked against the log here, carried out by the app
            here = self.rooms.get(origin) if is_room_key(origin) else None
            refusal = room_view.check(s, command, here, self.identity_key)
            if refusal is not None:
                return None, self._error(origin, refusal)
            said = room_view.answer(s, command, here, self.rooms.values())
            return command, [update for text in said for update in self._notice(origin, text)]
        if isinstance(command, commands.Direct):
            conversation, to, text = command.name, (command.name,), command.text
        else:
            text = command.text
        if to is None and is_room_key(conversation):
            info = self.rooms.get(conversation)
            if info is None or not info.joined:
                return None, self._error(origin, s("room_not_member", room=self._label(conversation)))
            room = info.room_id
        # Someone away can still be written to in an open conversation: the core seals it to their
        # prekeys if they left some, or says why not.
        if to is not None and to[0] not in self.members and to[0] not in self.tabs:
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
        return Outgoing(ref=ref, text=text, to=to, conversation=conversation, room=room), updates

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
        for word, usage in commands.ROOM_USAGE.items():
            out += self._notice(conversation, s("help_line", usage=s.usage(usage), what=s(f"help_{word.value}")))
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
        sent = self._sent[ref]
        sent.msg_id = msg_id
        self._shown(self._pane(sent.conversation), msg_id)
        out: list[Update] = []
        for early in self._early.pop(msg_id, []):
            out += self._delivery(early)
        for sender in self._early_receipts.pop(msg_id, set()):
            out += self._receipt(ev.Receipt(sender=sender, msg_ids=(msg_id,)))
        return out

    def send_failed(self, ref: str, reason: str) -> list[Update]:
        return [DeliveryNote(ref=ref, text=self.strings("not_sent", reason=self.strings.reason(reason)), ok=False)]

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
        rooms = sorted(self.rooms.values(), key=lambda r: (r.label.casefold(), r.room_id))
        for info in rooms:
            if info.joined or info.key in self._panes:
                items.append(ConversationItem(key=info.key, kind=ConversationKind.ROOM, label=info.label,
                                              tag=f"#{info.short_id}", unread=self._pane(info.key).unread,
                                              selected=self.selected == info.key))
        for key in self._order:
            if key in self.tabs and not is_room_key(key):
                items.append(ConversationItem(key=key, kind=ConversationKind.DIRECT, label=key,
                                              unread=self._pane(key).unread, selected=self.selected == key,
                                              trust=self._trust(key) if key in self.members else "gone"))
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
            return ShowConversation(key=key, header=self.strings("room_header_members", room=info.display,
                                                                 count=len(info.members), online=online))
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
                    tooltip=s("tooltip_member", name=name, fingerprint=member.fingerprint,
                              trust=s(f"trust_{trust}_long")),
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
                trust = self._trust(member.name) if present is not None and online else self.trust_of(
                    member.name, member.identity_key).value
                label = member.name
            presence = s("member_online") if online else s("member_offline")
            trust_label = s(f"trust_{trust}")
            rows.append(RosterRow(
                name=member.name, label=label, fingerprint=short_fp(fp) if online else presence,
                trust=trust, trust_label=trust_label, is_self=self._is_me(member), online=online,
                tooltip=s("tooltip_room_member", name=member.name, fingerprint=fp,
                          trust=s(f"trust_{trust}_long") if trust != "self" else s("trust_self"), presence=presence),
            ))
        admin = any(m.admin for m in info.members if self._is_me(m))
        return RosterRows(rows=tuple(rows), title=s("members_title", room=info.display),
                          room=info.key if info.joined else "", admin=info.joined and admin)

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

    # --- history ------------------------------------------------------------------------

    def history_wanted(self, key: str) -> tuple[bool, int | None]:
        """Whether pane ``key`` should read an older page now, and the position to read before (None:
        the newest page). Marks the pane as loading, so one page is read at a time."""
        pane = self._pane(key)
        if pane.loading or not pane.older:
            return False, None
        pane.loading = True
        return True, pane.oldest_seq

    def history(
        self, key: str, entries: tuple[HistoryEntry, ...], older: bool, refused: int = 0,
        reports: Mapping[str, Mapping[str, WaitState]] | None = None,
    ) -> list[Update]:
        """A page of stored messages, oldest first, to show above what pane ``key`` has.

        ``reports``: for own messages that waited for someone, who still waits and whose
        client confirmed it, as the core keeps it across restarts (``delivery_reports``).
        """
        s = self.strings
        pane = self._pane(key)
        pane.loading = False
        pane.older = older
        if entries:
            pane.oldest_seq = entries[0].seq
        lines: list[Line] = []
        day: datetime.date | None = None
        first_day: datetime.date | None = None
        last_sender, last_at = "", 0.0
        for entry in entries:
            record = entry.record
            if record.msg_id in pane.shown:
                continue
            self._shown(pane, record.msg_id)
            when = day_of(record.sent_at)
            if when != day:
                day, last_sender = when, ""
                first_day = first_day or when
                lines.append(Line(conversation=key, kind="day", text=self._day_label(when)))
            at = record.sent_at / 1000
            continued = record.sender == last_sender and at - last_at < RUN_SECONDS
            last_sender, last_at = record.sender, at
            ref, note = "", ""
            if record.outgoing:
                ref = f"h{record.msg_id}"
                if ref not in self._sent:
                    self._sent[ref] = _Sent(conversation=key, msg_id=record.msg_id)
                    self._by_msg_id.setdefault(record.msg_id, ref)
                for name, state in (reports or {}).get(record.msg_id, {}).items():
                    tracked = self._sent[ref].tracked
                    if state is WaitState.DELIVERED:
                        tracked.receipt(name)
                    else:
                        tracked.delivery(ev.Delivery(msg_id=record.msg_id, delivered=(), missing=(), waiting=(name,)),
                                         why_skipped={})
                note = self._note(ref).text if self._sent[ref].tracked.recipients else ""
            trust = "self" if record.outgoing else (self._trust(record.sender) if record.sender in self.members
                                                    else "pinned")
            if not record.outgoing and (record.trust is TrustState.CHANGED or (
                    record.sender_key and self.trust_of(record.sender, record.sender_key) is TrustState.CHANGED)):
                trust = "changed"  # shown flagged, or under a key no longer pinned: never back as clean
            lines.append(Line(
                conversation=key, kind="own" if record.outgoing else "message", text=safe_lines(record.body),
                sender=record.sender, clock=clock(record.sent_at), trust=trust, colour=sender_colour(record.sender),
                continued=continued, ref=ref, note=note,
            ))
        if refused:
            lines.append(Line(conversation=key, kind="error", text=s("history_refused", count=refused)))
        if not pane.history_started:
            pane.history_started = True
            if key != ROOM and not is_room_key(key) and key not in self.tabs and lines:
                self.tabs.add(key)  # a direct conversation from before: back in the sidebar
        same_day = day is not None and day == pane.first_day
        if first_day is not None:
            pane.first_day = first_day
        out: list[Update] = [HistoryBlock(conversation=key, lines=tuple(lines), older=older, same_day_below=same_day,
                                          top_text=s("history_loading") if older else s("history_start"))]
        for msg_id in [e.record.msg_id for e in entries if e.record.outgoing]:
            early = self._early_receipts.pop(msg_id, None)
            for sender in early or ():
                out += self._receipt(ev.Receipt(sender=sender, msg_ids=(msg_id,)))
        if key in self.tabs or key == ROOM:
            out.append(self.sidebar())
        return out

    # --- helpers ----------------------------------------------------------------------

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
