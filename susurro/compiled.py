"""Which of the relay's hot-path modules run compiled (mypyc), and the guard that keeps a stale build out.

``pip install -e .`` compiles the modules in ``COMPILED_SOURCES`` with mypyc
(setup.py) and writes ``MANIFEST``: the sha256 of every source the
translation read (``SOURCE_FOLDERS``: mypyc compiles against the types of
every module the compiled ones import, not only their own), hashed before
mypyc read them, and of every compiled file it produced. A compiled module
sits next to its ``.py`` and Python would load it first, so an edit without
a rebuild would silently run the old code. ``install`` (called when
``susurro`` is imported, before any of these modules can be) decides once
per process:

- compiled, when the manifest's sources and compiled files are all exactly
  what is on disk;
- pure, when ``SUSURRO_PURE_PYTHON`` is set (1, true, yes, on; any other
  value but 0, false, no, off is taken as set too: the safe side), when any
  source changed, appeared or went since the build, when a compiled file is
  missing or not the build's, or when there is no build at all.

Pure means a meta-path finder loads each of these modules from its ``.py``.
All of them or none: the compiled modules are one library and call each
other directly, so one stale module would drag in the others' old code.
Deciding prints nothing: the relay says which it runs (its start line,
``--version``), and a chat client has no business warning about it.

Only the standard library here: setup.py loads this file before anything is
installed.
"""

from __future__ import annotations

import enum
import hashlib
import importlib.abc
import importlib.machinery
import importlib.util
import json
import os
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType

#: Module -> its source, relative to the ``susurro`` package directory.
COMPILED_SOURCES: dict[str, str] = {
    "susurro.protocol.fastpath": "protocol/fastpath.py",
    "susurro.protocol.framing": "protocol/framing.py",
    "susurro.relay.budget": "relay/budget.py",
    "susurro.relay.core": "relay/core.py",
    "susurro.relay.idle": "relay/idle.py",
    "susurro.relay.loop": "relay/loop.py",
    "susurro.relay.outbox": "relay/outbox.py",
    "susurro.relay.ratelimit": "relay/ratelimit.py",
    "susurro.relay.roster": "relay/roster.py",
}
#: The compiled modules' shared library (mypyc's group), inside the package.
GROUP = "susurro._compiled"
#: Folders (under the package) of every source the translation reads: the compiled modules and
#: everything they import. A changed type in any of them can make the compiled code wrong.
SOURCE_FOLDERS = ("protocol", "relay", "crypto", "transport")
#: Written by the build next to this file: {"modules": [module, ...], "sources": {path: sha256},
#: "binaries": {path: sha256}}, paths relative to the package directory.
MANIFEST = "compiled.json"
#: Set (to 1): every module runs from its source, compiled or not (a baseline, or to rule the build out).
PURE_SWITCH = "SUSURRO_PURE_PYTHON"
_SWITCH_ON = frozenset({"1", "true", "yes", "on"})
_SWITCH_OFF = frozenset({"", "0", "false", "no", "off"})
#: Changed sources named in a stale build's detail, at most.
_NAMED = 5


class BuildKind(enum.Enum):
    COMPILED = "compiled"
    #: ``SUSURRO_PURE_PYTHON=1``.
    PURE_SWITCH = "pure (SUSURRO_PURE_PYTHON=1)"
    #: A source changed after the build: the compiled code is not what the ``.py`` says.
    PURE_STALE = "pure (compiled build is stale)"
    #: Nothing was compiled (no compiler, or a build that failed).
    PURE_NOT_BUILT = "pure (not compiled)"


@dataclass(frozen=True)
class BuildState:
    kind: BuildKind
    #: What made it so: the stale sources, or why there is no build.
    detail: str = ""

    @property
    def compiled(self) -> bool:
        return self.kind is BuildKind.COMPILED

    def describe(self) -> str:
        return f"{self.kind.value}: {self.detail}" if self.detail else self.kind.value


def source_digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def source_digests(package_dir: Path) -> dict[str, str]:
    """The sha256 of every ``.py`` under ``SOURCE_FOLDERS``, by path relative to ``package_dir``."""
    digests: dict[str, str] = {}
    for folder in SOURCE_FOLDERS:
        root = (package_dir / folder).resolve()  # the package's folders link to the checkout's
        if not root.is_dir():
            continue
        for path in sorted(root.rglob("*.py")):
            if "__pycache__" not in path.parts:
                digests[f"{folder}/{path.relative_to(root).as_posix()}"] = source_digest(path)
    return digests


def binary_paths(package_dir: Path) -> dict[str, Path]:
    """The compiled files of a build, present or not: each module's, and the group's (by stem)."""
    stems = [relative.removesuffix(".py") for relative in COMPILED_SOURCES.values()]
    stems.append(GROUP.rpartition(".")[2] + "__mypyc")
    found: dict[str, Path] = {}
    for stem in stems:
        candidates = [package_dir / (stem + suffix) for suffix in importlib.machinery.EXTENSION_SUFFIXES]
        found[stem] = next((path for path in candidates if path.is_file()), candidates[0])
    return found


