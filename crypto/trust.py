"""Who we believe each name is: pinned identity keys (trust on first use).

The relay tells us which identity key belongs to a name; an untrusted relay
could lie. The trust store remembers the first key seen for each name and
flags any later difference, so a relay that swaps a key is caught the next
time, and people who compared safety numbers mark the key *verified*.

States, per name and key:

- ``new``: first sight; the key is pinned now, within the automatic budget
  described below.
- ``pinned``: the key matches the one pinned earlier.
- ``verified``: pinned, and the user compared safety numbers.
- ``changed``: the key differs from the pinned one; the client encrypts
  nothing to it until the user accepts the new key.

The store also remembers, for each pinned key, the newest session-certificate
time seen, so a relay cannot bring back an older session of that person (a
*stale* certificate), even after the client restarts.

Pins have two sources, because a relay must not be able to use up the
store (it could then substitute the key of anyone met later without a
``changed``): *seen* pins are made automatically when the relay introduces
someone, at most ``MAX_AUTO_PINS_PER_DAY`` a UTC day (counted in the file, so
reconnects and restarts do not reset it) and ``MAX_CONTACTS`` in all; *user*
pins are made by the user's own acts (a direct message, verify, accept) and
may use a reserve of ``MAX_FILE_CONTACTS - MAX_CONTACTS`` that automatic pins
never touch. A relay can spend the automatic budget; only the user spends the
reserve.

Names are compared by a key the caller chooses (the client passes the
protocol's lookalike-folding ``name_key``), so ``alice`` and ``ALICE`` are one
contact. The file is JSON, written atomically (temp file + ``os.replace``),
mode 0600, and refused if other users could have written it or its directory.
Two clients of the same user may share the file: each save takes a lock,
re-reads the file and merges (the user's own decisions win, certificate times
only move forward), so neither erases what the other learned.
"""

from __future__ import annotations

import contextlib
import dataclasses
import enum
import json
import os
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

from . import files
from .errors import CryptoError
from .limits import IDENTITY_KEY_SIZE, MAX_NAME_CHARS

try:  # POSIX; elsewhere two clients sharing one file may overwrite each other's pins
    import fcntl
except ImportError:  # pragma: no cover
    fcntl = None  # type: ignore[assignment]

TRUST_FILE_FORMAT = "susurro-trust"
TRUST_FILE_VERSION = 1
#: Contacts pinned automatically; past this, new names are still checked but not pinned.
MAX_CONTACTS = 50_000
#: The user's own acts (direct message, verify, accept) may go past MAX_CONTACTS up to this.
MAX_FILE_CONTACTS = MAX_CONTACTS + 10_000
#: Automatic pins per UTC day. A relay inventing people can spend this each day
#: (and must keep it up for MAX_CONTACTS / this many days to fill the automatic
#: part), never the reserve above.
MAX_AUTO_PINS_PER_DAY = 1_000
_SECONDS_PER_DAY = 86_400
MAX_TRUST_FILE_BYTES = 32 * 1024 * 1024
_MAX_TIMESTAMP = 2**40


class TrustState(str, enum.Enum):
    NEW = "new"
    PINNED = "pinned"
    VERIFIED = "verified"
    CHANGED = "changed"


class PinSource(str, enum.Enum):
    """Why a name was pinned: the relay introduced it (automatic) or the user acted on it."""

    SEEN = "seen"
    USER = "user"


class TrustStoreError(CryptoError):
    """The trust file cannot be read or written; the message says which and why."""

    kind = "trust_store"


@dataclass(slots=True)
class Contact:
    """A pinned name: its identity key, whether it was verified, newest certificate seen."""

    name: str
    identity_key: bytes
    verified: bool = False
    newest_certificate: int = 0
    source: PinSource = PinSource.SEEN


