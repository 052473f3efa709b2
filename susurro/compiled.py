"""Which of the relay's hot-path modules run compiled (mypyc), and the guard that keeps a stale build out.

``pip install -e .`` compiles the modules in ``COMPILED_SOURCES`` with mypyc
(setup.py) and writes ``MANIFEST``: each source's sha256 as it was compiled.
A compiled module sits next to its ``.py`` and Python would load it first,
so an edit to the ``.py`` without a rebuild would silently run the old code.
``install`` (called when ``susurro`` is imported, before any of these
modules can be) decides once per process:

- compiled, when the manifest lists every module with the sha256 of the
  source beside it;
- pure, when ``SUSURRO_PURE_PYTHON=1`` (the switch), when any listed source
  changed since the build (one warning), or when there is no build at all.

Pure means a meta-path finder loads each of these modules from its ``.py``.
All of them or none: the compiled modules are one library and call each
other directly, so one stale module would drag in the others' old code.

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
import warnings
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType

#: Module -> its source, relative to the ``susurro`` package directory.
COMPILED_SOURCES: dict[str, str] = {
    "susurro.protocol.framing": "protocol/framing.py",
    "susurro.relay.core": "relay/core.py",
    "susurro.relay.loop": "relay/loop.py",
    "susurro.relay.outbox": "relay/outbox.py",
}
#: The compiled modules' shared library (mypyc's group), inside the package.
GROUP = "susurro._compiled"
#: Written by the build next to this file: {"modules": {module: sha256 of its source}}.
MANIFEST = "compiled.json"
#: Set to 1: every module runs from its source, compiled or not (a baseline, or to rule the build out).
PURE_SWITCH = "SUSURRO_PURE_PYTHON"


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


def decide(package_dir: Path, environ: Mapping[str, str]) -> BuildState:
    """Whether the modules of ``COMPILED_SOURCES`` under ``package_dir`` may run compiled."""
    if environ.get(PURE_SWITCH, "") == "1":
        return BuildState(BuildKind.PURE_SWITCH)
    try:
        recorded = json.loads((package_dir / MANIFEST).read_text(encoding="utf-8"))["modules"]
    except FileNotFoundError:
        return BuildState(BuildKind.PURE_NOT_BUILT, f"no {MANIFEST}")
    except (OSError, ValueError, KeyError, TypeError) as exc:
        return BuildState(BuildKind.PURE_NOT_BUILT, f"unreadable {MANIFEST} ({exc.__class__.__name__})")
    if not isinstance(recorded, dict) or set(recorded) != set(COMPILED_SOURCES):
        return BuildState(BuildKind.PURE_NOT_BUILT, f"{MANIFEST} is for other modules")
    changed = [
        relative
        for module, relative in COMPILED_SOURCES.items()
        if not (package_dir / relative).is_file() or source_digest(package_dir / relative) != recorded[module]
    ]
    if changed:
        return BuildState(BuildKind.PURE_STALE, "changed since the build: " + ", ".join(changed))
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
        if _state.kind is BuildKind.PURE_STALE:
            warnings.warn(
                f"susurro: running the relay's hot path as pure Python: {_state.detail}; "
                "`pip install -e .` compiles it again",
                RuntimeWarning,
                stacklevel=2,
            )
    return _state


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
