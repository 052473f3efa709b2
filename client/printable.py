"""Untrusted text made safe to show: no escape sequences, no bidi tricks, no fake lines.

Both views show peers' names and messages through ``printable``: the
terminal client, where a control character would act on the terminal, and
the GUI, where a bidi override would reorder what the user reads.
"""

from __future__ import annotations

import unicodedata

#: Characters that reorder or hide text on screen (bidi controls, zero-width marks).
_INVISIBLE = frozenset(
    "\u061c\u200b\u200c\u200d\u200e\u200f\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069\ufeff"
)


def printable(text: str) -> str:
    """Make untrusted text safe for a terminal.

    Control characters (ANSI escapes, carriage returns) and bidi or invisible
    characters are shown as escapes instead of acting on the terminal, and a
    newline starts an indented continuation line, so a message can never clear
    the screen or fake a line that looks like it came from someone else.
    """
    out = []
    for ch in text:
        if ch == "\n":
            out.append("\n    ")
        elif ch in _INVISIBLE or unicodedata.category(ch) in ("Cc", "Cs"):
            out.append(f"\\x{ord(ch):02x}" if ord(ch) < 0x100 else f"\\u{ord(ch):04x}")
        else:
            out.append(ch)
    return "".join(out)
