"""The window's status bar: the connection, your fingerprint, end-to-end or not."""

from __future__ import annotations

from tkinter import ttk

from .updates import Status
from .widgets import FitLabel


class StatusBar:
    """The status bar of ``ChatWindow``."""

    def _build_status(self) -> None:
        bar = ttk.Frame(self.top, padding=(10, 3))
        bar.grid(row=1, column=0, sticky="ew")
        bar.columnconfigure(0, weight=1)
        self.status_bar = bar
        bar.bind("<Configure>", lambda _e: self._share_status(), add="+")
        self.status_connection = FitLabel(bar, style="Muted.TLabel")
        self.status_connection.grid(row=0, column=0, sticky="ew")
        self.reconnect_button = ttk.Button(bar, text=self.strings("reconnect_button"), command=self.actions.reconnect)
        self.status_fingerprint = FitLabel(bar, style="Muted.TLabel", groups=True, anchor="e")
        self.status_fingerprint.grid(row=0, column=2, sticky="ew", padx=(10, 10))
        self.status_e2e = ttk.Label(bar, text="", style="Muted.TLabel")
        self.status_e2e.grid(row=0, column=3, sticky="e")

    def _set_status(self, status: Status) -> None:
        self.status_connection.set(status.connection)
        self.status_fingerprint.set(status.fingerprint)
        self.status_e2e.configure(text=status.e2e, style="Secure.TLabel" if status.secure else "Muted.TLabel")
        if status.offer_reconnect:
            self.reconnect_button.grid(row=0, column=1, padx=(8, 0))
        else:
            self.reconnect_button.grid_remove()
        self._share_status()
        c = self.colours
        if status.can_send:
            self.entry.configure(state="normal", background=c.surface)
            self.send_button.state(["!disabled"])
            self.hint.configure(style="Muted.TLabel")
            self.hint.set(status.reason or self.strings("entry_hint"))
        else:
            self.entry.configure(state="disabled", background=c.background)
            self.send_button.state(["disabled"])
            self.hint.configure(style="Error.TLabel")
            self.hint.set(status.reason)

    def _share_status(self) -> None:
        """Split the status bar: your fingerprint keeps its whole width unless the window is narrow.

        Then it gets at least half, cut between digit groups; the connection
        text takes the rest, cut with "…" (both have the whole text in a tooltip).
        """
        used = sum(w.winfo_reqwidth() + 10 for w in (self.status_e2e, self.reconnect_button) if w.winfo_manager())
        available = self.status_bar.winfo_width() - used - 30
        wanted_fp = self.status_fingerprint.font().measure(self.status_fingerprint.full) + 34  # with its padx
        wanted_connection = self.status_connection.font().measure(self.status_connection.full) + 14
        width = min(wanted_fp, max(available // 2, available - wanted_connection))
        self.status_bar.columnconfigure(2, minsize=max(0, width))
