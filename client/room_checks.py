"""What the relay serves of a room, checked against what was verified here. Pure.

Each function takes a ``room_log.KnownRoom`` (or its state) and what the relay
said, and returns the warnings it raises; ``rooms.RoomBook`` decides when to
ask. The relay is trusted for nothing:

- entries that do not verify are refused (``room_bad_log``) and the last
  verified state stays (``apply``);
- a label that is not the one signed in the ``create`` entry is
  ``room_label_changed``;
- a history that differs from one verified before (this run or an earlier
  one) is a ``room_fork``, and ``fork`` stops our sends to the room;
- a head older than one we verified is ``room_withheld``;
- a name the relay lists as online that the log does not hold is
  ``room_not_a_member`` (it gets no ciphertext anyway: only members of the
  verified log are addressed);
- a label already pinned to another room id is ``room_label_moved``;
- a member the log names with another identity key than the one pinned for
  that name is ``room_key_mismatch``.
"""

from __future__ import annotations

import hmac
from collections.abc import Callable, Iterable

from susurro.crypto import RoomLogError, RoomMember, RoomState, entry_hash, short_room_id

from . import events as ev
from .events import WarningKind
from .room_events import RoomAlert, RoomWarning, describe
from .room_log import KnownRoom


def display(state: RoomState) -> str:
    """How a room is shown: its signed label and short id, so two rooms cannot pass for one."""
    return f"{state.label}#{state.short_id}"


def alert(state: RoomState, kind: WarningKind, detail: str, sender: str | None = None) -> RoomAlert:
    return RoomAlert(kind=kind, detail=detail, sender=sender, room=state.label, room_id=state.room_id)


def fork(room: KnownRoom, detail: str, sender: str | None = None) -> RoomAlert:
    """Two histories of one room: say so, and seal nothing more to it (the other may remove members),
    unless the user already chose to go on after this very evidence (``resume``)."""
    if detail in room.accepted_forks:
        return alert(room.state, RoomWarning.FORK, f"{detail}; you chose to go on sending to the room", sender)
    room.fork_evidence.add(detail)
    room.forked = room.forked or detail
    return alert(room.state, RoomWarning.FORK, f"{detail}; nothing more is sent to the room from here", sender)


def resume(room: KnownRoom) -> str:
    """The user accepts the history verified here after a fork: sends go on at its head; the evidence
    seen so far only warns from now on, and a new one stops sends again. Returns the fork's reason."""
    reason = room.forked
    room.accepted_forks |= room.fork_evidence
    room.fork_evidence.clear()
    room.forked = ""
    return reason


def apply(
    room: KnownRoom, from_seq: int, entries: list[bytes], own_ik: bytes, pin_agrees: Callable[[str, bytes], bool]
) -> list[ev.Event]:
    """Entries ``from_seq``... as the relay served them: verified onto the room's log, or refused."""
    state = room.state
    # Entries we already hold must be the very ones we verified.
    held = 0
    for offset, data in enumerate(entries):
        seq = from_seq + offset
        if seq > state.head.seq:
            break
        if not hmac.compare_digest(entry_hash(data), room.hashes[seq]):
            detail = (  # the other entry's hash names this evidence (``resume`` accepts it, not others)
                f"the relay served another entry {seq} ({entry_hash(data).hex()[:16]}) of room {display(state)} "
                "than the one verified here: two versions of this room's history exist"
            )
            return [fork(room, detail)]
        held += 1
    entries, from_seq = entries[held:], from_seq + held
    if not entries or from_seq != state.head.seq + 1:
        return []  # nothing new, or a gap: the caller fetches from our head
    events: list[ev.Event] = []
    try:
        after = state.extend(entries)
    except RoomLogError as exc:
        entries = entries[: max(0, exc.seq - from_seq)]  # the ones before the bad entry verified
        after = state.extend(entries)
        detail = f"entry {exc.seq} of room {display(state)} does not verify ({exc.kind}: {exc.detail})"
        events.append(alert(state, RoomWarning.BAD_LOG, detail))
    room.hashes.extend(entry_hash(data) for data in entries)
    room.record_spans(from_seq, entries)
    room.state = after
    joined = [member for ik, member in after.members.items() if ik not in state.members]
    return describe(state, entries, own_ik) + key_mismatches(state, joined, own_ik, pin_agrees) + events


