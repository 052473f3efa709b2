"""How the terminal client shows events: one JSON object per line (``--json``), or text.

The JSON form is what scripts read (``docs/cli-json.md``): its values are
the events' stable names (``WarningKind``, ``TrustState`` values), never a
Python repr.
"""

from __future__ import annotations

import json
import math
import re
import sys
import time
from typing import Any

from susurro.crypto import IdentityPublicKey, short_fingerprint
from susurro.crypto.history import HistoryRecord
from susurro.crypto.trust import TrustState
from susurro.protocol import ErrorCode

from . import events as ev
from . import wording
from .events import WarningKind
from .printable import printable
from .room_directory import RoomDirectory
from .room_events import (
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
from .room_invites import (
    MAX_CHECKING_ROOMS,
    MAX_INVITATIONS,
    MAX_INVITATIONS_PER_INVITER,
    MAX_WAITING_CHECKS,
    AcceptWaiting,
    CheckDropped,
    CheckWaiting,
    DropReason,
    InvitationDropped,
    InvitationReceived,
)


def _room_json(event: ev.Event) -> dict[str, Any] | None:
    """Room events carry the signed label as ``room`` and the room id (hex) as ``room_id``."""
    if isinstance(event, RoomMessage):
        return {
            "event": "message",
            "from": event.sender,
            "text": event.text,
            "to": list(event.to),
            "direct": False,
            "msg_id": event.msg_id,
            "sent_at": event.sent_at,
            "trust": event.trust.value,
            "waited": event.waited,
            "room": event.room,
            "room_id": event.room_id.hex(),
        }
    if isinstance(event, RoomAlert):
        return {
            "event": "warning",
            "kind": str(event.kind),
            "detail": event.detail,
            "from": event.sender,
            "room": event.room,
            "room_id": event.room_id.hex(),
        }
    if not isinstance(event, RoomEvent):
        return None
    base: dict[str, Any] = {"room": event.room, "room_id": event.room_id.hex()}
    if isinstance(event, RoomCreated):
        return {"event": "room_created", **base}
    if isinstance(event, Invited):
        return {"event": "invited", "by": event.by, **base}
    if isinstance(event, InvitationReceived):
        return {
            "event": "invitation",
            "by": event.by,
            "known": event.known,
            "inviter_key_mismatch": event.other_key,
            "restored": event.restored,
            **base,
        }
    if isinstance(event, InvitationDropped):
        return {"event": "invitation_dropped", "by": event.by, "reason": event.reason.value, **base}
    if isinstance(event, AcceptWaiting):
        return {"event": "invitation_accepted_waiting", "by": event.by, **base}
    if isinstance(event, CheckWaiting):
        return {"event": "room_check_waiting", "ahead": event.ahead, **base}
    if isinstance(event, CheckDropped):
        return {"event": "room_check_dropped", **base}
    if isinstance(event, MemberAdded):
        return {"event": "member_added", "name": event.name, "by": event.by, **base}
    if isinstance(event, MemberRemoved):
        return {"event": "member_removed", "name": event.name, "by": event.by, **base}
    if isinstance(event, RoomReady):
        return {"event": "room_ready", "members": list(event.members), "policy": event.policy, **base}
    if isinstance(event, RoomNotice):
        return {"event": "room_notice", "text": event.text, **base}
    return {"event": "room", **base}


#: Why an invitation was let go, in words.
_DROPPED = {
    DropReason.TOO_MANY: f"{MAX_INVITATIONS} invitations were waiting",
    DropReason.TOO_MANY_FROM_INVITER: f"{MAX_INVITATIONS_PER_INVITER} invitations from them were waiting",
}
#: Withdrawn, not let go: /join would not take it up (the log no longer lists us).
_WITHDRAWN = "withdrawn: the room's log no longer lists you (you were removed before you answered)"


def inviter_words(by: str, *, known: bool, other_key: bool) -> str:
    """Who invited us, as the trust store sees the name: known, new, or someone else using a known name."""
    if other_key:
        return f"{printable(by)} (NOT the {printable(by)} you know: another identity key uses that name)"
    return printable(by) if known else f"{printable(by)} (someone you have not met)"


def _room_text(event: ev.Event) -> str | None:
    if isinstance(event, RoomMessage):
        badge = _TRUST_BADGES.get(event.trust, "")
        return f"[{_clock(event.sent_at)}] [{printable(event.room)}] <{event.sender}{badge}> {printable(event.text)}"
    if isinstance(event, RoomAlert):
        return f"! warning ({printable(str(event.kind))}): {printable(event.detail)}"
    if not isinstance(event, RoomEvent):
        return None
    where = f"{printable(event.room)}#{event.short_id}"
    if isinstance(event, RoomCreated):
        return f"* created room {where}"
    if isinstance(event, Invited):
        return f"* {event.by} added you to room {where}"
    if isinstance(event, InvitationReceived):
        who = inviter_words(event.by, known=event.known, other_key=event.other_key)
        label = printable(event.room)
        when = ", before you last quit (it was waiting then, and is checked again now)" if event.restored else ""
        return (
            f"* {who} invited you to room {where}{when}: /accept-invite {label} to follow it, /decline-invite "
            f"{label} to let it go (until you accept, only this invitation is kept, none of the room's log)"
        )
    if isinstance(event, AcceptWaiting):
        return (
            f"* you accepted the invitation from {printable(event.by)} to room {where} before you last quit, and "
            "its log had not come from the relay: it is asked for again now (/invites lists it until it comes)"
        )
    if isinstance(event, InvitationDropped) and event.reason is DropReason.WITHDRAWN:
        return f"* the invitation from {printable(event.by)} to room {where} was {_WITHDRAWN}"
    if isinstance(event, InvitationDropped):
        return (
            f"* the invitation from {printable(event.by)} to room {where} was let go to make room for newer ones "
            f"({_DROPPED[event.reason]}): to accept it anyway, type /join {printable(event.room)}"
        )
    if isinstance(event, CheckWaiting):
        return (
            f"* room {where}, which you did not ask for, waits to be checked ({event.ahead} such rooms before it; "
            f"{MAX_CHECKING_ROOMS} are checked at a time): if someone invited you, you will be told"
        )
    if isinstance(event, CheckDropped):
        label = printable(event.room)
        return (
            f"! room {where}, which you did not ask for, was not checked: {MAX_CHECKING_ROOMS} such rooms were being "
            f"checked and {MAX_WAITING_CHECKS} more waited. If someone invited you to it, type /join {label} to "
            "accept it"
        )
    if isinstance(event, MemberAdded):
        return f"* {event.by} added {event.name} to {where}"
    if isinstance(event, MemberRemoved):
        if event.by == event.name:
            return f"* {event.name} left {where}"
        return f"* {event.by} removed {event.name} from {where}"
    if isinstance(event, RoomReady):
        return f"* room {where}: {', '.join(event.members)} ({event.policy})"
    if isinstance(event, RoomNotice):
        return f"* {where}: {printable(event.text)}"
    return None


def directory_records(directory: RoomDirectory) -> list[tuple[dict[str, Any], str]]:
    """``/rooms``: one ``room_info`` per room (the verified log's numbers, or the relay's, marked)."""
    records: list[tuple[dict[str, Any], str]] = []
    for room in directory.rooms:
        policy = "open" if room.open else "invite-only"
        if not room.verified:
            note = " (the relay's word: not joined here, not verified)"
        elif not room.listed:
            note = " (verified here; the relay's list left it out)"
        else:
            note = "" if room.member else " (not a member)"
        counts = f"{room.members} members, {room.online} online, {policy}"
        line = f"* {printable(room.label)}#{room.short_id}: {counts}{note}"
        record = {
            "event": "room_info",
            "room": room.label,
            "room_id": room.room_id.hex(),
            "members": room.members,
            "online": room.online,
            "open": room.open,
            "verified": room.verified,
            "member": room.member,
            "listed": room.listed,
        }
        records.append((record, line))
    return records or [({"event": "room_info", "rooms": []}, "* no rooms yet (/create LABEL)")]


def event_to_json(event: ev.Event) -> dict[str, Any]:
    room = _room_json(event)
    if room is not None:
        return room
    if isinstance(event, ev.Connected):
        return {"event": "connected", "name": event.name, "fingerprint": event.fingerprint, "relay": event.relay}
    if isinstance(event, ev.Roster):
        return {
            "event": "roster",
            "members": [{"name": m.name, "fingerprint": m.fingerprint, "trust": m.trust.value} for m in event.members],
        }
    if isinstance(event, ev.Joined):
        return {
            "event": "joined",
            "name": event.member.name,
            "fingerprint": event.member.fingerprint,
            "trust": event.member.trust.value,
        }
    if isinstance(event, ev.TrustUpdated):
        return {"event": "trust", "name": event.member.name, "trust": event.member.trust.value}
    if isinstance(event, ev.Left):
        return {"event": "left", "name": event.name}
    if isinstance(event, ev.Message):
        return {
            "event": "message",
            "from": event.sender,
            "text": event.text,
            "to": list(event.to),
            "direct": event.direct,
            "msg_id": event.msg_id,
            "sent_at": event.sent_at,
            "trust": event.trust.value,
            "waited": event.waited,
        }
    if isinstance(event, ev.Delivery):
        return {
            "event": "delivery",
            "msg_id": event.msg_id,
            "delivered": list(event.delivered),
            "missing": list(event.missing),
            "skipped": list(event.skipped),
            "waiting": list(event.waiting),
            "not_delivered": [{"name": name, "reason": reason} for name, reason in event.not_delivered],
        }
    if isinstance(event, ev.Receipt):
        return {"event": "receipt", "from": event.sender, "msg_ids": list(event.msg_ids), "waited": list(event.waited)}
    if isinstance(event, ev.KeyChanged):
        return {
            "event": "warning",
            "kind": event.kind.value,
            "detail": event.detail,
            "from": event.sender,
            "old_fingerprint": event.old_fingerprint,
            "new_fingerprint": event.new_fingerprint,
        }
    if isinstance(event, ev.Warning):
        return {"event": "warning", "kind": event.kind.value, "detail": event.detail, "from": event.sender}
    if isinstance(event, ev.Disconnected):
        return {"event": "disconnected", "reason": event.reason, "code": ev.code_text(event.code)}
    if isinstance(event, ev.Reconnecting):
        return {
            "event": "reconnecting",
            "delay": event.delay,
            "attempt": event.attempt,
            "reason": event.reason,
            "code": ev.code_text(event.code),
        }
    raise TypeError(f"no JSON form for {event!r}")


def _clock(millis: int | None = None) -> str:
    return time.strftime("%H:%M", time.localtime(millis / 1000 if millis is not None else None))


_TRUST_LABELS = {
    TrustState.NEW: "new",
    TrustState.PINNED: "seen before",
    TrustState.VERIFIED: "verified ✓",
    TrustState.CHANGED: "KEY CHANGED",
}
_TRUST_BADGES = {TrustState.VERIFIED: " ✓", TrustState.CHANGED: " [key changed]"}


def history_marks(record: HistoryRecord, now: TrustState | None) -> str:
    """What a ``/history`` line shows beside its sender, so a flagged message never comes back clean:
    the trust badge it was shown with, the warnings that came with it, and whether the key it came
    under is no longer the one pinned for the name (``now``: how that key compares with the pin)."""
    if record.outgoing:
        return ""
    if record.trust is None:
        return " [trust not recorded]"  # stored before the history kept it
    marks = _TRUST_BADGES.get(record.trust, "")
    if now is TrustState.CHANGED:
        fp = short_fingerprint(IdentityPublicKey(record.sender_key))
        marks += f" [another key than the one pinned now: fp {fp} …]"
    if record.warnings:
        marks += " [" + ", ".join(record.warnings) + "]"
    return marks


#: A message id in a detail ("message 26082f3235fb6030 was never sent"): for scripts, not for people.
_MESSAGE_ID = re.compile(r"\bmessage [0-9a-f]{8,} ")


#: Failures whose sentence is general: the terminal adds the core's detail (a file, a frame type).
_WITH_DETAIL = frozenset(
    {
        WarningKind.PROTOCOL_ERROR,
        WarningKind.TRUST_STORE,
        WarningKind.INTERNAL_ERROR,
        # which file, why it could not be opened and where it was kept aside
        WarningKind.SAVED_STATE_UNREADABLE,
        # which message, in its first words, and to whom: each is reported on its own line
        WarningKind.DELIVERY_UNKNOWN,
        WarningKind.DROPPED,
        WarningKind.UNCONFIRMED,
    }
)


def _warning_text(event: ev.Warning) -> str:
    """A failed check, or a line that could not go, in words (``wording``): no kinds, no ids."""
    if event.kind == WarningKind.MESSAGE_HELD:  # not a failed check: a line typed while away
        return "* offline: that line will be sent when the room is back"
    detail = _MESSAGE_ID.sub("", printable(event.detail))
    if event.kind == WarningKind.NOT_SENT:
        why = detail.split(": ", 1)[1] if ": " in detail else detail
        return f"! a line you typed while offline was not sent: {wording.reason(why)}"
    sentence = wording.warning(event.kind, sender=event.sender or "")
    if event.kind in _WITH_DETAIL or f"warn_{event.kind}" not in wording.EN:  # the detail says what exactly
        return f"! {sentence} ({detail})"
    return f"! {sentence}"


def event_to_text(event: ev.Event) -> str | None:
    if isinstance(event, (RoomMessage, RoomAlert, RoomEvent)):
        return _room_text(event)
    if isinstance(event, ev.Connected):
        return (
            f"* joined as {event.name} via {event.relay}, end-to-end encrypted\n* your fingerprint: {event.fingerprint}"
        )
    if isinstance(event, ev.Roster):
        if not event.members:
            return "* nobody else is here yet"
        return "* in the room: " + ", ".join(
            f"{m.name} (fp {short_fingerprint(m.identity_key)} …, {_TRUST_LABELS[m.trust]})" for m in event.members
        )
    if isinstance(event, ev.Joined):
        member = event.member
        label = _TRUST_LABELS[member.trust]
        return f"* {member.name} joined (fp {short_fingerprint(member.identity_key)} …, {label})"
    if isinstance(event, ev.TrustUpdated):
        name = event.member.name
        if event.member.trust == TrustState.VERIFIED:
            return f"* {name} is verified ✓ (you compared safety numbers)"
        if event.member.trust == TrustState.PINNED:  # the user accepted a changed key
            return f"* accepted {name}'s new key; it is not verified (compare safety numbers: /verify {name})"
        return f"* {name}: {_TRUST_LABELS.get(event.member.trust, event.member.trust)}"
    if isinstance(event, ev.Left):
        return f"* {event.name} left"
    if isinstance(event, ev.Message):
        prefix = f"[{_clock(event.sent_at)}] "
        badge = _TRUST_BADGES.get(event.trust, "")
        if event.direct:
            return f"{prefix}<{event.sender}{badge} → you> {printable(event.text)}"
        return f"{prefix}<{event.sender}{badge}> {printable(event.text)}"
    if isinstance(event, ev.Delivery):
        lines = []
        said = {name for name, _ in event.not_delivered}  # a reason the relay gave is said with the name
        if plain := [name for name in event.missing if name not in said]:
            lines.append(f"! not delivered to: {', '.join(plain)}")
        if event.skipped:
            lines.append(f"! not encrypted to (key changed or not verified): {', '.join(event.skipped)}")
        if event.not_delivered:
            lines.append("! not delivered to: " + ", ".join(f"{n} ({wording.why(r)})" for n, r in event.not_delivered))
        if event.waiting:
            lines.append(f"  … waiting for {', '.join(event.waiting)} (kept on the relay until they come back)")
        if not lines:
            lines.append(f"  ✓ delivered to {', '.join(event.delivered)}")
        return "\n".join(lines)
    if isinstance(event, ev.Receipt):
        if event.waited:
            return f"  ✓✓ delivered to {event.sender} (was waiting): {', '.join(event.waited)}"
        return f"  ✓✓ {event.sender} has your message(s) {', '.join(event.msg_ids)}"
    if isinstance(event, ev.KeyChanged):
        return (
            f"! {event.name}'s identity key CHANGED (was {event.old_fingerprint}, now {event.new_fingerprint}).\n"
            f"  A new device, or the relay substituting keys. Nothing is encrypted to {event.name} until you\n"
            f"  compare safety numbers (/verify {event.name}) and accept the new key (/accept {event.name})."
        )
    if isinstance(event, ev.Warning):
        return _warning_text(event)
    if isinstance(event, ev.Disconnected):
        return f"* disconnected: {wording.reason(printable(event.reason), event.code)}"
    if isinstance(event, ev.Reconnecting):
        seconds = max(1, math.ceil(event.delay))
        # Only cluster_down's own words: a name_taken while our old connection lingers is not "someone else
        # is using your name", and the relay's detail says which claim a cluster lost; the others say it.
        code = event.code if event.code == ErrorCode.CLUSTER_DOWN else None
        why = wording.reason(printable(event.reason), code)
        return f"* reconnecting in {seconds} s (attempt {event.attempt}): {why}"
    return None


class Output:
    """Writes events and notices to stdout in the chosen form, flushing each line."""

    def __init__(self, as_json: bool, stream: Any = None) -> None:
        self.as_json = as_json
        self._stream = stream

    def event(self, event: ev.Event) -> None:
        if isinstance(event, RoomDirectory):  # one line per room
            for record, line in directory_records(event):
                self.record(record, line)
            return
        if self.as_json:
            self._write(json.dumps(event_to_json(event)))
        else:
            text = event_to_text(event)
            if text is not None:
                self._write(text)

    def notice(self, text: str) -> None:
        """Status for the user. In JSON mode it goes to stderr, keeping stdout parseable."""
        if self.as_json:
            print(text, file=sys.stderr, flush=True)
        else:
            self._write(f"* {text}")

    def record(self, obj: dict[str, Any], text: str | None) -> None:
        """A client-side event (sent, send failure, /who) in the chosen form."""
        if self.as_json:
            self._write(json.dumps(obj))
        elif text is not None:
            self._write(text)

    @property
    def stream(self) -> Any:
        # Looked up at each write: the terminal UI swaps sys.stdout for one that prints above the prompt.
        return self._stream or sys.stdout

    def _write(self, line: str) -> None:
        self.stream.write(line + "\n")
        self.stream.flush()
