"""Where the client keeps its files: ``$SUSURRO_HOME`` (default ``~/.config/susurro``).

The identity key file is found by name (it is what a name signs in with).
Everything sealed under that key (history, prekeys, counters, mailbox state)
is found by the key itself: a new key made for the same name, or a second
key file used with ``--identity``, gets files of its own instead of finding
another key's it cannot open (``client/home_upgrade.py`` moves files from
before this, which were named by name).
"""

from __future__ import annotations

import enum
import os
import unicodedata
from pathlib import Path

import nacl.encoding
import nacl.hash

from susurro.crypto.keytypes import IdentityPublicKey

#: Names one identity key's files; short, and says nothing a reader of the directory could use.
_KEY_TAG_PERSON = b"susurro/home/v1"
KEY_TAG_BYTES = 16


def susurro_home() -> Path:
    configured = os.environ.get("SUSURRO_HOME")
    return Path(configured).expanduser() if configured else Path.home() / ".config" / "susurro"


def _file_name(name: str) -> str:
    """Names are validated before they get here, so they are safe as file names (casefolded:
    ``Alice`` and ``alice`` share one)."""
    return unicodedata.normalize("NFKC", name.casefold())


def identity_path(name: str) -> Path:
    """One identity key file per name."""
    return susurro_home() / "identities" / f"{_file_name(name)}.key"


def trust_path() -> Path:
    """The pinned identity keys of everyone this user has met (shared by all their names)."""
    return susurro_home() / "trust.json"


class LocalFile(enum.Enum):
    """A file sealed under one identity key: (its folder, its suffix)."""

    #: The encrypted history (``client/history.py``).
    HISTORY = ("history", ".sqlite3")
    #: Our prekeys' private halves (``client/prekeyring.py``).
    PREKEYS = ("prekeys", ".ring")
    #: Message counters, the streams we receive, room pins (``client/localstate.py``).
    STATE = ("state", ".state")
    #: What the mailbox part remembers: mail opened, newest prekeys, deliveries (``client/mailstate.py``).
    MAIL = ("state", ".mail")


def key_tag(public: IdentityPublicKey) -> str:
    digest: bytes = nacl.hash.blake2b(
        public, digest_size=KEY_TAG_BYTES, person=_KEY_TAG_PERSON, encoder=nacl.encoding.RawEncoder
    )
    return digest.hex()


def local_path(kind: LocalFile, public: IdentityPublicKey) -> Path:
    """Where ``kind`` lives for the identity key ``public``."""
    folder, suffix = kind.value
    # "@" is in no name, so a key's file can never be taken for a name's from before.
    return susurro_home() / folder / f"key@{key_tag(public)}{suffix}"


def named_path(kind: LocalFile, name: str) -> Path:
    """Where ``kind`` lived before files were kept per key: one per name, whatever its key."""
    folder, suffix = kind.value
    return susurro_home() / folder / f"{_file_name(name)}{suffix}"


def history_path(public: IdentityPublicKey) -> Path:
    return local_path(LocalFile.HISTORY, public)
