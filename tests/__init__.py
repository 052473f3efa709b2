"""Susurro's tests: one package, so every helper is imported one way.

Shared helpers live in ``tests.helpers`` and are imported as
``from tests.helpers.<module> import …``; shared fixtures live in the
``conftest.py`` files. A file elsewhere under ``tests/`` is a test module
(``test_*.py``), a ``conftest.py``, or ``gui/screenshot.py`` (a script).
"""
