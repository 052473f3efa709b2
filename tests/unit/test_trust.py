"""The trust store (TOFU pins, verification, certificate freshness) and safety numbers."""

from __future__ import annotations

import json
import os
import stat
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from susurro.crypto import BadPublicKey
from susurro.crypto.safety import safety_number, safety_number_rows
from susurro.crypto.trust import (
    MAX_AUTO_PINS_PER_DAY,
    MAX_CONTACTS,
    PinSource,
    TrustState,
    TrustStore,
    TrustStoreError,
)
from susurro.protocol import name_key

KEY_A = bytes(range(32))
KEY_B = bytes(range(32, 64))
DAY = 86_400.0
keys = st.binary(min_size=32, max_size=32)

# --- safety numbers -----------------------------------------------------------


def test_safety_number_known_answer() -> None:
    # Pinned so that a change to the derivation (which would make every
    # verified contact look different to users) cannot pass unnoticed.
    assert safety_number(KEY_A, KEY_B) == ("34113 49159 48861 57068 67379 79113 64020 69267 71266 20164 19440 72553")


@given(keys, keys)
def test_safety_number_is_order_independent_and_shaped(a: bytes, b: bytes) -> None:
    number = safety_number(a, b)
    assert number == safety_number(b, a)
    groups = number.split(" ")
    assert len(groups) == 12
    assert all(len(g) == 5 and g.isdigit() for g in groups)
    assert safety_number_rows(number) == [" ".join(groups[0:4]), " ".join(groups[4:8]), " ".join(groups[8:12])]


@given(keys, keys, keys)
def test_each_person_contributes_a_half(a: bytes, b: bytes, c: bytes) -> None:
    # The number for (a, b) and for (a, c) share a's half: whoever's key changed is visible.
    if len({a, b, c}) < 3:
        return
    halves_ab = {safety_number(a, b)[:35], safety_number(a, b)[36:]}
    halves_ac = {safety_number(a, c)[:35], safety_number(a, c)[36:]}
    assert len(halves_ab & halves_ac) == 1
    assert safety_number(a, b) != safety_number(a, c)


@pytest.mark.parametrize("bad", [b"", b"\x00" * 31, b"\x00" * 33, "a" * 32])
def test_safety_number_refuses_a_malformed_key(bad: object) -> None:
    with pytest.raises(BadPublicKey):
        safety_number(KEY_A, bad)  # type: ignore[arg-type]


# --- pins -----------------------------------------------------------------------


def test_first_sight_pins_then_the_same_key_is_pinned() -> None:
    store = TrustStore()
    assert store.state("bob", KEY_A) is TrustState.NEW
    assert store.observe("bob", KEY_A, 10) is TrustState.NEW
    assert store.observe("bob", KEY_A, 11) is TrustState.PINNED
    assert store.state("bob", KEY_A) is TrustState.PINNED


def test_a_different_key_is_changed_and_does_not_replace_the_pin() -> None:
    store = TrustStore()
    store.observe("bob", KEY_A, 10)
    assert store.observe("bob", KEY_B, 20) is TrustState.CHANGED
    assert store.observe("bob", KEY_B, 21) is TrustState.CHANGED  # seeing it again does not make it pinned
    assert store.observe("bob", KEY_A, 22) is TrustState.PINNED
    contact = store.contact("bob")
    assert contact is not None and contact.identity_key == KEY_A


def test_accept_repins_unverified_and_verify_marks() -> None:
    store = TrustStore()
    store.observe("bob", KEY_A, 10)
    store.mark_verified("bob", KEY_A)
    assert store.state("bob", KEY_A) is TrustState.VERIFIED
    assert store.state("bob", KEY_B) is TrustState.CHANGED
    store.accept("bob", KEY_B, 30)
    assert store.state("bob", KEY_B) is TrustState.PINNED  # accepting is not verifying
    assert store.state("bob", KEY_A) is TrustState.CHANGED
    store.mark_verified("bob", KEY_B)
    assert store.state("bob", KEY_B) is TrustState.VERIFIED
    store.unverify("bob")
    assert store.state("bob", KEY_B) is TrustState.PINNED


def test_lookalike_names_share_one_pin() -> None:
    store = TrustStore(key_of=name_key)
    store.observe("alice", KEY_A, 10)
    assert store.state("ALICE", KEY_A) is TrustState.PINNED
    assert store.state("ALICE", KEY_B) is TrustState.CHANGED


