"""The compiled hot path runs only as its sources say, and the process knows which build it runs.

``susurro/compiled.py`` decides at import: compiled when the build's
manifest matches every source, pure under ``SUSURRO_PURE_PYTHON=1``, pure
(with a warning) when a source changed after the build. The decision is
tested on its own, and then for real: in a child process importing a copy
of this checkout in which one source was edited after the build.
"""

from __future__ import annotations

import importlib.util
import json
import os
import shutil
import subprocess
import sys
import sysconfig
from pathlib import Path

import pytest

from susurro import compiled
from susurro.compiled import COMPILED_SOURCES, MANIFEST, PURE_SWITCH, BuildKind, decide

ROOT = Path(__file__).resolve().parents[2]
#: What the child processes print: the build as decided, then each module and whether it loaded compiled.
REPORT = (
    "import json, susurro.compiled as c, susurro.relay.core, susurro.protocol.framing; "
    "print(json.dumps([c.state().kind.name, c.loaded_compiled()]))"
)


def fake_package(tmp_path: Path) -> Path:
    """The compiled modules' sources, one module they import, and a file for each compiled one."""
    package = tmp_path / "susurro"
    for relative in [*COMPILED_SOURCES.values(), "protocol/names.py"]:
        (package / relative).parent.mkdir(parents=True, exist_ok=True)
        (package / relative).write_text(f"# {relative}\n", encoding="utf-8")
    for path in compiled.binary_paths(package).values():
        path.write_bytes(b"compiled " + path.name.encode())
    return package


def write_manifest(package: Path) -> None:
    content = compiled.build_manifest(package, compiled.source_digests(package))
    (package / MANIFEST).write_text(json.dumps(content), encoding="utf-8")


def test_a_manifest_matching_every_source_runs_compiled(tmp_path: Path) -> None:
    package = fake_package(tmp_path)
    write_manifest(package)
    assert decide(package, {}).kind is BuildKind.COMPILED


@pytest.mark.parametrize(
    ("value", "kind"),
    [
        ("1", BuildKind.PURE_SWITCH),
        ("true", BuildKind.PURE_SWITCH),
        (" Yes ", BuildKind.PURE_SWITCH),
        ("on", BuildKind.PURE_SWITCH),
        ("maybe", BuildKind.PURE_SWITCH),  # not understood: the safe side
        ("0", BuildKind.COMPILED),
        ("false", BuildKind.COMPILED),
        ("", BuildKind.COMPILED),
        ("off", BuildKind.COMPILED),
    ],
)
def test_the_switch_runs_pure_whatever_was_built(tmp_path: Path, value: str, kind: BuildKind) -> None:
    package = fake_package(tmp_path)
    write_manifest(package)
    assert decide(package, {PURE_SWITCH: value}).kind is kind


def test_an_edit_to_a_module_the_compiled_ones_import_runs_pure(tmp_path: Path) -> None:
    """mypyc compiled against its types: the compiled code may assume what the edit changed."""
    package = fake_package(tmp_path)
    write_manifest(package)
    # protocol/names.py: imported by compiled code, not compiled itself (relay/roster.py, which
    # this test edited until session 8, is compiled now: review-s8-roster finding 2).
    (package / "protocol/names.py").write_text("# a changed type\n", encoding="utf-8")
    state = decide(package, {})
    assert state.kind is BuildKind.PURE_STALE and "protocol/names.py" in state.detail
    (package / "protocol/names.py").unlink()  # gone, or a new module: stale too
    (package / "protocol/new.py").write_text("# new\n", encoding="utf-8")
    state = decide(package, {})
    assert state.kind is BuildKind.PURE_STALE
    assert "protocol/names.py" in state.detail and "protocol/new.py" in state.detail


@pytest.mark.parametrize("stem", ["_compiled__mypyc", "relay/core"])
def test_a_compiled_file_missing_or_not_the_builds_runs_pure(tmp_path: Path, stem: str) -> None:
    package = fake_package(tmp_path)
    write_manifest(package)
    binary = compiled.binary_paths(package)[stem]
    binary.write_bytes(b"an older build's")
    assert decide(package, {}).kind is BuildKind.PURE_NOT_BUILT
    binary.unlink()  # the shared library deleted: fails closed (pure), not an import error
    state = decide(package, {})
    assert state.kind is BuildKind.PURE_NOT_BUILT and binary.name in state.detail


def test_a_source_changed_after_the_build_runs_pure_and_is_named(tmp_path: Path) -> None:
    package = fake_package(tmp_path)
    write_manifest(package)
    edited = COMPILED_SOURCES["susurro.relay.core"]
    with (package / edited).open("a", encoding="utf-8") as source:
        source.write("# an edit, not rebuilt\n")
    state = decide(package, {})
    assert state.kind is BuildKind.PURE_STALE
    assert edited in state.detail


@pytest.mark.parametrize(
    ("manifest", "detail"),
    [
        (None, "no compiled.json"),
        ("{not json", "unreadable"),
        (json.dumps({"other": {}}), "unreadable"),
        (json.dumps({"modules": ["susurro.relay.core"], "sources": {}, "binaries": {}}), "other modules"),
        (json.dumps({"modules": {"susurro.relay.core": "00"}}), "unreadable"),  # the format before its sources
    ],
)
def test_without_a_whole_readable_manifest_nothing_runs_compiled(
    tmp_path: Path, manifest: str | None, detail: str
) -> None:
    package = fake_package(tmp_path)
    if manifest is not None:
        (package / MANIFEST).write_text(manifest, encoding="utf-8")
    state = decide(package, {})
    assert state.kind is BuildKind.PURE_NOT_BUILT
    assert detail in state.detail


