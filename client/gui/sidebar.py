"""The window's sidebar: the conversations, the menu, and the frame of the member list."""

from __future__ import annotations

import tkinter as tk
from collections.abc import Callable
from tkinter import ttk

from susurro.client.commands import RoomWord

from .invitation_list import InvitationList
from .jump_dialog import JumpDialog
from .panes import ROOM
from .room_view import is_room_key
from .theme import Shields
from .updates import ConversationItem, ConversationKind, Sidebar
from .widgets import FitLabel, Tooltip

SIDEBAR_WIDTH = 230


class ConversationList:
    """The sidebar's conversations: one clickable row each, with an unread badge.

    Generic on purpose: it draws whatever ``ConversationItem``s it is given
    (the room, direct conversations and rooms), by kind.
    """

    def __init__(self, master: tk.Misc, shields: Shields, select: Callable[[str], None]) -> None:
        self.frame = ttk.Frame(master, style="Sidebar.TFrame")
        self.frame.columnconfigure(0, weight=1)
        self.shields = shields
        self.select = select
        self.items: tuple[ConversationItem, ...] = ()
        self.rows: dict[str, ttk.Frame] = {}

    def show(self, items: tuple[ConversationItem, ...]) -> None:
        self.items = items
        for row in self.rows.values():
            row.destroy()
        self.rows.clear()
        for index, item in enumerate(items):
            style = "ItemSelected" if item.selected else "Item"
            row = ttk.Frame(self.frame, style=f"{style}.TFrame", padding=(10, 5))
            row.columnconfigure(1, weight=1)
            if item.kind is ConversationKind.DIRECT:
                icon = ttk.Label(row, image=self.shields[item.trust], style=f"{style}.TLabel")
            else:
                icon = ttk.Label(row, text="#", style=f"{style}.TLabel", font="SunValleyBodyStrongFont")
            icon.grid(row=0, column=0, padx=(0, 8))
            label = FitLabel(
                row, style=f"{style}.TLabel", font="SunValleyBodyStrongFont" if item.unread else "SunValleyBodyFont"
            )
            label.grid(row=0, column=1, sticky="ew")
            label.set(item.label)
            widgets: list[tk.Misc] = [row, icon, label]
            if item.tag:  # a room's short id, under its label: two rooms with one label still look different
                tag = FitLabel(row, style=f"{style}Tag.TLabel")
                tag.grid(row=1, column=1, columnspan=2, sticky="ew")
                tag.set(item.tag)
                widgets.append(tag)
            if item.unread:
                badge = ttk.Label(row, text=str(item.unread) if item.unread < 100 else "99+", style="Badge.TLabel")
                badge.grid(row=0, column=2, padx=(6, 0))
                widgets.append(badge)
            for widget in widgets:
                widget.bind("<Button-1>", lambda _e, key=item.key: self.select(key))
            row.grid(row=index, column=0, sticky="ew")
            self.rows[item.key] = row

    def badge(self, key: str) -> int:
        """The unread count shown for ``key`` (0: no badge)."""
        return next((item.unread for item in self.items if item.key == key), 0)


