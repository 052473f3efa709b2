"""relay_load's --help says the sweep it runs when --clients is not given."""

from __future__ import annotations

import contextlib
import io

import pytest

from benchmarks.relay_load import DEFAULT_CLIENTS, parse_args


def _help() -> str:
    out = io.StringIO()
    with contextlib.redirect_stdout(out), pytest.raises(SystemExit):
        parse_args(["--help"])
    return " ".join(out.getvalue().split())


def test_the_clients_help_names_the_default_sweep() -> None:
    assert parse_args([]).sweep == list(DEFAULT_CLIENTS)
    assert f"(default {','.join(map(str, DEFAULT_CLIENTS))};" in _help()


def test_the_quick_sweep_is_the_one_the_help_names() -> None:
    assert parse_args(["--quick"]).sweep == [10]
    assert "--quick: 10)" in _help()
