"""The relay's name registry on its own: claims, lookalikes, persistence, corrupt files, races."""

from __future__ import annotations

import base64
import json
import shutil
import stat
import tempfile
import threading
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from susurro.crypto import IdentityKey
from susurro.protocol import ErrorCode, RemoteProtocolError, name_key
from susurro.relay.registry import NameRegistry, RegistryError

ALICE = IdentityKey.from_seed(bytes(range(32))).public
MALLORY = IdentityKey.from_seed(bytes(range(1, 33))).public


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def registry_file(path: Path, names: Any, **top: Any) -> Path:
    document = {"format": "susurro-registry", "version": 1, "names": names, **top}
    path.write_text(json.dumps(document), encoding="utf-8")
    return path


def test_missing_file_is_created_empty_at_startup(tmp_path: Path) -> None:
    path = tmp_path / "names.json"
    registry = NameRegistry(path)
    assert len(registry) == 0
    assert json.loads(path.read_text("utf-8")) == {"format": "susurro-registry", "version": 1, "names": []}
    assert stat.S_IMODE(path.stat().st_mode) == 0o600


def test_a_new_name_is_registered_and_written_at_once(tmp_path: Path) -> None:
    path = tmp_path / "names.json"
    registry = NameRegistry(path)
    assert registry.admit("alice", ALICE) is True
    assert json.loads(path.read_text("utf-8"))["names"] == [{"name": "alice", "ik": b64(ALICE)}]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["names.json"]  # no temp file left
    assert registry.admit("alice", ALICE) is False  # known name, same key: admitted, nothing written
    assert registry.identity_key("alice") == ALICE


def test_a_registered_name_is_refused_to_another_key(tmp_path: Path) -> None:
    registry = NameRegistry(tmp_path / "names.json")
    registry.admit("alice", ALICE)
    with pytest.raises(RemoteProtocolError) as info:
        registry.admit("alice", MALLORY)
    assert info.value.code is ErrorCode.NAME_TAKEN
    assert info.value.detail == (
        "the name 'alice' is registered on this relay to another identity key; "
        "join with that name's own key file, or choose another name"
    )
    assert registry.identity_key("alice") == ALICE


@pytest.mark.parametrize("lookalike", ["Alice", "ALICE", "аӏісе", "AIice", "a1ice"])
def test_lookalikes_of_a_registered_name_are_the_same_name(tmp_path: Path, lookalike: str) -> None:
    registry = NameRegistry(tmp_path / "names.json")
    registry.admit("alice", ALICE)
    with pytest.raises(RemoteProtocolError, match="it looks like 'alice'") as info:
        registry.admit(lookalike, MALLORY)
    assert info.value.code is ErrorCode.NAME_TAKEN
    # The owner may use another spelling of their own name.
    assert registry.admit(lookalike, ALICE) is False
    assert len(registry) == 1


def test_registrations_survive_a_restart(tmp_path: Path) -> None:
    path = tmp_path / "names.json"
    first = NameRegistry(path)
    first.admit("alice", ALICE)
    first.admit("bob", MALLORY)
    second = NameRegistry(path)
    assert len(second) == 2
    assert second.identity_key("ALICE") == ALICE
    with pytest.raises(RemoteProtocolError):
        second.admit("alice", MALLORY)
    assert second.admit("bob", MALLORY) is False


@settings(max_examples=30, deadline=None)
@given(
    claims=st.lists(
        st.tuples(
            st.text("abcdefgh0123_-", min_size=1, max_size=8).filter(lambda n: n[0].isalnum()),
            st.sampled_from([ALICE, MALLORY, bytes(32)]),
        ),
        max_size=12,
    )
)
def test_any_sequence_of_claims_reloads_to_the_first_claimers(claims: list[tuple[str, bytes]]) -> None:
    with tempfile.TemporaryDirectory() as directory:
        path = Path(directory) / "names.json"
        registry = NameRegistry(path)
        owners: dict[str, bytes] = {}
        for name, key in claims:
            owner = owners.setdefault(name_key(name), key)
            if owner == key:
                registry.admit(name, key)
            else:
                with pytest.raises(RemoteProtocolError):
                    registry.admit(name, key)
        reloaded = NameRegistry(path)
        assert len(reloaded) == len(owners)
        for name, _ in claims:
            assert reloaded.identity_key(name) == owners[name_key(name)]


