"""One conversation's pane: its banners, its messages and the "new messages" pill."""

from __future__ import annotations

import tkinter as tk
import tkinter.font as tkfont
from collections.abc import Callable
from tkinter import ttk

from .panes import fit
from .strings import Strings
from .theme import Palette, Shields
from .updates import Banner, DeliveryNote, HistoryBlock, Line, UnreadMarker
from .widgets import Tooltip

#: Banners kept per conversation (older ones go); one shows at a time, with ‹ › to the others.
MAX_BANNERS = 5
#: Pixels of the message pane's name column (longer names are cut, with the whole name in a tooltip).
NAME_COLUMN = 112


class Conversation:
    """One conversation: its banners on top, then the read-only message pane with its pill."""

    def __init__(
        self,
        master: tk.Misc,
        key: str,
        strings: Strings,
        fonts: dict[str, tkfont.Font],
        colours: Palette,
        shields: Shields,
        load_older: Callable[[str], None] = lambda _key: None,
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
            pane,
            wrap="word",
            state="disabled",
            takefocus=0,
            width=1,
            height=1,
            font=fonts["text"],
            padx=12,
            pady=8,
            cursor="arrow",
            relief="flat",
            borderwidth=0,
            highlightthickness=0,
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
        self.pill = ttk.Button(
            pane, text=strings("new_messages_pill"), style="Accent.TButton", command=self.scroll_to_end, takefocus=0
        )
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
        t.configure(
            background=colours.surface,
            foreground=colours.foreground,
            selectbackground=colours.selected,
            inactiveselectbackground=colours.selected,
            selectforeground=colours.foreground,
        )
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
            ttk.Button(
                row, text=self.strings("accept_key"), style="Accent.TButton", command=lambda: accept(banner.name)
            ).grid(row=0, column=4, padx=(0, 6))
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
