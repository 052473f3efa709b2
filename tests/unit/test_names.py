"""Member name rules: normalization, allowed characters, script mixing, uniqueness key."""

from __future__ import annotations

import unicodedata

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from susurro.protocol import BadName, ErrorCode, LocalProtocolError, name_key, normalize_name
from susurro.protocol.limits import MAX_NAME_CHARS

ACCEPTED = [
    # (raw, canonical)
    ("alice", "alice"),
    ("Bob_2", "Bob_2"),
    ("a.b-c_d", "a.b-c_d"),
    ("007", "007"),
    ("x" * MAX_NAME_CHARS, "x" * MAX_NAME_CHARS),
    ("ａｌｉｃｅ", "alice"),  # fullwidth folds to ASCII
    ("Ｂｏｂ＿２", "Bob_2"),  # fullwidth letters, low line and digit
    ("ﬁnn", "finn"),  # the fi ligature is two letters
    ("José", "José"),  # é precomposed (U+00E9)
    ("Jose\u0301", "José"),  # e + combining acute composes to the same name
    ("山田たろう", "山田たろう"),  # Han + hiragana
    ("ヤマダ太郎", "ヤマダ太郎"),  # katakana + Han
    ("ｶﾀｶﾅ", "カタカナ"),  # halfwidth katakana folds to fullwidth
    ("नमस्ते", "नमस्ते"),  # Devanagari with a virama and vowel signs (marks after letters)
    ("김민수", "김민수"),  # Hangul
    ("Ωμέγα", "Ωμέγα"),  # Greek on its own is fine
    ("Дмитрий", "Дмитрий"),  # Cyrillic on its own is fine
    ("\u0915\u0947\u0902", "\u0915\u0947\u0902"),  # Devanagari: two marks of the letter's script is the limit
    ("日本々", "日本々"),  # the ideographic iteration mark belongs in Japanese names
    ("a\u00b9", "a1"),  # superscript one folds to an ASCII digit
]


@pytest.mark.parametrize(("raw", "canonical"), ACCEPTED, ids=[repr(a) for a, _ in ACCEPTED])
def test_accepted_names(raw: str, canonical: str) -> None:
    assert normalize_name(raw) == canonical
    assert normalize_name(canonical) == canonical


def test_composed_and_decomposed_e_acute_are_the_same_name() -> None:
    composed, decomposed = "caf\u00e9", "cafe\u0301"
    assert composed != decomposed
    assert normalize_name(composed) == normalize_name(decomposed) == "caf\u00e9"
    assert name_key(normalize_name(composed)) == name_key(normalize_name(decomposed))


REFUSED = {
    "empty": "",
    "33 chars": "x" * (MAX_NAME_CHARS + 1),
    "33 chars after NFKC": "ﬁ" * 17,  # 17 chars raw, 34 after the ligatures split
    "space": "alice smith",
    "leading space": " alice",
    "nbsp": "alice\u00a0b",
    "tab": "alice\tb",
    "newline": "alice\n",
    "nul": "al\x00ice",
    "escape": "\x1b[31malice",
    "del": "alice\x7f",
    "c1 control": "alice\x85",
    "rtl override": "alice\u202eecila",
    "ltr mark": "alice\u200e",
    "zero width joiner": "ali\u200dce",
    "zero width space": "ali\u200bce",
    "bom": "\ufeffalice",
    "soft hyphen": "ali\u00adce",
    "emoji": "alice\U0001f600",
    "emoji alone": "\U0001f600",
    "symbol": "alice$",
    "at sign": "alice@example",
    "slash": "a/b",
    "cyrillic a in latin": "p\u0430ypal",
    "cyrillic e in latin": "alic\u0435",
    "greek omicron in latin": "g\u03bfogle",
    "latin in greek": "Ωmega",
    "han + hangul + latin": "김a",
    "hiragana + hangul": "たろ김",
    "only punctuation": "_-.",
    "only dot": ".",
    "leading combining mark": "\u0301abc",
    "mark after digit": "1\u0301",
    "mark after punctuation": "_\u0301",
    "three combining marks": "x\u0301\u0302\u0303",
    "three overlay marks": "b\u0334\u0335\u0336",
    "enclosing mark": "a\u20dd",
    "lone surrogate": "a\ud800",
    "private use": "a\ue000",
    "unassigned": "a\u0378",
    "arabic-indic digit": "a\u0661",
}


@pytest.mark.parametrize("raw", list(REFUSED.values()), ids=list(REFUSED))
def test_refused_names(raw: str) -> None:
    with pytest.raises(BadName) as info:
        normalize_name(raw)
    assert info.value.code is ErrorCode.BAD_NAME
    assert info.value.detail


