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

Uniqueness is decided on ``name_key``: the casefolded name with a small
skeleton that folds whole-script lookalikes (Cyrillic ``аӏісе`` and Latin
``alice``, Greek ``ΤΟΜ`` and Latin ``TOM``) and ``I``/``l``/``1``, ``O``/``0``.
It is a hand-picked subset of Unicode's confusables (UTS #39), whose data
Python does not ship; it catches the common impersonations, not all.

Python's ``unicodedata`` has no script property, so the script is read from
the first word of the character's Unicode name (``LATIN SMALL LETTER A``);
that is exact for the scripts in common use and errs on the side of refusing.
"""

from __future__ import annotations

import unicodedata

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

#: Applied after casefolding, so upper and lower case always agree. Cyrillic
#: and Greek letters whose upper or lower case is drawn like a Latin letter
#: map to it; ``i``, ``l`` and ``1`` (``Ian``/``lan``), and ``0``/``o``, fold together.
_SKELETON = str.maketrans(
    {
        **dict.fromkeys("аα", "a"),
        **dict.fromkeys("вβ", "b"),
        **dict.fromkeys("сϲ", "c"),
        **dict.fromkeys("ԁ", "d"),
        **dict.fromkeys("еε", "e"),
        **dict.fromkeys("нһη", "h"),
        **dict.fromkeys("іιl1", "i"),
        **dict.fromkeys("јϳ", "j"),
        **dict.fromkeys("кκ", "k"),
        **dict.fromkeys("ӏ", "i"),
        **dict.fromkeys("мμ", "m"),
        **dict.fromkeys("оο0", "o"),
        **dict.fromkeys("рρ", "p"),
        **dict.fromkeys("ԛ", "q"),
        **dict.fromkeys("ѕ", "s"),
        **dict.fromkeys("тτ", "t"),
        **dict.fromkeys("υ", "u"),
        **dict.fromkeys("νѵ", "v"),
        **dict.fromkeys("ԝ", "w"),
        **dict.fromkeys("хχ", "x"),
        **dict.fromkeys("уүγ", "y"),
        **dict.fromkeys("ζ", "z"),
    }
)
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


def normalize_name(raw: str) -> str:
    """Return the canonical form of ``raw`` or raise ``BadName`` saying why."""
    if not isinstance(raw, str):
        raise BadName("a name must be text")
    name = unicodedata.normalize("NFKC", raw)
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


def name_key(name: str) -> str:
    """The key under which names must be unique.

    ``Alice`` and ``alice`` collide, and so do lookalikes across scripts
    (``аӏісе`` with ``alice``) and ``Ian`` with ``lan``: names that a reader
    could mistake for each other cannot both be in the room.
    """
    return unicodedata.normalize("NFKC", name.casefold()).translate(_SKELETON)
