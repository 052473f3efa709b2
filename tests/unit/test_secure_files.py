"""The three files that hold security state are read and written one way (``crypto.files``).

The identity key file, the trust store and the relay's name registry each
refuse a symbolic link, a FIFO, a file owned by another user, a file others
can write, and a directory others can write; each is written 0600 with no
temporary file left behind. One table of files, one of attacks: a check that
one of them skipped would fail its row here.
"""

from __future__ import annotations

import os
import stat
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pytest

from susurro.crypto import IdentityKey, KeyFileError, load_identity, save_identity
from susurro.crypto.trust import TrustStore, TrustStoreError
from susurro.relay.registry import NameRegistry, RegistryError

KEY = IdentityKey.from_seed(bytes(range(32))).public


@dataclass(frozen=True)
class SecureFile:
    name: str
    #: Writes a valid file at the path.
    create: Callable[[Path], None]
    #: Opens it as the product does.
    open: Callable[[Path], object]
    error: type[Exception]


def _create_key(path: Path) -> None:
    save_identity(IdentityKey.generate(), path)


def _create_trust(path: Path) -> None:
    store = TrustStore.open(path)
    store.observe("bob", KEY, 1)
    store.save()


def _create_registry(path: Path) -> None:
    NameRegistry(path).admit("alice", KEY)


FILES = [
    SecureFile("identity key", _create_key, load_identity, KeyFileError),
    SecureFile("trust store", _create_trust, TrustStore.open, TrustStoreError),
    SecureFile("name registry", _create_registry, NameRegistry, RegistryError),
]
ids = [f.name for f in FILES]


@pytest.fixture
def home(tmp_path: Path) -> Path:
    directory = tmp_path / "home"
    directory.mkdir(mode=0o700)
    return directory


@pytest.mark.parametrize("kind", FILES, ids=ids)
def test_a_valid_file_opens_and_is_private(kind: SecureFile, home: Path) -> None:
    path = home / "state"
    kind.create(path)
    kind.open(path)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert [p.name for p in home.iterdir()] in (["state"], ["state", ".state.lock"], [".state.lock", "state"])


@pytest.mark.parametrize("kind", FILES, ids=ids)
def test_a_symlinked_file_is_refused(kind: SecureFile, home: Path) -> None:
    real = home / "elsewhere"
    kind.create(real)
    before = real.read_bytes()
    link = home / "state"
    link.symlink_to(real)
    with pytest.raises(kind.error):
        kind.open(link)
    assert real.read_bytes() == before and link.is_symlink()


@pytest.mark.parametrize("kind", FILES, ids=ids)
@pytest.mark.parametrize("mode", [0o620, 0o602, 0o660], ids=lambda mode: f"{mode:o}")
def test_a_file_others_can_write_is_refused(kind: SecureFile, home: Path, mode: int) -> None:
    path = home / "state"
    kind.create(path)
    os.chmod(path, mode)
    with pytest.raises(kind.error, match=r"(readable|writable) by other users") as refused:
        kind.open(path)
    assert f"chmod 600 {path}" in str(refused.value)


@pytest.mark.parametrize("kind", FILES, ids=ids)
def test_a_file_owned_by_another_user_is_refused(kind: SecureFile, home: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = home / "state"
    kind.create(path)
    owner = path.stat().st_uid
    # Seen from another uid, the file belongs to someone else (chown needs root; this does not).
    monkeypatch.setattr(os, "getuid", lambda: owner + 1)
    with pytest.raises(kind.error, match="belongs to another user"):
        kind.open(path)


@pytest.mark.timeout(10)
@pytest.mark.parametrize("kind", FILES, ids=ids)
def test_a_fifo_in_place_of_the_file_is_refused_without_hanging(kind: SecureFile, home: Path) -> None:
    path = home / "state"
    os.mkfifo(path, 0o600)
    with pytest.raises(kind.error, match="not a regular file"):
        kind.open(path)


@pytest.mark.parametrize("kind", FILES, ids=ids)
def test_a_directory_others_can_write_is_refused(kind: SecureFile, home: Path) -> None:
    path = home / "state"
    kind.create(path)
    os.chmod(home, 0o777)  # anyone could swap the file, whatever its own mode
    with pytest.raises(kind.error, match="writable by other users"):
        kind.open(path)


def test_a_sticky_shared_directory_is_accepted(home: Path) -> None:
    path = home / "names.json"
    _create_registry(path)
    os.chmod(home, 0o1777)  # like /tmp: others cannot remove or rename our file
    assert len(NameRegistry(path)) == 1
