"""What the presenter tells the window to draw: one frozen dataclass per kind of update."""

from __future__ import annotations

import enum
from dataclasses import dataclass

from .delivery import DeliveryState


class ConversationKind(enum.Enum):
    """What a sidebar entry is; each room the user is in has an entry of kind ``ROOM``."""

    ROOM = "room"
    DIRECT = "direct"


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


@dataclass(frozen=True, slots=True, kw_only=True)
class InvitationItem:
    """One room someone added us to, waiting for the user's answer (``room_invites``)."""

    room_id: bytes
    #: The room as shown: its signed label and short id.
    room: str
    #: "alice invited you to plans #1a2b…", in the window's language.
    text: str


@dataclass(frozen=True, slots=True, kw_only=True)
class InvitationRows:
    """The sidebar's invitations (none: the section is hidden)."""

    items: tuple[InvitationItem, ...]


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
    | InvitationRows
)


@dataclass(frozen=True, slots=True, kw_only=True)
class Outgoing:
    """A message the user asked to send: ``to`` is None for everyone present or for ``room``."""

    ref: str
    text: str
    to: tuple[str, ...] | None
    conversation: str
    room: bytes | None = None
