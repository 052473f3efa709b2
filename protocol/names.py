"""Member name rules, shared by the relay (which enforces them) and clients
(which check before connecting, to give the user a clear error early).

A name is NFKC-normalized, then must be 1-32 characters of letters, ASCII
digits and ``_ - .`` (at least one letter or digit). Refused outright:
invisible (default-ignorable) characters, Hangul fillers, IPA and phonetic
letters that imitate Latin ones (``ɑ``, ``ᴀ``, ``ǀ``), and combining marks
except those of the base letter's own script (Latin accents are composed by
NFKC, so a leftover Latin combining mark is an overlay trick). Letters must
come from one script, so a Cyrillic ``а`` cannot hide in a Latin name;
Japanese (Han + kana) and Korean (Hangul + Han) mixes are allowed.

Uniqueness is decided on ``name_key``: Unicode's confusable skeleton (UTS #39,
from the ``confusables.txt`` shipped in ``data/``, version pinned in
``CONFUSABLES_VERSION``) taken before and after case folding, then a short
table (``_CASE_FOLDS``) that makes a capital and its small letter fold alike
where the data draws them like different letters (``I`` like ``l``, Greek
``Μ`` like ``M`` but ``μ`` like nothing Latin). So ``alıce`` (dotless ı) and
``alice``, Cyrillic ``аӏісе`` and ``alice``, Greek ``ΤΟΜ`` and ``TOM``, ``Ian``
and ``lan``, ``rnike`` and ``mike`` cannot both be in the room. The rules are
written out for other implementations in ``docs/protocol.md`` (*Names*).

Python's ``unicodedata`` has no script property, so the script is read from
the first word of the character's Unicode name (``LATIN SMALL LETTER A``);
that is exact for the scripts in common use and errs on the side of refusing.
"""

from __future__ import annotations

import bisect
import functools
import unicodedata
from importlib import resources

from .errors import ErrorCode, LocalProtocolError
from .limits import MAX_NAME_CHARS

_PUNCTUATION = frozenset("_-.")
_LETTER_CATEGORIES = frozenset({"Lu", "Ll", "Lt", "Lm", "Lo"})
_MARK_CATEGORIES = frozenset({"Mn", "Mc"})
_MAX_MARKS_IN_A_ROW = 2
_JAPANESE = frozenset({"CJK", "HIRAGANA", "KATAKANA", "KATAKANA-HIRAGANA", "IDEOGRAPHIC"})

#: Default-ignorable and filler code points: they render as nothing.
_INVISIBLE_RANGES = (
    (0x034F, 0x034F),  # combining grapheme joiner
    (0x115F, 0x1160),  # Hangul choseong/jungseong fillers
    (0x17B4, 0x17B5),  # Khmer inherent vowels
    (0x180B, 0x180F),  # Mongolian variation selectors
    (0x3164, 0x3164),  # Hangul filler
    (0xFE00, 0xFE0F),  # variation selectors
    (0xFFA0, 0xFFA0),  # halfwidth Hangul filler
    (0x1BCA0, 0x1BCA3),  # shorthand format controls
    (0x1D173, 0x1D17A),  # musical formatting
    (0xE0000, 0xE0FFF),  # tags and variation selectors supplement
)
#: Letters that exist to imitate Latin ones in phonetics: IPA, phonetic
#: extensions (small capitals), spacing modifiers, and the click letters.
_LATIN_IMITATION_RANGES = ((0x01C0, 0x01C3), (0x0250, 0x02FF), (0x1D00, 0x1DBF))

_KOREAN = frozenset({"HANGUL", "CJK"})


class BadName(LocalProtocolError):
    """A name that breaks the rules; ``detail`` says which rule, in plain words."""

    def __init__(self, detail: str) -> None:
        super().__init__(ErrorCode.BAD_NAME, detail)


