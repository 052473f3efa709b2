"""Where the client keeps its files: ``$SUSURRO_HOME`` (default ``~/.config/susurro``)."""

from __future__ import annotations

import os
from pathlib import Path

from protocol import name_key


def susurro_home() -> Path:
    configured = os.environ.get("SUSURRO_HOME")
    return Path(configured).expanduser() if configured else Path.home() / ".config" / "susurro"


def identity_path(name: str) -> Path:
    """One identity key file per name; names are already validated, so safe as file names."""
    return susurro_home() / "identities" / f"{name_key(name)}.key"