def test_this_process_runs_the_build_it_decided_on() -> None:
    for module in COMPILED_SOURCES:
        importlib.import_module(module)
    state = compiled.state()
    loaded = compiled.loaded_compiled()
    assert set(loaded) == set(COMPILED_SOURCES)
    assert set(loaded.values()) == {state.compiled}, (state, loaded)
    # CI (.ci/run) builds with a compiler present: there the hot path must have compiled.
    if os.environ.get("SUSURRO_EXPECT_COMPILED") == "1":
        assert state.kind is BuildKind.COMPILED, state.describe()
    # Where it could compile, a checkout installed as the README says is compiled: a build that
    # failed (mypyc refused a change, say) must not pass as pure. An edit since the build may.
    if can_compile():
        assert state.kind is not BuildKind.PURE_NOT_BUILT, f"{state.describe()}: `pip install -e .` did not compile it"


def can_compile() -> bool:
    headers = Path(sysconfig.get_paths()["include"]) / "Python.h"
    return bool(shutil.which("cc")) and headers.is_file() and importlib.util.find_spec("mypyc") is not None


def run_child(tree: Path, probe: str = "", **env: str) -> tuple[list[object], list[str], str]:
    """REPORT (then ``probe``'s lines) from a child importing ``tree``: (report, the probe's lines, stderr)."""
    environ = {k: v for k, v in os.environ.items() if k != PURE_SWITCH} | env
    # The copy first on the path, and run from it: the child must import the copy, not this checkout.
    environ["PYTHONPATH"] = str(tree)
    result = subprocess.run(
        [sys.executable, "-c", REPORT + probe],
        cwd=tree,
        env=environ,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    report, *lines = result.stdout.splitlines()
    return json.loads(report), lines, result.stderr


@pytest.fixture
def built_copy(tmp_path: Path) -> Path:
    """This checkout's packages with their compiled modules and manifest, copied (symlinks kept)."""
    if not compiled.state().compiled:
        pytest.skip(f"this checkout does not run compiled ({compiled.state().describe()})")
    tree = tmp_path / "tree"
    ignore = shutil.ignore_patterns("__pycache__")
    for name in ("susurro", "protocol", "crypto", "relay", "client", "transport"):
        shutil.copytree(ROOT / name, tree / name, symlinks=True, ignore=ignore)
    return tree


def test_a_fresh_build_loads_compiled_and_the_switch_loads_the_sources(built_copy: Path) -> None:
    (kind, loaded), _, _ = run_child(built_copy)
    assert kind == "COMPILED" and set(loaded.values()) == {True}, loaded
    (kind, loaded), _, _ = run_child(built_copy, **{PURE_SWITCH: "1"})
    assert kind == "PURE_SWITCH" and set(loaded.values()) == {False}, loaded


def test_an_edited_source_is_what_runs_not_the_stale_compiled_module(built_copy: Path) -> None:
    # Only framing.py is edited; core.py, unchanged, must not run compiled either (one library).
    framing = built_copy / COMPILED_SOURCES["susurro.protocol.framing"]
    framing.write_text(framing.read_text(encoding="utf-8") + "\nEDITED_AFTER_THE_BUILD = True\n", encoding="utf-8")
    probe = "; print(susurro.protocol.framing.EDITED_AFTER_THE_BUILD); print(c.state().detail)"
    (kind, loaded), (edited, detail), stderr = run_child(built_copy, probe)
    assert kind == "PURE_STALE" and set(loaded.values()) == {False}, loaded
    assert edited == "True" and "protocol/framing.py" in detail
    assert stderr == ""  # importing says nothing (a chat client too); the relay's start line does


def test_an_edit_to_a_module_they_import_runs_pure_in_a_real_build(built_copy: Path) -> None:
    names = built_copy / "protocol" / "names.py"  # imported by compiled modules, not compiled
    names.write_text(names.read_text(encoding="utf-8") + "\n# a changed type, say\n", encoding="utf-8")
    (kind, loaded), (detail,), _ = run_child(built_copy, "; print(c.state().detail)")
    assert kind == "PURE_STALE" and set(loaded.values()) == {False}, loaded
    assert "protocol/names.py" in detail


def test_a_build_without_its_shared_library_runs_pure_instead_of_failing_to_import(built_copy: Path) -> None:
    group = compiled.binary_paths(built_copy / "susurro")["_compiled__mypyc"]
    assert group.is_file()
    group.unlink()
    (kind, loaded), _, _ = run_child(built_copy)
    assert kind == "PURE_NOT_BUILT" and set(loaded.values()) == {False}, loaded


def test_the_relay_names_a_stale_or_missing_build_at_its_start_and_a_fresh_one_needs_no_word() -> None:
    stale = compiled.notice(compiled.BuildState(BuildKind.PURE_STALE, "changed since the build: relay/roster.py"))
    assert stale is not None and "relay/roster.py" in stale and "pip install -e ." in stale
    missing = compiled.notice(compiled.BuildState(BuildKind.PURE_NOT_BUILT, "no compiled.json"))
    assert missing is not None and "no compiled.json" in missing
    assert compiled.notice(compiled.BuildState(BuildKind.COMPILED)) is None
    assert compiled.notice(compiled.BuildState(BuildKind.PURE_SWITCH)) is None  # asked for
