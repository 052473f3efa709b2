"""Reading a conversation: the view stays put, unread counts, notifications, the composer, the keyboard.

Real windows on Xvfb with a real relay; a fake ``notify-send`` on ``PATH``
records what the window asked the desktop to show.
"""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest

from susurro.client.gui.panes import ROOM
from tests.helpers.gui_driver import alice_and, close_app, keyboard_to, pane, pump, start_app, type_line, wait_in_pane


@pytest.fixture
def notify_log(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A ``notify-send`` that appends its arguments to a file, first on ``PATH``."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    log = tmp_path / "notify.log"
    script = bin_dir / "notify-send"
    script.write_text(f'#!/bin/sh\nprintf "%s|" "$@" >> {log}\necho >> {log}\n')
    script.chmod(script.stat().st_mode | stat.S_IXUSR)
    monkeypatch.setenv("PATH", f"{bin_dir}{os.pathsep}{os.environ['PATH']}")
    return log


def test_reading_older_messages_stays_put_with_a_new_messages_pill(tk_root, relay_factory, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    root = tk_root
    relay = relay_factory(rate_burst=1000, rate_per_second=1000.0)  # many lines quickly: no flood control here
    server = "{}:{}".format(*relay.address)
    with alice_and(root, server, tmp_path) as (alice, window, bob):
        window.top.geometry("520x320")  # a short pane: a few lines overflow it
        for number in range(16):
            type_line(root, bob, f"línea {number}")
            wait_in_pane(root, alice, f"línea {number}\n")
        pane_a = window.conversations[ROOM]
        pump(root, lambda: pane_a.at_end(), "following the newest message")
        pane_a.text.yview_moveto(0.0)  # the user scrolls up to read
        root.update()
        top = pane_a.text.index("@0,0")
        type_line(root, bob, "algo nuevo")
        wait_in_pane(root, alice, "algo nuevo")
        for _ in range(5):
            root.update()
        assert pane_a.text.index("@0,0") == top, "the view did not move"
        assert pane_a.pill_shown(), "a 'new messages ↓' pill"
        pane_a.pill.invoke()
        root.update()
        assert pane_a.at_end() and not pane_a.pill_shown()


def test_unread_badges_and_desktop_notifications_off_with_the_setting(  # type: ignore[no-untyped-def]
    tk_root, relay_server, notify_log: Path, tmp_path: Path
) -> None:
    root = tk_root
    server = "{}:{}".format(*relay_server.address)
    with alice_and(root, server, tmp_path) as (alice, window, bob):
        type_line(root, bob, "/msg alice ¿tienes un momento?")
        wait_in_pane(root, alice, "¿tienes un momento?", conversation="bob")
        assert window.sidebar.badge("bob") == 1
        assert window.top.title() == "(1) Susurro: alice"
        assert "——  new messages  ——" in pane(alice, "bob")
        pump(root, lambda: notify_log.exists() and "¿tienes un momento?" in notify_log.read_text(), "a notification")
        assert notify_log.read_text().startswith("--app-name=Susurro|--|bob (direct message)|¿tienes un momento?|")

        # Clicking the sidebar entry opens the conversation and reads it.
        row = window.sidebar.rows["bob"]
        row.event_generate("<Button-1>", x=5, y=5)
        pump(root, lambda: window.current_conversation() == "bob", "bob's conversation shown")
        assert window.sidebar.badge("bob") == 0 and window.top.title() == "Susurro: alice"

        # The setting turns notifications off (and is remembered).
        window.menu.invoke(0)
        assert alice.settings.get("notifications") is False
        window.actions.select(ROOM)
        type_line(root, bob, "/msg alice otra cosa")
        wait_in_pane(root, alice, "otra cosa", conversation="bob")
        for _ in range(20):
            root.update()
        assert "otra cosa" not in notify_log.read_text()
        assert window.sidebar.badge("bob") == 1


def test_composer_grows_ctrl_enter_sends_and_ctrl_k_jumps(tk_root, relay_server, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    root = tk_root
    server = "{}:{}".format(*relay_server.address)
    with alice_and(root, server, tmp_path) as (_alice, window, bob):
        keyboard_to(root, window.entry)
        assert int(window.entry.cget("height")) == 1
        window.entry.insert("insert", "uno")
        for line in ("dos", "tres"):
            window.entry.event_generate("<Shift-Return>")
            window.entry.insert("insert", line)
        window.entry.event_generate("<KeyRelease>")
        root.update()
        assert int(window.entry.cget("height")) == 3, "the composer grew with its three lines"
        window.entry.event_generate("<Control-Return>")
        root.update()
        assert window.entry.get("1.0", "end-1c") == "" and int(window.entry.cget("height")) == 1
        assert "uno\ndos\ntres" in wait_in_pane(root, bob, "tres")

        # Ctrl+K: type part of a name, Enter: the conversation with bob opens, the composer has the focus.
        window.entry.event_generate("<Control-k>")
        pump(root, lambda: window.jump is not None and window.jump.top.winfo_exists(), "the jump dialog")
        jump = window.jump
        jump.query.insert(0, "bo")
        jump.query.event_generate("<KeyRelease>")
        assert [label for _key, label in jump.shown] == ["bob"]
        jump.query.event_generate("<Return>")
        pump(root, lambda: window.current_conversation() == "bob", "Ctrl+K went to bob")
        assert not jump.top.winfo_exists()
        pump(root, lambda: window.top.focus_get() is window.entry, "the composer has the focus")
        # Ctrl+W closes it and goes back to the room.
        window.entry.event_generate("<Control-w>")
        pump(root, lambda: window.current_conversation() == ROOM and "bob" not in window.conversations, "closed")


def test_long_names_are_cut_with_a_tooltip(tk_root, relay_server, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    root = tk_root
    server = "{}:{}".format(*relay_server.address)
    long_name = "maximiliana_de_las_mercedes"
    with alice_and(root, server, tmp_path, long_name, folder="m") as (_alice, window, other):
        window.top.deiconify()
        root.update()
        shown = window.roster.item(long_name, "text").strip()
        assert shown.endswith("…") and long_name.startswith(shown[:-1]), shown
        x, y, _w, h = window.roster.bbox(long_name)
        window.roster.event_generate("<Motion>", x=x + 20, y=y + h // 2)
        root.update()
        tip = window.roster_tooltip.shown()
        assert long_name in tip and other.state.fingerprint in tip and "not verified" in tip


def test_browse_opens_in_the_identities_folder(tk_root, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:  # type: ignore[no-untyped-def]
    from tkinter import filedialog

    asked: dict[str, object] = {}
    monkeypatch.setattr(filedialog, "askopenfilename", lambda **kw: asked.update(kw) or "")
    (tmp_path / "home" / "identities").mkdir(parents=True)
    app = start_app(tk_root, tmp_path / "a", own_home=False)
    try:
        pump(tk_root, lambda: app.dialog is not None, "the sign-in dialog")
        app.dialog.browse.invoke()
        assert asked["initialdir"] == str(tmp_path / "home" / "identities")
    finally:
        close_app(tk_root, app)
