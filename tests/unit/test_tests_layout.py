"""The tests' own layout (decision 26): helpers live in ``tests.helpers`` and are
imported by that one name.

A helper imported as ``integration.processes`` in one file and as
``tests.integration.processes`` in another is loaded twice, so a class from one
copy fails ``isinstance`` against the other; and a helper left beside the tests
that use it gets copied by the next directory that needs it.
"""

from __future__ import annotations

import re
from pathlib import Path

TESTS = Path(__file__).resolve().parents[1]
#: Files under tests/ that are neither tests nor helpers: package markers,
#: fixtures, and the script that makes docs/screenshots/conversation-light.png and -dark.png.
NOT_HELPERS = {"__init__.py", "conftest.py"}
SCRIPTS = {Path("gui/screenshot.py")}
#: A relative import, or an import of a tests/ folder by its bare name.
STRAY_IMPORT = re.compile(
    r"^\s*(?:from\s+\.|(?:from|import)\s+(?:helpers|unit|integration|adversarial|property|load|gui|tls|operations|bench|cluster)\b)",
    re.M,
)


def test_every_module_outside_helpers_is_a_test_or_a_conftest() -> None:
    strays = [
        str(rel)
        for path in TESTS.rglob("*.py")
        for rel in [path.relative_to(TESTS)]
        if rel.parts[0] != "helpers"
        and len(rel.parts) > 1
        and rel.name not in NOT_HELPERS
        and not rel.name.startswith("test_")
        and rel not in SCRIPTS
    ]
    assert not strays, "move shared helpers to tests/helpers/: " + ", ".join(sorted(strays))


def test_the_pattern_catches_stray_imports() -> None:
    for line in ("from .driver import pump", "from integration.processes import WAIT", "import helpers.system"):
        assert STRAY_IMPORT.search(line), line
    for line in ("from tests.helpers.system import WAIT", "from susurro.relay import core", "import integrations"):
        assert not STRAY_IMPORT.search(line), line


def test_helpers_are_imported_as_tests_helpers() -> None:
    offenders = [
        f"{path.relative_to(TESTS)}:{text[: m.start()].count(chr(10)) + 1}: {m.group(0).strip()}"
        for path in TESTS.rglob("*.py")
        for text in [path.read_text(encoding="utf-8")]
        for m in STRAY_IMPORT.finditer(text)
    ]
    assert not offenders, "import helpers as tests.helpers.<module>:\n" + "\n".join(offenders)
