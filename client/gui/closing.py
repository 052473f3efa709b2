"""Closing the window with messages no receipt has confirmed yet: say which, as the terminal's ``/quit``.

The core keeps such messages in the sealed state file and sends them again
at the next start (``client/unconfirmed.py``), so closing loses nothing; but
the person closing should know that "delivered" has not happened yet, and to
whom. The app asks the core for them (``RelayConnection.unconfirmed``) after
a short wait for receipts still on their way, and shows this dialog only if
some are left.
"""

from __future__ import annotations

import tkinter as tk
from collections.abc import Callable, Sequence
from tkinter import ttk

from susurro.client.printable import printable

from .room_dialogs import Dialog
from .strings import Strings

#: Messages listed one by one; the rest are counted.
SHOWN_MESSAGES = 8
#: Characters of a message's text shown in the list.
SHOWN_CHARS = 60

Unconfirmed = tuple[str, str, tuple[str, ...]]  # (msg_id, text, names without a receipt)


def unconfirmed_words(strings: Strings, items: Sequence[Unconfirmed]) -> list[str]:
    """How many messages, each with whom it waits for, and that they go again next time. Pure."""
    if len(items) == 1:
        lines = [strings("unconfirmed_intro_one")]
    else:
        lines = [strings("unconfirmed_intro", count=len(items))]
    for _msg_id, text, names in items[:SHOWN_MESSAGES]:
        flat = " ".join(printable(text).split())
        shown = flat if len(flat) <= SHOWN_CHARS else flat[: SHOWN_CHARS - 1] + "…"
        lines.append(strings("unconfirmed_line", text=shown, names=", ".join(names)))
    if len(items) > SHOWN_MESSAGES:
        lines.append(strings("unconfirmed_more", count=len(items) - SHOWN_MESSAGES))
    lines.append(strings("unconfirmed_outro"))
    return lines


class UnconfirmedDialog(Dialog):
    """The list, with Close (``close``) and Keep the window open (``keep``, also Escape)."""

    def __init__(
        self,
        master: tk.Misc,
        strings: Strings,
        items: Sequence[Unconfirmed],
        close: Callable[[], None],
        keep: Callable[[], None],
    ) -> None:
        super().__init__(master, strings("unconfirmed_title"))
        self._keep = keep
        self._close = close
        self.text = "\n".join(unconfirmed_words(strings, items))
        ttk.Label(self.body, text=self.text, wraplength=400, justify="left").pack(anchor="w")
        row = ttk.Frame(self.body)
        row.pack(side="bottom", fill="x", pady=(12, 0))
        self.keep_button = ttk.Button(row, text=strings("keep_open"), command=self.destroy)
        self.keep_button.pack(side="right")
        self.close_button = ttk.Button(row, text=strings("close_now"), style="Accent.TButton", command=self._close_now)
        self.close_button.pack(side="right", padx=(0, 6))
        self.close_button.focus_set()

    def _close_now(self) -> None:
        Dialog.destroy(self)
        self._close()

    def destroy(self) -> None:
        """Dismissed (Keep the window open, Escape, the window's own close box): the app stays."""
        super().destroy()
        self._keep()