def _in_ranges(ch: str, ranges: tuple[tuple[int, int], ...]) -> bool:
    code = ord(ch)
    return any(low <= code <= high for low, high in ranges)


#: Script names of two words, where the first alone would lump scripts
#: together ("OLD ITALIC" and "OLD TURKIC" are different scripts).
_TWO_WORD_SCRIPT_PREFIXES = frozenset({"OLD", "INSCRIPTIONAL", "PSALTER", "CAUCASIAN", "MEROITIC", "LINEAR", "NEW"})


def _script(ch: str) -> str:
    try:
        words = unicodedata.name(ch).split(" ", 2)
    except ValueError:  # unnamed code point
        return "UNKNOWN"
    if words[0] in _TWO_WORD_SCRIPT_PREFIXES and len(words) > 1:
        return f"{words[0]} {words[1]}"
    return words[0]


#: The Unicode version whose assigned code points a name may use (``data/assigned.txt``),
#: whatever the runtime's ``unicodedata`` knows: a relay or client on a newer Python
#: must not accept a name an older one refuses, or one room log verifies on one and
#: stops at that entry on the other (spec review S4, finding 4).
NAME_UNICODE_VERSION = "14.0.0"
_ASSIGNED_FILE = "assigned.txt"


@functools.cache
def assigned_ranges() -> tuple[tuple[int, int], ...]:
    """``data/assigned.txt`` as sorted inclusive ranges of the code points assigned in ``NAME_UNICODE_VERSION``."""
    path = resources.files(__package__).joinpath("data").joinpath(_ASSIGNED_FILE)
    text = path.read_text(encoding="ascii")
    if f"# Version: {NAME_UNICODE_VERSION}\n" not in text[:512]:
        raise ConfusablesDataError(f"data/{_ASSIGNED_FILE} is not Unicode {NAME_UNICODE_VERSION}")
    ranges: list[tuple[int, int]] = []
    for number, line in enumerate(text.splitlines(), 1):
        if not line or line[0] == "#":
            continue
        try:
            low, high = (int(part, 16) for part in line.split(".."))
        except ValueError:
            raise ConfusablesDataError(f"data/{_ASSIGNED_FILE} line {number} is not 'LOW..HIGH'") from None
        ranges.append((low, high))
    return tuple(ranges)


@functools.cache
def _range_starts() -> tuple[int, ...]:
    return tuple(low for low, _ in assigned_ranges())


def assigned_in_pinned_version(ch: str) -> bool:
    """``ch`` was assigned in Unicode ``NAME_UNICODE_VERSION`` (the runtime's own data is not asked)."""
    code = ord(ch)
    index = bisect.bisect_right(_range_starts(), code) - 1
    return index >= 0 and assigned_ranges()[index][1] >= code


def _refuse_unassigned(text: str) -> None:
    for ch in text:
        if not assigned_in_pinned_version(ch):
            raise BadName(f"character U+{ord(ch):04X} is not assigned in Unicode {NAME_UNICODE_VERSION}")


