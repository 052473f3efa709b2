"""Identity keys (Ed25519, long-term) and their key file.

The key file is a small JSON document, versioned so later formats (a
passphrase-protected one is planned) can be told apart::

    {"format": "susurro-identity", "version": 1, "protection": "none",
     "seed": "<base64 of the 32-byte Ed25519 seed>"}

It is written 0600 through a temporary file and an atomic hard link (which
never overwrites), and on load a file readable by group or others, owned by
another user, reached through a symlink, or in a directory others can write
is refused: a copied or swapped identity key lets someone impersonate its owner.
"""

from __future__ import annotations

import base64
import binascii
import json
import os
import stat
from pathlib import Path

import nacl.exceptions
import nacl.signing

from .encoding import signing_payload
from .errors import BadSignature, KeyFileError
from .fingerprint import fingerprint, fingerprint_bytes

KEY_FILE_FORMAT = "susurro-identity"
KEY_FILE_VERSION = 1
SEED_SIZE = 32
SIGNATURE_SIZE = 64
PUBLIC_KEY_SIZE = 32
_MAX_KEY_FILE_BYTES = 64 * 1024
#: Never follow a symlink to or from a key file (absent on Windows).
_NOFOLLOW = getattr(os, "O_NOFOLLOW", 0)


class IdentityKey:
    """A user's long-term Ed25519 signing key. Never leaves the client."""

    __slots__ = ("_signing",)

    def __init__(self, signing_key: nacl.signing.SigningKey) -> None:
        self._signing = signing_key

    @classmethod
    def generate(cls) -> IdentityKey:
        return cls(nacl.signing.SigningKey.generate())

    @classmethod
    def from_seed(cls, seed: bytes) -> IdentityKey:
        if len(seed) != SEED_SIZE:
            raise KeyFileError(f"an identity seed is {SEED_SIZE} bytes, got {len(seed)}")
        return cls(nacl.signing.SigningKey(seed))

    @property
    def public(self) -> bytes:
        """The 32-byte Ed25519 public key, as sent to the relay and pinned by peers."""
        return bytes(self._signing.verify_key)

    @property
    def fingerprint(self) -> str:
        return fingerprint(self.public)

    @property
    def fingerprint_bytes(self) -> bytes:
        return fingerprint_bytes(self.public)

    def sign(self, purpose: bytes, *fields: bytes | str | int) -> bytes:
        """Detached signature over ``signing_payload(purpose, *fields)``."""
        return self._signing.sign(signing_payload(purpose, *fields)).signature

    def seed(self) -> bytes:
        """The secret seed, for the key file only."""
        return bytes(self._signing)

    def __repr__(self) -> str:  # never print the secret
        return f"IdentityKey(fingerprint={self.fingerprint!r})"


def verify_signature(identity_public: bytes, signature: bytes, purpose: bytes, *fields: bytes | str | int) -> None:
    """Raise ``BadSignature`` unless ``signature`` is ``identity_public``'s over these fields.

    PyNaCl raises ``ValueError``/``TypeError`` rather than ``BadSignatureError``
    for a key or signature of the wrong length; both mean "not valid" here.
    The signature is always passed separately, never prepended to the message.
    """
    if len(signature) != SIGNATURE_SIZE:
        raise BadSignature(f"a signature is {SIGNATURE_SIZE} bytes, got {len(signature)}")
    try:
        key = nacl.signing.VerifyKey(identity_public)
        key.verify(signing_payload(purpose, *fields), signature)
    except (nacl.exceptions.BadSignatureError, ValueError, TypeError) as exc:
        raise BadSignature(f"signature does not verify ({purpose.decode()})") from exc


