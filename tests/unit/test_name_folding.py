"""Lookalike folding of names (``name_key``) on Unicode's UTS #39 confusables data.

The data file is pinned (version and hash), the case-fold table is derived
again from the data by the rule docs/protocol.md states, and every confusable
pair of Latin, Greek and Cyrillic letters in the data must collide, alone and
inside names of their own script, on the relay's roster and in the trust store.
"""

from __future__ import annotations

import hashlib
import re
import unicodedata
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from susurro.crypto.trust import TrustState, TrustStore
from susurro.protocol import BadName, Member, name_key, normalize_name
from susurro.protocol import names as names_module
from susurro.protocol.names import CONFUSABLES_VERSION, confusables, skeleton
from susurro.relay.roster import NameTaken, Roster

ROOT = Path(__file__).resolve().parents[2]
DATA = ROOT / "protocol" / "data" / "confusables.txt"
DOC = ROOT / "docs" / "protocol.md"
#: sha256 of Unicode's confusables.txt 15.0.0 (2022-08-26), as published and as
#: ICU 72.1 ships it in source/data/unidata/. Changing the data changes which
#: names collide on every relay and client, so it is a protocol change.
CONFUSABLES_SHA256 = "2b10130885c3370b101c52d7baedc452ab7f0e257b86c1e52ee657ecfc29ce64"
SCRIPTS = ("LATIN", "GREEK", "CYRILLIC")
ASCII_ALNUM = frozenset("abcdefghijklmnopqrstuvwxyz0123456789")


def valid(text: str) -> bool:
    try:
        return normalize_name(text) == text
    except BadName:
        return False


def script(ch: str) -> str:
    return names_module._script(ch)


def test_the_shipped_data_is_unicode_confusables_15_0_0_unchanged() -> None:
    assert CONFUSABLES_VERSION == "15.0.0"
    assert hashlib.sha256(DATA.read_bytes()).hexdigest() == CONFUSABLES_SHA256
    head = DATA.read_text(encoding="utf-8")[:400]
    assert "# Version: 15.0.0" in head and "# Date: 2022-08-26" in head
    table = confusables()
    assert len(table) == 6311  # the file's own "# total: 6311"
    assert table["\u0131"] == "i"  # dotless ı, the lookalike that got past the hand-picked skeleton
    assert table["I"] == "l" and table["1"] == "l" and table["0"] == "O" and table["m"] == "rn"


def test_skeleton_is_the_uts39_definition() -> None:
    assert skeleton("al\u0131ce") == "alice"
    assert skeleton("\u0430\u04cf\u0456\u0441\u0435") == "aiice"  # palochka ӏ is drawn like i here
    assert skeleton("Ian") == "lan"
    assert skeleton("mike") == "rnike"
    assert skeleton("\u00e9") == "e\u0301"  # NFD before and after


def derive_case_folds() -> dict[str, str]:
    """The rule of docs/protocol.md, *Names*, run over the data: see there."""
    parent: dict[str, str] = {}

    def find(ch: str) -> str:
        while parent.get(ch, ch) != ch:
            ch = parent[ch]
        return ch

    def ascii_in(ch: str) -> set[str]:
        root = find(ch)
        return {a for a in ASCII_ALNUM if find(a) == root}

    def key0(text: str) -> str:
        return skeleton(skeleton(text).casefold())

    rewrite: dict[str, str] = {}
    for point in range(0x110000):
        capital = chr(point)
        if unicodedata.category(capital) not in {"Lu", "Lt", "Ll"} or script(capital) not in SCRIPTS:
            continue
        small = capital.casefold()
        if small == capital or not valid(capital) or not valid(small):
            continue
        upper, lower = key0(capital), key0(small)
        if upper == lower:
            continue
        diffs = [(a, b) for a, b in zip(upper, lower, strict=True) if a != b] if len(upper) == len(lower) else []
        if len(diffs) == 1:
            a, b = diffs[0]
            if unicodedata.combining(a) or unicodedata.combining(b) or find(a) == find(b):
                continue
            if ascii_in(a) and ascii_in(b) and not capital.isascii():
                continue  # two ASCII letters apart (N and v): never merged
            ra, rb = find(a), find(b)
            parent[max(ra, rb)] = min(ra, rb)
        elif len(lower) == 1 and not lower.isascii() and lower not in rewrite and find(lower) == lower:
            rewrite[lower] = upper
        elif len(upper) == 1 and not upper.isascii() and upper not in rewrite and find(upper) == upper:
            rewrite[upper] = lower
    folds = {ch: find(ch) for ch in parent if find(ch) != ch}
    for ch, target in rewrite.items():
        folds[ch] = "".join(folds.get(t, t) for t in target)
    return folds


