"""Files from before they were kept per identity key, when they were one per name.

Such a file is moved to the key's own place only if it opens under this key
(it is this key's, made before the change). One that does not open is
another key's (a key made again for the same name, or another key file used
with ``--identity``) or damaged: it is left exactly where it is, so the key
it belongs to can still take it, and this key starts afresh, and the user is
told so in words. The decision is pure (``plan``); ``adopt_named_files``
does the moves.
"""

from __future__ import annotations

import enum
import functools
import os
from collections.abc import Callable, Mapping
from pathlib import Path

from susurro.crypto.keytypes import IdentityPublicKey

from .home import LocalFile, local_path, named_path


class Step(enum.Enum):
    NOTHING = "nothing"
    MOVE = "move"
    LEAVE = "leave"


def plan(named_exists: bool, keyed_exists: bool, opens: Callable[[], bool]) -> Step:
    """What to do with one file kind. ``opens`` is asked only when it matters."""
    if keyed_exists or not named_exists:
        return Step.NOTHING  # already per key (a named file beside it is someone else's), or nothing old
    return Step.MOVE if opens() else Step.LEAVE


#: What each file is, in the words the user is told.
_WHAT = {
    LocalFile.HISTORY: "history",
    LocalFile.PREKEYS: "prekeys (mail sealed to the old ones cannot be opened by this key)",
    LocalFile.STATE: "message counters (people you write to see them start again)",
    LocalFile.MAIL: "record of opened mail and receipts",
}

#: SQLite's companions of a history file in WAL mode, moved with it.
_COMPANIONS = ("-wal", "-shm")


def adopt_named_files(
    public: IdentityPublicKey, name: str, opens: Mapping[LocalFile, Callable[[Path], bool]]
) -> list[str]:
    """Move this key's files named by ``name`` to its own; returns what to tell the user about the rest."""
    said = []
    for kind, opener in opens.items():
        named, keyed = named_path(kind, name), local_path(kind, public)
        step = plan(named.exists(), keyed.exists(), functools.partial(opener, named))
        if step is Step.MOVE:
            keyed.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
            os.replace(named, keyed)
            for companion in _COMPANIONS:
                extra = named.with_name(named.name + companion)
                if extra.exists():
                    os.replace(extra, keyed.with_name(keyed.name + companion))
        elif step is Step.LEAVE:
            said.append(
                f"{named} was kept for the name {name} by another identity key (or is damaged) and does not "
                f"open under this one: it is left as it is, and this key starts its own {_WHAT[kind]} in {keyed}"
            )
    return said
