"""One background thread for everything that may block: key files, connect, send, close.

Tk handlers must return fast, and only the Tk thread may touch widgets. So a
handler submits a job here; the job's result (or exception) comes back on the
``done`` queue, which the Tk thread drains in its ``after`` loop and hands to
the callback there. One thread, in order: a send queued after the connect
runs after it, and close runs after the last send.
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True, slots=True)
class Done:
    """A finished job, to be handled on the Tk thread.

    It carries the job itself too, so that the last reference to the job (a
    closure or bound method that keeps the app and its widgets alive) is
    dropped on the Tk thread: a tkinter ``Variable``, ``Font`` or ``Image``
    freed on the worker thread calls into Tcl from the wrong thread, which
    crashed the process (a segfault in the Tk thread's ``focus_force``).
    """

    callback: Callable[[Any, BaseException | None], None] | None
    result: Any
    error: BaseException | None
    job: Callable[[], Any] | None = None

    def deliver(self) -> None:
        if self.callback is not None:
            self.callback(self.result, self.error)


class Worker:
    def __init__(self, name: str = "susurro-gui-worker") -> None:
        self.done: queue.Queue[Done] = queue.Queue()
        self._jobs: queue.Queue[tuple[Callable[[], Any], Any] | None] = queue.Queue()
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)
        self._thread.start()

    def submit(
        self, job: Callable[[], Any], callback: Callable[[Any, BaseException | None], None] | None = None
    ) -> None:
        self._jobs.put((job, callback))

    def stop(self, timeout: float) -> bool:
        """Finish queued jobs, then end; returns whether the thread ended in time."""
        self._jobs.put(None)
        self._thread.join(timeout)
        return not self._thread.is_alive()

    def _run(self) -> None:
        while (item := self._jobs.get()) is not None:
            job, callback = item
            del item
            try:
                done = Done(callback, job(), None, job)
            except Exception as exc:  # handed to the Tk thread, which shows it
                done = Done(callback, None, exc, job)
            # Hold nothing of the job while waiting for the next one: the Tk
            # thread must be the one to drop it (see ``Done``).
            del job, callback
            self.done.put(done)
            del done
