"""Checks shared by the files that hold security state (key files, the trust store)."""

from __future__ import annotations

import os
import stat
from pathlib import Path


def shared_directory_problem(directory: Path) -> str | None:
    """Why ``directory`` is unsafe for security state, or None if it is fine.

    A directory other users can write to (without the sticky bit) lets them
    delete or swap the files in it, whatever the files' own modes say.
    """
    if os.name != "posix":
        return None
    mode = directory.stat().st_mode
    if mode & (stat.S_IWGRP | stat.S_IWOTH) and not mode & stat.S_ISVTX:
        return f"{directory} is writable by other users (mode {stat.S_IMODE(mode):o}); run 'chmod 700 {directory}'"
    return None
