"""The relay's name registry: which identity key first claimed each name.

With ``susurro-relay --registry FILE`` the relay remembers ``name → identity
key`` across restarts and refuses a known name presented with another key
(``error{code: "name_taken"}``), so nobody can take a name while its owner is
offline or after the relay restarts. Names are compared by
``protocol.name_key``, so ``Alice``, ``alice`` and a Cyrillic lookalike are one
registered name.

The file is JSON, rewritten whole for every new name through
``crypto.files`` (a temporary file in the same directory, ``fsync``,
``os.replace``, then ``fsync`` of the directory), so a crash leaves the old
registry or the new one, never a torn file. It is read the same way as the
identity key file and the trust store: never through a symbolic link, and
refused if it is not a regular file, belongs to another user, is writable by
group or others, or sits in a directory others can write::

    {"format": "susurro-registry", "version": 1,
     "names": [{"name": "alice", "ik": "<base64 of the 32-byte identity key>"}, ...]}

A name is registered only once its owner has proven the key (a valid join
proof and certificate), and only if the file could be written: if it cannot,
the join is refused rather than admitted unrecorded. One lock guards the
names and the write, so concurrent joins for one new name cannot both win.
"""

from __future__ import annotations

import base64
import binascii
import hmac
import json
import logging
import threading
from pathlib import Path
from typing import Any

from susurro.crypto import files
from susurro.crypto.limits import IDENTITY_KEY_SIZE
from susurro.protocol import ErrorCode, ProtocolError, RemoteProtocolError, name_key, normalize_name

log = logging.getLogger("susurro.relay")

REGISTRY_FORMAT = "susurro-registry"
REGISTRY_VERSION = 1
#: Names a registry holds unless ``--registry-max-names`` says otherwise.
DEFAULT_MAX_NAMES = 100_000
#: Bytes one entry may take in the file: a 32-character name fully escaped
#: (6 bytes per character), the base64 key and the JSON around them.
_MAX_ENTRY_BYTES = 512


class RegistryError(Exception):
    """The registry file cannot be read, is corrupt, or cannot be written at startup."""


