"""Files that hold security state: the identity key file, the trust store, the relay's name registry.

Each of them is worth attacking: a copied key file impersonates its owner, a
rewritten trust store marks an attacker's key verified, a rewritten registry
gives a name to another key. So all three are read and written here, the
same way:

- **Reading** uses one descriptor for every check and the read (``O_NOFOLLOW``
  open, ``fstat``, read), so the file cannot be swapped between checking and
  reading: a symbolic link, anything but a regular file, a file owned by
  another user, or one with mode bits the caller forbids is refused. The read
  is bounded (``max_bytes + 1``, so the caller can tell an oversized file).
  ``O_NONBLOCK`` keeps a FIFO planted at the path from hanging the reader
  until the regular-file check refuses it.
- **Directories** that others can write to (without the sticky bit) are
  refused: whoever can write the directory can delete or swap the file in
  it, whatever the file's own mode says.
- **Writing** goes to a fresh 0600 temporary file beside the target
  (``O_EXCL``, never through a link), is flushed with ``fsync``, and is put
  in place with ``os.replace`` (or ``os.link``, which refuses an existing
  target), then the directory is synced: a crash leaves the old file or the
  new one, never a torn one.

The callers keep their own error types and words; reading raises
``UnsafeFile`` (a check refused the file, or the system would not open it),
writing ``OSError``.
"""

from __future__ import annotations

import errno
import os
import stat
import tempfile
from pathlib import Path

#: Never follow a symbolic link at the file itself (absent on Windows).
NOFOLLOW = getattr(os, "O_NOFOLLOW", 0)
_NONBLOCK = getattr(os, "O_NONBLOCK", 0)
#: Mode bits a secret file (the identity key) must not have: nobody else may read it.
OTHERS_MAY_READ_OR_WRITE = stat.S_IRWXG | stat.S_IRWXO
#: Mode bits a file others may read but must not change (trust store, registry) must not have.
OTHERS_MAY_WRITE = stat.S_IWGRP | stat.S_IWOTH


class UnsafeFile(Exception):
    """A security file or its directory failed a check; the message says which and how to fix it."""


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


def check_directory(directory: Path) -> None:
    """Raise ``UnsafeFile`` if others can swap files in ``directory`` (nothing to check if it is absent)."""
    if not directory.exists():
        return
    problem = shared_directory_problem(directory)
    if problem is not None:
        raise UnsafeFile(problem)


def private_directory(directory: Path) -> None:
    """Create ``directory`` (mode 0700) if needed, and refuse it if others can write it."""
    directory.mkdir(parents=True, exist_ok=True, mode=0o700)
    check_directory(directory)


def read_checked(path: Path, *, forbidden_mode: int, max_bytes: int, fix: str) -> bytes | None:
    """The bytes of ``path``, at most ``max_bytes + 1``; ``None`` if there is no file.

    Raises ``UnsafeFile`` for a symbolic link, anything but a regular file, a
    file owned by another user, one with any of the ``forbidden_mode`` bits
    (``fix`` is appended to that refusal: what the user can do about it), or
    one the system will not let us read.
    """
    try:
        return _read_checked(path, forbidden_mode, max_bytes, fix)
    except OSError as exc:
        reason = "it is a symbolic link, which is never followed" if exc.errno == errno.ELOOP else exc.strerror
        raise UnsafeFile(f"cannot open {path}: {reason or exc}") from None


def _read_checked(path: Path, forbidden_mode: int, max_bytes: int, fix: str) -> bytes | None:
    try:
        fd = os.open(path, os.O_RDONLY | NOFOLLOW | _NONBLOCK)
    except FileNotFoundError:
        return None
    with os.fdopen(fd, "rb") as handle:
        info = os.fstat(handle.fileno())
        if not stat.S_ISREG(info.st_mode):
            raise UnsafeFile(f"{path} is not a regular file")
        if os.name == "posix":
            loose = info.st_mode & forbidden_mode
            if loose:
                how = "readable" if loose & 0o044 else "writable" if loose & 0o022 else "usable"
                raise UnsafeFile(f"{path} is {how} by other users (mode {stat.S_IMODE(info.st_mode):o}); {fix}")
            if info.st_uid != os.getuid():
                raise UnsafeFile(f"{path} belongs to another user (uid {info.st_uid}, not {os.getuid()})")
        return handle.read(max_bytes + 1)


def write_atomically(path: Path, data: bytes, *, create_only: bool = False) -> None:
    """Put ``data`` at ``path`` (mode 0600) so that a crash leaves the old file or the new one.

    With ``create_only`` an existing ``path`` (even a dangling link) is never
    replaced: ``FileExistsError``, and nothing changes.
    """
    directory = path.parent
    # mkstemp opens with O_EXCL (and O_NOFOLLOW where there is one), mode 0600.
    fd, temp_name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=directory)
    temp = Path(temp_name)
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        if create_only:
            os.link(temp, path)  # fails if path exists: two creators cannot both win
        else:
            os.replace(temp, path)
    finally:
        temp.unlink(missing_ok=True)
    _sync_directory(directory)


def _sync_directory(directory: Path) -> None:
    """Make the new directory entry durable (skipped where directories cannot be opened)."""
    if os.name != "posix":
        return
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
