"""The window at its default and minimum sizes: every control on screen, pressed and typed into for real.

A changed-key banner at 920×580 must show *Accept new key* (it once needed
about 1500 px), and at the minimum 520×320 the composer and *Send* must still
be there; the layout reflows (banner text wraps above its buttons, the
message pane shrinks first) instead of clipping.
"""

from __future__ import annotations

import contextlib
import tkinter as tk
from collections.abc import Iterator
from pathlib import Path

from susurro.client.gui.app import SusurroApp
from susurro.client.gui.panes import ROOM
from susurro.client.gui.window import MIN_SIZE
from tests.helpers.gui_driver import (
    bob_with_a_new_key,
    buttons,
    close_app,
    keyboard_to,
    pump,
    roster,
    signed_in,
    signed_in_apps,
    start_app,
    wait_in_pane,
)


def inside(widget: tk.Misc, top: tk.Misc) -> bool:
    """Mapped and wholly within its toplevel's area (not clipped off an edge)."""
    widget.update_idletasks()
    if not widget.winfo_viewable():
        return False
    x, y = widget.winfo_rootx() - top.winfo_rootx(), widget.winfo_rooty() - top.winfo_rooty()
    return (
        x >= 0
        and y >= 0
        and x + widget.winfo_width() <= top.winfo_width()
        and y + widget.winfo_height() <= top.winfo_height()
        and widget.winfo_width() > 4
    )


def click(root: tk.Misc, widget: tk.Misc) -> None:
    """A real press and release of the left button in the middle of ``widget``."""
    x, y = widget.winfo_width() // 2, widget.winfo_height() // 2
    widget.event_generate("<Enter>", x=x, y=y)
    widget.event_generate("<ButtonPress-1>", x=x, y=y)
    widget.event_generate("<ButtonRelease-1>", x=x, y=y)
    root.update()


def type_keys(root: tk.Misc, widget: tk.Misc, text: str) -> None:
    keyboard_to(root, widget)
    for ch in text:
        keysym = {" ": "space"}.get(ch, ch)
        widget.event_generate("<KeyPress>", keysym=keysym)
    root.update()


def resize(root: tk.Misc, top: tk.Misc, geometry: str) -> None:
    top.geometry(geometry)
    width, height = (int(v) for v in geometry.split("x"))
    pump(root, lambda: top.winfo_width() == width and top.winfo_height() == height, f"the window at {geometry}")
    for _ in range(5):
        root.update()


@contextlib.contextmanager
def alone_at_the_minimum_size(root: tk.Misc, relay_server, tmp_path: Path) -> Iterator[SusurroApp]:  # type: ignore[no-untyped-def]
    """alice signed in alone, her window on screen at the minimum size; closed afterwards."""
    server = "{}:{}".format(*relay_server.address)
    alice = start_app(root, tmp_path / "alice", name="alice", server=server)
    try:
        window = signed_in(root, alice)
        window.top.deiconify()
        resize(root, window.top, "{}x{}".format(*MIN_SIZE))
        yield alice
    finally:
        close_app(root, alice)


def test_accept_at_default_size_and_typing_at_minimum_size(tk_root, relay_server, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    root = tk_root
    server = "{}:{}".format(*relay_server.address)
    with signed_in_apps(root, tmp_path, server, "alice", "bob") as apps:
        alice = apps[0]
        window = alice.window
        assert window is not None
        impostor = bob_with_a_new_key(root, tmp_path, server, apps)
        window.top.deiconify()
        resize(root, window.top, "920x580")
        box, _banner = window.conversations[ROOM].banners[0]
        [accept] = buttons(box, "Accept new key")
        [dismiss] = buttons(box, "Dismiss")
        assert inside(accept, window.top) and inside(dismiss, window.top), "both banner buttons on screen"
        click(root, accept)
        pump(root, lambda: roster(alice)["bob"][1] == "seen before", "the click accepted bob's new key")

        resize(root, window.top, "{}x{}".format(*MIN_SIZE))
        for control in (window.entry, window.send_button, window.verify_button, window.message_button):
            assert inside(control, window.top), f"{control} is on screen at the minimum size"
        type_keys(root, window.entry, "hola desde 520")
        assert window.entry.get("1.0", "end-1c") == "hola desde 520"
        click(root, window.send_button)
        wait_in_pane(root, impostor, "hola desde 520")
        assert window.entry.get("1.0", "end-1c") == ""


def test_minimum_size_with_banners_keeps_the_composer(tk_root, relay_server, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    """Several long banners at the minimum size: they wrap, and the composer and Send stay reachable."""
    from susurro.client import events as ev

    root = tk_root
    with alone_at_the_minimum_size(root, relay_server, tmp_path) as alice:
        window = alice.window
        assert window is not None
        for kind in ("decrypt_failed", "gap", "replay", "bad_signature"):
            alice.window.apply(alice.state.apply(ev.Warning(kind=kind, detail="x", sender="bob")))
        for _ in range(5):
            root.update()
        conversation = window.conversations[ROOM]
        assert len(conversation.banners) == 4
        seen = []
        for _ in range(4):  # one at a time, each reachable with its buttons, through ‹ ›
            box = next(b for b, banner in conversation.banners if banner is conversation.showing())
            seen.append(conversation.showing().kind)
            assert all(inside(b, window.top) for b in buttons(box, "Dismiss")), seen
            assert inside(window.entry, window.top) and inside(window.send_button, window.top)
            click(root, buttons(box, "›")[0])
        assert sorted(seen) == sorted(["decrypt_failed", "gap", "replay", "bad_signature"])


def test_a_rooms_actions_stay_on_screen_at_the_minimum_size(tk_root, relay_server, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    """An admin's room at 520×320: Leave room, Remove and Make admin are reachable with the composer."""
    root = tk_root
    with alone_at_the_minimum_size(root, relay_server, tmp_path) as alice:
        window = alice.window
        assert window is not None
        assert alice.rooms.create("ops", open_room=False) is None
        pump(root, lambda: window.current != ROOM and window.leave_button.winfo_manager(), "alice on ops, its admin")
        for _ in range(5):
            root.update()
        for control in (
            window.leave_button,
            window.remove_button,
            window.promote_button,
            window.entry,
            window.send_button,
        ):
            assert inside(control, window.top), f"{control} is on screen at the minimum size"
