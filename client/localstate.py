"""What a client keeps on its own disk besides its key and pins: history and prekeys.

Both live under ``$SUSURRO_HOME`` and are sealed under keys derived from the
identity key (``crypto/history.py``), so they are protected exactly as the
key file is. ``open_local_state`` is shared by the terminal client and the
window.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from susurro.crypto import IdentityKey, ReplayGuard
from susurro.crypto.files import private_directory, read_checked, write_atomically
from susurro.crypto.history import HistoryKey
from susurro.crypto.trust import TrustStore

from .history import History, NoHistory, SqliteHistory
from .home import history_path, prekeys_path
from .mailbox import Mailbox
from .prekeyring import PrekeyRing

#: A prekey file holds about 100 one-time keys and 2,000 used-key records; far below this.
MAX_PREKEY_FILE_BYTES = 1024 * 1024


def load_ring(identity: IdentityKey, path: Path) -> PrekeyRing:
    """Our prekeys from ``path`` (sealed), or a new ring if there is none yet."""
    data = read_checked(path, forbidden_mode=0o077, max_bytes=MAX_PREKEY_FILE_BYTES, fix=f"run 'chmod 600 {path}'")
    return PrekeyRing(identity) if data is None else PrekeyRing.load(identity, data)


def ring_saver(path: Path) -> Callable[[PrekeyRing], None]:
    def save(ring: PrekeyRing) -> None:
        private_directory(path.parent)
        write_atomically(path, ring.export())

    return save


def open_local_state(
    identity: IdentityKey, name: str, trust: TrustStore, *, keep_history: bool = True
) -> tuple[History, Mailbox]:
    """The history (nothing kept without ``keep_history``) and the mailbox part with its saved prekeys."""
    history: History = SqliteHistory(history_path(name), HistoryKey.derive(identity)) if keep_history else NoHistory()
    path = prekeys_path(name)
    mailbox = Mailbox(identity, name, trust, ReplayGuard(), ring=load_ring(identity, path), save=ring_saver(path))
    return history, mailbox