class TrustStore:
    """Pins, verification marks and certificate freshness; thread-safe.

    With ``path=None`` the store lives in memory only (tests, scripts that
    must not touch the user's files).
    """

    def __init__(self, path: Path | None = None, key_of: Callable[[str], str] = str) -> None:
        self.path = Path(path) if path is not None else None
        self._key_of = key_of
        self._lock = threading.RLock()
        self._contacts: dict[str, Contact] = {}
        #: What this process changed since the last save, and how: "pin" (first
        #: sight), "seen" (a newer certificate) or "user" (verify/accept/unverify).
        self._changed: dict[str, str] = {}
        #: (UTC day number, automatic pins made that day), shared through the file.
        self._auto_day = (0, 0)
        self._budget_changed = False
        self._auto_day_on_disk = (0, 0)
        #: How many pins are automatic (kept with the contacts, so ``full`` is O(1)).
        self._seen_pins = 0

    @classmethod
    def open(cls, path: Path, key_of: Callable[[str], str] = str) -> TrustStore:
        """Load the store at ``path`` (an absent file is an empty store)."""
        store = cls(path, key_of)
        store._load()
        return store

    # --- queries -----------------------------------------------------------

    def contact(self, name: str) -> Contact | None:
        with self._lock:
            found = self._contacts.get(self._key_of(name))
            return None if found is None else dataclasses.replace(found)

    def state(self, name: str, identity_key: bytes) -> TrustState:
        """How ``identity_key`` for ``name`` compares with the pin; no side effect."""
        with self._lock:
            pinned = self._contacts.get(self._key_of(name))
            if pinned is None:
                return TrustState.NEW
            if pinned.identity_key != identity_key:
                return TrustState.CHANGED
            return TrustState.VERIFIED if pinned.verified else TrustState.PINNED

    @property
    def full(self) -> bool:
        """No room for automatic pins at all (the user's own acts still fit)."""
        with self._lock:
            return self._seen_pins >= MAX_CONTACTS

    def auto_pins_left(self, now: float) -> int:
        """Automatic pins still allowed on the UTC day of ``now``."""
        with self._lock:
            day, count = self._auto_day
            spent = count if day == _day_of(now) else 0
            return max(0, MAX_AUTO_PINS_PER_DAY - spent)

    def is_stale(self, name: str, identity_key: bytes, issued_at: int) -> bool:
        """True if a certificate of the pinned key is older than the newest one seen."""
        with self._lock:
            pinned = self._contacts.get(self._key_of(name))
            return pinned is not None and pinned.identity_key == identity_key and issued_at < pinned.newest_certificate

    # --- changes -------------------------------------------------------------

    def observe(
        self, name: str, identity_key: bytes, issued_at: int, *, pin: bool = True, now: float = 0.0
    ) -> TrustState:
        """Record a sighting: pin a first-seen name (if ``pin`` and the automatic budget allows), note a newer
        certificate.

        ``now`` (seconds since the epoch) picks the UTC day whose automatic
        budget a pin spends. Returns the state *as seen* (``new`` on first
        sight, though the key may be pinned from now on: ``contact`` says). A
        changed key is not re-pinned: that takes ``accept``.
        """
        with self._lock:
            state = self.state(name, identity_key)
            key = self._key_of(name)
            if state is TrustState.NEW:
                if pin and not self.full and self.auto_pins_left(now) > 0:
                    self._contacts[key] = Contact(name, identity_key, False, issued_at, PinSource.SEEN)
                    self._seen_pins += 1
                    self._changed[key] = "pin"
                    day, count = self._auto_day
                    self._auto_day = (_day_of(now), count + 1 if day == _day_of(now) else 1)
                    self._budget_changed = True
            elif state is not TrustState.CHANGED:
                pinned = self._contacts[key]
                if issued_at > pinned.newest_certificate:
                    pinned.newest_certificate = issued_at
                    self._changed.setdefault(key, "seen")
            return state

    def remember(self, name: str, identity_key: bytes, issued_at: int = 0) -> TrustState:
        """The user acted on ``name`` (e.g. sent them a direct message): pin a first-seen key from the reserve.

        Only a ``new`` name is pinned; a pinned, verified or changed one is
        left as it is (a changed key still takes ``accept``). Returns the
        state before. Raises ``TrustStoreError`` when even the reserve is full.
        """
        with self._lock:
            state = self.state(name, identity_key)
            if state is TrustState.NEW:
                key = self._key_of(name)
                if len(self._contacts) >= MAX_FILE_CONTACTS:
                    raise TrustStoreError(
                        f"the trust store holds {len(self._contacts)} contacts, its limit; "
                        f"remove old ones from {self.path} first"
                    )
                self._contacts[key] = Contact(name, identity_key, False, issued_at, PinSource.USER)
                self._changed[key] = "pin"
            return state

    def accept(self, name: str, identity_key: bytes, issued_at: int = 0) -> None:
        """Pin ``identity_key`` for ``name`` in place of the old key (not verified)."""
        self._decide(Contact(name, identity_key, False, issued_at, PinSource.USER))

    def mark_verified(self, name: str, identity_key: bytes, issued_at: int = 0) -> None:
        """The user compared safety numbers for this key: pin it as verified."""
        with self._lock:
            pinned = self._contacts.get(self._key_of(name))
            newest = pinned.newest_certificate if pinned is not None and pinned.identity_key == identity_key else 0
            self._decide(Contact(name, identity_key, True, max(newest, issued_at), PinSource.USER))

    def unverify(self, name: str) -> None:
        with self._lock:
            pinned = self._contacts.get(self._key_of(name))
            if pinned is not None and pinned.verified:
                self._decide(dataclasses.replace(pinned, verified=False))

    def _decide(self, contact: Contact) -> None:
        """Record a decision of the user's; it wins over anything another client saved."""
        with self._lock:
            key = self._key_of(contact.name)
            if key not in self._contacts and len(self._contacts) >= MAX_FILE_CONTACTS:
                raise TrustStoreError(
                    f"the trust store holds {len(self._contacts)} contacts, its limit; "
                    f"remove old ones from {self.path} first"
                )
            replaced = self._contacts.get(key)
            if replaced is not None and replaced.source is PinSource.SEEN:
                self._seen_pins -= 1
            self._contacts[key] = contact
            self._changed[key] = "user"

    # --- persistence -----------------------------------------------------------

    def save(self) -> None:
        """Write the store if it changed, merged with what is on disk now.

        Raises ``TrustStoreError`` on failure (the pins stay in memory).
        """
        with self._lock:
            if not (self._changed or self._budget_changed) or self.path is None:
                self._changed.clear()
                self._budget_changed = False
                return
            try:
                with self._file_lock():
                    self._contacts = self._merge(self._read())
                    self._recount()
                    # Two clients' counts for one day: the larger (never lower the spend).
                    self._auto_day = max(self._auto_day, self._auto_day_on_disk)
                    files.write_atomically(self.path, self._serialize())
            except OSError as exc:
                raise TrustStoreError(f"cannot save pinned keys to {self.path}: {exc.strerror or exc}") from None
            self._changed.clear()
            self._budget_changed = False

    def _merge(self, on_disk: dict[str, Contact]) -> dict[str, Contact]:
        """What another client saved, updated with what this one changed.

        The user's decisions here win; a first-sight pin yields to a pin another
        client made first (first use is first use); certificate times only rise.
        Entries this client did not touch are taken from disk as they are now.
        """
        merged = dict(on_disk)
        for key, how in self._changed.items():
            mine = self._contacts.get(key)
            if mine is None:
                continue
            theirs = merged.get(key)
            if theirs is None or how == "user":
                merged[key] = mine
            elif theirs.identity_key == mine.identity_key:
                theirs.newest_certificate = max(theirs.newest_certificate, mine.newest_certificate)
        return merged

    def _serialize(self) -> bytes:
        document = {
            "format": TRUST_FILE_FORMAT,
            "version": TRUST_FILE_VERSION,
            "auto_pins": list(self._auto_day),
            "contacts": [
                {
                    "name": c.name,
                    "identity_key": c.identity_key.hex(),
                    "verified": c.verified,
                    "newest_certificate": c.newest_certificate,
                    "source": c.source.value,
                }
                for c in self._contacts.values()
            ],
        }
        return json.dumps(document, ensure_ascii=False, separators=(",", ":")).encode("utf-8")

    @contextlib.contextmanager
    def _file_lock(self) -> Iterator[None]:
        """An exclusive lock on a side file, so read-merge-write is atomic between clients."""
        assert self.path is not None
        try:
            files.private_directory(self.path.parent)
        except files.UnsafeFile as exc:
            raise TrustStoreError(f"refusing to keep pinned keys in {self.path.parent}: {exc}") from None
        lock = self.path.with_name(f".{self.path.name}.lock")
        fd = os.open(lock, os.O_RDWR | os.O_CREAT | files.NOFOLLOW, 0o600)
        try:
            if fcntl is not None:
                fcntl.flock(fd, fcntl.LOCK_EX)
            yield
        finally:
            os.close(fd)  # closing releases the lock

    def _load(self) -> None:
        assert self.path is not None
        try:
            files.check_directory(self.path.parent)
        except files.UnsafeFile as exc:
            raise TrustStoreError(f"refusing pinned keys in {self.path.parent}: {exc}") from None
        self._contacts = self._read()
        self._recount()
        self._auto_day = self._auto_day_on_disk

    def _recount(self) -> None:
        self._seen_pins = sum(c.source is PinSource.SEEN for c in self._contacts.values())

    def _read(self) -> dict[str, Contact]:
        """The contacts on disk now (none if there is no file yet)."""
        assert self.path is not None
        path = self.path
        try:
            data = files.read_checked(
                path,
                forbidden_mode=files.OTHERS_MAY_WRITE,
                max_bytes=MAX_TRUST_FILE_BYTES,
                fix=f"whoever can write it can mark keys verified: check it, then run 'chmod 600 {path}'",
            )
        except files.UnsafeFile as exc:
            raise TrustStoreError(str(exc)) from None
        if data is None:
            return {}
        if len(data) > MAX_TRUST_FILE_BYTES:
            raise TrustStoreError(f"{path} is larger than {MAX_TRUST_FILE_BYTES} bytes; not a trust file")
        try:
            document = json.loads(data.decode("utf-8"))
        except RecursionError:
            raise TrustStoreError(f"{path} is not a Susurro trust file (nested too deeply)") from None
        except (UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise TrustStoreError(f"cannot read the trust file {path}: {exc}") from None
        return self._parse(document)

    def _parse(self, document: object) -> dict[str, Contact]:
        path = self.path

        def bad(why: str) -> TrustStoreError:
            return TrustStoreError(
                f"{path} is damaged ({why}); move it away to start pinning afresh (every contact will show as new)"
            )

        if not isinstance(document, dict) or document.get("format") != TRUST_FILE_FORMAT:
            raise bad("not a Susurro trust file")
        version = document.get("version")
        if type(version) is not int or version != TRUST_FILE_VERSION:
            raise bad(f"version {version!r}; this Susurro reads version {TRUST_FILE_VERSION}")
        # Absent in files written before the daily budget: nothing spent yet.
        auto_pins = document.get("auto_pins", [0, 0])
        if (
            not isinstance(auto_pins, list)
            or len(auto_pins) != 2
            or any(type(n) is not int or not 0 <= n < _MAX_TIMESTAMP for n in auto_pins)
        ):
            raise bad("the automatic pin count is not two small integers")
        self._auto_day_on_disk = (auto_pins[0], auto_pins[1])
        entries = document.get("contacts")
        if not isinstance(entries, list) or len(entries) > MAX_FILE_CONTACTS:
            raise bad("the contact list is missing or too long")
        contacts: dict[str, Contact] = {}
        for entry in entries:
            if not isinstance(entry, dict):
                raise bad("a contact is not an object")
            name, key_hex = entry.get("name"), entry.get("identity_key")
            verified, newest = entry.get("verified"), entry.get("newest_certificate")
            if not isinstance(name, str) or not 0 < len(name) <= MAX_NAME_CHARS:
                raise bad("a contact has no valid name")
            if not isinstance(key_hex, str) or len(key_hex) != 2 * IDENTITY_KEY_SIZE:
                raise bad(f"the key of {name!r} is not 64 hex digits")
            try:
                key = bytes.fromhex(key_hex)
            except ValueError:
                raise bad(f"the key of {name!r} is not 64 hex digits") from None
            if type(verified) is not bool or type(newest) is not int or not 0 <= newest < _MAX_TIMESTAMP:
                raise bad(f"the entry of {name!r} has bad fields")
            key_name = self._key_of(name)
            if key_name in contacts:
                raise bad(f"{name!r} is pinned twice")
            try:  # absent in older files: those pins were all automatic
                source = PinSource(entry.get("source", PinSource.SEEN.value))
            except ValueError:
                raise bad(f"the entry of {name!r} has an unknown source") from None
            contacts[key_name] = Contact(name, key, verified, newest, source)
        return contacts


def _day_of(now: float) -> int:
    """The UTC day number of ``now`` (seconds since the epoch)."""
    return int(now // _SECONDS_PER_DAY)
