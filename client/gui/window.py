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
"""

from __future__ import annotations

import contextlib
import shutil
import subprocess
import tkinter as tk
import tkinter.font as tkfont
import weakref
from collections.abc import Callable
from dataclasses import dataclass
from tkinter import ttk

from susurro.client.commands import RoomWord

from .presenter import (
    ROOM,
    Banner,
    BannersResolved,
    ConversationItem,
    ConversationKind,
    DeliveryNote,
    HistoryBlock,
    Line,
    Notify,
    RosterRows,
    ShowConversation,
    Sidebar,
    Status,
    Title,
    UnreadMarker,
    Update,
    fit,
)
from .room_view import is_room_key
from .strings import Strings
from .theme import Palette, Shields, body_font

#: Banners kept per conversation (older ones go); one shows at a time, with ‹ › to the others.
MAX_BANNERS = 5
DEFAULT_GEOMETRY = "920x580"
MIN_SIZE = (520, 320)
SIDEBAR_WIDTH = 230
MIN_SIDEBAR = 150
MIN_CONVERSATION = 300
#: The composer grows with its text up to this many lines, then scrolls.
COMPOSER_MAX_LINES = 6
#: Pixels of the message pane's name column (longer names are cut, with the whole name in a tooltip).
NAME_COLUMN = 112
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


def release_variable(variable: tk.Variable) -> None:
    """Unset a Tcl variable now and make the Python object's ``__del__`` a no-op."""
    with contextlib.suppress(tk.TclError):
        variable._tk.globalunsetvar(variable._name)  # type: ignore[attr-defined]
    variable._tk = None  # type: ignore[attr-defined]


def release_font(font: tkfont.Font) -> None:
    """Delete a font we created now, on the Tk thread (a ``Font`` freed by the garbage collector on
    another thread, such as a relay thread in the tests, blocks that thread in a call into Tcl)."""
    if getattr(font, "delete_font", False):
        with contextlib.suppress(tk.TclError):
            font._call("font", "delete", font.name)  # type: ignore[attr-defined]
        font.delete_font = False  # type: ignore[attr-defined]


class Tooltip:
    """A small window with the whole text, shown while the pointer rests on a widget."""

    def __init__(self, widget: tk.Misc, text: Callable[[tk.Event], str]) -> None:
        self.widget = widget
        self.text = text
        self.tip: tk.Toplevel | None = None
        widget.bind("<Motion>", self._move, add="+")
        widget.bind("<Leave>", lambda _e: self.hide(), add="+")

    def _move(self, event: tk.Event) -> None:
        text = self.text(event)
        if not text:
            self.hide()
            return
        if self.tip is None:
            self.tip = tk.Toplevel(self.widget)
            self.tip.wm_overrideredirect(True)
            self.label = ttk.Label(self.tip, padding=(6, 3), relief="solid", borderwidth=1)
            self.label.pack()
        self.label.configure(text=text)
        self.tip.wm_geometry(f"+{event.x_root + 14}+{event.y_root + 12}")

    def hide(self) -> None:
        if self.tip is not None:
            self.tip.destroy()
            self.tip = None

    def shown(self) -> str:
        return str(self.label.cget("text")) if self.tip is not None else ""


class FitLabel(ttk.Label):
    """A label that asks for no width of its own and cuts its text to the width it is given.

    So a long status or fingerprint never pushes its neighbours off the bar;
    the whole text is in a tooltip when it was cut.
    """

    def __init__(self, master: tk.Misc, *, groups: bool = False, **options: object) -> None:
        super().__init__(master, width=1, **options)  # type: ignore[arg-type]
        self.full = ""
        self.groups = groups
        self.bind("<Configure>", lambda _e: self._refit(), add="+")
        Tooltip(self, lambda _e: self.full if str(self.cget("text")) != self.full else "")

    def set(self, text: str) -> None:
        self.full = text
        self._refit()

    def font(self) -> tkfont.Font:
        """The font the label is drawn with: its own, else its style's, else the theme's."""
        name = str(self.cget("font")) or str(ttk.Style(self).lookup(str(self.cget("style")) or "TLabel", "font"))
        try:
            return tkfont.nametofont(name or "SunValleyBodyFont", root=self)
        except tk.TclError:
            return tkfont.Font(root=self, font=name)

    def _refit(self) -> None:
        font = self.font()
        width = self.winfo_width() - 6
        self.configure(text=fit(self.full, width, font.measure, groups=self.groups) if width > 8 else self.full)


