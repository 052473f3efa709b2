"""The main chat window: a sidebar (conversations, people), the open conversation, the composer.

Laid out like Signal Desktop or Element: on the left the list of
conversations with unread badges and, under it, the people here with a trust
shield each; on the right the conversation (banners on top, the messages, a
"new messages ↓" pill while you read older ones), the composer that grows
with its text, and a status bar. A ``ChatWindow`` draws the updates the
presenter computes (``apply``) and forwards what the user does to callbacks;
it decides nothing itself. Every row of the layout is a grid row that either
keeps its size or shrinks (the message pane first), so at the minimum size
every control is still on screen, and long texts are cut with "…" and a
tooltip rather than pushing their neighbours out.

It lives in a ``Toplevel`` so that one Tk root can hold several windows (the
tests run two side by side).

Its parts, one per region: ``sidebar`` (the conversations and the menu),
``member_list``, ``composer`` (the header, the panes and the composer),
``status_bar``, with ``conversation_pane`` (one conversation),
``jump_dialog`` (Ctrl+K) and ``widgets`` (tooltips, labels that fit,
notifications). ``ChatWindow`` composes them and draws each update.
"""

from __future__ import annotations

import tkinter as tk
import tkinter.font as tkfont
import weakref
from collections.abc import Callable
from dataclasses import dataclass
from tkinter import ttk

from susurro.client.commands import RoomWord

from .composer import Composer
from .conversation_pane import Conversation
from .jump_dialog import JumpDialog
from .member_list import MemberList
from .panes import ROOM
from .sidebar import SIDEBAR_WIDTH, SidebarPane
from .status_bar import StatusBar
from .strings import Strings
from .theme import Palette, Shields, body_font
from .updates import (
    Banner,
    BannersResolved,
    DeliveryNote,
    HistoryBlock,
    InvitationRows,
    Line,
    Notify,
    RosterRows,
    ShowConversation,
    Sidebar,
    Status,
    Title,
    UnreadMarker,
    Update,
)
from .widgets import Notifier, release_font, release_variable

DEFAULT_GEOMETRY = "920x580"
MIN_SIZE = (520, 320)
MIN_SIDEBAR = 150
MIN_CONVERSATION = 300
#: Every chat window of this interpreter: the theme is the interpreter's, so a change repaints them all.
_OPEN_WINDOWS: weakref.WeakSet[ChatWindow] = weakref.WeakSet()


def recolour_all(colours: Palette) -> None:
    for window in list(_OPEN_WINDOWS):
        if window.top.winfo_exists():
            window.recolour(colours)


@dataclass(slots=True)
class WindowActions:
    """What the window forwards; each returns fast (blocking work goes to the worker)."""

    send: Callable[[str, str], bool]  # (text, conversation) -> clear the composer?
    open_direct: Callable[[str], None]
    select: Callable[[str], None]
    verify: Callable[[str], None]
    accept_key: Callable[[str], None]
    close: Callable[[], None]
    close_conversation: Callable[[str], None]
    focus_changed: Callable[[bool], None]
    jump_targets: Callable[[], list[tuple[str, str]]]
    reconnect: Callable[[], None]
    set_notifications: Callable[[bool], None]
    set_theme: Callable[[str], None]
    new_room: Callable[[], None] = lambda: None
    invite: Callable[[str], None] = lambda _room: None
    #: Remove, Make admin, Leave room: (what, the room on screen, the member selected) -> asks first.
    room_member: Callable[[RoomWord, str, str], None] = lambda _word, _room, _name: None
    #: The user scrolled to the top of a pane: read an older page of its history (off the Tk thread).
    load_older: Callable[[str], None] = lambda _key: None
    #: Accept (True) or decline an invitation to the room with this id.
    answer_invitation: Callable[[bytes, bool], None] = lambda _room, _accepted: None


