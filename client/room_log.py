"""What the client holds of one room it verified: the log's state, its entry hashes, who was a member when. Pure.

``KnownRoom`` is ``rooms.RoomBook``'s record of a room. Besides the verified
``RoomState`` it keeps the hash of every entry (to recognise another history
of the room) and, per identity key, the spans of entries during which that
key was a member (``members_at``: a room message is judged by the members at
the head it was signed at, not only by today's). ``heads`` holds what was
shown beyond the verified log (``room_heads``). ``RememberedRoom`` is what
outlives the process of a room, and ``RULES`` what a log takes as a name.
"""

from __future__ import annotations

import hmac
from dataclasses import dataclass, field

from susurro.crypto import EntryKind, LogRules, RoomEntry, RoomState
from susurro.protocol import ProtocolError, name_key, normalize_name

from .room_heads import RoomHeads

#: Rooms of one relay whose label pin and verified head outlive the process (a client's own file).
MAX_REMEMBERED_ROOMS = 1024
#: Rooms of one relay this client follows at once: anyone may add us to rooms (an admin's ``add``
#: needs no consent), and each one followed costs its log's hashes and spans.
MAX_KNOWN_ROOMS = MAX_REMEMBERED_ROOMS


@dataclass(frozen=True, slots=True)
class RememberedRoom:
    """What a client keeps of a room between runs: its label (the pin) and the head it verified."""

    room_id: bytes
    label: str
    seq: int
    hash: bytes


def _valid_name(text: str) -> bool:
    try:
        return normalize_name(text) == text
    except ProtocolError:
        return False


RULES = LogRules(name_key=name_key, name_ok=_valid_name)


@dataclass(slots=True)
class MemberSpan:
    """Entries ``start`` up to (not including) ``end`` during which a key was a member, under ``name``."""

    start: int
    name: str
    end: int | None = None
    #: The identity key that signed the entry opening the span (the create's or the add's signer):
    #: whether we are in a room by our own act or by someone else's is read from here, over the whole log.
    by: bytes = b""


@dataclass(slots=True)
class KnownRoom:
    state: RoomState
    #: seq -> hash of every entry verified, to recognise a history that forks.
    hashes: list[bytes]
    #: The heads shown beyond the verified log, and the send gate they make.
    heads: RoomHeads = field(default_factory=RoomHeads)
    #: Names the relay said were online, as of its last frame.
    online: tuple[str, ...] = ()
    #: identity key -> when it was a member, for "a member at the head a message was signed at".
    spans: dict[bytes, list[MemberSpan]] = field(default_factory=dict)
    #: Why the room's history is known to have forked (empty: it is not).
    forked: str = ""
    #: Every evidence of a fork seen (its detail), and those the user chose to go on sending after
    #: (``/resume-room``): the same evidence again only warns.
    fork_evidence: set[str] = field(default_factory=set)
    accepted_forks: set[str] = field(default_factory=set)
    #: The fetch sent after a reconnect, until answered: sends wait for it (empty: none).
    refreshing: str = ""

    def record_spans(self, from_seq: int, entries: list[bytes]) -> None:
        """Entries ``from_seq``... were verified: open and close the membership spans they add and remove."""
        for offset, data in enumerate(entries):  # verified already: parsing cannot fail
            entry = RoomEntry.from_bytes(data)
            spans = self.spans.setdefault(entry.subject_ik, [])
            if entry.kind is EntryKind.ADD:
                spans.append(MemberSpan(from_seq + offset, entry.subject_name, by=entry.signer))
            elif entry.kind in (EntryKind.REMOVE, EntryKind.LEAVE) and spans:
                spans[-1].end = from_seq + offset

    def own_span(self, own_ik: bytes) -> MemberSpan | None:
        """Our newest membership span in the log verified here (None: never a member)."""
        spans = self.spans.get(own_ik)
        return spans[-1] if spans else None

    def conflicts(self, seq: int, digest: bytes) -> bool:
        """Entry ``seq`` is verified here, with another hash than ``digest``."""
        return seq < len(self.hashes) and not hmac.compare_digest(digest, self.hashes[seq])

    def members_at(self, seq: int) -> dict[bytes, str]:
        """Identity key -> name of the members at entry ``seq`` (at most the verified head)."""
        seq = min(seq, self.state.head.seq)
        return {
            ik: span.name
            for ik, spans in self.spans.items()
            for span in spans
            if span.start <= seq and (span.end is None or seq < span.end)
        }
