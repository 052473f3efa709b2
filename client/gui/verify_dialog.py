"""The verify dialog: the pairwise safety number, both fingerprints, "mark as verified".

The number comes from the core (``safety_number(name)``); this dialog only
lays it out in rows of digit groups so two people can read it to each other.
Escape or Close dismisses it.
"""

from __future__ import annotations

import tkinter as tk
from collections.abc import Callable
from tkinter import ttk

from susurro.crypto.safety import safety_number_rows

from .strings import Strings


class VerifyDialog:
    def __init__(
        self,
        master: tk.Misc,
        strings: Strings,
        *,
        name: str,
        safety_number: str | None,
        their_fingerprint: str,
        own_fingerprint: str,
        verified: bool,
        on_mark_verified: Callable[[str], None],
    ) -> None:
        self.name = name
        self._on_mark_verified = on_mark_verified
        self.top = tk.Toplevel(master)
        self.top.title(strings("verify_title", name=name))
        self.top.transient(master.winfo_toplevel())
        self.top.resizable(False, False)
        body = ttk.Frame(self.top, padding=14)
        body.pack(fill="both", expand=True)
        if safety_number:
            ttk.Label(body, text=strings("verify_intro", name=name), wraplength=380, justify="left").pack(anchor="w")
            rows = "\n".join(safety_number_rows(safety_number))
            self.number = ttk.Label(body, text=rows, font="TkFixedFont", justify="center")
            self.number.pack(pady=10)
        else:
            unavailable = strings("verify_unavailable", name=name)
            ttk.Label(body, text=unavailable, wraplength=380, justify="left").pack(anchor="w")
            self.number = None
        ttk.Label(body, text=strings("their_fingerprint", name=name, fingerprint=their_fingerprint)).pack(anchor="w")
        ttk.Label(body, text=strings("your_fingerprint", fingerprint=own_fingerprint)).pack(anchor="w")
        if verified:
            ttk.Label(body, text=strings("already_verified", name=name), foreground="#1e7b34").pack(
                anchor="w", pady=(6, 0)
            )
        buttons = ttk.Frame(body)
        buttons.pack(side="bottom", fill="x", pady=(12, 0))
        close = ttk.Button(buttons, text=strings("close"), command=self.destroy)
        close.pack(side="right")
        self.mark_button = ttk.Button(buttons, text=strings("mark_verified"), command=self._mark)
        self.mark_button.pack(side="right", padx=(0, 6))
        if verified or not safety_number:
            self.mark_button.state(["disabled"])
            close.focus_set()
        else:
            self.mark_button.focus_set()
        self.top.bind("<Escape>", lambda _e: self.destroy())
        self.top.protocol("WM_DELETE_WINDOW", self.destroy)

    def _mark(self) -> None:
        self._on_mark_verified(self.name)
        self.destroy()

    def destroy(self) -> None:
        if self.top.winfo_exists():
            self.top.destroy()
