"""docs/protocol.md as the tests read it: its test-vector blocks are recomputed from the code."""

from __future__ import annotations

import re
from pathlib import Path

PROTOCOL_DOC = Path(__file__).resolve().parents[2] / "docs" / "protocol.md"


def doc_vectors(heading: str) -> dict[str, str]:
    """``name = value`` lines of the first ``text`` block after ``heading``; long values wrap onto indented lines."""
    section = PROTOCOL_DOC.read_text().split(heading, 1)[1]
    block = section.split("```text\n", 1)[1].split("```", 1)[0]
    found: dict[str, str] = {}
    key = None
    for line in block.splitlines():
        if match := re.fullmatch(r"(\w+)\s*=\s*(.*)", line):
            key = match.group(1)
            found[key] = match.group(2).strip()
        elif key is not None and line.startswith(" "):
            found[key] += line.strip()
    return found
