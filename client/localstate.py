"""What a client keeps on its own disk besides its key and pins: history and prekeys.

Both live under ``$SUSURRO_HOME`` and are sealed under keys derived from the
identity key (``crypto/history.py``), so they are protected exactly as the
key file is. ``open_local_state`` is shared by the terminal client and the
window.
"""

from __future__ import annotations

import os
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import msgpack
import nacl.exceptions
import nacl.secret

from susurro.crypto import CryptoError, IdentityKey, ReplayGuard
from susurro.crypto.files import private_directory, read_checked, write_atomically
from susurro.crypto.history import HistoryKey, derive_local_key
from susurro.crypto.replay import StreamState
from susurro.crypto.trust import TrustStore
from susurro.protocol.limits import ROOM_ID_SIZE

from . import events as ev
from .counters import SendCounters
from .events import WarningKind
from .history import History, NoHistory, SqliteHistory, history_opens_under
from .home import LocalFile, local_path
from .home_upgrade import adopt_named_files
from .mailbox import Mailbox
from .mailstate import MailState
from .prekeyring import PrekeyRing
from .room_invites import MAX_SAVED_CHECKS, MAX_SAVED_INVITATIONS, SavedInvitation
from .rooms import RememberedRoom
from .unconfirmed import Unconfirmed

#: A prekey file holds about 100 one-time keys and 2,000 used-key records; far below this.
MAX_PREKEY_FILE_BYTES = 1024 * 1024


def load_ring(identity: IdentityKey, path: Path) -> PrekeyRing:
    """Our prekeys from ``path`` (sealed), or a new ring if there is none yet."""
    data = read_checked(path, forbidden_mode=0o077, max_bytes=MAX_PREKEY_FILE_BYTES, fix=f"run 'chmod 600 {path}'")
    return PrekeyRing(identity) if data is None else PrekeyRing.load(identity, data)


#: The mailbox state: at most 20,000 opened-mail records, 10,000 prekeys and 10,000 deliveries.
MAX_MAIL_STATE_BYTES = 16 * 1024 * 1024


def load_mail_state(identity: IdentityKey, path: Path) -> MailState:
    """The mailbox state from ``path`` (sealed), or an empty one if there is none yet."""
    data = read_checked(path, forbidden_mode=0o077, max_bytes=MAX_MAIL_STATE_BYTES, fix=f"run 'chmod 600 {path}'")
    return MailState.empty() if data is None else MailState.unseal(identity, data)


def mailbox_saver(ring_path: Path, state_path: Path) -> Callable[[Mailbox], None]:
    """Saves the ring and the mailbox state, each atomically; called before any mail item is confirmed."""

    def save(mailbox: Mailbox) -> None:
        for path, data in ((ring_path, mailbox.ring.export()), (state_path, mailbox.export_state())):
            private_directory(path.parent)
            write_atomically(path, data)

    return save


STATE_PERSON = b"susurro/state/v1"
#: Counters and streams: at most 100,000 of each, a few MiB.
MAX_STATE_FILE_BYTES = 32 * 1024 * 1024
#: A state file that could not be opened is kept aside under its name plus this suffix, not overwritten by
#: the next save: the user may want it back (recover it, report it). One copy only: the next such file
#: replaces it, so damage that repeats at every start never takes more than one file's room on disk.
UNREADABLE_SUFFIX = ".unreadable"


