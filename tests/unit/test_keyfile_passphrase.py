"""Passphrase-protected key files: argon2id + SecretBox, bounds, tampering, passphrase changes.

Most tests lower the argon2id cost through the private hook
``crypto.identity._KDF_LIMITS`` (libsodium's minimum), so the suite stays
fast; ``test_new_files_use_moderate_limits`` checks the default itself.
"""

from __future__ import annotations

import base64
import json
import os
import re
import stat
import unicodedata
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import nacl.pwhash.argon2id as argon2id
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import susurro.crypto.identity as identity_module
from susurro.crypto import (
    CryptoError,
    IdentityKey,
    KeyFileError,
    PassphraseRequired,
    WrongPassphrase,
    change_passphrase,
    decode_key_file,
    encode_key_file,
    is_protected,
    load_identity,
    load_or_create_identity,
    save_identity,
)

SEED = bytes(range(32))
KEY = IdentityKey.from_seed(SEED)
PASSPHRASE = "correct horse battery staple"
CHEAP = (argon2id.OPSLIMIT_MIN, argon2id.MEMLIMIT_MIN)


@pytest.fixture(autouse=True, scope="module")
def cheap_kdf() -> Iterator[None]:
    saved = identity_module._KDF_LIMITS
    identity_module._KDF_LIMITS = CHEAP
    try:
        yield
    finally:
        identity_module._KDF_LIMITS = saved


def protected_document(passphrase: str = PASSPHRASE) -> dict[str, Any]:
    return json.loads(encode_key_file(KEY, passphrase))


def encode(document: dict[str, Any]) -> bytes:
    return json.dumps(document).encode("utf-8")


def flip_b64(value: str, index: int) -> str:
    raw = bytearray(base64.b64decode(value))
    raw[index] ^= 0x01
    return base64.b64encode(bytes(raw)).decode("ascii")


# --- the format -----------------------------------------------------------------


def test_protected_file_is_the_documented_json() -> None:
    document = protected_document()
    assert set(document) == {"format", "version", "protection", "salt", "opslimit", "memlimit", "box"}
    assert document["format"] == "susurro-identity"
    assert document["version"] == 1
    assert document["protection"] == "argon2id"
    assert len(base64.b64decode(document["salt"])) == 16
    assert (document["opslimit"], document["memlimit"]) == CHEAP
    assert len(base64.b64decode(document["box"])) == 24 + 32 + 16


def test_protected_file_does_not_hold_the_seed_in_any_form() -> None:
    data = encode_key_file(KEY, PASSPHRASE)
    for form in (SEED, SEED.hex().encode(), base64.b64encode(SEED), base64.b64encode(SEED)[:40]):
        assert form not in data


def test_every_write_uses_a_fresh_salt_and_nonce() -> None:
    first, second = protected_document(), protected_document()
    assert first["salt"] != second["salt"]
    assert first["box"] != second["box"]


def test_new_files_use_moderate_limits(monkeypatch: pytest.MonkeyPatch) -> None:
    # The one test that pays the real cost (about 0.5 s and 256 MiB here).
    assert identity_module.DEFAULT_OPSLIMIT == argon2id.OPSLIMIT_MODERATE
    assert identity_module.DEFAULT_MEMLIMIT == argon2id.MEMLIMIT_MODERATE
    defaults = (identity_module.DEFAULT_OPSLIMIT, identity_module.DEFAULT_MEMLIMIT)
    monkeypatch.setattr(identity_module, "_KDF_LIMITS", defaults)
    data = encode_key_file(KEY, PASSPHRASE)
    document = json.loads(data)
    assert document["opslimit"] == argon2id.OPSLIMIT_MODERATE == 3
    assert document["memlimit"] == argon2id.MEMLIMIT_MODERATE == 256 * 1024 * 1024
    assert decode_key_file(data, PASSPHRASE).public == KEY.public


@settings(max_examples=40, deadline=None)
@given(seed=st.binary(min_size=32, max_size=32), passphrase=st.text(min_size=1, max_size=64))
def test_round_trip_for_any_seed_and_passphrase(seed: bytes, passphrase: str) -> None:
    key = IdentityKey.from_seed(seed)
    data = encode_key_file(key, passphrase)
    assert decode_key_file(data, passphrase).seed() == seed


