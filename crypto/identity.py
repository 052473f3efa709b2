"""Identity keys (Ed25519, long-term) and their key file.

The key file is a small JSON document, versioned so readers can tell formats
apart. ``protection`` says how the secret is kept::

    {"format": "susurro-identity", "version": 1, "protection": "none",
     "seed": "<base64 of the 32-byte Ed25519 seed>"}

    {"format": "susurro-identity", "version": 1, "protection": "argon2id",
     "salt": "<base64, 16 bytes>", "opslimit": 3, "memlimit": 268435456,
     "box": "<base64 of SecretBox(key, seed): 24-byte nonce + 48 bytes>"}

With a passphrase, ``key = argon2id(NFC(passphrase), salt, opslimit,
memlimit)`` (libsodium's MODERATE limits by default) and the seed is sealed
with ``SecretBox``. Salt and limits are inputs to the key, so altering any of
them, or the box, makes the file fail to open exactly as a wrong passphrase
does; the limits are bounded before any work is done, so a hostile file
cannot make the client allocate gigabytes or spin for minutes.

Files are written 0600 through a temporary file and an atomic hard link
(which never overwrites; a passphrase change uses ``os.replace``), and on
load a file readable by group or others, owned by another user, reached
through a symlink, or in a directory others can write is refused: a copied
or swapped identity key lets someone impersonate its owner.
"""

from __future__ import annotations

import base64
import binascii
import functools
import json
import os
import unicodedata
from pathlib import Path
from typing import Any

import nacl.exceptions
import nacl.pwhash.argon2id
import nacl.secret
import nacl.signing
import nacl.utils

from . import files
from .encoding import signing_payload
from .errors import BadSignature, KeyFileError, PassphraseRequired, WrongPassphrase
from .fingerprint import fingerprint, fingerprint_bytes
from .keytypes import IdentityPublicKey
from .limits import SEED_SIZE, SIGNATURE_SIZE

KEY_FILE_FORMAT = "susurro-identity"
KEY_FILE_VERSION = 1
_MAX_KEY_FILE_BYTES = 64 * 1024

PROTECTION_NONE = "none"
PROTECTION_ARGON2ID = "argon2id"
SALT_SIZE = nacl.pwhash.argon2id.SALTBYTES
#: Nonce + seed + Poly1305 tag.
_BOX_SIZE = nacl.secret.SecretBox.NONCE_SIZE + SEED_SIZE + nacl.secret.SecretBox.MACBYTES
#: What new files are written with: libsodium's MODERATE (3 passes, 256 MiB).
DEFAULT_OPSLIMIT = nacl.pwhash.argon2id.OPSLIMIT_MODERATE
DEFAULT_MEMLIMIT = nacl.pwhash.argon2id.MEMLIMIT_MODERATE
#: What a file may ask for on load: libsodium's minimum up to its SENSITIVE
#: level (4 passes, 1 GiB). Anything outside is refused before deriving.
MIN_OPSLIMIT = nacl.pwhash.argon2id.OPSLIMIT_MIN
MAX_OPSLIMIT = nacl.pwhash.argon2id.OPSLIMIT_SENSITIVE
MIN_MEMLIMIT = nacl.pwhash.argon2id.MEMLIMIT_MIN
MAX_MEMLIMIT = nacl.pwhash.argon2id.MEMLIMIT_SENSITIVE
#: Longest passphrase accepted, in UTF-8 bytes (argon2id would take more; people do not).
MAX_PASSPHRASE_BYTES = 1024

#: Private test hook: the (opslimit, memlimit) new files are written with.
#: Tests may lower it to keep the suite fast; nothing else touches it.
_KDF_LIMITS: tuple[int, int] = (DEFAULT_OPSLIMIT, DEFAULT_MEMLIMIT)


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
    def public(self) -> IdentityPublicKey:
        """The 32-byte Ed25519 public key, as sent to the relay and pinned by peers."""
        return IdentityPublicKey(bytes(self._signing.verify_key))

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


#: Verify keys kept, by the exact 32 key bytes (the least recently used let go past it): a client
#: checks every message, certificate and log entry of the same few peers, and a ``VerifyKey`` built
#: each time is a Python object and two checks per signature. Bounded, so a relay that invents
#: senders cannot grow the client's memory; one let go is built again when it comes back.
MAX_CACHED_VERIFY_KEYS = 4096


@functools.lru_cache(maxsize=MAX_CACHED_VERIFY_KEYS)
def _verify_key(identity_public: bytes) -> nacl.signing.VerifyKey:
    # A key PyNaCl refuses raises here and is not kept (``lru_cache`` keeps only results).
    return nacl.signing.VerifyKey(identity_public)


def verify_signature(identity_public: bytes, signature: bytes, purpose: bytes, *fields: bytes | str | int) -> None:
    """Raise ``BadSignature`` unless ``signature`` is ``identity_public``'s over these fields.

    PyNaCl raises ``ValueError``/``TypeError`` rather than ``BadSignatureError``
    for a key or signature of the wrong length; both mean "not valid" here.
    The signature is always passed separately, never prepended to the message.
    """
    verify_payload(identity_public, signature, purpose, signing_payload(purpose, *fields))


