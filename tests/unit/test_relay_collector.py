"""The ``susurro-relay`` process's collector threshold (``relay.server.tune_collector``).

A fan-out's short-lived tuples ran the young collection about twice a message to 500
members at Python's default threshold of 700 (docs/performance.md, "Session 9: the fan-out").
"""

from __future__ import annotations

import gc
import subprocess
import sys

from susurro.relay.server import GC_YOUNG_THRESHOLD, tune_collector


def test_tune_collector_raises_only_the_young_threshold() -> None:
    before = gc.get_threshold()
    try:
        gc.set_threshold(700, 11, 12)
        tune_collector()
        assert gc.get_threshold() == (GC_YOUNG_THRESHOLD, 11, 12)
    finally:
        gc.set_threshold(*before)


def test_the_relay_command_tunes_its_collector_before_it_serves() -> None:
    """The real ``main`` of ``susurro-relay``, up to the point it would serve: a port that cannot be
    bound makes it return, and by then the threshold is set (run in its own interpreter)."""
    script = (
        "import gc, socket, sys\n"
        "from susurro.relay import cli\n"
        "held = socket.socket(); held.bind(('127.0.0.1', 0)); held.listen(1)\n"
        "code = cli.main(['--host', '127.0.0.1', '--port', str(held.getsockname()[1])])\n"
        "print(gc.get_threshold()[0], code)\n"
    )
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=60, check=False)
    threshold, code = done.stdout.split()[-2:]
    assert int(threshold) == GC_YOUNG_THRESHOLD, done.stderr
    assert code != "0"
