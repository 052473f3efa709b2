"""Smoke test: the offline-delivery and history benchmarks run in-process and print their tables (never timed)."""

from __future__ import annotations

import pytest

from benchmarks import history_open, mailbox_drain, offline_cost


@pytest.mark.bench
def test_offline_cost_and_history_open_print_their_tables(capsys: pytest.CaptureFixture[str]) -> None:
    assert offline_cost.main(["--quick"]) == 0
    out = capsys.readouterr().out
    assert "client CPU, sign + seal a direct message" in out and "ciphertext bytes per copy" in out
    assert "drain 100 waiting items" in out
    assert history_open.main(["--quick"]) == 0
    out = capsys.readouterr().out
    assert "open + newest page of 50" in out and "read and open all 2,000" in out
    assert mailbox_drain.main(["--quick"]) == 0
    out = capsys.readouterr().out
    assert "bob joins and drains them" in out and "shown 50, receipts for 50 at alice, left in the mailbox 0" in out