def verify_payload(identity_public: bytes, signature: bytes, purpose: bytes, payload: bytes) -> None:
    """``verify_signature`` for a caller that has written ``signing_payload(purpose, ...)`` itself."""
    # The purpose must be the one the payload is framed with: otherwise a caller's slip would
    # verify one kind of signed bytes as another, and the domain separation would be gone.
    if not payload.startswith(purpose + b"\x00"):
        raise BadSignature(f"the signed bytes are not framed for {purpose.decode(errors='replace')!r}")
    if len(signature) != SIGNATURE_SIZE:
        raise BadSignature(f"a signature is {SIGNATURE_SIZE} bytes, got {len(signature)}")
    try:
        _verify_key(identity_public).verify(payload, signature)
    except (nacl.exceptions.BadSignatureError, ValueError, TypeError) as exc:
        raise BadSignature(f"signature does not verify ({purpose.decode()})") from exc


# --- the key file, as bytes (pure) ----------------------------------------------


def _passphrase_bytes(passphrase: str) -> bytes:
    """NFC-normalized UTF-8, so the same passphrase typed on any system opens the file."""
    data = unicodedata.normalize("NFC", passphrase).encode("utf-8")
    if len(data) > MAX_PASSPHRASE_BYTES:
        raise KeyFileError(f"a passphrase is at most {MAX_PASSPHRASE_BYTES} bytes")
    return data


def _derive(passphrase: str, salt: bytes, opslimit: int, memlimit: int) -> bytes:
    try:
        return nacl.pwhash.argon2id.kdf(
            nacl.secret.SecretBox.KEY_SIZE, _passphrase_bytes(passphrase), salt, opslimit=opslimit, memlimit=memlimit
        )
    except (MemoryError, nacl.exceptions.RuntimeError):  # libsodium could not allocate memlimit bytes
        raise KeyFileError(f"not enough memory for argon2id ({memlimit // (1024 * 1024)} MiB)") from None


def encode_key_file(key: IdentityKey, passphrase: str | None = None) -> bytes:
    """The key file's bytes for ``key``: sealed under ``passphrase`` if one is given."""
    document: dict[str, Any] = {"format": KEY_FILE_FORMAT, "version": KEY_FILE_VERSION}
    if passphrase is None:
        document["protection"] = PROTECTION_NONE
        document["seed"] = _b64(key.seed())
    else:
        if not passphrase:
            raise KeyFileError("an empty passphrase protects nothing; leave the passphrase out instead")
        opslimit, memlimit = _KDF_LIMITS
        salt = nacl.utils.random(SALT_SIZE)
        box = nacl.secret.SecretBox(_derive(passphrase, salt, opslimit, memlimit))
        document["protection"] = PROTECTION_ARGON2ID
        document["salt"] = _b64(salt)
        document["opslimit"] = opslimit
        document["memlimit"] = memlimit
        document["box"] = _b64(bytes(box.encrypt(key.seed())))
    return (json.dumps(document) + "\n").encode("utf-8")


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def _parse_document(data: bytes, source: str) -> dict[str, Any]:
    """Check format and version; return the JSON object."""
    try:
        document = json.loads(data.decode("utf-8"))
    except RecursionError:
        raise KeyFileError(f"{source} is not a Susurro identity key file (nested too deeply)") from None
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise KeyFileError(f"cannot read identity key file {source}: {exc}") from None
    if not isinstance(document, dict) or document.get("format") != KEY_FILE_FORMAT:
        raise KeyFileError(f"{source} is not a Susurro identity key file")
    version = document.get("version")
    if type(version) is not int or version != KEY_FILE_VERSION:  # JSON true == 1 in Python
        raise KeyFileError(
            f"{source} has key file version {document.get('version')!r}; this Susurro reads version {KEY_FILE_VERSION}"
        )
    protection = document.get("protection")
    if protection not in (PROTECTION_NONE, PROTECTION_ARGON2ID):
        raise KeyFileError(f"{source} uses protection {protection!r}, which this version cannot open")
    return document


def _field_b64(document: dict[str, Any], field: str, size: int, source: str) -> bytes:
    value = document.get(field)
    if not isinstance(value, str):
        raise KeyFileError(f"{source} holds a damaged key ({field} is missing or not a string)")
    try:
        data = base64.b64decode(value, validate=True)
    except (binascii.Error, ValueError):
        raise KeyFileError(f"{source} holds a damaged key ({field} is not base64)") from None
    if len(data) != size:
        raise KeyFileError(f"{source} holds a damaged key ({field} is {len(data)} bytes, expected {size})")
    return data


def _field_limit(document: dict[str, Any], field: str, low: int, high: int, source: str) -> int:
    value = document.get(field)
    if type(value) is not int:  # not bool, not float
        raise KeyFileError(f"{source} holds a damaged key ({field} is missing or not a whole number)")
    if not low <= value <= high:
        raise KeyFileError(f"{source} asks for argon2id {field} {value}; this Susurro accepts {low} to {high}")
    return value


