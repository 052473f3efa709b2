"""The window's composer: the text box that grows with its text, and Send."""

from __future__ import annotations

import tkinter as tk
from tkinter import ttk

from .widgets import FitLabel

#: The composer grows with its text up to this many lines, then scrolls.
COMPOSER_MAX_LINES = 6


class Composer:
    """The conversation side of ``ChatWindow``: header, panes, composer."""

    def _build_main(self, main: ttk.Frame) -> None:
        s = self.strings
        main.columnconfigure(0, weight=1)
        main.rowconfigure(2, weight=1)
        header = ttk.Frame(main, padding=(14, 8, 10, 6))
        header.grid(row=0, column=0, sticky="ew")
        header.columnconfigure(1, weight=1)
        self.header_shield = ttk.Label(header)
        self.header_shield.grid(row=0, column=0, padx=(0, 6))
        self.header = FitLabel(header, style="Header.TLabel")
        self.header.grid(row=0, column=1, sticky="ew")
        ttk.Separator(main).grid(row=1, column=0, sticky="ew")
        self.stack = ttk.Frame(main)
        self.stack.grid(row=2, column=0, sticky="nsew")
        self.stack.columnconfigure(0, weight=1)
        self.stack.rowconfigure(0, weight=1)
        compose = ttk.Frame(main, padding=(10, 6, 10, 0))
        compose.grid(row=3, column=0, sticky="ew")
        compose.columnconfigure(0, weight=1)
        c = self.colours
        # width=1: a Text asks for 80 columns otherwise and squeezes the Send button out.
        self.entry = tk.Text(
            compose,
            height=1,
            width=1,
            wrap="word",
            font=self.fonts["text"],
            undo=True,
            relief="flat",
            borderwidth=0,
            highlightthickness=1,
            padx=8,
            pady=6,
            background=c.surface,
            foreground=c.foreground,
            insertbackground=c.foreground,
            highlightbackground=c.border,
            highlightcolor=c.accent,
        )
        self.entry.grid(row=0, column=0, sticky="ew")
        self.send_button = ttk.Button(compose, text=s("send_button"), style="Accent.TButton", command=self._send)
        self.send_button.grid(row=0, column=1, sticky="s", padx=(6, 0))
        self.hint = FitLabel(main, style="Muted.TLabel", padding=(12, 2, 10, 4))
        self.hint.grid(row=4, column=0, sticky="ew")
        self.hint.set(s("entry_hint"))
        for sequence in ("<Return>", "<KP_Enter>", "<Control-Return>", "<Control-KP_Enter>"):
            self.entry.bind(sequence, self._on_return)
        self.entry.bind("<Shift-Return>", self._on_newline)
        self.entry.bind("<Tab>", self._focus_next)
        self.entry.bind("<Shift-Tab>", self._focus_prev)
        self.entry.bind("<ISO_Left_Tab>", self._focus_prev)
        self.entry.bind("<KeyRelease>", lambda _e: self._grow(), add="+")
        self.entry.bind("<Configure>", lambda _e: self._grow(), add="+")

    def _grow(self) -> None:
        """The composer is as tall as its text (1 to ``COMPOSER_MAX_LINES`` lines), then scrolls."""
        lines = self.entry.count("1.0", "end-1c", "displaylines")
        count = (lines[0] if isinstance(lines, tuple) else lines) or 0
        height = max(1, min(COMPOSER_MAX_LINES, int(count) + 1))
        if int(self.entry.cget("height")) != height:
            self.entry.configure(height=height)

    def _send(self) -> None:
        if str(self.entry.cget("state")) == "disabled":
            return
        text = self.entry.get("1.0", "end-1c")
        if self.actions.send(text, self.current_conversation()):
            self.entry.delete("1.0", "end")
            self._grow()

    def _on_return(self, _event: tk.Event) -> str:
        self._send()
        return "break"

    def _on_newline(self, _event: tk.Event) -> str:
        self.entry.insert("insert", "\n")
        self._grow()
        return "break"

    def _focus_next(self, event: tk.Event) -> str:
        event.widget.tk_focusNext().focus_set()
        return "break"

    def _focus_prev(self, event: tk.Event) -> str:
        event.widget.tk_focusPrev().focus_set()
        return "break"
