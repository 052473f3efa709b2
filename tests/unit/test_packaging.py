"""Susurro installs as one package, ``susurro.*``, and nothing imports it any other way.

A bare ``import crypto`` would either load someone else's ``crypto`` from
site-packages or, from a checkout, a second copy of ours whose frame classes
fail every ``isinstance`` check against the first.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
OURS = ("protocol", "crypto", "relay", "client", "transport")
BARE_IMPORT = re.compile(rf"^\s*(?:from|import)\s+({'|'.join(OURS)})(?:\.|\s|$)", re.M)
SOURCE_TREES = (*OURS, "susurro", "tests", "benchmarks")


def python_files() -> list[Path]:
    return [p for tree in SOURCE_TREES for p in (ROOT / tree).rglob("*.py")]


def test_the_pattern_catches_bare_imports() -> None:
    bare = ("import crypto", "from protocol.frames import Hello", "    from relay import core", "import client.gui")
    for line in bare:
        assert BARE_IMPORT.search(line), line
    qualified = ("from susurro.crypto import seal", "import cryptography", "from .frames import X", "import clients")
    for line in qualified:
        assert not BARE_IMPORT.search(line), line


def test_no_module_imports_our_packages_by_a_bare_name() -> None:
    offenders = [
        f"{path.relative_to(ROOT)}:{text[: m.start()].count(chr(10)) + 1}: {m.group(0).strip()}"
        for path in python_files()
        for text in [path.read_text(encoding="utf-8")]
        for m in BARE_IMPORT.finditer(text)
    ]
    assert not offenders, "import these as susurro.<package>:\n" + "\n".join(offenders)


def test_a_loaded_suite_holds_no_bare_copy_of_our_packages() -> None:
    import susurro.client.session  # noqa: F401  (loads most of the tree)

    assert not [name for name in OURS if name in sys.modules], sorted(set(OURS) & set(sys.modules))


@pytest.mark.timeout(300)
def test_the_wheel_holds_only_the_susurro_package(tmp_path: Path) -> None:
    # The pure build: the layout is the same, and compiling would add minutes to the suite
    # (tests/unit/test_compiled_build.py checks the compiled one).
    result = subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "-q", "-w", str(tmp_path), str(ROOT)],
        capture_output=True,
        text=True,
        timeout=240,
        check=False,
        cwd=tmp_path,
        env={**os.environ, "SUSURRO_PURE_PYTHON": "1"},
    )
    assert result.returncode == 0, result.stderr
    (wheel,) = tmp_path.glob("susurro-*.whl")
    names = zipfile.ZipFile(wheel).namelist()
    top = {name.split("/", 1)[0] for name in names}
    assert top == {"susurro", next(t for t in top if t.endswith(".dist-info"))}, sorted(top)
    for package in OURS:
        assert f"susurro/{package}/__init__.py" in names
        assert f"susurro/{package}/py.typed" in names
    assert "susurro/client/gui/__init__.py" in names and "susurro/py.typed" in names
    entry_points = next(n for n in names if n.endswith("entry_points.txt"))
    scripts = zipfile.ZipFile(wheel).read(entry_points).decode()
    for script in (
        "susurro-relay = susurro.relay.cli:main",
        "susurro-cli = susurro.client.cli:main",
        "susurro = susurro.client.gui:main",
    ):
        assert script in scripts, scripts