def test_a_full_registry_refuses_new_names_only(tmp_path: Path) -> None:
    path = tmp_path / "names.json"
    registry = NameRegistry(path, max_names=2)
    registry.admit("alice", ALICE)
    registry.admit("bob", MALLORY)
    before = path.read_bytes()
    with pytest.raises(RemoteProtocolError) as info:
        registry.admit("carol", ALICE)
    assert info.value.code is ErrorCode.FULL and "full (2 names)" in info.value.detail
    assert registry.admit("alice", ALICE) is False
    assert path.read_bytes() == before


def test_a_failed_write_refuses_the_join_and_registers_nothing(tmp_path: Path) -> None:
    directory = tmp_path / "state"
    directory.mkdir()
    registry = NameRegistry(directory / "names.json")
    registry.admit("alice", ALICE)
    shutil.rmtree(directory)  # the disk went away under the relay
    with pytest.raises(RemoteProtocolError) as info:
        registry.admit("bob", MALLORY)
    assert info.value.code is ErrorCode.INTERNAL
    assert registry.identity_key("bob") is None
    directory.mkdir()
    assert registry.admit("bob", MALLORY) is True  # fails closed, then recovers
    assert len(NameRegistry(directory / "names.json")) == 2


def test_an_unwritable_place_is_an_error_at_startup(tmp_path: Path) -> None:
    with pytest.raises(RegistryError, match="cannot create name registry"):
        NameRegistry(tmp_path / "no such directory" / "names.json")


def test_concurrent_claims_of_one_new_name_have_one_winner(tmp_path: Path) -> None:
    path = tmp_path / "names.json"
    registry = NameRegistry(path)
    keys = [IdentityKey.generate().public for _ in range(16)]
    start = threading.Barrier(len(keys))
    results: dict[bytes, str] = {}

    def claim(key: bytes) -> None:
        start.wait(timeout=30)
        try:
            results[key] = "new" if registry.admit("zoe", key) else "known"
        except RemoteProtocolError as exc:
            results[key] = exc.code.value

    threads = [threading.Thread(target=claim, args=(key,)) for key in keys]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert sorted(results.values()) == ["name_taken"] * 15 + ["new"]
    winner = next(key for key, result in results.items() if result == "new")
    assert NameRegistry(path).identity_key("zoe") == winner


def test_concurrent_claims_of_many_names_are_all_written(tmp_path: Path) -> None:
    path = tmp_path / "names.json"
    registry = NameRegistry(path)
    names = [f"user{i}" for i in range(40)]
    start = threading.Barrier(len(names))

    def claim(name: str) -> None:
        start.wait(timeout=30)
        registry.admit(name, ALICE)

    threads = [threading.Thread(target=claim, args=(name,)) for name in names]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert len(NameRegistry(path)) == len(names)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["names.json"]


# --- corrupt files: a clear error, never a traceback or a silent empty registry ----------

GOOD_ENTRY = {"name": "alice", "ik": b64(ALICE)}


def doc(names: Any) -> str:
    return json.dumps({"format": "susurro-registry", "version": 1, "names": names})


