"""The main chat window: conversation tabs, roster, entry, banners, status bar.

A ``ChatWindow`` draws the updates the presenter computes (``apply``) and
forwards what the user does (send, open a direct tab, verify, accept a key,
close) to callbacks. It decides nothing itself. It lives in a ``Toplevel`` so
that one Tk root can hold several windows (the tests run two side by side).
"""

from __future__ import annotations

import tkinter as tk
import tkinter.font as tkfont
from collections.abc import Callable
from dataclasses import dataclass
from tkinter import ttk

from .presenter import (
    ROOM,
    Banner,
    BannersResolved,
    DeliveryNote,
    Line,
    OpenTab,
    RosterRows,
    Status,
    Title,
    Update,
)
from .strings import Strings

MAX_BANNERS = 5
DEFAULT_GEOMETRY = "920x580"
ROSTER_WIDTH = 300
BANNER_BACKGROUND = "#fde2e1"
BANNER_BORDER = "#c0392b"


@dataclass(slots=True)
class WindowActions:
    """What the window forwards; each returns fast (blocking work goes to the worker)."""

    send: Callable[[str, str], bool]  # (text, conversation) -> clear the entry?
    open_direct: Callable[[str], None]
    verify: Callable[[str], None]
    accept_key: Callable[[str], None]
    close: Callable[[], None]
    tab_closed: Callable[[str], None]


class Conversation:
    """One tab: banners on top, then the read-only message pane."""

    def __init__(self, master: tk.Misc, key: str, strings: Strings, fonts: dict[str, tkfont.Font]) -> None:
        self.key = key
        self.strings = strings
        self.frame = ttk.Frame(master)
        self.banner_area = ttk.Frame(self.frame)
        self.banner_area.pack(side="top", fill="x")
        self.banners: list[tuple[tk.Frame, Banner]] = []
        pane = ttk.Frame(self.frame)
        pane.pack(side="top", fill="both", expand=True)
        self.text = tk.Text(
            pane, wrap="word", state="disabled", takefocus=0, width=60, height=18, font=fonts["text"],
            padx=6, pady=4, cursor="arrow",
        )
        scroll = ttk.Scrollbar(pane, orient="vertical", command=self.text.yview)
        self.text.configure(yscrollcommand=scroll.set)
        scroll.pack(side="right", fill="y")
        self.text.pack(side="left", fill="both", expand=True)
        self.text.tag_configure("clock", foreground="#777777")
        self.text.tag_configure("sender", font=fonts["bold"])
        self.text.tag_configure("own", foreground="#1f4e96")
        self.text.tag_configure("notice", foreground="#666666", font=fonts["italic"])
        self.text.tag_configure("error", foreground="#a40000")
        self.text.tag_configure("badge", foreground="#1e7b34")
        self.text.tag_configure("note", foreground="#777777")
        self.text.tag_configure("note_bad", foreground="#a40000")

    def add_line(self, line: Line) -> None:
        t = self.text
        t.configure(state="normal")
        t.insert("end", f"[{line.clock}] ", ("clock",))
        if line.kind in ("message", "own"):
            sender_tags = ("sender", "own") if line.kind == "own" else ("sender",)
            t.insert("end", line.sender, sender_tags)
            if line.badge:
                t.insert("end", f" [{line.badge}]", ("badge",))
            t.insert("end", ": ", sender_tags)
            t.insert("end", line.text, ("own",) if line.kind == "own" else ())
            if line.ref:
                t.insert("end", "  ")
                t.insert("end", line.note, ("note", f"note-{line.ref}"))
        else:
            t.insert("end", line.text, (line.kind,))
        t.insert("end", "\n")
        t.configure(state="disabled")
        t.see("end")

    def set_note(self, note: DeliveryNote) -> bool:
        tag = f"note-{note.ref}"
        ranges = self.text.tag_ranges(tag)
        if not ranges:
            return False
        self.text.configure(state="normal")
        self.text.delete(ranges[0], ranges[1])
        self.text.insert(ranges[0], note.text, ("note" if note.ok else "note_bad", tag))
        self.text.configure(state="disabled")
        return True

    def add_banner(self, banner: Banner, accept: Callable[[str], None]) -> None:
        box = tk.Frame(self.banner_area, background=BANNER_BACKGROUND, highlightbackground=BANNER_BORDER,
                       highlightthickness=1, padx=6, pady=4)
        label = tk.Label(box, text=banner.text, background=BANNER_BACKGROUND, foreground="#5c1010",
                         justify="left", anchor="w", wraplength=520)
        label.pack(side="left", fill="x", expand=True)
        ttk.Button(box, text=self.strings("dismiss"), command=lambda: self._remove(box)).pack(side="right")
        if banner.accept:
            ttk.Button(box, text=self.strings("accept_key"), command=lambda: accept(banner.name)).pack(
                side="right", padx=(0, 4)
            )
        box.pack(side="top", fill="x", padx=2, pady=(2, 0))
        self.banners.append((box, banner))
        while len(self.banners) > MAX_BANNERS:
            self._remove(self.banners[0][0])

    def resolve(self, name: str) -> None:
        for box, banner in list(self.banners):
            if banner.accept and banner.name == name:
                self._remove(box)

    def _remove(self, box: tk.Frame) -> None:
        self.banners = [(b, info) for b, info in self.banners if b is not box]
        box.destroy()

    # for tests and screen readers alike: what the pane says
    def contents(self) -> str:
        return self.text.get("1.0", "end-1c")

    def banner_texts(self) -> list[str]:
        return [banner.text for _box, banner in self.banners]