@settings(max_examples=25, deadline=None)
@given(passphrase=st.text(min_size=1, max_size=32), other=st.text(min_size=1, max_size=32))
def test_any_other_passphrase_is_wrong(passphrase: str, other: str) -> None:
    if unicodedata.normalize("NFC", passphrase) == unicodedata.normalize("NFC", other):
        return
    with pytest.raises(WrongPassphrase):
        decode_key_file(encode_key_file(KEY, passphrase), other)


@settings(max_examples=25, deadline=None)
@given(seed=st.binary(min_size=32, max_size=32))
def test_unprotected_round_trip_for_any_seed(seed: bytes) -> None:
    assert decode_key_file(encode_key_file(IdentityKey.from_seed(seed))).seed() == seed


def test_passphrase_is_compared_after_nfc_normalization() -> None:
    composed, decomposed = "clé secrète", "cle\u0301 secre\u0300te"
    assert composed != decomposed
    assert decode_key_file(encode_key_file(KEY, composed), decomposed).public == KEY.public


# --- wrong, missing, unusable passphrases --------------------------------------------


def test_wrong_passphrase_is_one_clear_error() -> None:
    data = encode_key_file(KEY, PASSPHRASE)
    with pytest.raises(WrongPassphrase, match=re.escape("wrong passphrase for me.key")) as info:
        decode_key_file(data, PASSPHRASE + "!", "me.key")
    assert isinstance(info.value, KeyFileError)
    assert isinstance(info.value, CryptoError)
    assert info.value.kind == "wrong_passphrase"
    assert info.value.__cause__ is None and info.value.__suppress_context__


@pytest.mark.parametrize("wrong", ["", " ", PASSPHRASE.upper(), PASSPHRASE[:-1], PASSPHRASE + "\n"])
def test_near_miss_passphrases_are_wrong(wrong: str) -> None:
    with pytest.raises(WrongPassphrase):
        decode_key_file(encode_key_file(KEY, PASSPHRASE), wrong)


def test_protected_file_without_passphrase_asks_for_one() -> None:
    with pytest.raises(PassphraseRequired, match="protected by a passphrase") as info:
        decode_key_file(encode_key_file(KEY, PASSPHRASE), None, "me.key")
    assert isinstance(info.value, KeyFileError)
    assert not isinstance(info.value, WrongPassphrase)


def test_passphrase_for_an_unprotected_file_is_ignored() -> None:
    assert decode_key_file(encode_key_file(KEY), "anything").public == KEY.public


def test_empty_passphrase_is_refused_when_writing() -> None:
    with pytest.raises(KeyFileError, match="empty passphrase"):
        encode_key_file(KEY, "")


def test_overlong_passphrase_is_refused() -> None:
    with pytest.raises(KeyFileError, match="at most 1024 bytes"):
        encode_key_file(KEY, "x" * 1025)
    assert decode_key_file(encode_key_file(KEY, "x" * 1024), "x" * 1024).public == KEY.public


# --- tampering: every field ------------------------------------------------------------


TAMPERED_OPENS_AS_WRONG: dict[str, dict[str, Any]] = {
    "salt bit": {"salt": lambda d: flip_b64(d["salt"], 0)},
    "salt last byte": {"salt": lambda d: flip_b64(d["salt"], 15)},
    "opslimit +1": {"opslimit": lambda d: d["opslimit"] + 1},
    "memlimit doubled": {"memlimit": lambda d: d["memlimit"] * 2},
    "box nonce": {"box": lambda d: flip_b64(d["box"], 0)},
    "box ciphertext": {"box": lambda d: flip_b64(d["box"], 30)},
    "box tag": {"box": lambda d: flip_b64(d["box"], 71)},
    "box from another file": {"box": lambda d: protected_document()["box"]},
    "salt from another file": {"salt": lambda d: protected_document()["salt"]},
}


@pytest.mark.parametrize("changes", list(TAMPERED_OPENS_AS_WRONG.values()), ids=list(TAMPERED_OPENS_AS_WRONG))
def test_altered_field_does_not_open(changes: dict[str, Any]) -> None:
    document = protected_document()
    for field, change in changes.items():
        document[field] = change(document)
    with pytest.raises(WrongPassphrase):
        decode_key_file(encode(document), PASSPHRASE)


def test_every_flipped_box_byte_is_refused() -> None:
    document = protected_document()
    for index in range(24 + 32 + 16):
        altered = dict(document, box=flip_b64(document["box"], index))
        with pytest.raises(WrongPassphrase):
            decode_key_file(encode(altered), PASSPHRASE)


