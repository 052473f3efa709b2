"""Small widgets the window is made of: tooltips, labels that fit, notifications, and freeing Tcl objects on the
Tk thread.
"""

from __future__ import annotations

import contextlib
import shutil
import subprocess
import tkinter as tk
import tkinter.font as tkfont
from collections.abc import Callable
from tkinter import ttk

from .panes import fit


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
                    stdin=subprocess.DEVNULL,
                    stdout=subprocess.DEVNULL,
                    stderr=subprocess.DEVNULL,
                )
            )
        except OSError:
            self.top.bell()
