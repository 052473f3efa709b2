"""One look for every window: the Sun Valley ttk theme (light or dark) plus our own colours.

``sv-ttk`` styles the ttk widgets (buttons, entries, tree, scrollbars,
menus); the few classic Tk widgets we keep (the message pane and composer are
``tk.Text``, the jump list a ``tk.Listbox``) take their colours from the
``Palette`` of the same mode, and so do the trust shields, the sender names
and the banners. ``docs/decisions.md`` says why this theme.

The trust colour code is one table per mode, ``Palette.trust``: the people list, the
sidebar, the conversation header, the message lines and the verify dialog's
legend all draw the same shield from it.
"""

from __future__ import annotations

import contextlib
import tkinter as tk
import tkinter.font as tkfont
from dataclasses import dataclass
from tkinter import ttk

import sv_ttk

MODES = ("light", "dark")


@dataclass(frozen=True, slots=True)
class Palette:
    mode: str
    background: str
    surface: str  # the message pane and the composer
    sidebar: str
    selected: str  # the selected sidebar entry
    foreground: str
    muted: str
    accent: str
    on_accent: str
    error: str
    banner: str
    banner_text: str
    border: str
    senders: tuple[str, ...]
    trust: dict[str, str]


LIGHT = Palette(
    mode="light",
    background="#fafafa",
    surface="#ffffff",
    sidebar="#f0f1f4",
    selected="#dce6f8",
    foreground="#1c1c1c",
    muted="#6b6f76",
    accent="#005fb8",
    on_accent="#ffffff",
    error="#b3261e",
    banner="#fdecea",
    banner_text="#5c1010",
    border="#d5d7dc",
    senders=("#c2185b", "#7b1fa2", "#3949ab", "#00838f", "#558b2f", "#e65100", "#6d4c41", "#00695c"),
    trust={
        "verified": "#1e8e3e",
        "pinned": "#6b7280",
        "new": "#c77700",
        "changed": "#d93025",
        "self": "#005fb8",
        "gone": "#b0b4ba",
    },
)

DARK = Palette(
    mode="dark",
    background="#1c1c1c",
    surface="#232323",
    sidebar="#262a30",
    selected="#2f4466",
    foreground="#f0f0f0",
    muted="#9aa0a8",
    accent="#57a6ff",
    on_accent="#0b1a2c",
    error="#ff8a80",
    banner="#4a1f1d",
    banner_text="#ffdad6",
    border="#3a3d42",
    senders=("#f48fb1", "#ce93d8", "#9fa8da", "#80deea", "#aed581", "#ffb74d", "#bcaaa4", "#80cbc4"),
    trust={
        "verified": "#5bd47a",
        "pinned": "#9aa3af",
        "new": "#f0b030",
        "changed": "#ff6b60",
        "self": "#57a6ff",
        "gone": "#5f646b",
    },
)

#: The order the verify dialog's legend lists them in.
LEGEND = ("verified", "pinned", "new", "changed")

# A 12×14 shield: for each row, the columns it covers (left edge, right edge inclusive).
_SHIELD_ROWS = (
    (1, 10),
    (0, 11),
    (0, 11),
    (0, 11),
    (0, 11),
    (0, 11),
    (0, 11),
    (1, 10),
    (1, 10),
    (2, 9),
    (3, 8),
    (4, 7),
    (5, 6),
    (5, 6),
)


def palette(mode: str) -> Palette:
    return DARK if mode == "dark" else LIGHT


def apply_theme(root: tk.Tk, mode: str) -> Palette:
    """Switch the whole Tk interpreter to ``mode`` and (re)define our named styles."""
    mode = mode if mode in MODES else "light"
    sv_ttk.set_theme(mode, root)
    colours = palette(mode)
    style = ttk.Style(root)
    style.configure("Sidebar.TFrame", background=colours.sidebar)
    style.configure("Sidebar.TLabel", background=colours.sidebar, foreground=colours.foreground)
    style.configure(
        "SidebarTitle.TLabel", background=colours.sidebar, foreground=colours.muted, font="SunValleyCaptionFont"
    )
    style.configure("Item.TFrame", background=colours.sidebar)
    style.configure("Item.TLabel", background=colours.sidebar, foreground=colours.foreground)
    style.configure("ItemSelected.TFrame", background=colours.selected)
    style.configure("ItemSelected.TLabel", background=colours.selected, foreground=colours.foreground)
    # A room's short id beside its label, quieter than the label.
    style.configure("ItemTag.TLabel", background=colours.sidebar, foreground=colours.muted, font="SunValleyCaptionFont")
    style.configure(
        "ItemSelectedTag.TLabel", background=colours.selected, foreground=colours.muted, font="SunValleyCaptionFont"
    )
    style.configure(
        "Badge.TLabel",
        background=colours.accent,
        foreground=colours.on_accent,
        font="SunValleyCaptionFont",
        padding=(6, 0),
    )
    style.configure("Header.TLabel", font="SunValleyBodyStrongFont")
    style.configure("Muted.TLabel", foreground=colours.muted)
    style.configure("Error.TLabel", foreground=colours.error)
    style.configure("Secure.TLabel", foreground=colours.trust["verified"])
    style.configure("Banner.TFrame", background=colours.banner)
    style.configure("Banner.TLabel", background=colours.banner, foreground=colours.banner_text)
    style.configure("Sidebar.Treeview", background=colours.sidebar, fieldbackground=colours.sidebar)
    return colours


def paint_shield(image: tk.PhotoImage, colour: str) -> tk.PhotoImage:
    """Draw a small filled shield in ``colour`` (an image looks the same whatever the font)."""
    image.blank()
    for y, (left, right) in enumerate(_SHIELD_ROWS):
        image.put(colour, to=(left, y, right + 1, y + 1))
    return image


class Shields:
    """One shield image per trust state for the current palette (kept alive: Tk images need a reference)."""

    def __init__(self, master: tk.Misc, colours: Palette) -> None:
        self.images = {
            state: paint_shield(tk.PhotoImage(master=master, width=12, height=14), colour)
            for state, colour in colours.trust.items()
        }

    def release(self) -> None:
        """Delete the Tcl images now (on the Tk thread), not whenever the garbage collector runs."""
        for image in self.images.values():
            with contextlib.suppress(tk.TclError):
                image.tk.call("image", "delete", image.name)
            image.name = None  # type: ignore[assignment]  # tkinter's __del__ then does nothing

    def recolour(self, colours: Palette) -> None:
        """Repaint in place: every widget showing a shield follows."""
        for state, image in self.images.items():
            paint_shield(image, colours.trust[state])

    def __getitem__(self, state: str) -> tk.PhotoImage:
        return self.images.get(state, self.images["gone"])


def body_font(master: tk.Misc) -> tkfont.Font:
    """The theme's body font (falls back to Tk's on systems without Segoe UI, which is fine)."""
    try:
        return tkfont.nametofont("SunValleyBodyFont", root=master)
    except tk.TclError:
        return tkfont.nametofont("TkTextFont", root=master)
