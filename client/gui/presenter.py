"""What the window shows for each event and each typed line: pure, no Tk.

``ChatState`` takes the core's events and the user's input and answers with
small *updates* (a line for a conversation, a banner, new roster rows, a
status bar). The Tk window only draws updates, so everything a user would
see can be tested here without a display, and the window has no logic worth
testing beyond "it draws what it was told".

Conversations are keyed by name: ``ROOM`` for the group, a member's name for
the direct-message tab with that member.
"""

from __future__ import annotations

import itertools
import time
from dataclasses import dataclass, field

from susurro.client import events as ev
from susurro.client.cli import printable

from .strings import Strings

ROOM = ""  # the group conversation; direct conversations use the peer's name

TRUST_STATES = ("new", "pinned", "verified", "changed")


def short_fp(fingerprint: str) -> str:
    """The first two digit groups of a full fingerprint, as rosters show it."""
    return " ".join(fingerprint.split(" ")[:2])


def trust_of(obj: ev.MemberInfo | ev.Message) -> str:
    """The trust state of a member or message as one of ``TRUST_STATES`` (unknown values read as "new")."""
    value = str(getattr(obj.trust, "value", obj.trust))  # a TrustState (str enum) or a plain str
    return value if value in TRUST_STATES else "new"


# --- updates: what the window is told to draw --------------------------------------


@dataclass(frozen=True, slots=True, kw_only=True)
class Line:
    """One entry in a conversation pane.

    ``kind``: ``message`` (someone else's), ``own``, ``notice`` (join, leave,
    status) or ``error`` (a local refusal such as a bad command). ``ref`` names
    an own message so its delivery note can be updated later.
    """

    conversation: str
    kind: str
    text: str
    sender: str = ""
    clock: str = ""
    badge: str = ""
    ref: str = ""
    note: str = ""


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


@dataclass(frozen=True, slots=True, kw_only=True)
class RosterRows:
    rows: tuple[RosterRow, ...]


@dataclass(frozen=True, slots=True, kw_only=True)
class Status:
    connection: str
    relay: str
    fingerprint: str
    e2e: str
    can_send: bool
    reason: str = ""


@dataclass(frozen=True, slots=True, kw_only=True)
class OpenTab:
    """Make sure the direct conversation with ``name`` has a tab; ``focus`` selects it."""

    name: str
    focus: bool


@dataclass(frozen=True, slots=True, kw_only=True)
class Title:
    text: str


Update = Line | DeliveryNote | Banner | BannersResolved | RosterRows | Status | OpenTab | Title


@dataclass(frozen=True, slots=True, kw_only=True)
class Outgoing:
    """A message the user asked to send: ``to`` is None for the room."""

    ref: str
    text: str
    to: tuple[str, ...] | None
    conversation: str


def clock(millis: int | None = None) -> str:
    return time.strftime("%H:%M", time.localtime(millis / 1000 if millis is not None else None))


@dataclass(slots=True)
class _Sent:
    conversation: str
    msg_id: str = ""