def test_stale_certificates_are_older_than_the_newest_seen() -> None:
    store = TrustStore()
    assert not store.is_stale("bob", KEY_A, 5)  # nothing seen yet
    store.observe("bob", KEY_A, 100)
    store.observe("bob", KEY_A, 200)
    assert store.is_stale("bob", KEY_A, 199)
    assert not store.is_stale("bob", KEY_A, 200)  # the newest itself (re-listed) is not stale
    assert not store.is_stale("bob", KEY_A, 201)
    assert not store.is_stale("bob", KEY_B, 1)  # another key is a key change, not staleness
    store.observe("bob", KEY_A, 150)  # an older sighting never lowers the mark
    assert store.is_stale("bob", KEY_A, 199)


# --- the file -------------------------------------------------------------------


def test_pins_survive_a_restart(tmp_path: Path) -> None:
    path = tmp_path / "home" / "trust.json"
    store = TrustStore.open(path, key_of=name_key)
    store.observe("bob", KEY_A, 100)
    store.observe("carol", KEY_B, 7)
    store.mark_verified("carol", KEY_B)
    store.save()
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    # No temp file left behind (the lock file that serializes savers stays).
    assert sorted(p.name for p in path.parent.iterdir()) == [".trust.json.lock", "trust.json"]

    again = TrustStore.open(path, key_of=name_key)
    assert again.state("bob", KEY_A) is TrustState.PINNED
    assert again.state("BOB", KEY_B) is TrustState.CHANGED
    assert again.state("carol", KEY_B) is TrustState.VERIFIED
    assert again.is_stale("bob", KEY_A, 99)


def test_an_absent_file_is_an_empty_store_and_nothing_is_written_until_a_change(tmp_path: Path) -> None:
    path = tmp_path / "trust.json"
    store = TrustStore.open(path)
    store.save()
    assert not path.exists()
    store.observe("bob", KEY_A, 1)
    store.save()
    assert path.exists()


def test_a_file_others_can_write_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "trust.json"
    store = TrustStore.open(path)
    store.observe("bob", KEY_A, 1)
    store.save()
    os.chmod(path, 0o620)
    with pytest.raises(TrustStoreError, match="writable by other users"):
        TrustStore.open(path)


def test_a_symlinked_file_is_refused(tmp_path: Path) -> None:
    real = tmp_path / "elsewhere.json"
    real.write_text("{}")
    link = tmp_path / "trust.json"
    link.symlink_to(real)
    with pytest.raises(TrustStoreError):
        TrustStore.open(link)


def _document(**overrides: object) -> dict[str, object]:
    contact = {"name": "bob", "identity_key": KEY_A.hex(), "verified": False, "newest_certificate": 1}
    contact.update({k: v for k, v in overrides.items() if k in contact})
    document: dict[str, object] = {"format": "susurro-trust", "version": 1, "contacts": [contact]}
    document.update({k: v for k, v in overrides.items() if k not in contact})
    return document


@pytest.mark.parametrize(
    "document",
    [
        "not json",
        json.dumps([]),
        json.dumps(_document(format="other")),
        json.dumps(_document(version=2)),
        json.dumps(_document(version=True)),
        json.dumps(_document(contacts={})),
        json.dumps(_document(identity_key="zz" * 32)),
        json.dumps(_document(identity_key=KEY_A.hex()[:-2])),
        json.dumps(_document(verified="yes")),
        json.dumps(_document(newest_certificate=-1)),
        json.dumps(_document(newest_certificate=1.5)),
        json.dumps(_document(name="")),
        json.dumps({"format": "susurro-trust", "version": 1, "contacts": [_document()["contacts"][0]] * 2}),  # type: ignore[index]
        "[" * 100_000,
    ],
)
def test_a_damaged_file_is_one_clear_error(tmp_path: Path, document: str) -> None:
    path = tmp_path / "trust.json"
    fd = os.open(path, os.O_WRONLY | os.O_CREAT, 0o600)
    with os.fdopen(fd, "w") as handle:
        handle.write(document)
    with pytest.raises(TrustStoreError, match=str(path)):
        TrustStore.open(path)


@settings(max_examples=60, deadline=None)
@given(
    st.recursive(
        st.none() | st.booleans() | st.integers() | st.text(max_size=70),
        lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=20), inner, max_size=4),
        max_leaves=20,
    )
)
def test_any_json_is_loaded_or_refused_with_a_trust_store_error(
    tmp_path_factory: pytest.TempPathFactory, doc: object
) -> None:
    path = tmp_path_factory.mktemp("trust") / "trust.json"
    fd = os.open(path, os.O_WRONLY | os.O_CREAT, 0o600)
    with os.fdopen(fd, "w") as handle:
        json.dump({"format": "susurro-trust", "version": 1, "contacts": doc}, handle)
    try:
        store = TrustStore.open(path)
    except TrustStoreError:
        return
    assert not store.full  # a few generated contacts: far from the cap, and the count was made