def build_manifest(package_dir: Path, sources: Mapping[str, str]) -> dict[str, object]:
    """The manifest for what is built under ``package_dir`` from ``sources`` (hashed before mypyc read them)."""
    binaries = {
        path.relative_to(package_dir).as_posix(): source_digest(path) for path in binary_paths(package_dir).values()
    }
    return {"modules": sorted(COMPILED_SOURCES), "sources": dict(sources), "binaries": binaries}


def _switch(environ: Mapping[str, str]) -> BuildState | None:
    value = environ.get(PURE_SWITCH, "")
    if value.strip().lower() in _SWITCH_OFF:
        return None
    if value.strip().lower() in _SWITCH_ON:
        return BuildState(BuildKind.PURE_SWITCH)
    return BuildState(BuildKind.PURE_SWITCH, f"{PURE_SWITCH}={value!r} is not 0 or 1: taken as set")


def _text_map(value: object) -> dict[str, str] | None:
    if isinstance(value, dict) and all(isinstance(k, str) and isinstance(v, str) for k, v in value.items()):
        return value
    return None


def decide(package_dir: Path, environ: Mapping[str, str]) -> BuildState:
    """Whether the modules of ``COMPILED_SOURCES`` under ``package_dir`` may run compiled."""
    switched = _switch(environ)
    if switched is not None:
        return switched
    try:
        recorded = json.loads((package_dir / MANIFEST).read_text(encoding="utf-8"))
        modules, sources, binaries = recorded["modules"], recorded["sources"], recorded["binaries"]
    except FileNotFoundError:
        return BuildState(BuildKind.PURE_NOT_BUILT, f"no {MANIFEST}")
    except (OSError, ValueError, KeyError, TypeError) as exc:
        return BuildState(BuildKind.PURE_NOT_BUILT, f"unreadable {MANIFEST} ({exc.__class__.__name__})")
    sources, binaries = _text_map(sources), _text_map(binaries)
    if sources is None or binaries is None or not isinstance(modules, list) or set(modules) != set(COMPILED_SOURCES):
        return BuildState(BuildKind.PURE_NOT_BUILT, f"{MANIFEST} is for other modules")
    expected = {path.relative_to(package_dir).as_posix() for path in binary_paths(package_dir).values()}
    wrong = sorted(
        relative
        for relative in expected | set(binaries)
        if relative not in binaries
        or not (package_dir / relative).is_file()
        or source_digest(package_dir / relative) != binaries[relative]
    )
    if wrong:
        return BuildState(BuildKind.PURE_NOT_BUILT, "compiled files missing or not the build's: " + ", ".join(wrong))
    current = source_digests(package_dir)
    changed = sorted(
        relative for relative in current.keys() | sources.keys() if current.get(relative) != sources.get(relative)
    )
    if changed:
        named = ", ".join(changed[:_NAMED]) + (f" and {len(changed) - _NAMED} more" if len(changed) > _NAMED else "")
        return BuildState(BuildKind.PURE_STALE, "changed since the build: " + named)
    return BuildState(BuildKind.COMPILED)


class SourceFirst(importlib.abc.MetaPathFinder):
    """Loads each of ``modules`` from its ``.py``, whatever compiled file lies beside it."""

    def __init__(self, modules: Sequence[str]) -> None:
        self.modules = frozenset(modules)

    def find_spec(
        self, fullname: str, path: Sequence[str] | None, target: ModuleType | None = None
    ) -> importlib.machinery.ModuleSpec | None:
        if fullname not in self.modules:
            return None
        leaf = fullname.rpartition(".")[2] + ".py"
        for entry in path or ():
            source = Path(entry) / leaf
            if source.is_file():
                return importlib.util.spec_from_file_location(fullname, source)
        return None


_state: BuildState | None = None


def install() -> BuildState:
    """Decide once for this process; when pure, put ``SourceFirst`` ahead of every other finder."""
    global _state
    if _state is None:
        _state = decide(Path(__file__).resolve().parent, os.environ)
        if not _state.compiled:
            sys.meta_path.insert(0, SourceFirst(list(COMPILED_SOURCES)))
    return _state


def notice(build: BuildState) -> str | None:
    """What an operator should read about ``build`` at the relay's start, if anything."""
    if build.kind is BuildKind.PURE_STALE:
        return f"the hot path runs as pure Python: {build.detail}; `pip install -e .` compiles it again"
    if build.kind is BuildKind.PURE_NOT_BUILT:
        return f"the hot path runs as pure Python ({build.detail}); `pip install -e .` with a C compiler compiles it"
    return None


def state() -> BuildState:
    """How this process runs the modules of ``COMPILED_SOURCES``."""
    return install()


def loaded_compiled() -> dict[str, bool]:
    """For each of those modules imported so far: whether it runs compiled (an extension module)."""
    suffixes = tuple(importlib.machinery.EXTENSION_SUFFIXES)
    return {
        name: str(getattr(sys.modules[name], "__file__", "")).endswith(suffixes)
        for name in COMPILED_SOURCES
        if name in sys.modules
    }
