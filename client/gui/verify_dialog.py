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
from .theme import LEGEND, Shields


def fingerprint_rows(fingerprint: str) -> str:
    """Two rows of four groups: a fingerprint never wraps inside a group."""
    groups = fingerprint.split()
    return "\n".join(" ".join(groups[i : i + 4]) for i in range(0, len(groups), 4))


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
        shields: Shields,
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
            ttk.Label(body, text=strings("verify_intro", name=name), wraplength=460, justify="left").pack(anchor="w")
            rows = "\n".join(safety_number_rows(safety_number))
            self.number = ttk.Label(body, text=rows, font="TkFixedFont", justify="center")
            self.number.pack(pady=10)
        else:
            unavailable = strings("verify_unavailable", name=name)
            ttk.Label(body, text=unavailable, wraplength=460, justify="left").pack(anchor="w")
            self.number = None
        prints = ttk.Frame(body)
        prints.pack(anchor="w", fill="x", pady=(4, 0))
        for column, (title, fingerprint) in enumerate(
            (
                (strings("their_fingerprint", name=name), their_fingerprint),
                (strings("your_fingerprint"), own_fingerprint),
            )
        ):
            ttk.Label(prints, text=title, style="Muted.TLabel").grid(row=0, column=column, sticky="w", padx=(0, 24))
            ttk.Label(prints, text=fingerprint_rows(fingerprint), font="TkFixedFont").grid(
                row=1, column=column, sticky="w", padx=(0, 24)
            )
        if verified:
            ttk.Label(body, text=strings("already_verified", name=name), style="Secure.TLabel").pack(
                anchor="w", pady=(8, 0)
            )
        # The legend: the one colour code the people list, sidebar and messages use.
        legend = ttk.Frame(body)
        legend.pack(anchor="w", fill="x", pady=(12, 0))
        ttk.Label(legend, text=strings("legend_title"), style="Header.TLabel").grid(
            row=0, column=0, columnspan=2, sticky="w"
        )
        self.legend: list[str] = []
        for row, state in enumerate(LEGEND, start=1):
            ttk.Label(legend, image=shields[state]).grid(row=row, column=0, padx=(0, 6), pady=1)
            text = strings(f"trust_{state}_long")
            ttk.Label(legend, text=text, wraplength=420, justify="left").grid(row=row, column=1, sticky="w")
            self.legend.append(text)
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
