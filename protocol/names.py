"""Member name rules, shared by the relay (which enforces them) and clients
(which check before connecting, to give the user a clear error early).

A name is NFKC-normalized, then must be 1-32 characters of letters, ASCII
digits and ``_ - .`` (at least one letter or digit), with combining marks allowed only after a letter (at most
two in a row). Letters must come from one script, so a Cyrillic ``а`` cannot
hide in a Latin name; Japanese (Han + kana) and Korean (Hangul + Han) mixes
are allowed. Uniqueness is decided on ``name_key`` (the casefolded name).

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
_JAPANESE = frozenset({"CJK", "HIRAGANA", "KATAKANA", "KATAKANA-HIRAGANA"})
_KOREAN = frozenset({"HANGUL", "CJK"})


class BadName(LocalProtocolError):
    """A name that breaks the rules; ``detail`` says which rule, in plain words."""

    def __init__(self, detail: str) -> None:
        super().__init__(ErrorCode.BAD_NAME, detail)


def _script(ch: str) -> str:
    try:
        return unicodedata.name(ch).split(" ", 1)[0]
    except ValueError:  # unnamed code point
        return "UNKNOWN"


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
    previous_is_letter = False
    for ch in name:
        category = unicodedata.category(ch)
        if category in _MARK_CATEGORIES:
            marks_in_a_row += 1
            if not previous_is_letter:
                raise BadName(f"combining mark U+{ord(ch):04X} is only allowed right after a letter")
            if marks_in_a_row > _MAX_MARKS_IN_A_ROW:
                raise BadName(f"at most {_MAX_MARKS_IN_A_ROW} combining marks may follow one letter")
            continue
        marks_in_a_row = 0
        if category in _LETTER_CATEGORIES:
            scripts.add(_script(ch))
            previous_is_letter = True
        elif "0" <= ch <= "9" or ch in _PUNCTUATION:
            previous_is_letter = False
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
    """The key under which names must be unique: ``Alice`` and ``alice`` collide."""
    return unicodedata.normalize("NFKC", name.casefold())