def test_bad_name_is_a_local_protocol_error() -> None:
    assert issubclass(BadName, LocalProtocolError)
    with pytest.raises(LocalProtocolError):
        normalize_name("")


@pytest.mark.parametrize("raw", [None, 5, b"alice", ["alice"]])
def test_non_text_is_refused(raw: object) -> None:
    with pytest.raises(BadName):
        normalize_name(raw)  # type: ignore[arg-type]


def test_mixed_script_detail_names_the_scripts() -> None:
    with pytest.raises(BadName) as info:
        normalize_name("p\u0430ypal")
    assert "cyrillic" in info.value.detail
    assert "latin" in info.value.detail


def test_control_character_is_shown_as_a_code_point() -> None:
    with pytest.raises(BadName) as info:
        normalize_name("a\u202eb")
    assert "U+202E" in info.value.detail


@pytest.mark.parametrize("variant", ["Alice", "ALICE", "alice", "aLiCe", "ＡＬＩＣＥ"])
def test_name_key_makes_case_variants_collide(variant: str) -> None:
    assert name_key(normalize_name(variant)) == name_key("alice")


@pytest.mark.parametrize(
    ("a", "b"),
    [("Straße", "STRASSE"), ("ǅemal", "DŽEMAL"), ("Ωμέγα", "ΩΜΈΓΑ")],
)
def test_name_key_uses_full_casefolding(a: str, b: str) -> None:
    assert name_key(normalize_name(a)) == name_key(normalize_name(b))


@pytest.mark.parametrize(("a", "b"), [("alice", "alice2"), ("bob", "rob"), ("alice", "alíce")])
def test_name_key_keeps_distinct_names_apart(a: str, b: str) -> None:
    assert name_key(normalize_name(a)) != name_key(normalize_name(b))


@settings(max_examples=300)
@given(raw=st.text(max_size=40))
def test_normalize_name_only_raises_bad_name(raw: str) -> None:
    try:
        name = normalize_name(raw)
    except BadName as exc:
        assert exc.code is ErrorCode.BAD_NAME
    else:
        assert 1 <= len(name) <= MAX_NAME_CHARS
        assert normalize_name(name) == name  # idempotent
        assert unicodedata.is_normalized("NFKC", name)
        assert name_key(name) == name_key(name_key(name))


name_alphabet = st.one_of(
    st.sampled_from("abcXYZ019_-.éДдωΩ山田たタ김"),
    st.sampled_from(["\u0301", "\u0308", "\u093f", "\u0334", "\u200d", "\u202e", " "]),
    st.characters(),
)


@settings(max_examples=300)
@given(raw=st.text(alphabet=name_alphabet, max_size=40))
def test_normalize_name_on_name_like_text(raw: str) -> None:
    try:
        name = normalize_name(raw)
    except BadName as exc:
        assert exc.code is ErrorCode.BAD_NAME
    else:
        assert normalize_name(name) == name
        assert not any(unicodedata.category(ch) in {"Cc", "Cf", "Zs", "Zl", "Zp", "So"} for ch in name)


# Regressions from the adversarial review: invisible characters, Latin
# imitations and overlay marks were accepted, and lookalikes did not collide.
@pytest.mark.parametrize(
    "raw",
    [
        "alice\u034f",  # combining grapheme joiner
        "alice\ufe0f",  # variation selector
        "alice\U000e0100",  # variation selector supplement
        "alice\u17b4",  # Khmer invisible vowel
        "\u3164",  # Hangul filler: an invisible name
        "\u115f",
        "李\u1160",
        "a\u01c0ice",  # dental click drawn like l
        "\u0251lice",  # IPA alpha
        "\u1d00\u029f\u026a\u1d04\u1d07",  # small capitals
        "alice\u0338\u0338",  # overlay marks on Latin letters
        "x\u0301\u0302",  # leftover Latin combining marks (NFKC composes real accents)
        "\U00010300\U00010c00",  # Old Italic + Old Turkic: two scripts, not one "OLD" script
    ],
)
def test_invisible_and_imitation_characters_are_refused(raw: str) -> None:
    with pytest.raises(BadName):
        normalize_name(raw)


@pytest.mark.parametrize(
    ("a", "b"),
    [
        ("\u0430\u04cf\u0456\u0441\u0435", "alice"),  # all-Cyrillic lookalike
        ("\u0422\u041e\u041c", "TOM"),  # Cyrillic capitals
        ("\u0391\u0392\u0395", "ABE"),  # Greek capitals
        ("Ian", "lan"),
        ("b0b", "bob"),
    ],
)
def test_lookalikes_collide(a: str, b: str) -> None:
    assert name_key(normalize_name(a)) == name_key(normalize_name(b))
