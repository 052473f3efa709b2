"""Who we believe each name is: pinned identity keys (trust on first use).

The relay tells us which identity key belongs to a name; an untrusted relay
could lie. The trust store remembers the first key seen for each name and
flags any later difference, so a relay that swaps a key is caught the next
time, and people who compared safety numbers mark the key *verified*.

States, per name and key:

- ``new``: first sight; the key is pinned now.
- ``pinned``: the key matches the one pinned earlier.
- ``verified``: pinned, and the user compared safety numbers.
- ``changed``: the key differs from the pinned one; the client encrypts
  nothing to it until the user accepts the new key.

The store also remembers, for each pinned key, the newest session-certificate
time seen, so a relay cannot bring back an older session of that person (a
*stale* certificate), even after the client restarts.

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

try:  # POSIX; elsewhere two clients sharing one file may overwrite each other's pins
    import fcntl
except ImportError:  # pragma: no cover
    fcntl = None  # type: ignore[assignment]

TRUST_FILE_FORMAT = "susurro-trust"
TRUST_FILE_VERSION = 1
#: Contacts pinned automatically; past this, new names are still checked but not pinned.
MAX_CONTACTS = 50_000
#: The user's own decisions (verify, accept) may go past MAX_CONTACTS up to this.
MAX_FILE_CONTACTS = MAX_CONTACTS + 10_000
MAX_TRUST_FILE_BYTES = 32 * 1024 * 1024
_KEY_SIZE = 32
_MAX_NAME_CHARS = 256
_MAX_TIMESTAMP = 2**40


class TrustState(str, enum.Enum):
    NEW = "new"
    PINNED = "pinned"
    VERIFIED = "verified"
    CHANGED = "changed"


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
        """No room for automatic pins (the user's own decisions still fit)."""
        with self._lock:
            return len(self._contacts) >= MAX_CONTACTS

    def is_stale(self, name: str, identity_key: bytes, issued_at: int) -> bool:
        """True if a certificate of the pinned key is older than the newest one seen."""
        with self._lock:
            pinned = self._contacts.get(self._key_of(name))
            return pinned is not None and pinned.identity_key == identity_key and issued_at < pinned.newest_certificate

    # --- changes -------------------------------------------------------------

    def observe(self, name: str, identity_key: bytes, issued_at: int, *, pin: bool = True) -> TrustState:
        """Record a sighting: pin a first-seen name (if ``pin`` and there is room), note a newer certificate.

        Returns the state *as seen* (``new`` on first sight, though the key is
        pinned from now on). A changed key is not re-pinned: that takes
        ``accept``.
        """
        with self._lock:
            state = self.state(name, identity_key)
            key = self._key_of(name)
            if state is TrustState.NEW:
                if pin and len(self._contacts) < MAX_CONTACTS:
                    self._contacts[key] = Contact(name, identity_key, False, issued_at)
                    self._changed[key] = "pin"
            elif state is not TrustState.CHANGED:
                pinned = self._contacts[key]
                if issued_at > pinned.newest_certificate:
                    pinned.newest_certificate = issued_at
                    self._changed.setdefault(key, "seen")
            return state

    def accept(self, name: str, identity_key: bytes, issued_at: int = 0) -> None:
        """Pin ``identity_key`` for ``name`` in place of the old key (not verified)."""
        self._decide(Contact(name, identity_key, False, issued_at))

    def mark_verified(self, name: str, identity_key: bytes, issued_at: int = 0) -> None:
        """The user compared safety numbers for this key: pin it as verified."""
        with self._lock:
            pinned = self._contacts.get(self._key_of(name))
            newest = pinned.newest_certificate if pinned is not None and pinned.identity_key == identity_key else 0
            self._decide(Contact(name, identity_key, True, max(newest, issued_at)))

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
            self._contacts[key] = contact
            self._changed[key] = "user"

    # --- persistence -----------------------------------------------------------

    def save(self) -> None:
        """Write the store if it changed, merged with what is on disk now.

        Raises ``TrustStoreError`` on failure (the pins stay in memory).
        """
        with self._lock:
            if not self._changed or self.path is None:
                self._changed.clear()
                return
            try:
                with self._file_lock():
                    self._contacts = self._merge(self._read())
                    files.write_atomically(self.path, self._serialize())
            except OSError as exc:
                raise TrustStoreError(f"cannot save pinned keys to {self.path}: {exc.strerror or exc}") from None
            self._changed.clear()

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
            "contacts": [
                {
                    "name": c.name,
                    "identity_key": c.identity_key.hex(),
                    "verified": c.verified,
                    "newest_certificate": c.newest_certificate,
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
        except OSError as exc:
            raise TrustStoreError(f"cannot open the trust file {path}: {exc.strerror or exc}") from None
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
        entries = document.get("contacts")
        if not isinstance(entries, list) or len(entries) > MAX_FILE_CONTACTS:
            raise bad("the contact list is missing or too long")
        contacts: dict[str, Contact] = {}
        for entry in entries:
            if not isinstance(entry, dict):
                raise bad("a contact is not an object")
            name, key_hex = entry.get("name"), entry.get("identity_key")
            verified, newest = entry.get("verified"), entry.get("newest_certificate")
            if not isinstance(name, str) or not 0 < len(name) <= _MAX_NAME_CHARS:
                raise bad("a contact has no valid name")
            if not isinstance(key_hex, str) or len(key_hex) != 2 * _KEY_SIZE:
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
            contacts[key_name] = Contact(name, key, verified, newest)
        return contacts