def test_a_store_that_cannot_be_written_says_where(tmp_path: Path) -> None:
    blocker = tmp_path / "not-a-dir"
    blocker.write_text("")
    store = TrustStore(blocker / "trust.json")
    store.observe("bob", KEY_A, 1)
    with pytest.raises(TrustStoreError, match="cannot save pinned keys"):
        store.save()


def test_contacts_beyond_the_cap_are_checked_but_not_pinned() -> None:
    store = TrustStore()
    for i in range(MAX_CONTACTS):  # spread over enough days that the daily budget is not what stops it
        store.observe(f"n{i}", KEY_B, 1, now=(i // MAX_AUTO_PINS_PER_DAY) * DAY)
    assert store.full
    later = (MAX_CONTACTS // MAX_AUTO_PINS_PER_DAY + 1) * DAY
    assert store.auto_pins_left(later) == MAX_AUTO_PINS_PER_DAY
    assert store.observe("newcomer", KEY_A, 1, now=later) is TrustState.NEW
    assert store.contact("newcomer") is None
    assert store.observe("n0", KEY_A, 2) is TrustState.CHANGED  # existing pins still hold


def test_a_directory_others_can_write_is_refused(tmp_path: Path) -> None:
    home = tmp_path / "home"
    home.mkdir()
    store = TrustStore.open(home / "trust.json")
    store.observe("bob", KEY_A, 1)
    os.chmod(home, 0o777)
    with pytest.raises(TrustStoreError, match="writable by other users"):
        store.save()
    with pytest.raises(TrustStoreError, match="writable by other users"):
        TrustStore.open(home / "trust.json")


def test_two_clients_sharing_the_file_keep_each_others_pins_and_decisions(tmp_path: Path) -> None:
    path = tmp_path / "trust.json"
    first, second = TrustStore.open(path), TrustStore.open(path)  # two processes, one user
    first.observe("bob", KEY_A, 100)
    first.save()
    second.observe("carol", KEY_B, 5)
    second.observe("bob", KEY_B, 7)  # second never saw bob's pin: its own first sight differs
    second.save()
    first.mark_verified("bob", KEY_A)
    first.save()
    second.observe("carol", KEY_B, 9)  # a newer certificate seen by the second client
    second.save()

    merged = TrustStore.open(path)
    assert merged.state("bob", KEY_A) is TrustState.VERIFIED  # the first pin won, the decision kept
    assert merged.state("carol", KEY_B) is TrustState.PINNED
    assert merged.is_stale("carol", KEY_B, 8)
    assert second.state("bob", KEY_A) is TrustState.VERIFIED  # saving refreshed the second client too


def test_a_users_decision_wins_over_another_clients_pin(tmp_path: Path) -> None:
    path = tmp_path / "trust.json"
    first, second = TrustStore.open(path), TrustStore.open(path)
    first.observe("bob", KEY_A, 1)
    first.save()
    second.accept("bob", KEY_B, 2)  # the user accepted bob's new key in the second client
    second.save()
    first.observe("bob", KEY_A, 3)  # the first client still sees the old key: only a newer time
    first.save()
    assert TrustStore.open(path).state("bob", KEY_B) is TrustState.PINNED


def test_a_damaged_file_is_never_overwritten(tmp_path: Path) -> None:
    path = tmp_path / "trust.json"
    store = TrustStore.open(path)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT, 0o600)
    with os.fdopen(fd, "w") as handle:
        handle.write("{damaged")
    store.observe("bob", KEY_A, 1)
    with pytest.raises(TrustStoreError, match="cannot read"):
        store.save()
    assert path.read_text() == "{damaged"


def test_user_decisions_fit_past_the_automatic_cap_up_to_the_file_limit(monkeypatch: pytest.MonkeyPatch) -> None:
    import susurro.crypto.trust as trust_module

    monkeypatch.setattr(trust_module, "MAX_CONTACTS", 3)
    monkeypatch.setattr(trust_module, "MAX_FILE_CONTACTS", 4)
    store = TrustStore()
    for name in ("a", "b", "c"):
        store.observe(name, KEY_A, 1)
    assert store.full
    assert store.observe("d", KEY_A, 1) is TrustState.NEW and store.contact("d") is None
    store.mark_verified("d", KEY_A)  # the user's decision still fits
    with pytest.raises(TrustStoreError, match="its limit"):
        store.accept("e", KEY_A)


# --- the relay cannot use up pinning --------------------------------------------------------


def test_automatic_pins_stop_at_the_daily_budget_and_resume_the_next_day() -> None:
    store = TrustStore()
    for i in range(MAX_AUTO_PINS_PER_DAY):
        store.observe(f"ghost{i}", KEY_B, 1, now=5 * DAY + i)
    assert store.auto_pins_left(5 * DAY + 9) == 0
    assert store.observe("carol", KEY_A, 1, now=5 * DAY + 99) is TrustState.NEW
    assert store.contact("carol") is None  # checked, shown as new, not remembered
    assert store.observe("carol", KEY_A, 1, now=6 * DAY) is TrustState.NEW
    assert store.contact("carol") is not None  # a new day, a new budget


def test_the_daily_budget_survives_reopening_the_file(tmp_path: Path) -> None:
    # A relay that cuts the link (or a restart) must not get a fresh budget: it is counted in the file.
    path = tmp_path / "trust.json"
    store = TrustStore.open(path)
    for i in range(MAX_AUTO_PINS_PER_DAY):
        store.observe(f"ghost{i}", KEY_B, 1, now=3 * DAY)
    store.save()
    reopened = TrustStore.open(path)
    assert reopened.auto_pins_left(3 * DAY + 60) == 0
    reopened.observe("dave", KEY_A, 1, now=3 * DAY + 60)
    assert reopened.contact("dave") is None


def test_two_clients_sharing_the_file_never_lower_the_days_spend(tmp_path: Path) -> None:
    path = tmp_path / "trust.json"
    first, second = TrustStore.open(path), TrustStore.open(path)
    for i in range(MAX_AUTO_PINS_PER_DAY):
        first.observe(f"ghost{i}", KEY_B, 1, now=DAY)
    first.save()
    second.observe("erin", KEY_A, 1, now=DAY)  # second loaded before first spent the budget
    second.save()
    assert TrustStore.open(path).auto_pins_left(DAY) == 0


def test_acting_on_a_person_pins_from_a_reserve_the_relay_cannot_reach(monkeypatch: pytest.MonkeyPatch) -> None:
    import susurro.crypto.trust as trust_module

    monkeypatch.setattr(trust_module, "MAX_CONTACTS", 3)
    store = TrustStore()
    for n, name in enumerate(("g1", "g2", "g3", "g4")):
        store.observe(name, KEY_B, 1, now=n * DAY)  # the automatic part fills up (over days)
    assert store.full and store.contact("g4") is None
    assert store.observe("dave", KEY_A, 1, now=9 * DAY) is TrustState.NEW and store.contact("dave") is None
    assert store.remember("dave", KEY_A, 1) is TrustState.NEW  # e.g. the user sends dave a direct message
    dave = store.contact("dave")
    assert dave is not None and dave.source is PinSource.USER
    assert store.state("dave", KEY_B) is TrustState.CHANGED  # a later substitution is caught
    assert store.remember("dave", KEY_B) is TrustState.CHANGED  # acting again does not re-pin a changed key
    assert store.state("dave", KEY_B) is TrustState.CHANGED


def test_pin_sources_and_the_budget_round_trip_and_old_files_still_load(tmp_path: Path) -> None:
    path = tmp_path / "trust.json"
    store = TrustStore.open(path)
    store.observe("bob", KEY_A, 1, now=2 * DAY)
    store.remember("carol", KEY_B, 1)
    store.save()
    again = TrustStore.open(path)
    assert again.contact("bob").source is PinSource.SEEN  # type: ignore[union-attr]
    assert again.contact("carol").source is PinSource.USER  # type: ignore[union-attr]
    assert again.auto_pins_left(2 * DAY) == MAX_AUTO_PINS_PER_DAY - 1
    document = json.loads(path.read_text())
    del document["auto_pins"]
    for entry in document["contacts"]:
        del entry["source"]
    path.write_text(json.dumps(document))
    old = TrustStore.open(path)
    assert old.contact("carol").source is PinSource.SEEN  # type: ignore[union-attr]
    assert old.auto_pins_left(2 * DAY) == MAX_AUTO_PINS_PER_DAY


@pytest.mark.parametrize("bad", [[1], [1, -1], ["1", 2], {"day": 1}, [1, 2**41]])
def test_a_damaged_budget_is_refused_like_any_damage(tmp_path: Path, bad: object) -> None:
    path = tmp_path / "trust.json"
    store = TrustStore.open(path)
    store.observe("bob", KEY_A, 1)
    store.save()
    document = json.loads(path.read_text())
    document["auto_pins"] = bad
    path.write_text(json.dumps(document))
    with pytest.raises(TrustStoreError, match="damaged"):
        TrustStore.open(path)