class NameRegistry:
    """``name_key → (name, identity key)``, persisted to one JSON file."""

    def __init__(self, path: Path, max_names: int = DEFAULT_MAX_NAMES) -> None:
        self.path = Path(path)
        self.max_names = max_names
        self._lock = threading.Lock()
        self._entries: dict[str, tuple[str, bytes]] = self._load()
        if not self.path.exists():
            try:  # fail at startup, not at the first join, if the file cannot be written
                self._save(self._entries)
            except OSError as exc:
                raise RegistryError(f"cannot create name registry {self.path}: {exc.strerror or exc}") from None

    def __len__(self) -> int:
        with self._lock:
            return len(self._entries)

    def identity_key(self, name: str) -> bytes | None:
        """The key registered for ``name`` (or a lookalike of it), if any."""
        with self._lock:
            entry = self._entries.get(name_key(name))
        return None if entry is None else entry[1]

    def admit(self, name: str, identity_key: bytes) -> bool:
        """Let ``name`` join with ``identity_key``, registering it if new; True if it was new.

        Raises ``RemoteProtocolError``: ``name_taken`` when the name (or a
        lookalike) is registered to another key, ``full`` when the registry
        holds ``max_names``, ``internal`` when the file cannot be written.
        """
        key = name_key(name)
        with self._lock:
            entry = self._entries.get(key)
            if entry is not None:
                registered, registered_key = entry
                if hmac.compare_digest(registered_key, identity_key):
                    return False
                looks_like = "" if registered == name else f" (it looks like {registered!r})"
                raise RemoteProtocolError(
                    ErrorCode.NAME_TAKEN,
                    f"the name {name!r}{looks_like} is registered on this relay to another identity key; "
                    "join with that name's own key file, or choose another name",
                )
            if len(self._entries) >= self.max_names:
                raise RemoteProtocolError(
                    ErrorCode.FULL, f"this relay's name registry is full ({self.max_names} names); no new names"
                )
            updated = {**self._entries, key: (name, bytes(identity_key))}
            try:
                self._save(updated)
            except OSError as exc:
                log.error("registry write failed path=%s error=%s", self.path, exc)
                raise RemoteProtocolError(
                    ErrorCode.INTERNAL, "the relay cannot record new names right now; try again later"
                ) from None
            self._entries = updated
        return True

    # --- the file -----------------------------------------------------------------

    def _max_file_bytes(self) -> int:
        return 4096 + self.max_names * _MAX_ENTRY_BYTES

    def _load(self) -> dict[str, tuple[str, bytes]]:
        try:
            files.check_directory(self.path.parent)
            data = files.read_checked(
                self.path,
                forbidden_mode=files.OTHERS_MAY_WRITE,
                max_bytes=self._max_file_bytes(),
                fix=f"whoever can write it can give names to other keys: check it, then run 'chmod 600 {self.path}'",
            )
        except files.UnsafeFile as exc:
            raise RegistryError(f"refusing name registry {self.path}: {exc}") from None
        except OSError as exc:  # the directory cannot be examined
            raise RegistryError(f"cannot read name registry {self.path}: {exc.strerror or exc}") from None
        if data is None:
            return {}
        if len(data) > self._max_file_bytes():
            raise RegistryError(
                f"name registry {self.path} is larger than {self.max_names} names can be; "
                "raise --registry-max-names if it is genuine"
            )
        try:
            document = json.loads(data.decode("utf-8"))
        except RecursionError:
            raise RegistryError(f"name registry {self.path} is corrupt: nested too deeply") from None
        except (UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise RegistryError(f"name registry {self.path} is corrupt: {exc}") from None
        return self._parse(document)

    def _parse(self, document: Any) -> dict[str, tuple[str, bytes]]:
        where = f"name registry {self.path}"
        if not isinstance(document, dict) or document.get("format") != REGISTRY_FORMAT:
            raise RegistryError(f"{where} is not a Susurro name registry")
        version = document.get("version")
        if type(version) is not int or version != REGISTRY_VERSION:
            raise RegistryError(f"{where} has version {version!r}; this relay reads version {REGISTRY_VERSION}")
        names = document.get("names")
        if not isinstance(names, list):
            raise RegistryError(f"{where} is corrupt: 'names' is not a list")
        if len(names) > self.max_names:
            raise RegistryError(f"{where} holds {len(names)} names, more than --registry-max-names ({self.max_names})")
        entries: dict[str, tuple[str, bytes]] = {}
        for index, item in enumerate(names):
            name, identity_key = self._parse_entry(item, f"{where} is corrupt: entry {index}")
            key = name_key(name)
            if key in entries:
                raise RegistryError(f"{where} is corrupt: entry {index} ({name!r}) repeats {entries[key][0]!r}")
            entries[key] = (name, identity_key)
        return entries

    @staticmethod
    def _parse_entry(item: Any, where: str) -> tuple[str, bytes]:
        if not isinstance(item, dict) or not isinstance(item.get("name"), str) or not isinstance(item.get("ik"), str):
            raise RegistryError(f"{where} is not {{'name': str, 'ik': str}}")
        name = item["name"]
        try:
            if normalize_name(name) != name:
                raise RegistryError(f"{where}: the name {name!r} is not in normalized form")
        except ProtocolError as exc:
            raise RegistryError(f"{where}: the name {name!r} breaks the name rules ({exc.detail})") from None
        try:
            identity_key = base64.b64decode(item["ik"], validate=True)
        except (binascii.Error, ValueError):
            raise RegistryError(f"{where}: the key of {name!r} is not base64") from None
        if len(identity_key) != IDENTITY_KEY_SIZE:
            raise RegistryError(f"{where}: the key of {name!r} is {len(identity_key)} bytes, not {IDENTITY_KEY_SIZE}")
        return name, identity_key

    def _save(self, entries: dict[str, tuple[str, bytes]]) -> None:
        """Replace the file atomically with ``entries`` (the caller holds the lock, or is ``__init__``)."""
        document = {
            "format": REGISTRY_FORMAT,
            "version": REGISTRY_VERSION,
            "names": [{"name": name, "ik": base64.b64encode(ik).decode("ascii")} for name, ik in entries.values()],
        }
        files.write_atomically(self.path, (json.dumps(document, indent=0) + "\n").encode("utf-8"))