def decode_key_file(data: bytes, passphrase: str | None = None, source: str = "the key file") -> IdentityKey:
    """The identity key in a key file's bytes. ``source`` names the file in errors.

    Raises ``PassphraseRequired`` for a protected file without a passphrase,
    ``WrongPassphrase`` when the box does not open (a wrong passphrase and an
    altered file look the same, by design of authenticated encryption), and
    ``KeyFileError`` for anything malformed or out of bounds. A passphrase given
    for an unprotected file is ignored; ``is_protected`` tells callers which it is.
    """
    document = _parse_document(data, source)
    if document["protection"] == PROTECTION_NONE:
        return IdentityKey.from_seed(_field_b64(document, "seed", SEED_SIZE, source))
    salt = _field_b64(document, "salt", SALT_SIZE, source)
    opslimit = _field_limit(document, "opslimit", MIN_OPSLIMIT, MAX_OPSLIMIT, source)
    memlimit = _field_limit(document, "memlimit", MIN_MEMLIMIT, MAX_MEMLIMIT, source)
    sealed = _field_b64(document, "box", _BOX_SIZE, source)
    if passphrase is None:
        raise PassphraseRequired(f"{source} is protected by a passphrase")
    box = nacl.secret.SecretBox(_derive(passphrase, salt, opslimit, memlimit))
    try:
        seed = box.decrypt(sealed)
    except nacl.exceptions.CryptoError:
        raise WrongPassphrase(f"wrong passphrase for {source} (or the file was altered)") from None
    return IdentityKey.from_seed(seed)


# --- the key file on disk ----------------------------------------------------------


def save_identity(key: IdentityKey, path: Path, passphrase: str | None = None) -> None:
    """Write ``key`` to ``path`` (mode 0600, atomically), under ``passphrase`` if given.

    Refuses to overwrite. The file is written under a temporary name and
    hard-linked into place: ``link`` fails if ``path`` exists, so two
    processes creating the same identity cannot both believe they own the key
    on disk.
    """
    path = Path(path)
    try:
        files.private_directory(path.parent)
    except files.UnsafeFile as exc:
        raise KeyFileError(f"{exc} or keep keys elsewhere") from None
    try:
        files.write_atomically(path, encode_key_file(key, passphrase), create_only=True)
    except FileExistsError:
        raise KeyFileError(f"{path} already exists; refusing to overwrite an identity key") from None


def change_passphrase(path: Path, old: str | None, new: str | None) -> IdentityKey:
    """Re-write the key at ``path`` under ``new`` (``None`` removes the protection).

    The key is opened with ``old`` first (same checks as ``load_identity``),
    then the new file replaces the old one atomically (``os.replace``), so a
    crash leaves either the old file or the new one, never a torn one.
    """
    path = Path(path)
    key = load_identity(path, old)
    files.write_atomically(path, encode_key_file(key, new))
    return key


def _read_key_file(path: Path) -> bytes:
    """The bytes of the key file at ``path``, refusing loose permissions and links (see ``files``)."""
    try:
        files.check_directory(path.parent)
    except files.UnsafeFile as exc:
        raise KeyFileError(f"{exc} or keep keys elsewhere") from None
    try:
        data = files.read_checked(
            path,
            forbidden_mode=files.OTHERS_MAY_READ_OR_WRITE,
            max_bytes=_MAX_KEY_FILE_BYTES,
            fix=f"run 'chmod 600 {path}' if you trust it, or create a new identity",
        )
    except files.UnsafeFile as exc:
        raise KeyFileError(str(exc)) from None
    if data is None:
        raise KeyFileError(f"no identity key file at {path}")
    if len(data) > _MAX_KEY_FILE_BYTES:
        raise KeyFileError(f"{path} is too large to be a Susurro key file")
    return data


def load_identity(path: Path, passphrase: str | None = None) -> IdentityKey:
    """Read an identity key file, refusing unknown formats, loose permissions and links.

    A protected file needs ``passphrase`` (``PassphraseRequired`` without
    one, ``WrongPassphrase`` if it does not open it).
    """
    path = Path(path)
    return decode_key_file(_read_key_file(path), passphrase, str(path))


def is_protected(path: Path) -> bool:
    """Whether the key file at ``path`` needs a passphrase (same checks as loading)."""
    path = Path(path)
    protection: object = _parse_document(_read_key_file(path), str(path))["protection"]
    return protection == PROTECTION_ARGON2ID


def load_or_create_identity(path: Path, passphrase: str | None = None) -> tuple[IdentityKey, bool]:
    """Load the key at ``path``, creating one on first use. Returns (key, created).

    A new file is protected by ``passphrase`` when one is given.
    """
    path = Path(path)
    if os.path.lexists(path):  # a dangling symlink is "there" too, and refused
        return load_identity(path, passphrase), False
    key = IdentityKey.generate()
    save_identity(key, path, passphrase)
    return key, True
