"""The ids of messages already accepted, kept next to the history so a restart does not forget them.

The replay guard (``crypto/replay.py``) remembers, per (sender, message id),
the signed content's digest and the keys its copies came by, to tell a
sender's resend (same content, a key no earlier copy came by: dropped,
confirmed again) from a new message. In memory only, a restarted recipient
forgot them: a message it had shown whose receipt was lost came again after
the restart (the sender resends what was never confirmed) and was shown a
second time. So the window is kept in the history file, in a table of its own:

- each row is sealed under the history key (``HistoryKey.seal_bytes``) and
  named only by a keyed hash of (sender, id), like a history row;
- rows are written in the same transaction as the messages shown with them
  (``SqliteHistory.add_many``), so a message is never in the history without
  its id, nor its id saved without the message (whose receipt a crash in
  between would otherwise leave unsent while the resend is dropped);
- each keeps the sender, the id and the signed content's digest, not the
  keys its copies came by (session keys of a process that has ended: no
  copy opens by them again);
- at most ``MAX_SEEN_IDS`` rows, the oldest deleted first.

``--no-history`` keeps nothing on disk, these rows included: a restarted
client with it may show a resent message twice.
"""

from __future__ import annotations

import sqlite3
from typing import Any

import msgpack

from susurro.crypto.errors import CryptoError
from susurro.crypto.history import HistoryKey

from .unconfirmed import MAX_UNCONFIRMED

#: Ids kept on disk (about 300 bytes each, padded). A sender resends only what it still keeps
#: unconfirmed, at most ``MAX_UNCONFIRMED`` (1,000) messages: this covers twenty senders each
#: resending all of theirs after our restart. The window in memory stays larger (100,000).
MAX_SEEN_IDS = 20 * MAX_UNCONFIRMED
#: One id's row: a name, an id and a 32-byte digest; far below this.
MAX_SEEN_ROW = 1024
_KIND = "seen"

SCHEMA = """
CREATE TABLE IF NOT EXISTS seen (
    seq   INTEGER PRIMARY KEY AUTOINCREMENT,
    label BLOB NOT NULL UNIQUE,
    box   BLOB NOT NULL
);
"""

#: (sender, msg_id, the signed content's digest)
SeenEntry = tuple[str, str, bytes]


class SeenRows:
    """The ``seen`` table of one history file: ids accepted since the last write wait in ``pending``."""

    def __init__(self, key: HistoryKey, limit: int = MAX_SEEN_IDS) -> None:
        self._key = key
        self.limit = limit
        self._pending: dict[tuple[str, str], bytes] = {}

    def put(self, sender: str, msg_id: str, digest: bytes) -> None:
        """The guard accepted it (``SeenStore``): written with the next messages stored, or at close."""
        self._pending[(sender, msg_id)] = digest
        while len(self._pending) > self.limit:  # the newest ``limit`` are all the table would keep
            self._pending.pop(next(iter(self._pending)))

    def write(self, db: sqlite3.Connection) -> None:
        """Write what is pending (inside the caller's transaction, which calls ``committed`` after its
        ``COMMIT``), then trim to ``limit``."""
        if not self._pending:
            return
        rows = [
            (
                self._key.label(_KIND, f"{sender}\0{msg_id}"),
                self._key.seal_bytes(msgpack.packb([_KIND, sender, msg_id, digest], use_bin_type=True)),
            )
            for (sender, msg_id), digest in self._pending.items()
        ]
        db.executemany(
            "INSERT INTO seen (label, box) VALUES (?, ?) ON CONFLICT (label) DO UPDATE SET box = excluded.box", rows
        )
        db.execute("DELETE FROM seen WHERE seq <= (SELECT MAX(seq) FROM seen) - ?", (self.limit,))

    def committed(self) -> None:
        """What ``write`` wrote is on disk (a transaction rolled back keeps it pending for the next)."""
        self._pending.clear()

    def load(self, db: sqlite3.Connection) -> list[SeenEntry]:
        """Every row that opens, oldest first (one that does not, damaged or another key's, is skipped)."""
        entries: list[SeenEntry] = []
        query = "SELECT box FROM seen ORDER BY seq DESC LIMIT ?"
        for (box,) in reversed(db.execute(query, (self.limit,)).fetchall()):
            entry = self._open(box)
            if entry is not None:
                entries.append(entry)
        return entries

    def _open(self, box: bytes) -> SeenEntry | None:
        try:
            plaintext = self._key.open_bytes(box)
        except CryptoError:
            return None
        if len(plaintext) > MAX_SEEN_ROW:
            return None
        try:
            value: Any = msgpack.unpackb(plaintext, raw=False, max_map_len=0, max_ext_len=0)
        except (ValueError, TypeError):
            return None
        if type(value) is not list or len(value) != 4 or value[0] != _KIND:
            return None
        _, sender, msg_id, digest = value
        if not (type(sender) is str and type(msg_id) is str and type(digest) is bytes):
            return None
        return sender, msg_id, digest