CORRUPT: dict[str, str | bytes] = {
    "not json": "{ this is not json",
    "empty file": "",
    "not utf-8": b"\xff\xfe{}",
    "a list": "[]",
    "other format": json.dumps({"format": "something-else", "version": 1, "names": []}),
    "no format": json.dumps({"version": 1, "names": []}),
    "version 2": json.dumps({"format": "susurro-registry", "version": 2, "names": []}),
    "version true": json.dumps({"format": "susurro-registry", "version": True, "names": []}),
    "names missing": json.dumps({"format": "susurro-registry", "version": 1}),
    "names a map": doc({"alice": b64(ALICE)}),
    "entry a string": doc(["alice"]),
    "entry without key": doc([{"name": "alice"}]),
    "entry without name": doc([{"ik": b64(ALICE)}]),
    "name a number": doc([{"name": 7, "ik": b64(ALICE)}]),
    "key not base64": doc([{"name": "alice", "ik": "not base64!"}]),
    "key 31 bytes": doc([{"name": "alice", "ik": b64(ALICE[:31])}]),
    "key 33 bytes": doc([{"name": "alice", "ik": b64(ALICE + b"\x00")}]),
    "name breaks the rules": doc([{"name": "al ice", "ik": b64(ALICE)}]),
    "name mixes scripts": doc([{"name": "аlice", "ik": b64(ALICE)}]),
    "name not normalized": doc([{"name": "ａｌｉｃｅ", "ik": b64(ALICE)}]),
    "name empty": doc([{"name": "", "ik": b64(ALICE)}]),
    "duplicate name": doc([GOOD_ENTRY, {"name": "alice", "ik": b64(MALLORY)}]),
    "duplicate lookalike": doc([GOOD_ENTRY, {"name": "Alice", "ik": b64(ALICE)}]),
    "deeply nested": "[" * 100_000,
}


@pytest.mark.parametrize("content", list(CORRUPT.values()), ids=list(CORRUPT))
def test_a_corrupt_file_is_a_clear_error(tmp_path: Path, content: str | bytes) -> None:
    path = tmp_path / "names.json"
    path.write_bytes(content if isinstance(content, bytes) else content.encode("utf-8"))
    before = path.read_bytes()
    with pytest.raises(RegistryError) as info:
        NameRegistry(path)
    assert f"name registry {path}" in str(info.value)
    assert path.read_bytes() == before  # never "repaired" into an empty registry


def test_too_many_names_is_refused_at_startup(tmp_path: Path) -> None:
    names = [{"name": f"n{i}", "ik": b64(ALICE)} for i in range(4)]
    path = registry_file(tmp_path / "names.json", names)
    assert len(NameRegistry(path, max_names=4)) == 4
    with pytest.raises(RegistryError, match="holds 4 names, more than --registry-max-names"):
        NameRegistry(path, max_names=3)


def test_an_oversized_file_is_refused_before_parsing(tmp_path: Path) -> None:
    path = tmp_path / "names.json"
    path.write_text('{"format": "susurro-registry", "version": 1, "names": []}' + " " * 10_000, encoding="utf-8")
    with pytest.raises(RegistryError, match="larger than 2 names can be"):
        NameRegistry(path, max_names=2)


def test_the_longest_names_fit_the_per_entry_bound(tmp_path: Path) -> None:
    # 32 astral letters escape to 12 bytes each in JSON: the worst case per entry.
    longest = "\U00010300" * 32  # Old Italic letter A
    path = tmp_path / "names.json"
    registry = NameRegistry(path, max_names=1)
    registry.admit(longest, ALICE)
    assert NameRegistry(path, max_names=1).identity_key(longest) == ALICE


@settings(max_examples=150, deadline=None)
@given(data=st.binary(max_size=600))
def test_any_file_content_loads_or_is_a_registry_error(data: bytes) -> None:
    with tempfile.TemporaryDirectory() as directory:
        path = Path(directory) / "names.json"
        path.write_bytes(data)
        try:
            registry = NameRegistry(path, max_names=1)
        except RegistryError:
            return
        assert len(registry) <= 1  # what loads is within the bound it was opened with


@settings(max_examples=150, deadline=None)
@given(
    entry=st.dictionaries(
        st.sampled_from(["name", "ik", "extra"]),
        st.one_of(st.none(), st.integers(), st.text(max_size=40), st.binary(max_size=40).map(b64)),
        max_size=3,
    )
)
def test_any_entry_loads_or_is_a_registry_error(entry: dict[str, Any]) -> None:
    with tempfile.TemporaryDirectory() as directory:
        path = Path(directory) / "names.json"
        path.write_text(doc([entry]), encoding="utf-8")
        try:
            registry = NameRegistry(path)
        except RegistryError:
            return
        assert registry.identity_key(entry["name"]) == base64.b64decode(entry["ik"])
