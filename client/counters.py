"""Our message counters per (conversation, recipient): they run on across rotations and reconnects (pure).

Each copy of a message carries, inside its pairwise encryption, our counter
for that conversation and recipient. Receivers keep the last one per (our
identity key, conversation) as well as per session key, so a copy the relay
drops just before a rotation, a reconnect or (with a state file) a restart
still shows as a gap. ``conversation_of`` names a conversation the same way
on both sides, from what the message signs.
"""

from __future__ import annotations

from collections.abc import Iterable, MutableMapping
from dataclasses import dataclass

from susurro.crypto import SessionPublicKey

#: Conversations and recipients counted; past it the least recently used are forgotten.
MAX_COUNTERS = 100_000


def conversation_of(direct: bool, room: str, room_id: bytes | None = None) -> str:
    """The conversation a message belongs to: ``dm`` for a direct message, ``room:NAME`` for the
    relay-wide room, and ``room:`` and the room id in hex for a room of signed membership.

    A room is named by its id, never by its label: a room re-created under the same label, or
    one labelled ``main``, must not continue another conversation's counters.
    """
    if direct:
        return "dm"
    return f"room:{room_id.hex()}" if room_id is not None else f"room:{room}"


#: What opens mailbox copies, for the replay guard (``via``): our prekeys, not a session key.
MAILBOX_VIA = b"mailbox"


@dataclass(frozen=True, slots=True)
class Arrival:
    """How a copy came, for its counter check: by its sender's ``session`` (None: it waited in our
    mailbox), opened by our key ``via`` (which tells a resend from a replay)."""

    session: SessionPublicKey | None
    via: bytes


class SendCounters:
    """(conversation, recipient identity key) -> the last counter we used."""

    def __init__(self, table: MutableMapping[tuple[str, bytes], int] | None = None) -> None:
        #: May be a state file's table, so the counters survive restarts too.
        self.table: MutableMapping[tuple[str, bytes], int] = table if table is not None else {}

    def next_for(self, conversation: str, identity_key: bytes) -> int:
        return self.table.get((conversation, identity_key), 0) + 1

    def advance(self, conversation: str, identity_keys: Iterable[bytes]) -> None:
        """The copies exist now: count them."""
        for key in identity_keys:
            entry = (conversation, key)
            self.table[entry] = self.table.pop(entry, 0) + 1  # re-inserted: most recently used last
        while len(self.table) > MAX_COUNTERS:
            del self.table[next(iter(self.table))]
