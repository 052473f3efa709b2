"""Compiles the relay's hot-path modules with mypyc; everything else is in pyproject.toml.

The modules and the guard against a stale build are in susurro/compiled.py
(docs/decisions.md, "The relay's hot path compiled with mypyc"). A machine
without a C compiler, Python's headers or mypyc gets the same package in pure
Python, with a warning: the extensions are optional, never a failed install.
``SUSURRO_PURE_PYTHON=1`` at install time builds nothing.
"""

from __future__ import annotations

import importlib.util
import json
import os
import sys
from pathlib import Path
from types import ModuleType
from typing import Any

from setuptools import Extension, setup
from setuptools.command.build_ext import build_ext

ROOT = Path(__file__).resolve().parent


def _compiled_module() -> ModuleType:
    # By path: the package itself cannot be imported before it is installed.
    spec = importlib.util.spec_from_file_location("_susurro_compiled", ROOT / "susurro" / "compiled.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # its dataclass looks its module up there
    spec.loader.exec_module(module)
    return module


compiled = _compiled_module()
#: The sources as mypyc translated them (``compiled.source_digests``), for the manifest.
TRANSLATED: dict[str, str] = {}


def _warn(text: str) -> None:
    print(f"susurro: WARNING: {text}; the relay runs as pure Python (slower, the same behaviour)", file=sys.stderr)


def _extensions() -> list[Extension]:
    if os.environ.get(compiled.PURE_SWITCH, "") == "1":
        return []
    try:
        from mypyc.build import mypycify
    except ImportError:
        _warn("mypyc is not installed, so nothing is compiled")
        return []
    sources = [f"susurro/{relative}" for relative in compiled.COMPILED_SOURCES.values()]
    # Hashed before mypyc reads them: an edit during the build is then a stale build, not a fresh one.
    TRANSLATED.update(compiled.source_digests(ROOT / "susurro"))
    try:
        # Missing imports are Any to mypyc (a call through Python, as uncompiled code makes
        # it): the build environment need not hold pynacl or redis. Then a function of ours that
        # returns what PyNaCl gave it returns Any, which the project's strict mypy settings call an
        # error (warn_return_any): on a fresh machine, where pip builds before it installs pynacl,
        # that failed the translation and the install came out pure. mypyc checks such a value's
        # type where it is used, so the warning is off for the build (`mypy` itself keeps it).
        # One group: the modules call each other directly.
        options = ["--ignore-missing-imports", "--no-warn-return-any"]
        extensions: list[Extension] = mypycify([*sources, *options], group_name=compiled.GROUP)
    except (Exception, SystemExit) as exc:  # mypyc reports a type error by exiting
        _warn(f"mypyc could not translate the hot path ({exc})")
        return []
    for extension in extensions:
        extension.optional = True  # a failed C compile warns and installs the pure modules
    return extensions


class BuildWithManifest(build_ext):
    """build_ext that records what it compiled (susurro/compiled.json), only when all of it built."""

    def run(self) -> None:
        target = Path(self.get_ext_fullpath(f"{compiled.GROUP}__mypyc")).parent
        manifest = target / compiled.MANIFEST
        manifest.unlink(missing_ok=True)  # a failed build must not leave an old claim behind
        # Nor old compiled files: an optional extension that fails to build keeps the one from before,
        # which a manifest written now would vouch for. Every file the manifest lists is this build's.
        for path in compiled.binary_paths(target).values():
            path.unlink(missing_ok=True)
        super().run()
        if not self.extensions:
            return
        built = [Path(self.get_ext_fullpath(ext.name)) for ext in self.extensions]
        if not all(path.is_file() for path in built):
            _warn("a compiled module did not build (see the compiler's message above)")
            return
        content = compiled.build_manifest(target, TRANSLATED)
        manifest.write_text(json.dumps(content, indent=1, sort_keys=True) + "\n", encoding="utf-8")


options: dict[str, Any] = {"ext_modules": _extensions(), "cmdclass": {"build_ext": BuildWithManifest}}
setup(**options)
