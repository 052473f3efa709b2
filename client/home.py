"""Where the client keeps its files: ``$SUSURRO_HOME`` (default ``~/.config/susurro``)."""

from __future__ import annotations

import os
import unicodedata
from pathlib import Path


def susurro_home() -> Path:
    configured = os.environ.get("SUSURRO_HOME")
    return Path(configured).expanduser() if configured else Path.home() / ".config" / "susurro"


def identity_path(name: str) -> Path:
    """One identity key file per name (casefolded: ``Alice`` and ``alice`` share one).

    Names are validated before they get here, so they are safe as file names.
    """
    return susurro_home() / "identities" / f"{unicodedata.normalize('NFKC', name.casefold())}.key"


def trust_path() -> Path:
    """The pinned identity keys of everyone this user has met (shared by all their names)."""
    return susurro_home() / "trust.json"


def history_path(name: str) -> Path:
    """One encrypted history file per identity name (``client/history.py``)."""
    return susurro_home() / "history" / f"{unicodedata.normalize('NFKC', name.casefold())}.sqlite3"


def prekeys_path(name: str) -> Path:
    """Our prekeys' private halves, sealed (``client/prekeyring.py``), one file per identity name."""
    return susurro_home() / "prekeys" / f"{unicodedata.normalize('NFKC', name.casefold())}.ring"


def state_path(name: str) -> Path:
    """Our message counters and the streams we receive, sealed (``client/localstate.py``)."""
    return susurro_home() / "state" / f"{unicodedata.normalize('NFKC', name.casefold())}.state"


def mail_state_path(name: str) -> Path:
    """What the mailbox part remembers (mail opened, newest prekeys, deliveries), sealed (``client/mailstate.py``)."""
    return susurro_home() / "state" / f"{unicodedata.normalize('NFKC', name.casefold())}.mail"