class CounterState:
    """Our send counters, the streams we receive and our messages not yet confirmed, saved sealed so
    restarts keep them.

    Without it a restarted client would count again from 1 (its peers would
    see a reset), would see a false gap in every conversation whose sender
    kept running, and would forget what it still had to resend (quitting
    with receipts outstanding keeps those messages for the next start).
    Saved at most every ``interval`` seconds and when the client closes.
    """

    def __init__(self, identity: IdentityKey, path: Path, interval: float = 5.0) -> None:
        self.path = path
        self._box = nacl.secret.SecretBox(derive_local_key(identity, STATE_PERSON))
        self._interval = interval
        self._saved_at = 0.0
        self.counters = SendCounters()
        self.replay = ReplayGuard()
        #: Per relay (its label): the rooms verified there, so a label pin and a head outlive the process.
        self.rooms: dict[str, list[RememberedRoom]] = {}
        #: Set by the view once its session exists: (relay, the session's ``RoomBook.remember``).
        self.room_source: tuple[str, Callable[[], list[RememberedRoom]]] | None = None
        #: Per relay: the invitations still pending when the last run saved, and those accepted whose log
        #: had not arrived (32 of each at most a relay, each a few hundred bytes), so a restart does not
        #: lose them unsaid.
        self.invitations: dict[str, list[SavedInvitation]] = {}
        #: Set by the view once its session exists: (relay, the session's ``InviteDesk.saved``).
        self.invitation_source: tuple[str, Callable[[], list[SavedInvitation]]] | None = None
        #: Per relay: the rooms pushed to us that were not checked yet (ids only, ``MAX_SAVED_CHECKS``).
        self.checks: dict[str, list[bytes]] = {}
        #: Set by the view once its session exists: (relay, the session's ``RoomBook.saved_checks``).
        self.check_source: tuple[str, Callable[[], list[bytes]]] | None = None
        self.unconfirmed = Unconfirmed()
        #: Saved rooms, invitations and rooms to check that could not be read at load and were left out.
        self.left_out = 0
        self._said = False
        #: Why the whole file could not be opened, and where it was kept aside (``None``: it opened, or none).
        self.unreadable: str | None = None
        data = read_checked(path, forbidden_mode=0o077, max_bytes=MAX_STATE_FILE_BYTES, fix=f"run 'chmod 600 {path}'")
        if data is not None:
            self._load(data)

    def _load(self, data: bytes) -> None:
        try:
            plain = self._box.decrypt(data)
        except (nacl.exceptions.CryptoError, ValueError, TypeError):
            # Never half-read: a file that fails authentication gives nothing of what it holds.
            self._start_afresh("it could not be decrypted (damaged, or sealed under another key)")
            return
        try:
            self._read(msgpack.unpackb(plain, raw=False, strict_map_key=False))
        except (nacl.exceptions.CryptoError, CryptoError, ValueError, TypeError, KeyError):
            self._start_afresh("it was decrypted but its contents are not what this version writes")

    def _read(self, state: Any) -> None:
        for conv, key, n in state["send"]:
            self.counters.table[(str(conv), bytes(key))] = int(n)
        streams: OrderedDict[tuple[bytes, str], StreamState] = OrderedDict()
        for key, conv, last, missing in state["recv"]:
            streams[(bytes(key), str(conv))] = StreamState(last=int(last), missing={int(m) for m in missing})
        self.replay.streams = streams
        left_out = LeftOut()
        self.rooms = _saved_rooms(state.get("rooms", {}), left_out)
        if "unconfirmed" in state:  # files from before it keep their counters
            self.unconfirmed = Unconfirmed.load(state["unconfirmed"])
        self.replay.ended_sessions.update((bytes(key), None) for key in state.get("ended", []))
        self.invitations = _saved_invitations(state.get("invitations"), left_out)
        self.checks = _saved_checks(state.get("checks"), left_out)
        self.left_out = left_out.count

    def _start_afresh(self, why: str) -> None:
        """The whole file is unusable: nothing of it is kept (peers see a reset), the client does not crash,
        the file is kept aside rather than overwritten at the next save, and the user is told at start."""
        self.counters = SendCounters()
        self.replay = ReplayGuard()
        self.unconfirmed = Unconfirmed()
        self.rooms, self.invitations, self.checks, self.left_out = {}, {}, {}, 0
        self.unreadable = f"{self.path} could not be opened: {why}; {self._keep_aside()}"

    def _keep_aside(self) -> str:
        aside = self.path.with_name(self.path.name + UNREADABLE_SUFFIX)
        try:
            os.replace(self.path, aside)  # replaces an earlier copy: one at most (UNREADABLE_SUFFIX)
        except OSError as exc:
            return f"it could not be kept aside ({exc.strerror or exc}) and will be overwritten"
        return f"it was kept as {aside}"

    def load_warnings(self) -> list[ev.Warning]:
        """Once: that the saved state could not be opened, or that saved entries were left out (nothing is
        lost unsaid)."""
        if self._said:
            return []
        self._said = True
        if self.unreadable is not None:
            return [ev.Warning(kind=WarningKind.SAVED_STATE_UNREADABLE, detail=self.unreadable)]
        if self.left_out == 0:
            return []
        detail = f"{self.left_out} saved entries of {self.path} could not be read and were left out"
        return [ev.Warning(kind=WarningKind.SAVED_ENTRY_UNREADABLE, detail=detail)]

    def save(self, now: float, *, force: bool = False) -> None:
        if not force and now - self._saved_at < self._interval:
            return
        self._saved_at = now
        state = {
            "send": [[conv, key, n] for (conv, key), n in self.counters.table.items()],
            "recv": [[key, conv, s.last, sorted(s.missing)] for (key, conv), s in self.replay.streams.items()],
            "rooms": self._rooms_to_save(),
            "unconfirmed": self.unconfirmed.export(),
            "ended": list(self.replay.ended_sessions),
            "invitations": self._invitations_to_save(),
            "checks": self._checks_to_save(),
        }
        private_directory(self.path.parent)
        write_atomically(self.path, bytes(self._box.encrypt(msgpack.packb(state, use_bin_type=True))))

    def _rooms_to_save(self) -> dict[str, list[list[object]]]:
        if self.room_source is not None:
            relay, remember = self.room_source
            self.rooms[relay] = remember()
        return {relay: _remembered_rows(rooms) for relay, rooms in self.rooms.items()}

    def _checks_to_save(self) -> dict[str, list[bytes]]:
        if self.check_source is not None:
            relay, waiting = self.check_source
            self.checks[relay] = waiting()
        return {relay: ids[:MAX_SAVED_CHECKS] for relay, ids in self.checks.items() if ids}

    def _invitations_to_save(self) -> dict[str, list[list[object]]]:
        if self.invitation_source is not None:
            relay, pending = self.invitation_source
            self.invitations[relay] = pending()
        rows = {relay: [i.row() for i in kept[:MAX_SAVED_INVITATIONS]] for relay, kept in self.invitations.items()}
        return {relay: kept for relay, kept in rows.items() if kept}