class SidebarPane:
    """The sidebar of ``ChatWindow``: built, drawn, cycled through."""

    def _build_sidebar(self, side: ttk.Frame, notifications: bool) -> None:
        s = self.strings
        side.columnconfigure(0, weight=1)
        side.rowconfigure(4, weight=1)
        head = ttk.Frame(side, style="Sidebar.TFrame", padding=(10, 8, 6, 4))
        head.grid(row=0, column=0, sticky="ew")
        head.columnconfigure(0, weight=1)
        ttk.Label(head, text=s("conversations_title").upper(), style="SidebarTitle.TLabel").grid(
            row=0, column=0, sticky="w"
        )
        self.new_room_button = ttk.Button(
            head, text=s("new_room_button"), style="Toolbutton", command=self.actions.new_room
        )
        self.new_room_button.grid(row=0, column=1, sticky="e", padx=(0, 4))
        self.menu_button = ttk.Menubutton(head, text=s("menu_button"), style="Toolbutton")
        self.menu_button.grid(row=0, column=2, sticky="e")
        self.menu = tk.Menu(self.menu_button, tearoff=False)
        self.notifications = tk.BooleanVar(self.top, value=notifications)
        self.dark = tk.BooleanVar(self.top, value=self.colours.mode == "dark")
        self.menu.add_checkbutton(
            label=s("setting_notifications"),
            variable=self.notifications,
            command=lambda: self.actions.set_notifications(self.notifications.get()),
        )
        self.menu.add_checkbutton(
            label=s("setting_dark"),
            variable=self.dark,
            command=lambda: self.actions.set_theme("dark" if self.dark.get() else "light"),
        )
        self.menu_button.configure(menu=self.menu)
        self.sidebar = ConversationList(side, self.shields, self.actions.select)
        self.sidebar.frame.grid(row=1, column=0, sticky="new")
        ttk.Separator(side).grid(row=2, column=0, sticky="ew", pady=(6, 0))
        title = ttk.Frame(side, style="Sidebar.TFrame")
        title.grid(row=3, column=0, sticky="ew")
        title.columnconfigure(0, weight=1)
        self.roster_title = FitLabel(title, style="SidebarTitle.TLabel", padding=(10, 6, 0, 2))
        self.roster_title.grid(row=0, column=0, sticky="ew")
        self.roster_title.set(s("roster_title").upper())
        self.roster_room = ""
        # Beside the member list's title, so it fits however narrow the sidebar is.
        self.invite_button = ttk.Button(
            title,
            text=s("invite_button"),
            style="Toolbutton",
            command=lambda: self.roster_room and self.actions.invite(self.roster_room),
        )
        self.roster = ttk.Treeview(
            side,
            columns=("fingerprint", "trust"),
            displaycolumns=("fingerprint",),
            show="tree",
            height=4,
            selectmode="browse",
            style="Sidebar.Treeview",
        )
        fingerprint_width = self.fonts["small"].measure("0000 0000") + 16
        self.roster.column("#0", width=SIDEBAR_WIDTH - fingerprint_width - 10, minwidth=60, stretch=True)
        self.roster.column(
            "fingerprint", width=fingerprint_width, minwidth=fingerprint_width, stretch=False, anchor="e"
        )
        self.roster.grid(row=4, column=0, sticky="nsew", padx=(4, 4))
        self.roster.bind("<Double-1>", self._on_roster_open)
        self.roster.bind("<Return>", self._on_roster_open)
        self.roster.bind("<Configure>", lambda _e: self._refit_roster(), add="+")
        self.roster_rows: dict[str, tuple[str, str]] = {}
        self.roster_tips: dict[str, str] = {}
        self.roster_tooltip = Tooltip(self.roster, self._roster_tip)
        buttons = ttk.Frame(side, style="Sidebar.TFrame", padding=(8, 6))
        buttons.grid(row=5, column=0, sticky="ew")
        self.message_button = ttk.Button(buttons, text=s("message_button"), command=self._open_selected)
        self.message_button.pack(side="left")
        self.verify_button = ttk.Button(buttons, text=s("verify_button"), command=self._verify_selected)
        self.verify_button.pack(side="left", padx=(6, 0))
        # A room's own actions, under its member list: shown only for a room we are in (and for admins).
        self.room_buttons = ttk.Frame(side, style="Sidebar.TFrame", padding=(8, 0, 8, 6))
        self.room_buttons.grid(row=6, column=0, sticky="ew")
        self.remove_button = ttk.Button(
            self.room_buttons, text=s("remove_button"), command=lambda: self._on_member(RoomWord.REMOVE)
        )
        self.promote_button = ttk.Button(
            self.room_buttons, text=s("promote_button"), command=lambda: self._on_member(RoomWord.PROMOTE)
        )
        self.leave_button = ttk.Button(
            self.room_buttons, text=s("leave_button"), command=lambda: self._on_member(RoomWord.LEAVE)
        )
        self.room_buttons.grid_remove()
        # Rooms someone added us to: nothing of them is kept until the user accepts (hidden while none wait).
        self.invitation_list = InvitationList(side, self.strings, self.actions.answer_invitation)
        self.invitation_list.frame.grid(row=7, column=0, sticky="ew")
        self.invitation_list.frame.grid_remove()

    def _set_sidebar(self, update: Sidebar) -> None:
        self.sidebar.show(update.items)
        listed = {i.key for i in update.items}
        # A closed direct conversation goes; a room's pane stays (its history may be drawn before its log is).
        for key in [k for k in self.conversations if k != ROOM and not is_room_key(k) and k not in listed]:
            self.conversations.pop(key).frame.destroy()

    def _cycle(self, step: int) -> str:
        keys = [item.key for item in self.sidebar.items]
        if keys and self.current in keys:
            self.actions.select(keys[(keys.index(self.current) + step) % len(keys)])
        return "break"

    def open_jump(self) -> str:
        if self.jump is not None:
            self.jump.destroy()
        self.jump = JumpDialog(self.top, self.strings, self.colours, self.actions.jump_targets(), self.actions.select)
        return "break"