MALFORMED: dict[str, dict[str, Any]] = {
    "protection none (no seed)": {"protection": "none"},
    "protection unknown": {"protection": "scrypt"},
    "protection missing": {"protection": None},
    "format other": {"format": "ssh-key"},
    "version 2": {"version": 2},
    "version true": {"version": True},
    "salt missing": {"salt": None},
    "salt 15 bytes": {"salt": base64.b64encode(bytes(15)).decode()},
    "salt 17 bytes": {"salt": base64.b64encode(bytes(17)).decode()},
    "salt not base64": {"salt": "not base64!"},
    "salt a number": {"salt": 12},
    "box missing": {"box": None},
    "box 71 bytes": {"box": base64.b64encode(bytes(71)).decode()},
    "box 73 bytes": {"box": base64.b64encode(bytes(73)).decode()},
    "box not base64": {"box": "%%%"},
    "box a list": {"box": [1, 2]},
    "opslimit missing": {"opslimit": None},
    "opslimit a string": {"opslimit": "3"},
    "opslimit a float": {"opslimit": 3.0},
    "opslimit true": {"opslimit": True},
    "memlimit missing": {"memlimit": None},
    "memlimit a string": {"memlimit": "268435456"},
    "memlimit a float": {"memlimit": 268435456.0},
}


@pytest.mark.parametrize("changes", list(MALFORMED.values()), ids=list(MALFORMED))
@pytest.mark.parametrize("passphrase", [PASSPHRASE, None], ids=["with passphrase", "without"])
def test_malformed_field_is_refused_before_asking(changes: dict[str, Any], passphrase: str | None) -> None:
    document = protected_document()
    for field, value in changes.items():
        if value is None:
            del document[field]
        else:
            document[field] = value
    with pytest.raises(KeyFileError) as info:
        decode_key_file(encode(document), passphrase)
    # A damaged file is reported as damaged, never as a passphrase problem.
    assert not isinstance(info.value, (WrongPassphrase, PassphraseRequired))


# --- bounds: a hostile file cannot ask for absurd work -----------------------------------


OUT_OF_BOUNDS: dict[str, tuple[str, int]] = {
    "opslimit 0": ("opslimit", 0),
    "opslimit negative": ("opslimit", -1),
    "opslimit above sensitive": ("opslimit", argon2id.OPSLIMIT_SENSITIVE + 1),
    "opslimit 2**40": ("opslimit", 2**40),
    "memlimit 0": ("memlimit", 0),
    "memlimit below libsodium minimum": ("memlimit", argon2id.MEMLIMIT_MIN - 1),
    "memlimit above 1 GiB": ("memlimit", argon2id.MEMLIMIT_SENSITIVE + 1),
    "memlimit 4 TiB": ("memlimit", 2**42),
    "memlimit 2**64": ("memlimit", 2**64),
}


@pytest.mark.parametrize(("field", "value"), list(OUT_OF_BOUNDS.values()), ids=list(OUT_OF_BOUNDS))
def test_limits_outside_the_bounds_are_refused_without_deriving(field: str, value: int) -> None:
    document = protected_document()
    document[field] = value
    with pytest.raises(KeyFileError, match=f"asks for argon2id {field} {value}; this Susurro accepts") as info:
        decode_key_file(encode(document), PASSPHRASE)
    assert not isinstance(info.value, WrongPassphrase)


def test_bounds_admit_libsodiums_levels() -> None:
    assert identity_module.MIN_OPSLIMIT <= argon2id.OPSLIMIT_INTERACTIVE
    assert identity_module.MAX_OPSLIMIT >= argon2id.OPSLIMIT_MODERATE
    assert identity_module.MAX_MEMLIMIT == argon2id.MEMLIMIT_SENSITIVE == 1024 * 1024 * 1024


# --- on disk -------------------------------------------------------------------------------


def test_save_and_load_with_passphrase(tmp_path: Path) -> None:
    path = tmp_path / "me.key"
    save_identity(KEY, path, PASSPHRASE)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert is_protected(path) is True
    assert load_identity(path, PASSPHRASE).public == KEY.public
    with pytest.raises(PassphraseRequired):
        load_identity(path)
    with pytest.raises(WrongPassphrase, match=re.escape(f"wrong passphrase for {path}")):
        load_identity(path, "nope")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["me.key"]


def test_unprotected_file_is_not_protected(tmp_path: Path) -> None:
    path = tmp_path / "me.key"
    save_identity(KEY, path)
    assert is_protected(path) is False