_Row = TypeVar("_Row")


@dataclass
class LeftOut:
    """How many saved entries a load could not read: counted, so the user is told (``load_warnings``)."""

    count: int = 0


def _per_relay(stored: object, left_out: LeftOut) -> list[tuple[str, list[object]]]:
    """The state file's ``{relay: [row, ...]}`` table; a relay whose key or rows are not that counts as one."""
    if not isinstance(stored, dict):
        left_out.count += stored is not None
        return []
    tables = [(relay, rows) for relay, rows in stored.items() if isinstance(relay, str) and isinstance(rows, list)]
    left_out.count += len(stored) - len(tables)
    return tables


def _kept_rows(rows: list[object], read: Callable[[object], _Row | None], bound: int, left_out: LeftOut) -> list[_Row]:
    """The first ``bound`` of ``rows`` that ``read`` accepts; every other row is counted as left out."""
    valid = [r for r in map(read, rows[:bound]) if r is not None]
    left_out.count += len(rows) - len(valid)
    return valid


def _saved_rooms(stored: object, left_out: LeftOut) -> dict[str, list[RememberedRoom]]:
    """The state file's remembered rooms, per relay; a row that is not one is left out (and counted), never
    costing the rest of the file."""
    kept: dict[str, list[RememberedRoom]] = {}
    for relay, rows in _per_relay(stored, left_out):
        kept[relay] = _kept_rows(rows, _remembered_room, len(rows), left_out)
    return kept


def _remembered_room(row: object) -> RememberedRoom | None:
    if not (isinstance(row, list | tuple) and len(row) == 4):
        return None
    room_id, label, seq, digest = row
    if not (isinstance(room_id, bytes) and len(room_id) == ROOM_ID_SIZE and isinstance(label, str)):
        return None
    if not (type(seq) is int and seq >= 0 and isinstance(digest, bytes)):
        return None
    return RememberedRoom(room_id, label, seq, digest)


