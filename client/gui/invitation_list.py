"""The sidebar's invitations section: one row per room someone added us to, with Accept and Decline."""

from __future__ import annotations

import tkinter as tk
from collections.abc import Callable
from tkinter import ttk

from .strings import Strings
from .updates import InvitationRows
from .widgets import FitLabel


class InvitationList:
    """Hidden while no invitation waits; ``answer(room_id, accepted)`` is called from a row's buttons."""

    def __init__(self, master: tk.Misc, strings: Strings, answer: Callable[[bytes, bool], None]) -> None:
        self.frame = ttk.Frame(master, style="Sidebar.TFrame", padding=(0, 4, 0, 4))
        self.frame.columnconfigure(0, weight=1)
        self.answer = answer
        self.title = FitLabel(self.frame, style="SidebarTitle.TLabel", padding=(10, 2, 0, 2))
        self.title.grid(row=0, column=0, sticky="ew")
        self.title.set(strings("invitations_title").upper())
        self.strings = strings
        self.rows: dict[bytes, tuple[ttk.Frame, ttk.Button, ttk.Button]] = {}

    def _answering(self, room_id: bytes, accepted: bool) -> Callable[[], None]:
        return lambda: self.answer(room_id, accepted)

    def show(self, update: InvitationRows) -> None:
        for row, _accept, _decline in self.rows.values():
            row.destroy()
        self.rows.clear()
        s = self.strings
        for index, item in enumerate(update.items, start=1):
            row = ttk.Frame(self.frame, style="Item.TFrame", padding=(10, 3))
            row.columnconfigure(0, weight=1)
            text = FitLabel(row, style="Item.TLabel")
            text.grid(row=0, column=0, columnspan=2, sticky="ew")
            text.set(item.text)
            accept = ttk.Button(
                row, text=s("accept_invitation"), style="Toolbutton", command=self._answering(item.room_id, True)
            )
            accept.grid(row=1, column=0, sticky="e", padx=(0, 4))
            decline = ttk.Button(
                row, text=s("decline_invitation"), style="Toolbutton", command=self._answering(item.room_id, False)
            )
            decline.grid(row=1, column=1, sticky="e")
            row.grid(row=index, column=0, sticky="ew")
            self.rows[item.room_id] = (row, accept, decline)
        if update.items:
            self.frame.grid()
        else:
            self.frame.grid_remove()