def test_is_protected_refuses_what_loading_refuses(tmp_path: Path) -> None:
    with pytest.raises(KeyFileError, match="no identity key file"):
        is_protected(tmp_path / "absent.key")
    path = tmp_path / "me.key"
    save_identity(KEY, path, PASSPHRASE)
    os.chmod(path, 0o644)
    with pytest.raises(KeyFileError, match="readable by other users"):
        is_protected(path)


def test_load_or_create_with_passphrase_creates_a_protected_file(tmp_path: Path) -> None:
    path = tmp_path / "sub" / "me.key"
    key, created = load_or_create_identity(path, PASSPHRASE)
    assert created is True
    assert is_protected(path)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    again, created_again = load_or_create_identity(path, PASSPHRASE)
    assert (again.public, created_again) == (key.public, False)
    with pytest.raises(WrongPassphrase):
        load_or_create_identity(path, "other")
    assert is_protected(path)  # a failed open never replaces the file


@pytest.mark.parametrize("mode", [0o644, 0o640, 0o604, 0o660])
def test_protected_file_readable_by_others_is_refused_with_the_fix(tmp_path: Path, mode: int) -> None:
    path = tmp_path / "me.key"
    save_identity(KEY, path, PASSPHRASE)
    os.chmod(path, mode)
    with pytest.raises(KeyFileError, match=re.escape(f"run 'chmod 600 {path}'")) as info:
        load_identity(path, PASSPHRASE)
    assert not isinstance(info.value, WrongPassphrase)


def test_add_change_and_remove_a_passphrase(tmp_path: Path) -> None:
    path = tmp_path / "me.key"
    save_identity(KEY, path)
    assert change_passphrase(path, None, "first").public == KEY.public
    assert is_protected(path)
    assert load_identity(path, "first").public == KEY.public
    change_passphrase(path, "first", "second")
    with pytest.raises(WrongPassphrase):
        load_identity(path, "first")
    assert load_identity(path, "second").public == KEY.public
    change_passphrase(path, "second", None)
    assert not is_protected(path)
    assert load_identity(path).public == KEY.public
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert sorted(p.name for p in tmp_path.iterdir()) == ["me.key"]


def test_change_with_the_wrong_passphrase_leaves_the_file_alone(tmp_path: Path) -> None:
    path = tmp_path / "me.key"
    save_identity(KEY, path, PASSPHRASE)
    before = path.read_bytes()
    with pytest.raises(WrongPassphrase):
        change_passphrase(path, "wrong", "new")
    with pytest.raises(PassphraseRequired):
        change_passphrase(path, None, "new")
    with pytest.raises(KeyFileError, match="empty passphrase"):
        change_passphrase(path, PASSPHRASE, "")
    assert path.read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["me.key"]


def test_change_refuses_a_loose_file(tmp_path: Path) -> None:
    path = tmp_path / "me.key"
    save_identity(KEY, path, PASSPHRASE)
    os.chmod(path, 0o644)
    with pytest.raises(KeyFileError, match="chmod 600"):
        change_passphrase(path, PASSPHRASE, "new")


# --- fuzz: any bytes are a key or a KeyFileError, never another exception ------------------


@settings(max_examples=200, deadline=None)
@given(data=st.binary(max_size=512), passphrase=st.one_of(st.none(), st.text(max_size=8)))
def test_any_bytes_decode_to_a_key_or_a_key_file_error(data: bytes, passphrase: str | None) -> None:
    try:
        key = decode_key_file(data, passphrase)
    except KeyFileError:
        return
    assert isinstance(key, IdentityKey)


@settings(max_examples=200, deadline=None)
@given(
    field=st.sampled_from(["format", "version", "protection", "salt", "opslimit", "memlimit", "box"]),
    value=st.one_of(
        st.none(),
        st.booleans(),
        st.integers(min_value=-(2**70), max_value=2**70),
        st.floats(allow_nan=True),
        st.text(max_size=100),
        st.lists(st.integers(), max_size=3),
        st.dictionaries(st.text(max_size=3), st.integers(), max_size=2),
    ),
)
def test_any_value_in_any_field_is_refused_cleanly(field: str, value: Any) -> None:
    document = protected_document()
    document[field] = value
    try:
        key = decode_key_file(json.dumps(document).encode("utf-8"), PASSPHRASE)
    except KeyFileError:
        return
    assert key.public == KEY.public  # only an unchanged value can still open
