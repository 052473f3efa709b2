"""Ctrl+K: go to a conversation or a member by typing part of a name."""

from __future__ import annotations

import tkinter as tk
from collections.abc import Callable
from tkinter import ttk

from .strings import Strings
from .theme import Palette


class JumpDialog:
    """Ctrl+K: type part of a name, Enter goes to that conversation (or opens it)."""

    def __init__(
        self,
        master: tk.Misc,
        strings: Strings,
        colours: Palette,
        targets: list[tuple[str, str]],
        go: Callable[[str], None],
    ) -> None:
        self.targets = targets
        self.go = go
        self.top = tk.Toplevel(master)
        self.top.title(strings("jump_title"))
        self.top.transient(master.winfo_toplevel())
        body = ttk.Frame(self.top, padding=12)
        body.pack(fill="both", expand=True)
        ttk.Label(body, text=strings("jump_hint"), style="Muted.TLabel").pack(anchor="w")
        self.query = ttk.Entry(body, width=32)
        self.query.pack(fill="x", pady=(6, 6))
        self.list = tk.Listbox(
            body,
            height=8,
            activestyle="none",
            relief="flat",
            highlightthickness=0,
            background=colours.surface,
            foreground=colours.foreground,
            selectbackground=colours.selected,
            selectforeground=colours.foreground,
        )
        self.list.pack(fill="both", expand=True)
        self.shown: list[tuple[str, str]] = []
        self.query.bind("<KeyRelease>", self._filter)
        for widget in (self.query, self.list):
            widget.bind("<Return>", lambda _e: self._choose())
            widget.bind("<KP_Enter>", lambda _e: self._choose())
            widget.bind("<Down>", lambda _e: self._move(1))
            widget.bind("<Up>", lambda _e: self._move(-1))
        self.list.bind("<Double-1>", lambda _e: self._choose())
        self.top.bind("<Escape>", lambda _e: self.destroy())
        self._filter()
        self.query.focus_set()

    def _filter(self, _event: tk.Event | None = None) -> None:
        typed = self.query.get().strip().casefold()
        self.shown = [(key, label) for key, label in self.targets if typed in label.casefold()]
        self.list.delete(0, "end")
        for _key, label in self.shown:
            self.list.insert("end", label)
        if self.shown:
            self.list.selection_set(0)

    def _move(self, step: int) -> str:
        selection = self.list.curselection()
        index = min(max((selection[0] if selection else -1) + step, 0), len(self.shown) - 1)
        self.list.selection_clear(0, "end")
        self.list.selection_set(index)
        self.list.see(index)
        return "break"

    def _choose(self) -> str:
        selection = self.list.curselection()
        if selection:
            key = self.shown[selection[0]][0]
            owner = self.top.master.winfo_toplevel()
            self.destroy()
            owner.focus_force()  # back to the chat window (without a window manager nobody else does it)
            self.go(key)
        return "break"

    def destroy(self) -> None:
        if self.top.winfo_exists():
            self.top.destroy()