class ChatWindow:
    def __init__(
        self,
        master: tk.Misc,
        strings: Strings,
        actions: WindowActions,
        *,
        geometry: str | None = None,
        sash: int | None = None,
    ) -> None:
        self.strings = strings
        self.actions = actions
        self.top = tk.Toplevel(master)
        self.top.title(strings("app_title"))
        self.top.geometry(geometry or DEFAULT_GEOMETRY)
        self.top.minsize(520, 320)
        self.top.protocol("WM_DELETE_WINDOW", actions.close)
        base = tkfont.nametofont("TkTextFont")
        # Derived from the named fonts, so they follow the system's size and scaling.
        self.fonts = {
            "text": base,
            "bold": tkfont.Font(self.top, **{**base.actual(), "weight": "bold"}),
            "italic": tkfont.Font(self.top, **{**base.actual(), "slant": "italic"}),
        }

        self.status_bar = ttk.Frame(self.top, padding=(6, 2))
        self.status_bar.pack(side="bottom", fill="x")
        self.status_connection = ttk.Label(self.status_bar, text="")
        self.status_connection.pack(side="left")
        self.status_e2e = ttk.Label(self.status_bar, text=strings("status_e2e"), foreground="#1e7b34")
        self.status_e2e.pack(side="right")
        self.status_fingerprint = ttk.Label(self.status_bar, text="")
        self.status_fingerprint.pack(side="right", padx=12)

        self.paned = ttk.Panedwindow(self.top, orient="horizontal")
        self.paned.pack(side="top", fill="both", expand=True)
        left = ttk.Frame(self.paned, padding=(4, 4, 0, 0))
        right = ttk.Frame(self.paned, padding=(4, 4, 4, 0))
        self.paned.add(left, weight=3)
        self.paned.add(right, weight=1)

        self.notebook = ttk.Notebook(left)
        self.notebook.enable_traversal()  # Ctrl+Tab between conversations
        self.notebook.pack(side="top", fill="both", expand=True)
        self.conversations: dict[str, Conversation] = {}
        self._add_conversation(ROOM, strings("room_tab"))

        compose = ttk.Frame(left, padding=(0, 4, 0, 0))
        compose.pack(side="top", fill="x")
        # A Text asks for 80 columns; width=1 lets it take only what the Send button leaves.
        self.entry = tk.Text(compose, height=3, width=1, wrap="word", font=self.fonts["text"], undo=True)
        self.send_button = ttk.Button(compose, text=strings("send_button"), command=self._send)
        self.send_button.pack(side="right", padx=(4, 0), fill="y")
        self.entry.pack(side="left", fill="x", expand=True)
        self.hint = ttk.Label(left, text=strings("entry_hint"), foreground="#666666")
        self.hint.pack(side="top", anchor="w")
        self.entry.bind("<Return>", self._on_return)
        self.entry.bind("<KP_Enter>", self._on_return)
        self.entry.bind("<Shift-Return>", self._on_newline)
        self.entry.bind("<Tab>", self._focus_next)
        self.entry.bind("<Shift-Tab>", self._focus_prev)
        self.entry.bind("<ISO_Left_Tab>", self._focus_prev)
        self.top.bind("<Control-w>", lambda _e: self.close_current_tab())

        ttk.Label(right, text=strings("roster_title"), font=self.fonts["bold"]).pack(side="top", anchor="w")
        self.roster = ttk.Treeview(right, columns=("fingerprint", "trust"), show="tree headings", height=12,
                                   selectmode="browse")
        self.roster.heading("#0", text=strings("col_name"))
        self.roster.heading("fingerprint", text=strings("col_fingerprint"))
        self.roster.heading("trust", text=strings("col_trust"))
        self.roster.column("#0", width=115, stretch=True)
        self.roster.column("fingerprint", width=82, stretch=False)
        self.roster.column("trust", width=82, stretch=False)
        self.roster.tag_configure("changed", foreground="#a40000")
        self.roster.tag_configure("verified", foreground="#1e7b34")
        self.roster.tag_configure("self", foreground="#1f4e96")
        self.roster.pack(side="top", fill="both", expand=True)
        self.roster.bind("<Double-1>", self._on_roster_open)
        self.roster.bind("<Return>", self._on_roster_open)
        buttons = ttk.Frame(right, padding=(0, 4))
        buttons.pack(side="top", fill="x")
        self.message_button = ttk.Button(buttons, text=strings("message_button"), command=self._open_selected)
        self.message_button.pack(side="left")
        self.verify_button = ttk.Button(buttons, text=strings("verify_button"), command=self._verify_selected)
        self.verify_button.pack(side="left", padx=(4, 0))
        self._pending_sash: int | None = sash if sash is not None else -ROSTER_WIDTH
        self.paned.bind("<Configure>", self._restore_sash, add="+")
        self.entry.focus_set()

    # --- drawing ------------------------------------------------------------------------

    def apply(self, updates: list[Update]) -> None:
        for update in updates:
            if isinstance(update, Line):
                self.conversation(update.conversation).add_line(update)
            elif isinstance(update, DeliveryNote):
                for conversation in self.conversations.values():
                    if conversation.set_note(update):
                        break
            elif isinstance(update, Banner):
                self.conversation(update.conversation).add_banner(update, self.actions.accept_key)
            elif isinstance(update, BannersResolved):
                for conversation in self.conversations.values():
                    conversation.resolve(update.name)
            elif isinstance(update, RosterRows):
                self._set_roster(update)
            elif isinstance(update, Status):
                self._set_status(update)
            elif isinstance(update, OpenTab):
                conversation = self.conversation(update.name)
                if update.focus:
                    self.notebook.select(conversation.frame)
            elif isinstance(update, Title):
                self.top.title(update.text)

    def conversation(self, key: str) -> Conversation:
        if key not in self.conversations:
            self._add_conversation(key, key)
        return self.conversations[key]

    def _add_conversation(self, key: str, title: str) -> None:
        conversation = Conversation(self.notebook, key, self.strings, self.fonts)
        self.conversations[key] = conversation
        self.notebook.add(conversation.frame, text=title)

    def current_conversation(self) -> str:
        selected = self.notebook.select()
        for key, conversation in self.conversations.items():
            if str(conversation.frame) == selected:
                return key
        return ROOM

    def close_current_tab(self) -> str | None:
        key = self.current_conversation()
        if key == ROOM:
            return None
        self.notebook.forget(self.conversations[key].frame)
        self.conversations.pop(key).frame.destroy()
        self.actions.tab_closed(key)
        return key

    def _set_roster(self, update: RosterRows) -> None:
        selected = self.roster.selection()
        self.roster.delete(*self.roster.get_children())
        for row in update.rows:
            self.roster.insert("", "end", iid=row.name, text=row.label, values=(row.fingerprint, row.trust_label),
                               tags=(row.trust,))
        keep = [iid for iid in selected if self.roster.exists(iid)]
        if keep:
            self.roster.selection_set(keep)

    def _set_status(self, status: Status) -> None:
        self.status_connection.configure(text=status.connection)
        self.status_fingerprint.configure(text=status.fingerprint)
        self.status_e2e.configure(text=status.e2e)
        if status.can_send:
            self.entry.configure(state="normal", background="white")
            self.send_button.state(["!disabled"])
            self.hint.configure(text=self.strings("entry_hint"), foreground="#666666")
        else:
            self.entry.configure(state="disabled", background="#eeeeee")
            self.send_button.state(["disabled"])
            self.hint.configure(text=status.reason, foreground="#a40000")

    def layout(self) -> dict[str, object]:
        """What to remember: window size and position, and where the pane split is."""
        return {"geometry": self.top.geometry(), "sash": int(self.paned.sashpos(0))}

    def _restore_sash(self, event: tk.Event) -> None:
        """Put the split back once the panes have their real width (earlier, Tk clamps it to 0).

        A negative position counts from the right: the default leaves the
        roster ``ROSTER_WIDTH`` pixels, whatever the window's size.
        """
        position = self._pending_sash
        if position is not None and position < 0:
            position = max(event.width // 2, event.width + position)
        if position is not None and event.width > position:
            self._pending_sash = None
            self.paned.sashpos(0, position)

    # --- user actions ------------------------------------------------------------------

    def _send(self) -> None:
        if str(self.entry.cget("state")) == "disabled":
            return
        text = self.entry.get("1.0", "end-1c")
        if self.actions.send(text, self.current_conversation()):
            self.entry.delete("1.0", "end")

    def _on_return(self, _event: tk.Event) -> str:
        self._send()
        return "break"

    def _on_newline(self, _event: tk.Event) -> str:
        self.entry.insert("insert", "\n")
        return "break"

    def _focus_next(self, event: tk.Event) -> str:
        event.widget.tk_focusNext().focus_set()
        return "break"

    def _focus_prev(self, event: tk.Event) -> str:
        event.widget.tk_focusPrev().focus_set()
        return "break"

    def _selected(self) -> str | None:
        selection = self.roster.selection() or ((self.roster.focus(),) if self.roster.focus() else ())
        return selection[0] if selection else None

    def _on_roster_open(self, event: tk.Event) -> str:
        item = self.roster.identify_row(event.y) if event.type == tk.EventType.ButtonPress else ""
        name = item or self._selected()
        if name:
            self.actions.open_direct(name)
        return "break"

    def _open_selected(self) -> None:
        name = self._selected()
        if name:
            self.actions.open_direct(name)

    def _verify_selected(self) -> None:
        name = self._selected()
        if name:
            self.actions.verify(name)

    def destroy(self) -> None:
        self.top.destroy()