def test_the_case_fold_table_is_the_one_the_rule_derives_from_the_data() -> None:
    assert names_module._CASE_FOLDS == derive_case_folds()


def doc_case_folds() -> dict[str, str]:
    """Rows ``| U+006C | l | U+0069 | ...`` of the case-fold table in docs/protocol.md."""
    section = DOC.read_text(encoding="utf-8").split("### Lookalike folding", 1)[1].split("\n## ", 1)[0]
    rows = re.findall(r"^\| U\+([0-9A-F]{4,6}) \| [^|]* \| ((?:U\+[0-9A-F]{4,6} ?)+) \|", section, re.MULTILINE)
    return {chr(int(s, 16)): "".join(chr(int(p, 16)) for p in re.findall(r"U\+([0-9A-F]+)", t)) for s, t in rows}


def test_the_protocol_doc_lists_the_case_fold_table_and_the_data_version() -> None:
    assert doc_case_folds() == names_module._CASE_FOLDS
    section = DOC.read_text(encoding="utf-8").split("### Lookalike folding", 1)[1]
    assert f"version {CONFUSABLES_VERSION}" in section and CONFUSABLES_SHA256 in section


def confusable_letter_pairs() -> list[tuple[str, str]]:
    """Every data entry whose source is a Latin, Greek or Cyrillic letter and
    whose source and prototype are both acceptable names on their own.

    Entries for precomposed letters (``ȧ``) never apply: the skeleton
    decomposes first, and maps the parts (UTS #39, section 4)."""
    pairs = []
    for source, target in confusables().items():
        if unicodedata.normalize("NFD", source) != source:
            continue
        if script(source) in SCRIPTS and unicodedata.category(source).startswith("L"):
            if valid(source) and valid(unicodedata.normalize("NFC", target)):
                pairs.append((source, unicodedata.normalize("NFC", target)))
    return pairs


PAIRS = confusable_letter_pairs()


def test_there_are_over_150_latin_greek_cyrillic_pairs_to_check() -> None:
    assert len(PAIRS) > 150
    by_script = {s: sum(1 for source, _ in PAIRS if script(source) == s) for s in SCRIPTS}
    assert all(count >= 40 for count in by_script.values()), by_script


def test_every_confusable_pair_of_latin_greek_and_cyrillic_letters_collides() -> None:
    apart = [(s, t) for s, t in PAIRS if name_key(s) != name_key(t)]
    assert not apart


#: Names of each script that a lookalike letter of the same script can be put into.
HOSTS = {
    "LATIN": ["alice", "Maria", "jose", "Ivan_1", "PAYPAL"],
    "GREEK": ["\u03b1\u03b8\u03b7\u03bd\u03b1", "\u039d\u0399\u039a\u039f\u03a3", "\u03bf\u03bc\u03b5\u03b3\u03b1"],
    "CYRILLIC": ["\u0430\u043d\u043d\u0430", "\u041f\u0415\u0422\u0420", "\u0441\u0430\u0448\u0430"],
}


@settings(max_examples=400)
@given(pair=st.sampled_from(PAIRS), host_index=st.integers(0, 4), position=st.integers(0, 6))
def test_a_confusable_letter_inside_a_name_of_its_script_collides_with_its_prototype(
    pair: tuple[str, str], host_index: int, position: int
) -> None:
    source, target = pair
    hosts = HOSTS[script(source)]
    host = hosts[host_index % len(hosts)]
    at = position % (len(host) + 1)
    lookalike, original = host[:at] + source + host[at:], host[:at] + target + host[at:]
    if valid(lookalike):  # a name the relay accepts...
        assert name_key(lookalike) == name_key(skeleton(lookalike))  # ...keys through its skeleton
        if valid(original):
            assert name_key(lookalike) == name_key(original)


