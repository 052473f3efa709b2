"""The room dialogs: "New room" (a label, open or invite-only), "Invite to ROOM" (a name), and the
question asked before removing, promoting or leaving.

Each only collects what the user typed and hands it to a callback, which
answers with a refusal to show under the field (the presenter's and the
core's words) or None when the request went to the core; the dialog then
closes. Escape or Cancel dismisses it. Tk variables are released here, on the
Tk thread (see ``window.release_variable``).
"""

from __future__ import annotations

import tkinter as tk
from collections.abc import Callable
from tkinter import ttk

from .strings import Strings
from .widgets import release_variable


class Dialog:
    def __init__(self, master: tk.Misc, title: str) -> None:
        self.top = tk.Toplevel(master)
        self.top.title(title)
        self.top.transient(master.winfo_toplevel())
        self.top.resizable(False, False)
        self.body = ttk.Frame(self.top, padding=14)
        self.body.pack(fill="both", expand=True)
        self.error = ttk.Label(self.body, text="", style="Error.TLabel", wraplength=340, justify="left")
        self.top.bind("<Escape>", lambda _e: self.destroy())
        self.top.protocol("WM_DELETE_WINDOW", self.destroy)
        self._variables: list[tk.Variable] = []

    def buttons(self, strings: Strings, ok: str, submit: Callable[[], None]) -> ttk.Button:
        row = ttk.Frame(self.body)
        row.pack(side="bottom", fill="x", pady=(12, 0))
        ttk.Button(row, text=strings("cancel"), command=self.destroy).pack(side="right")
        button = ttk.Button(row, text=ok, style="Accent.TButton", command=submit)
        button.pack(side="right", padx=(0, 6))
        self.top.bind("<Return>", lambda _e: submit())
        self.top.bind("<KP_Enter>", lambda _e: submit())
        return button

    def show_error(self, text: str) -> None:
        self.error.configure(text=text)
        self.error.pack(anchor="w", fill="x", pady=(8, 0))

    def destroy(self) -> None:
        if self.top.winfo_exists():
            self.top.destroy()
        for variable in self._variables:
            release_variable(variable)
        self._variables.clear()


class NewRoomDialog(Dialog):
    """A label and open or invite-only; ``create(label, open)`` answers with a refusal or None."""

    def __init__(self, master: tk.Misc, strings: Strings, create: Callable[[str, bool], str | None]) -> None:
        super().__init__(master, strings("new_room_title"))
        self._create = create
        ttk.Label(self.body, text=strings("new_room_label")).pack(anchor="w")
        self.label = ttk.Entry(self.body, width=32)
        self.label.pack(anchor="w", fill="x", pady=(4, 2))
        ttk.Label(self.body, text=strings("new_room_hint"), style="Muted.TLabel").pack(anchor="w")
        self.open = tk.BooleanVar(self.top, value=False)
        self._variables.append(self.open)
        choices = ttk.Frame(self.body)
        choices.pack(anchor="w", pady=(10, 0))
        self.invite_only = ttk.Radiobutton(choices, text=strings("new_room_invite"), variable=self.open, value=False)
        self.invite_only.pack(anchor="w")
        self.open_choice = ttk.Radiobutton(choices, text=strings("new_room_open"), variable=self.open, value=True)
        self.open_choice.pack(anchor="w", pady=(2, 0))
        self.create_button = self.buttons(strings, strings("create"), self.submit)
        self.label.focus_set()

    def submit(self) -> None:
        refusal = self._create(self.label.get().strip(), bool(self.open.get()))
        if refusal is None:
            self.destroy()
        else:
            self.show_error(refusal)


class InviteDialog(Dialog):
    """A name (the people present who are not members are offered); ``invite(name)`` answers as above."""

    def __init__(
        self, master: tk.Misc, strings: Strings, room: str, candidates: list[str], invite: Callable[[str], str | None]
    ) -> None:
        super().__init__(master, strings("invite_title", room=room))
        self._invite = invite
        ttk.Label(self.body, text=strings("invite_intro"), wraplength=340, justify="left").pack(anchor="w")
        ttk.Label(self.body, text=strings("invite_name")).pack(anchor="w", pady=(10, 0))
        self.name = ttk.Combobox(self.body, values=candidates, width=30)
        self.name.pack(anchor="w", fill="x", pady=(4, 0))
        if candidates:
            self.name.set(candidates[0])
        self.invite_button = self.buttons(strings, strings("invite"), self.submit)
        self.name.focus_set()

    def submit(self) -> None:
        refusal = self._invite(self.name.get().strip())
        if refusal is None:
            self.destroy()
        else:
            self.show_error(refusal)


class ConfirmDialog(Dialog):
    """A question in people's words and one button that does it (``confirm``); Cancel or Escape does nothing.

    Used before removing someone, making someone an admin and leaving a room: each is a signed entry
    in the room's log that the user alone cannot take back.
    """

    def __init__(
        self, master: tk.Misc, strings: Strings, title: str, question: str, ok: str, confirm: Callable[[], None]
    ) -> None:
        super().__init__(master, title)
        self._confirm = confirm
        self.question = ttk.Label(self.body, text=question, wraplength=340, justify="left")
        self.question.pack(anchor="w")
        self.ok_button = self.buttons(strings, ok, self.submit)
        self.ok_button.focus_set()

    def submit(self) -> None:
        self.destroy()
        self._confirm()
