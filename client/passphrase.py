"""Getting a passphrase from the person (or script) at the keyboard, and
opening, creating or re-protecting their identity key file with it.

Passphrases come from one of two places: a prompt on the terminal
(``getpass``, which reads ``/dev/tty`` with echo off) or a file named with
``--passphrase-file`` (its first line), for scripts and tests. They never
come from the command line, where other users could read them in ``ps``.
Shared by the terminal client and any other front end that opens key files.
"""

from __future__ import annotations

import getpass
import os
import stat
from collections.abc import Callable
from pathlib import Path

from susurro.crypto import (
    IdentityKey,
    KeyFileError,
    PassphraseRequired,
    WrongPassphrase,
    change_passphrase,
    is_protected,
    load_identity,
    load_or_create_identity,
)

#: A passphrase file is one line; anything longer is not one.
MAX_PASSPHRASE_FILE_BYTES = 4096

Ask = Callable[[str], str]


class PassphraseMismatch(KeyFileError):
    """The two passphrases typed when setting one differ."""

    kind = "passphrase_mismatch"


class PassphraseCancelled(KeyFileError):
    """The person pressed Ctrl-C or Ctrl-D at a passphrase prompt."""

    kind = "passphrase_cancelled"


def ask_on_terminal(prompt: str) -> str:
    """``getpass`` on the controlling terminal; Ctrl-C or Ctrl-D cancels cleanly."""
    try:
        return getpass.getpass(prompt)
    except (EOFError, KeyboardInterrupt):
        raise PassphraseCancelled("no passphrase given (cancelled)") from None


def read_passphrase_file(path: Path) -> str:
    """The first line of ``path`` (without its line ending) as the passphrase.

    A regular file that group or others can read is refused: a passphrase
    left readable protects nothing. Pipes (``/dev/fd/3``) are fine.
    """
    path = Path(path)
    try:
        with open(path, "rb") as handle:
            info = os.fstat(handle.fileno())
            if os.name == "posix" and stat.S_ISREG(info.st_mode) and info.st_mode & (stat.S_IRWXG | stat.S_IRWXO):
                raise KeyFileError(
                    f"passphrase file {path} is readable by other users "
                    f"(mode {stat.S_IMODE(info.st_mode):o}); run 'chmod 600 {path}'"
                )
            data = handle.read(MAX_PASSPHRASE_FILE_BYTES + 1)
    except OSError as exc:
        raise KeyFileError(f"cannot read passphrase file {path}: {exc.strerror or exc}") from None
    if len(data) > MAX_PASSPHRASE_FILE_BYTES:
        raise KeyFileError(f"passphrase file {path} is longer than {MAX_PASSPHRASE_FILE_BYTES} bytes")
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        raise KeyFileError(f"passphrase file {path} is not UTF-8 text") from None
    line = text.split("\n", 1)[0].removesuffix("\r")
    if not line:
        raise KeyFileError(f"passphrase file {path} is empty (the passphrase is its first line)")
    return line


def ask_new_passphrase(ask: Ask, allow_empty: bool = False) -> str | None:
    """Ask twice for a new passphrase; ``None`` if empty and ``allow_empty``."""
    hint = " (empty for none)" if allow_empty else ""
    first = ask(f"New passphrase{hint}: ")
    if not first and allow_empty:
        return None
    if not first:
        raise KeyFileError("an empty passphrase protects nothing; leave out --passphrase instead")
    if ask("Repeat the passphrase: ") != first:
        raise PassphraseMismatch("the two passphrases differ; nothing was changed")
    return first


#: Tries at a passphrase typed on the terminal before giving up (a file's passphrase gets one).
PASSPHRASE_TRIES = 3


def open_identity(
    key_file: Path,
    *,
    protect: bool,
    passphrase: str | None,
    interactive: bool,
    ask: Ask = ask_on_terminal,
    busy: Callable[[str], None] | None = None,
    tries: int = PASSPHRASE_TRIES,
) -> tuple[IdentityKey, bool]:
    """Load ``key_file`` or create it; returns (key, created).

    ``protect`` (``--passphrase``) makes a new file passphrase-protected,
    asking twice; ``passphrase`` (from ``--passphrase-file``) is used as is.
    An existing protected file is opened with ``passphrase`` or, on a
    terminal, by asking (up to ``tries`` times if it is wrong); elsewhere it
    is ``PassphraseRequired``. ``busy`` is told before the slow key
    derivation (argon2id, about a second), so the person knows to wait.
    """
    key_file = Path(key_file)
    say = busy or (lambda _text: None)
    if not os.path.lexists(key_file):
        if protect and passphrase is None:
            if not interactive:
                raise PassphraseRequired("--passphrase needs a terminal to ask on; use --passphrase-file FILE")
            passphrase = ask_new_passphrase(ask)
        if passphrase is not None:
            say("protecting the new key…")
        return load_or_create_identity(key_file, passphrase)
    if passphrase is not None or not is_protected(key_file):
        if passphrase is not None:
            say("unlocking key…")
        return load_identity(key_file, passphrase), False
    if not interactive:
        raise PassphraseRequired(
            f"{key_file} is protected by a passphrase; run on a terminal to be asked, or use --passphrase-file FILE"
        )
    left = max(1, tries)
    while True:
        typed = ask(f"Passphrase for {key_file}: ")
        say("unlocking key…")
        try:
            return load_identity(key_file, typed), False
        except WrongPassphrase:
            left -= 1
            if not left:
                raise
            say(f"wrong passphrase; try again ({left} {'try' if left == 1 else 'tries'} left)")


def identity_is_protected(key_file: Path) -> bool:
    """``is_protected``, but False for a file that cannot be read (loading will already have said why)."""
    try:
        return is_protected(key_file)
    except KeyFileError:
        return False


def change_identity_passphrase(
    key_file: Path, *, passphrase: str | None, interactive: bool, ask: Ask = ask_on_terminal
) -> bool:
    """Add, change or remove the passphrase of ``key_file``, asking on the terminal.

    ``passphrase`` (from ``--passphrase-file``) is the *current* one. Returns
    whether the file is protected afterwards.
    """
    key_file = Path(key_file)
    if not interactive:
        raise KeyFileError("--change-passphrase asks for the new passphrase on a terminal; run it in one")
    if passphrase is None and is_protected(key_file):
        passphrase = ask(f"Current passphrase for {key_file}: ")
    load_identity(key_file, passphrase)  # a wrong passphrase fails before asking for a new one
    new = ask_new_passphrase(ask, allow_empty=True)
    change_passphrase(key_file, passphrase, new)
    return new is not None