def key_mismatches(
    state: RoomState, members: Iterable[RoomMember], own_ik: bytes, pin_agrees: Callable[[str, bytes], bool]
) -> list[ev.Event]:
    """A log entry binds a name to a key; the trust store may know that name with another key."""
    events: list[ev.Event] = []
    for member in members:
        if member.identity_key == own_ik or pin_agrees(member.name, member.identity_key):
            continue
        detail = (
            f"room {display(state)} lists {member.name} with another identity key than the one pinned "
            f"for {member.name} here; nothing is encrypted to that key until you accept it"
        )
        events.append(alert(state, RoomWarning.KEY_MISMATCH, detail, member.name))
    return events


def relay_label(state: RoomState, label: str) -> list[ev.Event]:
    """The relay's name for the room must be the label signed into its ``create`` entry."""
    if label == state.label:
        return []
    detail = f"the relay calls room {display(state)} {label[:40]!r}; its signed label is {state.label!r}"
    return [alert(state, RoomWarning.LABEL_CHANGED, detail)]


def relay_head(room: KnownRoom, head_seq: int, head_hash: bytes) -> list[ev.Event]:
    """The head the relay says the room has must not be behind, nor another entry than, the one verified."""
    state = room.state
    if head_seq < state.head.seq:
        detail = (
            f"the relay says room {display(state)} ends at entry {head_seq}, "
            f"but entry {state.head.seq} was verified here: it is replaying an old head or withholding changes"
        )
        return [alert(state, RoomWarning.WITHHELD, detail)]
    if head_seq < len(room.hashes) and not hmac.compare_digest(head_hash, room.hashes[head_seq]):
        detail = (
            f"the relay's head of room {display(state)} ({head_hash.hex()[:16]}) is not the entry {head_seq} "
            "verified here"
        )
        return [fork(room, detail)]
    return []


def remembered_head(room: KnownRoom, seq: int, digest: bytes) -> list[ev.Event]:
    """The log now reaches entry ``seq``, which an earlier run verified as ``digest``: it must be that entry."""
    if hmac.compare_digest(room.hashes[seq], digest):
        return []
    detail = (
        f"the relay served another entry {seq} of room {display(room.state)} than the one verified here "
        "in an earlier run: two versions of this room's history exist"
    )
    return [alert(room.state, RoomWarning.FORK, detail)]


def label_moved(state: RoomState, pinned_id: bytes, pinned: RoomState | None) -> list[ev.Event]:
    """The label ``state`` carries was pinned to ``pinned_id`` (verified as ``pinned``, if this run saw it)."""
    if pinned_id == state.room_id:
        return []
    shown = display(pinned) if pinned is not None else f"{state.label}#{short_room_id(pinned_id)}"
    detail = (
        f"the relay now serves another room labelled {state.label!r} ({display(state)}) than the one "
        f"known here as {shown}; they are kept apart, and {state.label!r} still means {shown}"
    )
    return [alert(state, RoomWarning.LABEL_MOVED, detail)]


def not_sought(state: RoomState, sought: str) -> RoomAlert:
    """A find for one label answered with a room of another: it is not the room asked for, so asking
    is no consent to it (at most an invitation, if its log says someone added us)."""
    detail = (
        f"you asked for room {sought[:40]!r}, but the relay answered with room {display(state)}, labelled "
        f"{state.label!r} in its signed log; it is not followed"
    )
    return alert(state, RoomWarning.LABEL_CHANGED, detail)


def misdirected(asked: bytes, served: bytes, known: RoomState | None) -> RoomAlert:
    """The relay answered our fetch of room ``asked`` with another room's log."""
    shown = display(known) if known is not None else short_room_id(asked)
    detail = (
        f"the relay answered a fetch of room {shown} with the log of another room ({short_room_id(served)}); "
        "it is ignored, and what waits for the room asked for is judged by the log verified here"
    )
    return RoomAlert(kind=RoomWarning.BAD_LOG, detail=detail, room="" if known is None else known.label, room_id=asked)


def presence(room: KnownRoom, is_member: Callable[[RoomState, str], bool]) -> list[ev.Event]:
    """Every name the relay lists as online in the room must be a member of its verified log."""
    state = room.state
    strangers = [name for name in room.online if not is_member(state, name)]
    if not strangers:
        return []
    shown = ", ".join(strangers[:5])
    detail = (
        f"the relay lists {shown} as present in room {display(state)}, but the room's log does not: "
        "nothing is encrypted to them"
    )
    return [alert(state, RoomWarning.NOT_A_MEMBER, detail)]