def normalize_name(raw: str) -> str:
    """Return the canonical form of ``raw`` or raise ``BadName`` saying why."""
    if not isinstance(raw, str):
        raise BadName("a name must be text")
    _refuse_unassigned(raw)
    name = unicodedata.normalize("NFKC", raw)
    _refuse_unassigned(name)
    if not name:
        raise BadName("a name must not be empty")
    if len(name) > MAX_NAME_CHARS:
        raise BadName(f"a name must be at most {MAX_NAME_CHARS} characters")
    scripts: set[str] = set()
    marks_in_a_row = 0
    previous_script: str | None = None  # script of the letter just before, if any
    for ch in name:
        if _in_ranges(ch, _INVISIBLE_RANGES):
            raise BadName(f"character U+{ord(ch):04X} is invisible")
        category = unicodedata.category(ch)
        if category in _MARK_CATEGORIES:
            marks_in_a_row += 1
            if previous_script is None:
                raise BadName(f"combining mark U+{ord(ch):04X} is only allowed right after a letter")
            if marks_in_a_row > _MAX_MARKS_IN_A_ROW:
                raise BadName(f"at most {_MAX_MARKS_IN_A_ROW} combining marks may follow one letter")
            if _script(ch) != previous_script:
                raise BadName(f"combining mark U+{ord(ch):04X} does not belong to the letter before it")
            continue
        marks_in_a_row = 0
        if category in _LETTER_CATEGORIES:
            if _in_ranges(ch, _LATIN_IMITATION_RANGES):
                raise BadName(f"character {ch} (U+{ord(ch):04X}) imitates a Latin letter")
            previous_script = _script(ch)
            scripts.add(previous_script)
        elif "0" <= ch <= "9" or ch in _PUNCTUATION:
            previous_script = None
        else:
            shown = ch if ch.isprintable() and not ch.isspace() else f"U+{ord(ch):04X}"
            raise BadName(f"character {shown!s} is not allowed: use letters, digits 0-9 and _ - .")
    if not scripts and not any("0" <= ch <= "9" for ch in name):
        raise BadName("a name needs at least one letter or digit")
    if len(scripts) > 1 and not (scripts <= _JAPANESE or scripts <= _KOREAN):
        listed = ", ".join(sorted(s.lower() for s in scripts))
        raise BadName(f"a name must not mix scripts ({listed}): it could imitate another name")
    return name


#: The UTS #39 data version in ``data/confusables.txt``. Relay and clients must
#: fold names alike (the relay's roster and registry, every client's roster
#: and trust store), so the data is shipped, not taken from the system.
CONFUSABLES_VERSION = "15.0.0"
_CONFUSABLES_FILE = "confusables.txt"

#: Applied after the skeleton, character by character: a capital and its small
#: letter that the data draws like different things fold together here, so
#: that case variants still collide (``Ian``/``ian``: ``I`` is drawn like
#: ``l``; ``ΩΜΈΓΑ``/``Ωμέγα``: ``Μ`` like ``M``, ``μ`` like nothing). Derived
#: from the data by the rule in ``docs/protocol.md`` (*Names*);
#: ``tests/unit/test_name_folding.py`` derives it again and compares. Pairs whose
#: capital and small letter look like two different ASCII letters (Greek
#: ``Ν``/``ν``: ``N`` and ``v``) are deliberately absent: folding them would
#: make ``dane`` and ``dave`` one name.
_CASE_FOLDS: dict[str, str] = {
    "\u006c": "i",  # l: I is drawn like l
    "\u0138": "k",  # ĸ kra
    "\u0185": "b",  # ƅ tone six
    "\u0188": "c'",  # ƈ c with hook
    "\u01a8": "2",  # ƨ tone two
    "\u021d": "3",  # ȝ yogh
    "\u0242": "?",  # ɂ glottal stop
    "\u025c": "3",  # ɜ reversed open e
    "\u0262": "g",  # ɢ small capital g
    "\u0283": "o",  # ʃ esh (from Greek Σ/σ)
    "\u028d": "rn",  # ʍ turned w (from Cyrillic М/м)
    "\u0299": "b",  # ʙ small capital b (from Cyrillic В/в)
    "\u029c": "h",  # ʜ small capital h (from Cyrillic Н/н)
    "\u03b6": "z",  # ζ zeta
    "\u03bb": "\u028c",  # λ lamda → ʌ
    "\u03bc": "rn",  # μ mu
    "\u03c2": "o",  # ς final sigma
    "\u03c7": "x",  # χ chi
    "\u03dd": "f",  # ϝ digamma
    "\u03fb": "rn",  # ϻ san
    "\u043b": "\u028c",  # л el → ʌ
    "\u044e": "io",  # ю yu (Ю is drawn like IO)
    "\u04b3": "x\u0329",  # ҳ ha with descender
    "\u050b": "\u0195",  # ԋ Komi nje → ƕ
    "\u1d1b": "t",  # ᴛ small capital t (from Greek Τ/τ, Cyrillic Т/т)
    "\u2202": "d",  # ∂ (from Latin Ð/ð)
    "\u2c66": "t\u0338",  # ⱦ t with diagonal stroke
    "\u2c68": "h\u0329",  # ⱨ h with descender
    "\u2c6a": "k\u0329",  # ⱪ k with descender
    "\u2c76": "\u0371",  # ⱶ half h → ͱ
    "\ua4e4": "u",  # ꓤ (from Latin Ꞟ/ꞟ)
    "\ua669": "\u0298",  # ꙩ monocular o → ʘ
    "\ua741": "k\u0335",  # ꝁ k with stroke
    "\ua75b": "2",  # ꝛ r rotunda
    "\ua76f": "9",  # ꝯ con
    "\ua793": "e",  # ꞓ c with bar (from Greek Ε/ε)
    "\U000102a8": "\ua69b",  # 𐊨 Carian q → ꚛ
}
#: A few letters (Cherokee, whose case folding goes to capitals) need a second
#: round before the key stops changing; no name needs more than this.
_MAX_FOLD_ROUNDS = 4
#: ``name_key`` runs on every join and on names a ``send`` spells differently
#: from the roster; the cache keeps repeated names cheap, bounded.
_NAME_KEY_CACHE = 65536