def _room_id(value: object) -> bytes | None:
    return value if isinstance(value, bytes) and len(value) == ROOM_ID_SIZE else None


def _saved_checks(stored: object, left_out: LeftOut) -> dict[str, list[bytes]]:
    """The state file's rooms still to check: per relay, the first ``MAX_SAVED_CHECKS`` room ids (anything
    else in their place is left out and counted, as for the invitations)."""
    kept: dict[str, list[bytes]] = {}
    for relay, ids in _per_relay(stored, left_out):
        if valid := _kept_rows(ids, _room_id, MAX_SAVED_CHECKS, left_out):
            kept[relay] = valid
    return kept


def _saved_invitations(stored: object, left_out: LeftOut) -> dict[str, list[SavedInvitation]]:
    """The state file's invitations: per relay, the first ``MAX_SAVED_INVITATIONS`` rows that are exactly what
    this client writes (``SavedInvitation.from_row``); anything else is left out (and counted), and never
    costs the counters and streams saved beside them."""
    kept: dict[str, list[SavedInvitation]] = {}
    for relay, rows in _per_relay(stored, left_out):
        if valid := _kept_rows(rows, SavedInvitation.from_row, MAX_SAVED_INVITATIONS, left_out):
            kept[relay] = valid
    return kept


def _remembered_rows(rooms: list[RememberedRoom]) -> list[list[object]]:
    return [[r.room_id, r.label, r.seq, r.hash] for r in rooms]


def _opens(load: Callable[[bytes], object]) -> Callable[[Path], bool]:
    def opens(path: Path) -> bool:
        try:
            load(path.read_bytes())
        except (nacl.exceptions.CryptoError, CryptoError, ValueError, TypeError, KeyError, OSError):
            return False
        return True

    return opens


def _openers(identity: IdentityKey) -> dict[LocalFile, Callable[[Path], bool]]:
    """How to tell whether a file from before files were kept per key is this key's."""
    state_box = nacl.secret.SecretBox(derive_local_key(identity, STATE_PERSON))
    history_key = HistoryKey.derive(identity)
    return {
        LocalFile.HISTORY: lambda path: history_opens_under(path, history_key),
        LocalFile.PREKEYS: _opens(lambda data: PrekeyRing.load(identity, data)),
        LocalFile.STATE: _opens(state_box.decrypt),
        LocalFile.MAIL: _opens(lambda data: MailState.unseal(identity, data)),
    }


def open_local_state(
    identity: IdentityKey,
    name: str,
    trust: TrustStore,
    *,
    keep_history: bool = True,
    notice: Callable[[str], None] = lambda _text: None,
) -> tuple[History, Mailbox, CounterState]:
    """The history (nothing kept without ``keep_history``), the mailbox part with its saved prekeys,
    and the saved counters (its ``replay`` guard is the one the mailbox and the session share).

    Each is this identity key's own file; one from before, named by ``name``, is taken over if it
    opens under this key, and what is left to another key is said through ``notice``."""
    for text in adopt_named_files(identity.public, name, _openers(identity)):
        notice(text)
    history: History = (
        SqliteHistory(local_path(LocalFile.HISTORY, identity.public), HistoryKey.derive(identity))
        if keep_history
        else NoHistory()
    )
    counters = CounterState(identity, local_path(LocalFile.STATE, identity.public))
    if isinstance(history, SqliteHistory):  # ids already seen outlive the process, next to the messages
        history.keep_seen(counters.replay)
    ring, mail = local_path(LocalFile.PREKEYS, identity.public), local_path(LocalFile.MAIL, identity.public)
    mailbox = Mailbox(
        identity,
        name,
        trust,
        counters.replay,
        ring=load_ring(identity, ring),
        save=mailbox_saver(ring, mail),
        state=load_mail_state(identity, mail),
    )
    return history, mailbox, counters
