"""The ``susurro-cli --json`` format as docs/cli-json.md states it, and a checker.

The doc is the schema: one ``### `event`` section per event kind with a
``| field | type | meaning |`` table, a table per kind of object in lists, and the
*Trust states* and *Warning kinds* lists. ``problems(obj)`` says how a
printed object breaks it (an undocumented event or field, a missing field, a
wrong type or value), so tests fail on anything the doc does not say.
"""

from __future__ import annotations

import functools
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

DOC = Path(__file__).resolve().parents[2] / "docs" / "cli-json.md"
_ROW = re.compile(r"^\| `([a-z_]+)` \| ([^|]+?) \|", re.MULTILINE)


#: ``list of X`` types: the ``## `` section whose table describes each X.
OBJECT_SECTIONS = {
    "members": "Member objects",
    "not-delivered entries": "Not-delivered entries",
    "history entries": "History entries",
}


@dataclass(frozen=True)
class Schema:
    events: dict[str, dict[str, str]]  # event -> field -> type
    objects: dict[str, dict[str, str]]  # "members" -> field -> type
    trust_states: frozenset[str]
    warning_kinds: frozenset[str]


def _section_rows(text: str) -> dict[str, str]:
    return {field: kind.strip() for field, kind in _ROW.findall(text)}


@functools.cache
def schema() -> Schema:
    text = DOC.read_text(encoding="utf-8")
    events: dict[str, dict[str, str]] = {}
    for part in re.split(r"^### ", text, flags=re.MULTILINE)[1:]:
        heading, _, body = part.partition("\n")
        if match := re.fullmatch(r"`([a-z_]+)`", heading.strip()):
            events[match.group(1)] = _section_rows(body.split("\n## ", 1)[0])

    def section(title: str) -> str:
        return text.split(f"## {title}\n", 1)[1].split("\n## ", 1)[0]

    return Schema(
        events=events,
        objects={kind: _section_rows(section(title)) for kind, title in OBJECT_SECTIONS.items()},
        trust_states=frozenset(_section_rows(section("Trust states"))),
        warning_kinds=frozenset(_section_rows(section("Warning kinds"))),
    )


def _type_problem(value: Any, kind: str, where: str, spec: Schema) -> list[str]:
    kind = kind.removeprefix("optional ")
    if kind.startswith('`"'):  # the event's own name
        return [] if value == kind.strip('`"') else [f"{where}: {value!r} is not {kind}"]
    checks = {
        "string": lambda v: isinstance(v, str),
        "string or null": lambda v: v is None or isinstance(v, str),
        "integer": lambda v: isinstance(v, int) and not isinstance(v, bool),
        "number": lambda v: isinstance(v, (int, float)) and not isinstance(v, bool),
        "boolean": lambda v: isinstance(v, bool),
        "list of strings": lambda v: isinstance(v, list) and all(isinstance(x, str) for x in v),
        "trust": lambda v: v in spec.trust_states,
        "kind": lambda v: v in spec.warning_kinds,
    }
    if kind.removeprefix("list of ") in spec.objects:
        if not isinstance(value, list):
            return [f"{where}: {value!r} is not a {kind}"]
        out: list[str] = []
        for index, item in enumerate(value):
            out += _object_problems(item, spec.objects[kind.removeprefix("list of ")], f"{where}[{index}]", spec)
        return out
    if kind not in checks:
        return [f"{where}: the doc's type {kind!r} is not one the checker knows"]
    return [] if checks[kind](value) else [f"{where}: {value!r} is not {kind}"]


def _object_problems(obj: Any, fields: dict[str, str], where: str, spec: Schema) -> list[str]:
    if not isinstance(obj, dict):
        return [f"{where}: {obj!r} is not an object"]
    out = [f"{where}: field {name!r} is not in docs/cli-json.md" for name in obj if name not in fields]
    for name, kind in fields.items():
        if name not in obj:
            if not kind.startswith("optional "):
                out.append(f"{where}: documented field {name!r} is missing")
            continue
        out += _type_problem(obj[name], kind, f"{where}.{name}", spec)
    return out


def problems(obj: Any) -> list[str]:
    """Everything in one printed JSON object that docs/cli-json.md does not say (empty: fine)."""
    spec = schema()
    if not isinstance(obj, dict) or not isinstance(obj.get("event"), str):
        return [f"{obj!r} has no 'event' string"]
    fields = spec.events.get(obj["event"])
    if fields is None:
        return [f"event {obj['event']!r} is not in docs/cli-json.md"]
    return _object_problems(obj, fields, obj["event"], spec)