class ConfusablesDataError(RuntimeError):
    """The shipped confusables data is missing, of another version, or malformed."""


@functools.cache
def confusables() -> dict[str, str]:
    """``confusables.txt`` as ``{source code point: prototype string}`` (6,311 entries in 15.0.0)."""
    text = resources.files(__package__).joinpath("data").joinpath(_CONFUSABLES_FILE).read_text(encoding="utf-8-sig")
    if f"# Version: {CONFUSABLES_VERSION}\n" not in text[:1024]:
        raise ConfusablesDataError(f"data/{_CONFUSABLES_FILE} is not UTS #39 version {CONFUSABLES_VERSION}")
    table: dict[str, str] = {}
    for number, line in enumerate(text.splitlines(), 1):
        if not line or line[0] == "#":
            continue
        try:
            source, target, kind = line.split("#", 1)[0].split(";")
            if kind.strip() != "MA":
                raise ValueError(kind)
            table[chr(int(source, 16))] = "".join(chr(int(point, 16)) for point in target.split())
        except ValueError:
            detail = f"data/{_CONFUSABLES_FILE} line {number} is not 'source ; target ; MA'"
            raise ConfusablesDataError(detail) from None
    return table


@functools.cache
def _translation() -> dict[int, str]:
    return {ord(source): target for source, target in confusables().items()}


_CASE_FOLD_TRANSLATION = {ord(source): target for source, target in _CASE_FOLDS.items()}


def skeleton(text: str) -> str:
    """UTS #39 ``skeleton``: NFD, every code point replaced by its prototype, NFD again."""
    return unicodedata.normalize("NFD", unicodedata.normalize("NFD", text).translate(_translation()))


def _fold_once(text: str) -> str:
    return skeleton(skeleton(text).casefold()).translate(_CASE_FOLD_TRANSLATION)


@functools.lru_cache(maxsize=_NAME_KEY_CACHE)
def name_key(name: str) -> str:
    """The key under which names must be unique.

    Names a reader could mistake for each other get one key: case variants
    (``Alice``, ``alice``), and every pair Unicode's confusables data calls
    confusable (``alıce`` and ``alice``, ``аӏісе`` and ``alice``, ``Ian`` and
    ``lan``, ``rnike`` and ``mike``). The key is for comparing, never for showing.
    """
    key = name
    for _ in range(_MAX_FOLD_ROUNDS):
        folded = _fold_once(key)
        if folded == key:
            break
        key = folded
    return key