class ChatWindow(SidebarPane, MemberList, Composer, StatusBar):
    def __init__(
        self,
        master: tk.Misc,
        strings: Strings,
        actions: WindowActions,
        colours: Palette,
        *,
        geometry: str | None = None,
        sash: int | None = None,
        notifications: bool = True,
    ) -> None:
        self.strings = strings
        self.actions = actions
        self.colours = colours
        self.top = tk.Toplevel(master)
        self.top.title(strings("app_title"))
        self.top.geometry(geometry or DEFAULT_GEOMETRY)
        self.top.minsize(*MIN_SIZE)
        self.top.protocol("WM_DELETE_WINDOW", actions.close)
        self.top.configure(background=colours.background)
        self.shields = Shields(self.top, colours)
        self.notifier = Notifier(self.top)
        base = body_font(self.top)
        actual = base.actual()
        small_size = int(actual["size"]) + (1 if int(actual["size"]) < 0 else -1)
        # Derived from the theme's named font, so they follow the system's size and scaling.
        self.fonts = {
            "text": base,
            "bold": tkfont.Font(self.top, **{**actual, "weight": "bold"}),
            "italic": tkfont.Font(self.top, **{**actual, "slant": "italic"}),
            "small": tkfont.Font(self.top, **{**actual, "size": small_size}),
            "small_bold": tkfont.Font(self.top, **{**actual, "size": small_size, "weight": "bold"}),
        }
        self.top.columnconfigure(0, weight=1)
        self.top.rowconfigure(0, weight=1)
        self.paned = ttk.Panedwindow(self.top, orient="horizontal")
        self.paned.grid(row=0, column=0, sticky="nsew")
        side = ttk.Frame(self.paned, style="Sidebar.TFrame", width=SIDEBAR_WIDTH)
        main = ttk.Frame(self.paned)
        self.paned.add(side, weight=0)
        self.paned.add(main, weight=1)
        self._build_sidebar(side, notifications)
        self._build_main(main)
        self._build_status()

        self.top.bind("<Control-w>", lambda _e: self._close_current())
        self.top.bind("<Control-k>", lambda _e: self.open_jump())
        self.top.bind("<Control-Tab>", lambda _e: self._cycle(1))
        self.top.bind("<Control-Shift-Tab>", lambda _e: self._cycle(-1))
        self.top.bind("<Control-ISO_Left_Tab>", lambda _e: self._cycle(-1))
        _OPEN_WINDOWS.add(self)
        self.top.bind("<FocusIn>", lambda _e: self._focus_check(), add="+")
        self.top.bind("<FocusOut>", lambda _e: self._focus_check(), add="+")
        self._focused = True
        self.jump: JumpDialog | None = None
        self._pending_sash: int | None = sash if sash is not None else SIDEBAR_WIDTH
        self.paned.bind("<Configure>", self._restore_sash, add="+")
        self.current = ROOM
        self.conversations: dict[str, Conversation] = {}
        self.conversation(ROOM)
        self._raise(ROOM)
        self.entry.focus_set()

    # --- drawing ------------------------------------------------------------------------

    def apply(self, updates: list[Update]) -> None:
        for update in updates:
            if isinstance(update, Line):
                self.conversation(update.conversation).add_line(update)
            elif isinstance(update, UnreadMarker):
                self.conversation(update.conversation).mark_unread(update)
            elif isinstance(update, DeliveryNote):
                for conversation in self.conversations.values():
                    if conversation.set_note(update):
                        break
            elif isinstance(update, HistoryBlock):
                self.conversation(update.conversation).prepend(update)
            elif isinstance(update, Banner):
                self.conversation(update.conversation).add_banner(update, self.actions.accept_key)
            elif isinstance(update, BannersResolved):
                for conversation in self.conversations.values():
                    conversation.resolve(update.name)
            elif isinstance(update, RosterRows):
                self._set_roster(update)
            elif isinstance(update, Sidebar):
                self._set_sidebar(update)
            elif isinstance(update, ShowConversation):
                self._show(update)
            elif isinstance(update, Status):
                self._set_status(update)
            elif isinstance(update, Notify):
                self.notifier.notify(update.title, update.body)
            elif isinstance(update, Title):
                self.top.title(update.text)
            elif isinstance(update, InvitationRows):
                self.invitation_list.show(update)

    def conversation(self, key: str) -> Conversation:
        if key not in self.conversations:
            conversation = Conversation(
                self.stack, key, self.strings, self.fonts, self.colours, self.shields, self.actions.load_older
            )
            conversation.frame.grid(row=0, column=0, sticky="nsew")
            conversation.frame.lower()
            self.conversations[key] = conversation
        return self.conversations[key]

    def _raise(self, key: str) -> None:
        self.current = key
        self.conversation(key).frame.tkraise()

    def _show(self, show: ShowConversation) -> None:
        self._raise(show.key)
        self.header.set(show.header)
        if show.trust:
            self.header_shield.configure(image=self.shields[show.trust])
            self.header_shield.grid()
        else:
            self.header_shield.grid_remove()
        self.entry.focus_set()

    def current_conversation(self) -> str:
        return self.current

    def recolour(self, colours: Palette) -> None:
        """The theme changed (light/dark): redraw what ttk does not style itself."""
        self.colours = colours
        self.top.configure(background=colours.background)
        self.shields.recolour(colours)
        self.entry.configure(
            background=colours.surface,
            foreground=colours.foreground,
            insertbackground=colours.foreground,
            highlightbackground=colours.border,
            highlightcolor=colours.accent,
        )
        for conversation in self.conversations.values():
            conversation.recolour(colours)
        self.dark.set(colours.mode == "dark")

    def layout(self) -> dict[str, object]:
        """What to remember: window size and position, and where the sidebar ends."""
        return {"geometry": self.top.geometry(), "sash": int(self.paned.sashpos(0))}

    def _restore_sash(self, event: tk.Event) -> None:
        """Put the split back once the panes have their real width (earlier, Tk clamps it to 0).

        The conversation always keeps ``MIN_CONVERSATION`` pixels, however narrow the window.
        """
        position = self._pending_sash
        if position is not None and event.width > 1:
            self._pending_sash = None
            self.paned.sashpos(0, max(MIN_SIDEBAR, min(position, event.width - MIN_CONVERSATION)))

    # --- user actions ------------------------------------------------------------------

    def _focus_check(self) -> None:
        self.top.after_idle(self._report_focus)

    def _report_focus(self) -> None:
        if not self.top.winfo_exists():
            return
        widget = self.top.focus_displayof()
        focused = widget is not None and str(widget).startswith(str(self.top))
        if focused != self._focused:
            self._focused = focused
            self.actions.focus_changed(focused)

    def _close_current(self) -> str:
        if self.current != ROOM:
            self.actions.close_conversation(self.current)
        return "break"

    def close_current_tab(self) -> str | None:
        key = self.current
        if key == ROOM:
            return None
        self.actions.close_conversation(key)
        return key

    def destroy(self) -> None:
        self.roster_tooltip.hide()
        if self.jump is not None:
            self.jump.destroy()
        self.top.destroy()
        _OPEN_WINDOWS.discard(self)
        # Free Tcl images and variables here, on the Tk thread: left to the garbage collector they
        # can be freed from another thread, where tkinter may not call into Tcl.
        self.shields.release()
        for variable in (self.notifications, self.dark):
            release_variable(variable)
        for font in self.fonts.values():
            release_font(font)