class Notifier:
    """Desktop notifications: ``notify-send`` when it is installed, else the window's bell.

    The process is started and never waited for on the Tk thread; finished
    ones are reaped on the next notification.
    """

    def __init__(self, top: tk.Toplevel) -> None:
        self.top = top
        self.running: list[subprocess.Popen[bytes]] = []

    def notify(self, title: str, body: str) -> None:
        self.running = [p for p in self.running if p.poll() is None]
        command = shutil.which("notify-send")
        if command is None:
            self.top.bell()
            return
        try:
            self.running.append(
                subprocess.Popen(  # noqa: S603  (a fixed program, our text as plain arguments)
                    [command, "--app-name=Susurro", "--", title, body],
                    stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                )
            )
        except OSError:
            self.top.bell()


class Conversation:
    """One conversation: its banners on top, then the read-only message pane with its pill."""

    def __init__(
        self, master: tk.Misc, key: str, strings: Strings, fonts: dict[str, tkfont.Font], colours: Palette,
        shields: Shields, load_older: Callable[[str], None] = lambda _key: None,
    ) -> None:
        self.key = key
        self.load_older = load_older
        #: Per own message (ref): who has it, for the tooltip on its delivery note.
        self.note_details: dict[str, str] = {}
        #: The history has more before what is shown (scrolling to the top asks for it).
        self.older = False
        self.strings = strings
        self.shields = shields
        self.frame = ttk.Frame(master)
        self.frame.columnconfigure(0, weight=1)
        self.frame.rowconfigure(1, weight=1)
        self.banner_area = ttk.Frame(self.frame)
        self.banner_area.grid(row=0, column=0, sticky="ew")
        self.banner_area.columnconfigure(0, weight=1)
        self.banners: list[tuple[ttk.Frame, Banner]] = []
        self._showing = 0
        #: (sender, trust) of each name drawn with its shield, for tests and screen readers.
        self.shown_shields: list[tuple[str, str]] = []
        pane = ttk.Frame(self.frame)
        pane.grid(row=1, column=0, sticky="nsew")
        pane.columnconfigure(0, weight=1)
        pane.rowconfigure(0, weight=1)
        self.text = tk.Text(
            pane, wrap="word", state="disabled", takefocus=0, width=1, height=1, font=fonts["text"],
            padx=12, pady=8, cursor="arrow", relief="flat", borderwidth=0, highlightthickness=0,
        )
        self.scroll = ttk.Scrollbar(pane, orient="vertical", command=self.text.yview)
        self.text.configure(yscrollcommand=self._scrolled)
        #: At the newest line: new lines scroll into view (and a resize keeps the end in view).
        self.following = True
        self.text.bind("<Configure>", lambda _e: self.following and self.text.after_idle(self.scroll_to_end), add="+")
        self.text.grid(row=0, column=0, sticky="nsew")
        self.scroll.grid(row=0, column=1, sticky="ns")
        self.note_tooltip = Tooltip(self.text, self._note_tip)
        for sequence in ("<MouseWheel>", "<Button-4>", "<Prior>"):  # at the top already: no yview change
            self.text.bind(sequence, lambda _e: self.text.after_idle(self._maybe_older), add="+")
        self.pill = ttk.Button(pane, text=strings("new_messages_pill"), style="Accent.TButton",
                               command=self.scroll_to_end, takefocus=0)
        clock_width = fonts["small"].measure("00:00") + 14
        self.text_column = clock_width + NAME_COLUMN
        self.fonts = fonts
        t = self.text
        t.configure(tabs=(clock_width, self.text_column))
        t.tag_configure("line", lmargin2=self.text_column, spacing1=2)
        t.tag_configure("cont", lmargin1=self.text_column, lmargin2=self.text_column)
        t.tag_configure("first", spacing1=8)
        t.tag_configure("clock", font=fonts["small"])
        t.tag_configure("sender", font=fonts["bold"])
        t.tag_configure("notice", font=fonts["italic"], lmargin2=clock_width)
        t.tag_configure("error", lmargin2=clock_width)
        t.tag_configure("day", justify="center", font=fonts["small_bold"], spacing1=12, spacing3=4)
        t.tag_configure("unread", justify="center", font=fonts["small_bold"], spacing1=6, spacing3=2)
        t.tag_configure("note", font=fonts["small"])
        t.tag_configure("note_bad", font=fonts["small"])
        t.tag_configure("top", justify="center", font=fonts["small"], spacing3=6)
        t.mark_set("history", "1.0")
        t.mark_gravity("history", "left")
        self.recolour(colours)

    def recolour(self, colours: Palette) -> None:
        t = self.text
        t.configure(background=colours.surface, foreground=colours.foreground, selectbackground=colours.selected,
                    inactiveselectbackground=colours.selected, selectforeground=colours.foreground)
        for tag in ("clock", "notice", "day", "note", "top"):
            t.tag_configure(tag, foreground=colours.muted)
        for tag in ("error", "note_bad"):
            t.tag_configure(tag, foreground=colours.error)
        t.tag_configure("unread", foreground=colours.accent)
        t.tag_configure("own_sender", foreground=colours.accent)
        for index, colour in enumerate(colours.senders):
            t.tag_configure(f"colour{index}", foreground=colour)

    # --- lines -----------------------------------------------------------------------------

    def at_end(self) -> bool:
        return float(self.text.yview()[1]) >= 0.999

    def add_line(self, line: Line) -> None:
        following = self.following
        t = self.text
        t.configure(state="normal")
        self._insert(line, "end")
        t.configure(state="disabled")
        if following or line.kind == "own":
            self.scroll_to_end()
        elif line.kind == "message":
            self.pill.place(relx=1.0, rely=1.0, x=-28, y=-12, anchor="se")

    def _insert(self, line: Line, at: str) -> None:
        """Draw one line at ``at``: "end", or the history mark, which moves past what is put at it."""
        t = self.text
        if line.kind == "day":
            t.insert(at, f"{line.text}\n", ("day",))
        elif line.kind in ("message", "own"):
            self._message(line, at)
        else:
            t.insert(at, f"{line.clock}\t", ("line", "clock"))
            t.insert(at, line.text, ("line", line.kind))
            t.insert(at, "\n")

    def _message(self, line: Line, at: str = "end") -> None:
        t = self.text
        head = () if line.continued else ("first",)
        t.insert(at, f"{line.clock}\t", ("line", "clock", *head))
        if not line.continued:
            colour = "own_sender" if line.kind == "own" else f"colour{line.colour}"
            name = fit(line.sender, NAME_COLUMN - 26, self.fonts["bold"].measure)
            t.insert(at, name, ("line", "sender", colour, *head))
            t.insert(at, " ", ("line", *head))
            t.image_create(at, image=self.shields[line.trust], padx=1, align="center")
            self.shown_shields.append((line.sender, line.trust))
        t.insert(at, "\t", ("line", *head))
        first, *rest = line.text.split("\n")
        t.insert(at, first, ("line", *head))
        for part in rest:
            t.insert(at, "\n" + part, ("cont",))
        if line.ref:
            tags = ("cont",) if rest else ("line",)  # a note that wraps stays in the text column
            t.insert(at, "  ", tags)
            t.insert(at, line.note or " ", ("note", f"note-{line.ref}", *tags))
        t.insert(at, "\n")

    def prepend(self, block: HistoryBlock) -> None:
        """Older lines above what is shown, keeping the line the user was reading where it was."""
        t = self.text
        following = self.following
        t.configure(state="normal")
        ranges = t.tag_ranges("top")
        if ranges:  # the "loading older…" line of the previous page
            t.delete(ranges[0], ranges[1])
        t.mark_set("reading", "@0,0")
        t.mark_gravity("reading", "right")
        t.mark_set("history", "1.0")
        t.mark_gravity("history", "right")  # each insert lands after the one before, above the old lines
        t.insert("history", f"{block.top_text}\n", ("top",))
        for line in block.lines:
            self._insert(line, "history")
        below = t.tag_nextrange("day", "history")
        if block.same_day_below and below and t.compare(below[0], "==", "history"):
            t.delete(below[0], below[1])  # the day goes on below: one separator for it, above the block
        t.mark_gravity("history", "left")
        t.configure(state="disabled")
        self.older = block.older
        if following:
            self.scroll_to_end()
        else:
            t.yview("reading")

    def _maybe_older(self) -> None:
        if self.older and float(self.text.yview()[0]) <= 0.0:
            self.older = False  # one request at a time; the next page says whether there is more
            self.load_older(self.key)

    def mark_unread(self, marker: UnreadMarker) -> None:
        t = self.text
        t.configure(state="normal")
        ranges = t.tag_ranges("unread")
        if ranges:
            t.delete(ranges[0], ranges[1])
        t.insert("end", f"——  {marker.text}  ——\n", ("unread",))
        t.configure(state="disabled")

    def _scrolled(self, first: str, last: str) -> None:
        """The view moved (the user scrolled, or lines were added): follow the end only while at it."""
        self.scroll.set(first, last)
        self.following = float(last) >= 0.999
        if self.following:
            self.pill.place_forget()
        if float(first) <= 0.0 and self.older and not self.following:
            self.text.after_idle(self._maybe_older)

    def scroll_to_end(self) -> None:
        self.text.see("end")
        self.pill.place_forget()

    def pill_shown(self) -> bool:
        return bool(self.pill.winfo_manager())

    def set_note(self, note: DeliveryNote) -> bool:
        tag = f"note-{note.ref}"
        ranges = self.text.tag_ranges(tag)
        if not ranges:
            return False
        self.text.configure(state="normal")
        margin = tuple(t for t in self.text.tag_names(ranges[0]) if t in ("line", "cont"))
        self.text.delete(ranges[0], ranges[1])
        self.text.insert(ranges[0], note.text, ("note" if note.ok else "note_bad", tag, *margin))
        self.text.configure(state="disabled")
        self.note_details[note.ref] = note.detail
        return True

    def note_text(self, ref: str) -> str:
        ranges = self.text.tag_ranges(f"note-{ref}")
        return self.text.get(ranges[0], ranges[1]) if ranges else ""

    def _note_tip(self, event: tk.Event) -> str:
        """Over a delivery note: who has the message and who does not, one line each."""
        for tag in self.text.tag_names(f"@{event.x},{event.y}"):
            if tag.startswith("note-"):
                return self.note_details.get(tag[5:], "")
        return ""

    # --- banners ------------------------------------------------------------------------------

    def add_banner(self, banner: Banner, accept: Callable[[str], None]) -> None:
        """Text on top (wrapped to the width it gets), buttons under it: nothing needs more width than there is.

        One banner shows at a time, with ‹ › to the others, so that even at the
        minimum height a banner and its buttons fit above the composer.
        """
        box = ttk.Frame(self.banner_area, style="Banner.TFrame", padding=(10, 6))
        box.columnconfigure(0, weight=1)
        label = ttk.Label(box, text=banner.text, style="Banner.TLabel", justify="left", anchor="w", wraplength=300)
        label.grid(row=0, column=0, sticky="ew")
        box.bind("<Configure>", lambda e: label.configure(wraplength=max(120, e.width - 24)), add="+")
        row = ttk.Frame(box, style="Banner.TFrame")
        row.grid(row=1, column=0, sticky="ew", pady=(4, 0))
        row.columnconfigure(3, weight=1)
        ttk.Button(row, text="‹", width=2, command=lambda: self._step(-1)).grid(row=0, column=0)
        position = ttk.Label(row, style="Banner.TLabel", padding=(4, 0))
        position.grid(row=0, column=1)
        ttk.Button(row, text="›", width=2, command=lambda: self._step(1)).grid(row=0, column=2)
        if banner.accept:
            ttk.Button(row, text=self.strings("accept_key"), style="Accent.TButton",
                       command=lambda: accept(banner.name)).grid(row=0, column=4, padx=(0, 6))
        ttk.Button(row, text=self.strings("dismiss"), command=lambda: self._remove(box)).grid(row=0, column=5)
        box.position = position  # type: ignore[attr-defined]
        self.banners.append((box, banner))
        while len(self.banners) > MAX_BANNERS:
            self._remove(self.banners[0][0])
        self._showing = len(self.banners) - 1
        self._layout_banners()

    def _step(self, step: int) -> None:
        self._showing = (self._showing + step) % len(self.banners)
        self._layout_banners()

    def _layout_banners(self) -> None:
        count = len(self.banners)
        self._showing = min(max(self._showing, 0), count - 1) if count else 0
        for index, (box, _banner) in enumerate(self.banners):
            nav = box.position.master.grid_slaves(row=0)  # type: ignore[attr-defined]
            for widget in nav:
                if int(widget.grid_info()["column"]) <= 2:
                    (widget.grid if count > 1 else widget.grid_remove)()
            box.position.configure(text=f"{index + 1}/{count}")  # type: ignore[attr-defined]
            if index == self._showing:
                box.grid(row=0, column=0, sticky="ew", padx=6, pady=(6, 0))
            else:
                box.grid_remove()

    def showing(self) -> Banner | None:
        return self.banners[self._showing][1] if self.banners else None

    def resolve(self, name: str) -> None:
        for box, banner in list(self.banners):
            if banner.accept and banner.name == name:
                self._remove(box)

    def _remove(self, box: ttk.Frame) -> None:
        self.banners = [(b, info) for b, info in self.banners if b is not box]
        box.destroy()
        self._layout_banners()

    # for tests and screen readers alike: what the pane says
    def contents(self) -> str:
        return self.text.get("1.0", "end-1c")

    def banner_texts(self) -> list[str]:
        return [banner.text for _box, banner in self.banners]


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
            label = FitLabel(row, style=f"{style}.TLabel",
                             font="SunValleyBodyStrongFont" if item.unread else "SunValleyBodyFont")
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


