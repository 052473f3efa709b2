"""The app's closing: the messages no receipt has confirmed listed first (when there are any), then the layout
remembered, the session ended off the Tk thread, the windows removed.
"""

from __future__ import annotations

import time

from .closing import Unconfirmed, UnconfirmedDialog
from .room_dialogs import Dialog
from .signin import OpenedSession

#: On closing, how long to wait for the receipts of what was just sent (as the terminal's /quit), and how often to ask.
QUIT_GRACE = 2.0
UNCONFIRMED_POLL_MS = 200
#: Bound on waiting for the worker to finish closing when the app ends.
SHUTDOWN_TIMEOUT = 15.0


class Closing:
    """Leaving, for ``SusurroApp``."""

    def close(self) -> None:
        """Leave, as the terminal's ``/quit``: after a short wait for receipts on their way, the messages
        still without one are listed (they are sent again next time) and the person chooses to close
        or keep the window open; with none, the window closes at once."""
        if self._closing or self._leaving:
            return
        if self.window is None or self.opened is None:
            self.close_now()
            return
        self._leaving = True
        self._check_unconfirmed(time.monotonic() + QUIT_GRACE)

    def _check_unconfirmed(self, deadline: float) -> None:
        opened, window = self.opened, self.window
        if opened is None or window is None or self._closing:
            self.close_now()
            return

        def answered(items: list[Unconfirmed] | None, error: BaseException | None) -> None:
            if self._closing or not self._leaving:
                return
            if error is not None or not items:
                self.close_now()
            elif time.monotonic() < deadline:  # receipts may be on their way: ask again shortly
                self.root.after(UNCONFIRMED_POLL_MS, lambda: self._check_unconfirmed(deadline))
            elif window.top.winfo_exists():
                self.closing_dialog = UnconfirmedDialog(
                    window.top, self.strings, items, self.close_now, self._keep_open
                )
            else:  # nowhere left to ask
                self.close_now()

        self.worker.submit(opened.connection.unconfirmed, answered)

    def _keep_open(self) -> None:
        self._leaving = False
        self.closing_dialog = None

    def close_now(self) -> None:
        """Leave now: remember the layout, say bye (on the worker), then remove the windows."""
        if self._closing:
            return
        self._closing = True
        if self.window is not None:
            self.settings.update(**self.window.layout())
            self.window.top.withdraw()
        if self.dialog is not None:
            self.dialog.top.withdraw()
        if self.opened is not None:
            self._shutdown_session(self.opened)
        self.worker.submit(lambda: None, lambda _r, _e: self._finish())

    def _finish(self) -> None:
        self.closed = True
        if self._after_id is not None:
            self.root.after_cancel(self._after_id)
            self._after_id = None
        self.rooms.close_dialog()
        if self.closing_dialog is not None:
            Dialog.destroy(self.closing_dialog)  # not its own destroy: that would keep the window open
            self.closing_dialog = None
        for widget in (self.window, self.dialog):
            if widget is not None:
                widget.destroy()
        self.window = self.dialog = None
        self.worker.stop(SHUTDOWN_TIMEOUT)
        if self.on_exit is not None:
            self.on_exit()

    def _shutdown_session(self, opened: OpenedSession) -> None:
        def shutdown() -> None:
            opened.connection.close()
            if opened.history is not None:
                opened.history.close()
            if opened.stop_relay is not None:
                opened.stop_relay()

        self.worker.submit(shutdown)
