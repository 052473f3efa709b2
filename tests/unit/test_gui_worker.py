"""The GUI's worker thread hands every finished job back whole, so the Tk thread drops it last.

A job closes over the app and its widgets; if its last reference dies on the
worker thread, tkinter objects with a ``__del__`` (``Variable``, ``Font``,
``Image``) call into Tcl from that thread, which crashed the test process
with a segfault while the Tk thread was inside ``focus_force``.
"""

from __future__ import annotations

import threading

from susurro.client.gui.worker import Worker

WAIT = 10.0


class Canary:
    """Records the thread its last reference died on."""

    def __init__(self, freed_on: list[str]) -> None:
        self._freed_on = freed_on

    def __del__(self) -> None:
        self._freed_on.append(threading.current_thread().name)


def test_a_finished_job_is_last_released_on_the_thread_that_drains_it() -> None:
    freed_on: list[str] = []
    worker = Worker()
    try:
        canary = Canary(freed_on)
        worker.submit(lambda held=canary: None)  # only the job holds the canary, as a callback holds the app
        del canary
        first = worker.done.get(timeout=WAIT)
        worker.submit(lambda: None)  # once this one is done, the worker is past the first entirely
        second = worker.done.get(timeout=WAIT)
        assert freed_on == []  # still held by what the worker handed over
        first.deliver()
        del first, second
        assert freed_on == [threading.current_thread().name]
    finally:
        assert worker.stop(WAIT)
