"""The sign-in dialog: name, relay address, key file, passphrase when needed.

Only draws and forwards: ``on_submit`` gets the typed values, and the app
answers with ``show_error(field, message)`` (the field is highlighted and
focused) or closes the dialog. Enter submits, Escape cancels.
"""

from __future__ import annotations

import tkinter as tk
from collections.abc import Callable
from pathlib import Path
from tkinter import filedialog, ttk

from susurro.client.home import susurro_home

from .signin import key_file_for, needs_passphrase
from .strings import Strings

#: The ttk state a field with an error is put in (the theme draws it with a red border).
INVALID = "invalid"


def identities_folder() -> Path:
    """Where ``susurro`` keeps key files: what Browse… opens first."""
    return susurro_home() / "identities"


class SignInDialog:
    def __init__(
        self,
        master: tk.Misc,
        strings: Strings,
        *,
        name: str,
        relay: str,
        identity: str,
        on_submit: Callable[[dict[str, str | None]], None],
        on_cancel: Callable[[], None],
    ) -> None:
        self.strings = strings
        self._on_submit = on_submit
        self._on_cancel = on_cancel
        self.top = tk.Toplevel(master)
        self.top.title(strings("signin_title"))
        self.top.resizable(False, False)
        self.top.protocol("WM_DELETE_WINDOW", self.cancel)
        body = ttk.Frame(self.top, padding=12)
        body.pack(fill="both", expand=True)
        ttk.Label(body, text=strings("signin_intro")).grid(row=0, column=0, columnspan=3, sticky="w", pady=(0, 8))

        self.entries: dict[str, ttk.Entry] = {}
        self._labels: dict[str, ttk.Label] = {}
        for row, (field, label, value) in enumerate(
            (("name", "field_name", name), ("relay", "field_relay", relay), ("identity", "field_identity", identity)),
            start=1,
        ):
            self._labels[field] = ttk.Label(body, text=strings(label))
            self._labels[field].grid(row=row, column=0, sticky="w", padx=(0, 8), pady=2)
            entry = ttk.Entry(body, width=36)
            entry.insert(0, value)
            entry.grid(row=row, column=1, sticky="we", pady=2)
            self.entries[field] = entry
        self.browse = ttk.Button(body, text=strings("browse"), command=self._browse)
        self.browse.grid(row=3, column=2, padx=(6, 0))
        ttk.Label(body, text=strings("identity_hint"), style="Muted.TLabel").grid(
            row=4, column=1, columnspan=2, sticky="w"
        )
        self._labels["passphrase"] = ttk.Label(body, text=strings("field_passphrase"))
        self.entries["passphrase"] = ttk.Entry(body, width=36, show="•")
        self._passphrase_hint = ttk.Label(body, text=strings("passphrase_hint"), style="Muted.TLabel")

        self.error = ttk.Label(body, text="", style="Error.TLabel", wraplength=420, justify="left")
        self.error.grid(row=7, column=0, columnspan=3, sticky="w", pady=(8, 0))
        self.progress = ttk.Label(body, text="", wraplength=420)
        self.progress.grid(row=8, column=0, columnspan=3, sticky="w")
        buttons = ttk.Frame(body)
        buttons.grid(row=9, column=0, columnspan=3, sticky="e", pady=(10, 0))
        self.connect_button = ttk.Button(
            buttons, text=strings("connect"), command=self.submit, default="active", style="Accent.TButton"
        )
        self.connect_button.pack(side="right")
        ttk.Button(buttons, text=strings("cancel"), command=self.cancel).pack(side="right", padx=(0, 6))
        body.columnconfigure(1, weight=1)

        self.top.bind("<Return>", lambda _e: self.submit())
        self.top.bind("<KP_Enter>", lambda _e: self.submit())
        self.top.bind("<Escape>", lambda _e: self.cancel())
        for field in ("name", "identity"):
            self.entries[field].bind("<FocusOut>", lambda _e: self.refresh_passphrase(), add="+")
        self.refresh_passphrase()
        self.entries["name"].focus_set()  # Enter submits from any field

    # --- what the app calls ---------------------------------------------------------

    def values(self) -> dict[str, str | None]:
        passphrase = self.entries["passphrase"].get() if self.passphrase_shown else None
        return {
            "name": self.entries["name"].get(),
            "relay": self.entries["relay"].get(),
            "identity": self.entries["identity"].get(),
            "passphrase": passphrase or None,
        }

    @property
    def passphrase_shown(self) -> bool:
        return bool(self.entries["passphrase"].winfo_manager())

    def show_passphrase(self, shown: bool) -> None:
        if shown and not self.passphrase_shown:
            self._labels["passphrase"].grid(row=5, column=0, sticky="w", padx=(0, 8), pady=2)
            self.entries["passphrase"].grid(row=5, column=1, sticky="we", pady=2)
            self._passphrase_hint.grid(row=6, column=1, columnspan=2, sticky="w")
        elif not shown and self.passphrase_shown:
            for widget in (self._labels["passphrase"], self.entries["passphrase"], self._passphrase_hint):
                widget.grid_remove()

    def refresh_passphrase(self) -> None:
        path = key_file_for(self.entries["name"].get(), self.entries["identity"].get())
        self.show_passphrase(needs_passphrase(path))

    def show_error(self, field: str, message: str) -> None:
        """Say what is wrong and put the cursor in the field that fixes it."""
        self.idle()
        self.clear_highlight()
        self.error.configure(text=message)
        if field == "passphrase":
            self.show_passphrase(True)
        entry = self.entries.get(field)
        if entry is not None:
            entry.state([INVALID])
            entry.focus_set()
            entry.select_range(0, "end")

    def clear_highlight(self) -> None:
        for entry in self.entries.values():
            entry.state(["!" + INVALID])

    def busy(self, text: str) -> None:
        self.error.configure(text="")
        self.clear_highlight()
        self.progress.configure(text=text)
        self.connect_button.state(["disabled"])

    def idle(self) -> None:
        self.progress.configure(text="")
        self.connect_button.state(["!disabled"])

    def destroy(self) -> None:
        self.top.destroy()

    # --- user actions -------------------------------------------------------------------

    def submit(self) -> None:
        if self.connect_button.instate(["disabled"]):
            return
        self._on_submit(self.values())

    def cancel(self) -> None:
        self._on_cancel()

    def _browse(self) -> None:
        # Start where key files live (or next to the one already typed), not in the current directory.
        typed = self.entries["identity"].get().strip()
        folder = Path(typed).expanduser().parent if typed else identities_folder()
        chosen = filedialog.askopenfilename(
            parent=self.top,
            title=self.strings("field_identity"),
            initialdir=str(folder if folder.is_dir() else Path.home()),
            filetypes=[(self.strings("field_identity"), "*.key"), ("*", "*")],
        )
        if chosen:
            self.entries["identity"].delete(0, "end")
            self.entries["identity"].insert(0, chosen)
            self.refresh_passphrase()