class JumpDialog:
    """Ctrl+K: type part of a name, Enter goes to that conversation (or opens it)."""

    def __init__(self, master: tk.Misc, strings: Strings, colours: Palette,
                 targets: list[tuple[str, str]], go: Callable[[str], None]) -> None:
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
        self.list = tk.Listbox(body, height=8, activestyle="none", relief="flat", highlightthickness=0,
                               background=colours.surface, foreground=colours.foreground,
                               selectbackground=colours.selected, selectforeground=colours.foreground)
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


class ChatWindow:
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

    # --- building -------------------------------------------------------------------------

    def _build_sidebar(self, side: ttk.Frame, notifications: bool) -> None:
        s = self.strings
        side.columnconfigure(0, weight=1)
        side.rowconfigure(4, weight=1)
        head = ttk.Frame(side, style="Sidebar.TFrame", padding=(10, 8, 6, 4))
        head.grid(row=0, column=0, sticky="ew")
        head.columnconfigure(0, weight=1)
        ttk.Label(head, text=s("conversations_title").upper(), style="SidebarTitle.TLabel").grid(
            row=0, column=0, sticky="w")
        self.new_room_button = ttk.Button(head, text=s("new_room_button"), style="Toolbutton",
                                          command=self.actions.new_room)
        self.new_room_button.grid(row=0, column=1, sticky="e", padx=(0, 4))
        self.menu_button = ttk.Menubutton(head, text=s("menu_button"), style="Toolbutton")
        self.menu_button.grid(row=0, column=2, sticky="e")
        self.menu = tk.Menu(self.menu_button, tearoff=False)
        self.notifications = tk.BooleanVar(self.top, value=notifications)
        self.dark = tk.BooleanVar(self.top, value=self.colours.mode == "dark")
        self.menu.add_checkbutton(label=s("setting_notifications"), variable=self.notifications,
                                  command=lambda: self.actions.set_notifications(self.notifications.get()))
        self.menu.add_checkbutton(label=s("setting_dark"), variable=self.dark,
                                  command=lambda: self.actions.set_theme("dark" if self.dark.get() else "light"))
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
        self.invite_button = ttk.Button(title, text=s("invite_button"), style="Toolbutton",
                                        command=lambda: self.roster_room and self.actions.invite(self.roster_room))
        self.roster = ttk.Treeview(side, columns=("fingerprint", "trust"), displaycolumns=("fingerprint",),
                                   show="tree", height=4, selectmode="browse", style="Sidebar.Treeview")
        fingerprint_width = self.fonts["small"].measure("0000 0000") + 16
        self.roster.column("#0", width=SIDEBAR_WIDTH - fingerprint_width - 10, minwidth=60, stretch=True)
        self.roster.column("fingerprint", width=fingerprint_width, minwidth=fingerprint_width, stretch=False,
                           anchor="e")
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
        self.remove_button = ttk.Button(self.room_buttons, text=s("remove_button"),
                                        command=lambda: self._on_member(RoomWord.REMOVE))
        self.promote_button = ttk.Button(self.room_buttons, text=s("promote_button"),
                                         command=lambda: self._on_member(RoomWord.PROMOTE))
        self.leave_button = ttk.Button(self.room_buttons, text=s("leave_button"),
                                       command=lambda: self._on_member(RoomWord.LEAVE))
        self.room_buttons.grid_remove()

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
        self.entry = tk.Text(compose, height=1, width=1, wrap="word", font=self.fonts["text"], undo=True,
                             relief="flat", borderwidth=0, highlightthickness=1, padx=8, pady=6,
                             background=c.surface, foreground=c.foreground, insertbackground=c.foreground,
                             highlightbackground=c.border, highlightcolor=c.accent)
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

    def conversation(self, key: str) -> Conversation:
        if key not in self.conversations:
            conversation = Conversation(self.stack, key, self.strings, self.fonts, self.colours, self.shields,
                                        self.actions.load_older)
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

    def _set_sidebar(self, update: Sidebar) -> None:
        self.sidebar.show(update.items)
        listed = {i.key for i in update.items}
        # A closed direct conversation goes; a room's pane stays (its history may be drawn before its log is).
        for key in [k for k in self.conversations if k != ROOM and not is_room_key(k) and k not in listed]:
            self.conversations.pop(key).frame.destroy()

    def _set_roster(self, update: RosterRows) -> None:
        selected = self.roster.selection()
        self.roster.delete(*self.roster.get_children())
        self.roster_rows = {row.name: (row.fingerprint, row.trust_label) for row in update.rows}
        self.roster_tips = {row.name: row.tooltip for row in update.rows}
        self.roster_online = {row.name: row.online for row in update.rows}
        self._labels = {row.name: row.label for row in update.rows}
        for row in update.rows:
            tags = (row.trust,) if row.online else (row.trust, "offline")
            self.roster.insert("", "end", iid=row.name, text=row.label, image=self.shields[row.trust],
                               values=(row.fingerprint, row.trust_label), tags=tags)
        self.roster.tag_configure("offline", foreground=self.colours.muted)
        if update.title:
            self.roster_title.set(update.title.upper())
        self.roster_room = update.room
        if update.room:
            self.invite_button.grid(row=0, column=1, sticky="e", padx=(0, 4), pady=(4, 0))
            self.room_buttons.grid()
            self.leave_button.grid(row=1, column=0, columnspan=2, sticky="w", pady=(6, 0))
        else:
            self.invite_button.grid_remove()
            self.room_buttons.grid_remove()
            self.leave_button.grid_remove()
        for column, button in enumerate((self.remove_button, self.promote_button)):
            if update.room and update.admin:
                button.grid(row=0, column=column, sticky="w", padx=(0, 6))
            else:
                button.grid_remove()
        self._refit_roster()
        keep = [iid for iid in selected if self.roster.exists(iid)]
        if keep:
            self.roster.selection_set(keep)

    def _refit_roster(self) -> None:
        width = int(self.roster.column("#0", "width")) - 40  # the indent and the shield
        font = tkfont.nametofont("SunValleyBodyFont", root=self.top)
        for name, label in getattr(self, "_labels", {}).items():
            if self.roster.exists(name):
                self.roster.item(name, text=" " + fit(label, width, font.measure))

    def _roster_tip(self, event: tk.Event) -> str:
        return self.roster_tips.get(self.roster.identify_row(event.y), "")

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

    def recolour(self, colours: Palette) -> None:
        """The theme changed (light/dark): redraw what ttk does not style itself."""
        self.colours = colours
        self.top.configure(background=colours.background)
        self.shields.recolour(colours)
        self.entry.configure(background=colours.surface, foreground=colours.foreground,
                             insertbackground=colours.foreground, highlightbackground=colours.border,
                             highlightcolor=colours.accent)
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

    def _selected(self) -> str | None:
        selection = self.roster.selection() or ((self.roster.focus(),) if self.roster.focus() else ())
        return selection[0] if selection else None

    def _on_roster_open(self, event: tk.Event) -> str:
        item = self.roster.identify_row(event.y) if event.type == tk.EventType.ButtonPress else ""
        name = item or self._selected()
        if name:
            self.actions.open_direct(name)
            # After the click is over: the tree would otherwise take the focus back.
            self.top.after_idle(self._focus_composer)
        return "break"

    def _focus_composer(self) -> None:
        if self.top.winfo_exists() and self.current != ROOM:
            self.entry.focus_set()

    def _open_selected(self) -> None:
        name = self._selected()
        if name:
            self.actions.open_direct(name)

    def _on_member(self, word: RoomWord) -> None:
        """Remove or Make admin the selected member, or leave the room on screen (the app asks first)."""
        if self.roster_room:
            name = "" if word is RoomWord.LEAVE else self._selected()
            if name is not None:
                self.actions.room_member(word, self.roster_room, name)

    def _verify_selected(self) -> None:
        name = self._selected()
        if name:
            self.actions.verify(name)

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