def save_identity(key: IdentityKey, path: Path) -> None:
    """Write ``key`` to ``path`` (mode 0600, atomically). Refuses to overwrite.

    The file is written under a temporary name and hard-linked into place:
    ``link`` fails if ``path`` exists, so two processes creating the same
    identity cannot both believe they own the key on disk.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    _check_directory(path.parent)
    document = {
        "format": KEY_FILE_FORMAT,
        "version": KEY_FILE_VERSION,
        "protection": "none",
        "seed": base64.b64encode(key.seed()).decode("ascii"),
    }
    temp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    fd = os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | _NOFOLLOW, 0o600)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            json.dump(document, handle)
            handle.write("\n")
            handle.flush()
            os.fsync(handle.fileno())
        os.link(temp, path)
    except FileExistsError:
        raise KeyFileError(f"{path} already exists; refusing to overwrite an identity key") from None
    finally:
        temp.unlink(missing_ok=True)


def _check_directory(directory: Path) -> None:
    """Refuse a key directory others can write to: they could swap the key file."""
    if os.name != "posix":
        return
    mode = directory.stat().st_mode
    if mode & (stat.S_IWGRP | stat.S_IWOTH) and not mode & stat.S_ISVTX:
        raise KeyFileError(
            f"{directory} is writable by other users (mode {stat.S_IMODE(mode):o}); "
            f"run 'chmod 700 {directory}' or keep keys elsewhere"
        )


def load_identity(path: Path) -> IdentityKey:
    """Read an identity key file, refusing unknown formats, loose permissions and links.

    The checks and the read use one open file descriptor (``O_NOFOLLOW`` +
    ``fstat``), so the file cannot be swapped between checking and reading.
    """
    path = Path(path)
    if path.parent.exists():
        _check_directory(path.parent)
    try:
        fd = os.open(path, os.O_RDONLY | _NOFOLLOW)
    except FileNotFoundError:
        raise KeyFileError(f"no identity key file at {path}") from None
    except OSError as exc:
        raise KeyFileError(f"cannot open identity key file {path}: {exc.strerror or exc}") from None
    try:
        with os.fdopen(fd, "rb") as handle:
            info = os.fstat(handle.fileno())
            if os.name == "posix":
                if info.st_mode & (stat.S_IRWXG | stat.S_IRWXO):
                    raise KeyFileError(
                        f"{path} is readable by other users (mode {stat.S_IMODE(info.st_mode):o}); "
                        f"run 'chmod 600 {path}' if you trust it, or create a new identity"
                    )
                if info.st_uid != os.getuid():
                    raise KeyFileError(f"{path} belongs to another user; refusing to use it as your identity")
            if not stat.S_ISREG(info.st_mode):
                raise KeyFileError(f"{path} is not a regular file")
            if info.st_size > _MAX_KEY_FILE_BYTES:
                raise KeyFileError(f"{path} is too large to be a Susurro key file")
            document = json.loads(handle.read(_MAX_KEY_FILE_BYTES + 1).decode("utf-8"))
    except RecursionError:
        raise KeyFileError(f"{path} is not a Susurro identity key file (nested too deeply)") from None
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise KeyFileError(f"cannot read identity key file {path}: {exc}") from None
    if not isinstance(document, dict) or document.get("format") != KEY_FILE_FORMAT:
        raise KeyFileError(f"{path} is not a Susurro identity key file")
    version = document.get("version")
    if type(version) is not int or version != KEY_FILE_VERSION:  # JSON true == 1 in Python
        raise KeyFileError(
            f"{path} has key file version {document.get('version')!r}; this Susurro reads version {KEY_FILE_VERSION}"
        )
    if document.get("protection") != "none":
        raise KeyFileError(f"{path} uses protection {document.get('protection')!r}, which this version cannot open")
    try:
        seed = base64.b64decode(str(document.get("seed", "")), validate=True)
    except (binascii.Error, ValueError):
        raise KeyFileError(f"{path} holds a damaged key (seed is not base64)") from None
    return IdentityKey.from_seed(seed)


def load_or_create_identity(path: Path) -> tuple[IdentityKey, bool]:
    """Load the key at ``path``, creating one on first use. Returns (key, created)."""
    path = Path(path)
    if os.path.lexists(path):  # a dangling symlink is "there" too, and refused
        return load_identity(path), False
    key = IdentityKey.generate()
    save_identity(key, path)
    return key, True