@dataclass
class ChatState:
    """The view model of one signed-in window."""

    strings: Strings
    relay: str = ""
    name: str = ""
    fingerprint: str = ""
    connection: str = "connecting"  # connecting | connected | reconnecting | disconnected
    reason: str = ""
    members: dict[str, ev.MemberInfo] = field(default_factory=dict)
    blocked: set[str] = field(default_factory=set)
    tabs: set[str] = field(default_factory=set)
    _sent: dict[str, _Sent] = field(default_factory=dict)
    _by_msg_id: dict[str, str] = field(default_factory=dict)
    _early: dict[str, ev.Delivery] = field(default_factory=dict)
    _refs: itertools.count = field(default_factory=lambda: itertools.count(1))

    # --- events from the core ---------------------------------------------------

    def apply(self, event: ev.Event) -> list[Update]:
        """The updates one event from the core produces."""
        s = self.strings
        if isinstance(event, ev.Connected):
            again = bool(self.name)  # a reconnect: same window, fresh session
            self.name, self.fingerprint, self.connection, self.reason = event.name, event.fingerprint, "connected", ""
            self.relay = event.relay or self.relay
            self.members.clear()  # a fresh session (also after a reconnect): the roster follows
            text = (
                s("reconnected", relay=self.relay)
                if again
                else s("you_joined", name=self.name, fingerprint=self.fingerprint)
            )
            title = Title(text=s("window_title", name=self.name))
            return [title, self.status(), self._notice(ROOM, text), self.roster()]
        if isinstance(event, ev.Roster):
            self.members = {m.name: m for m in event.members}
            names = ", ".join(sorted(self.members))
            text = s("here_notice", names=names) if names else s("alone_notice")
            return [self.roster(), self._notice(ROOM, text)]
        if isinstance(event, ev.Joined):
            member = event.member
            self.members[member.name] = member
            text = s("joined_notice", name=member.name, fingerprint=short_fp(member.fingerprint))
            return [self.roster(), *self._notices_for(member.name, text)]
        if isinstance(event, ev.Left):
            self.members.pop(event.name, None)
            return [self.roster(), *self._notices_for(event.name, s("left_notice", name=event.name))]
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
                    self.roster()]
        if isinstance(event, ev.TrustUpdated):
            member = event.member
            self.members[member.name] = member
            if trust_of(member) != "changed":
                self.blocked.discard(member.name)
            return [self.roster(), BannersResolved(name=member.name)]
        if isinstance(event, ev.Warning):
            where = event.sender if event.sender in self.tabs else ROOM
            text = s("banner_warning", kind=printable(event.kind), detail=printable(event.detail))
            return [Banner(conversation=where or ROOM, kind=event.kind, text=text)]
        if isinstance(event, ev.Disconnected):
            self.connection, self.reason = "disconnected", event.reason
            return [self.status(), self._notice(ROOM, s("status_disconnected", reason=printable(event.reason)))]
        if isinstance(event, ev.Reconnecting):
            self.connection = "reconnecting"
            self.reason = s("status_reconnecting", delay=f"{event.delay:.1f}", attempt=event.attempt)
            return [self.status()]
        return []

    def _message(self, event: ev.Message) -> list[Update]:
        trust = trust_of(event)
        badge = {"verified": "badge_verified", "changed": "badge_changed", "new": "badge_new"}.get(trust)
        updates: list[Update] = []
        conversation = ROOM
        if event.direct:
            conversation = event.sender
            if conversation not in self.tabs:
                self.tabs.add(conversation)
                updates.append(OpenTab(name=conversation, focus=False))
        updates.append(
            Line(
                conversation=conversation,
                kind="message",
                sender=event.sender,
                text=printable(event.text),
                clock=clock(event.sent_at),
                badge=self.strings(badge) if badge else "",
            )
        )
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

    def compose(self, raw: str, conversation: str) -> tuple[Outgoing | None, list[Update]]:
        """Turn what the user typed in ``conversation`` into a message to send, or a refusal.

        ``/msg NAME TEXT`` opens (and sends in) the direct conversation with
        NAME; ``//`` sends a line that starts with ``/``. Refusals the view can
        decide (not connected, unknown member, changed key) never reach the core.
        """
        s = self.strings
        text = raw.strip("\n")
        if not text.strip():
            return None, []
        to: tuple[str, ...] | None = None if conversation == ROOM else (conversation,)
        updates: list[Update] = []
        switched = False
        origin = conversation  # refusals are shown where the user typed
        if text.startswith("/") and not text.startswith("//"):
            command, _, rest = text[1:].partition(" ")
            if command.lower() != "msg":
                return None, [self._error(conversation, s("unknown_command", command=printable(command)))]
            name, _, body = rest.strip().partition(" ")
            if not name or not body.strip():
                return None, [self._error(conversation, s("usage_msg"))]
            switched = name != conversation
            conversation, to, text = name, (name,), body
        elif text.startswith("//"):
            text = text[1:]
        if to is not None and to[0] not in self.members:
            return None, [self._error(origin, s("not_in_room", name=printable(to[0])))]
        if self.connection != "connected":
            return None, [self._error(origin, s("not_sent", reason=self.send_block_reason()))]
        if to is not None and to[0] in self.blocked:
            return None, [self._error(origin, s("not_sent", reason=s("reason_key_changed", name=to[0])))]
        if conversation != ROOM and (conversation not in self.tabs or switched):
            self.tabs.add(conversation)
            updates.append(OpenTab(name=conversation, focus=True))
        ref = f"m{next(self._refs)}"
        self._sent[ref] = _Sent(conversation=conversation)
        updates.append(
            Line(
                conversation=conversation,
                kind="own",
                sender=self.name,
                text=printable(text),
                clock=clock(),
                ref=ref,
                note=s("sending"),
            )
        )
        return Outgoing(ref=ref, text=text, to=to, conversation=conversation), updates

    def sent(self, ref: str, msg_id: str) -> list[Update]:
        """The core accepted message ``ref`` as ``msg_id``; its ack may already be here."""
        self._by_msg_id[msg_id] = ref
        early = self._early.pop(msg_id, None)
        return self._delivery(early) if early is not None else []

    def send_failed(self, ref: str, reason: str) -> list[Update]:
        reason = reason.removeprefix("not sent: ")  # the core's reasons sometimes say it already
        return [DeliveryNote(ref=ref, text=self.strings("not_sent", reason=printable(reason)), ok=False)]

    def open_tab(self, name: str) -> list[Update]:
        """The user asked for the direct conversation with ``name`` (roster double-click)."""
        if name == self.name or name not in self.members:
            return []
        self.tabs.add(name)
        return [OpenTab(name=name, focus=True)]

    def close_tab(self, name: str) -> None:
        self.tabs.discard(name)

    # --- derived views ------------------------------------------------------------

    def send_block_reason(self) -> str:
        if self.connection == "reconnecting":
            return self.strings("reason_reconnecting")
        return self.strings("reason_disconnected")

    def status(self) -> Status:
        s = self.strings
        connection = {
            "connecting": s("status_connecting", relay=self.relay),
            "connected": s("status_connected", relay=self.relay),
            "reconnecting": self.reason,
            "disconnected": s("status_disconnected", reason=printable(self.reason)),
        }[self.connection]
        can_send = self.connection == "connected"
        return Status(
            connection=connection,
            relay=self.relay,
            fingerprint=s("status_fingerprint", fingerprint=self.fingerprint) if self.fingerprint else "",
            e2e=s("status_e2e"),
            can_send=can_send,
            reason="" if can_send else s("sending_disabled", reason=self.send_block_reason()),
        )

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
                )
            )
        for name in sorted(self.members):
            member = self.members[name]
            trust = "changed" if name in self.blocked else trust_of(member)
            rows.append(
                RosterRow(
                    name=name,
                    label=name,
                    fingerprint=short_fp(member.fingerprint),
                    trust=trust,
                    trust_label=s(f"trust_{trust}"),
                    is_self=False,
                )
            )
        return RosterRows(rows=tuple(rows))

    def _notice(self, conversation: str, text: str) -> Line:
        return Line(conversation=conversation, kind="notice", text=text, clock=clock())

    def _error(self, conversation: str, text: str) -> Line:
        return Line(conversation=conversation, kind="error", text=text, clock=clock())

    def _notices_for(self, name: str, text: str) -> list[Update]:
        """A join or leave notice in the room, and in the direct tab with that member if open."""
        out: list[Update] = [self._notice(ROOM, text)]
        if name in self.tabs:
            out.append(self._notice(name, text))
        return out