#: Known impersonations, written by hand rather than taken from the data.
@pytest.mark.parametrize(
    ("a", "b"),
    [
        ("al\u0131ce", "alice"),  # Latin dotless ı, which the hand-picked skeleton missed
        ("\u0430\u04cf\u0456\u0441\u0435", "alice"),
        ("\u0440\u0430\u0443\u0440\u0430\u04cf", "paypal"),
        ("\u0422\u041e\u041c", "TOM"),
        ("\u0391\u0392\u0395", "ABE"),
        ("\u039d\u03bf\u03bd\u03b1", "Nova"),
        ("\u0399\u0391\u039d", "lan"),
        ("Ian", "lan"),
        ("b0b", "bob"),
        ("rnike", "mike"),
        ("RNIKE", "mike"),
        ("\u0455\u0430\u0455\u04bb\u0430", "sasha"),  # Cyrillic ѕ, а, һ
    ],
    ids=ascii,
)
def test_known_lookalikes_collide(a: str, b: str) -> None:
    assert valid(a) and valid(b)
    assert name_key(a) == name_key(b)


@pytest.mark.parametrize(
    "variant", ["Alice", "ALICE", "alice", "aLiCe", "Straße", "STRASSE", "Ωμέγα", "ΩΜΈΓΑ", "Дмитрий", "ДМИТРИЙ"]
)
def test_case_variants_collide(variant: str) -> None:
    twin = {"Alice": "alice", "ALICE": "alice", "aLiCe": "alice", "STRASSE": "Straße", "ΩΜΈΓΑ": "Ωμέγα"}
    twin |= {"ДМИТРИЙ": "Дмитрий"}
    assert name_key(variant) == name_key(twin.get(variant, variant))


@pytest.mark.parametrize(
    ("a", "b"),
    [
        ("alice", "alice2"),
        ("bob", "rob"),
        ("alice", "al\u00edce"),
        ("dave", "dane"),
        ("nina", "vina"),
        ("yuri", "ruri"),
    ],
)
def test_names_that_only_look_alike_through_another_scripts_case_stay_apart(a: str, b: str) -> None:
    # Greek Ν/ν look like N and v, Υ/υ like Y and u, Cyrillic Г/г like Γ and r:
    # folding those would make these real, distinct names one.
    assert name_key(a) != name_key(b)


latin_letters = st.text(alphabet=st.sampled_from("abcdefghijklmnopqrstuvwxyzàéîõüçñßøåæœðþ0123456789_"), min_size=1)


@settings(max_examples=300)
@given(name=latin_letters)
def test_latin_names_are_case_insensitive(name: str) -> None:
    for variant in (name.upper(), name.title(), name.casefold()):
        if valid(variant) and valid(name):
            assert name_key(variant) == name_key(name)


@settings(max_examples=300)
@given(raw=st.text(max_size=32))
def test_name_key_is_stable(raw: str) -> None:
    if valid(raw):
        assert name_key(name_key(raw)) == name_key(raw)


def member(name: str, sk: bytes) -> Member:
    return Member(name=name, ik=bytes(32), sk=sk, cert=bytes(64), issued_at=1)


def test_the_relay_roster_refuses_a_lookalike_of_a_present_name() -> None:
    roster: Roster[object] = Roster()
    roster.join(member("alice", b"a" * 32), object(), lambda others: None)
    for lookalike in ("al\u0131ce", "ALICE", "\u0430\u04cf\u0456\u0441\u0435"):
        with pytest.raises(NameTaken) as taken:
            roster.join(member(lookalike, b"b" * 32), object(), lambda others: None)
        assert taken.value.args[0] == "alice"


def test_the_trust_store_pins_a_lookalike_under_the_same_contact() -> None:
    store = TrustStore(key_of=name_key)
    store.observe("alice", b"A" * 32, 10)
    assert store.state("al\u0131ce", b"A" * 32) is TrustState.PINNED
    assert store.state("al\u0131ce", b"B" * 32) is TrustState.CHANGED  # not a fresh "new" contact


def test_the_data_file_is_packaged() -> None:
    # Without it an installed relay could not fold the first name it sees.
    pyproject = (ROOT / "pyproject.toml").read_text(encoding="utf-8")
    assert '"susurro.protocol" = ["data/confusables.txt", "data/assigned.txt"]' in pyproject
