"""Driving real Susurro windows from tests: bounded waits that pump Tk, typing, reading panes.

Each wait is a poll loop with a deadline that calls ``root.update()``, so Tk
handles the app's ``after`` loop, the worker's results and the core's events
while the test waits; a condition that never comes fails with what was seen.
"""

from __future__ import annotations

import contextlib
import os
import time
import tkinter as tk
from collections.abc import Callable, Iterator
from pathlib import Path

from susurro.client.gui.app import Options, SusurroApp
from susurro.client.gui.panes import ROOM
from susurro.client.gui.settings import Settings
from susurro.client.gui.strings import Strings
from susurro.client.gui.updates import ConversationKind
from susurro.client.gui.window import ChatWindow

WAIT = 20.0  # seconds: the bound on every wait for something to appear


def pump(root: tk.Misc, until: Callable[[], object], what: str, timeout: float = WAIT) -> object:
    deadline = time.monotonic() + timeout
    while True:
        root.update()
        result = until()
        if result:
            return result
        if time.monotonic() > deadline:
            raise AssertionError(f"not within {timeout} s: {what}")
        time.sleep(0.02)


def start_app(
    root: tk.Misc,
    home: Path,
    *,
    name: str | None = None,
    server: str | None = None,
    lang: str = "en",
    own_home: bool = True,
) -> SusurroApp:
    """An app with its own key file and settings under ``home`` (as on its own machine).

    With ``own_home`` its ``$SUSURRO_HOME`` (history, prekeys, counters) is
    ``home/susurro`` too: the app reads it while signing in, so tests that
    wait for each sign-in give every user a machine of their own (an
    impostor "bob" does not find the real bob's prekeys). The test's own
    ``SUSURRO_HOME`` comes back at teardown (``monkeypatch``).
    """
    home.mkdir(parents=True, exist_ok=True, mode=0o700)
    if own_home:
        os.environ["SUSURRO_HOME"] = str(home / "susurro")
    identity = str(home / f"{name}.key") if name else None
    app = SusurroApp(
        root,
        Options(server=server, name=name, identity=identity, lang=lang, trust_file=str(home / "trust.json")),
        strings=Strings(lang),
        settings=Settings(home / "gui.json"),
    )
    app.start()
    return app


@contextlib.contextmanager
def signed_in_apps(root: tk.Misc, tmp_path: Path, server: str, *names: str) -> Iterator[list[SusurroApp]]:
    """One window per name (each on its own machine under ``tmp_path``), each signed in before the next
    starts; every app in the list (a test may append more) is closed at the end, even on failure."""
    apps: list[SusurroApp] = []
    try:
        for name in names:
            apps.append(start_app(root, tmp_path / name, name=name, server=server))
            signed_in(root, apps[-1])
        yield apps
    finally:
        for app in apps:
            close_app(root, app)


def signed_in(root: tk.Misc, app: SusurroApp) -> ChatWindow:
    try:
        pump(root, lambda: app.window is not None, f"{app.options.name} signed in")
    except AssertionError as exc:
        said = str(app.dialog.error.cget("text")) if app.dialog is not None else "(no dialog)"
        state = f"opened={app.opened is not None}, waiting events={app._before_welcome}"
        raise AssertionError(f"{exc}; the sign-in dialog says: {said!r}; {state}") from None
    assert app.window is not None
    return app.window


def pane(app: SusurroApp, conversation: str = ROOM) -> str:
    assert app.window is not None
    if conversation not in app.window.conversations:
        return ""
    return app.window.conversations[conversation].contents()


def wait_in_pane(root: tk.Misc, app: SusurroApp, text: str, conversation: str = ROOM) -> str:
    where = f"{app.options.name}'s {'room' if conversation == ROOM else conversation} pane"
    try:
        pump(root, lambda: text in pane(app, conversation), f"{text!r} in {where}")
    except AssertionError as exc:
        raise AssertionError(f"{exc}; it shows:\n{pane(app, conversation)}") from None
    return pane(app, conversation)


def keyboard_to(root: tk.Misc, widget: tk.Misc) -> None:
    """Give ``widget`` the keyboard, so the key events a test generates reach it.

    Without a window manager only ``focus -force`` gives a Tk window the X
    focus, and a generated key event goes to the focus window or nowhere. It
    is the one Tk call in the crash the full suite showed twice (a fatal
    error inside ``focus_force`` at the first sign-in of a test), so it is
    made here only: never on a toplevel that is not mapped yet (Tk would defer
    it to the map), and not at all when the widget has the focus already.
    Every other step of the driver calls the widget itself instead.
    """
    top = widget.winfo_toplevel()
    top.deiconify()
    pump(root, lambda: bool(top.winfo_viewable()), f"{top} mapped")
    if str(widget.tk.call("focus")) != str(widget):
        widget.focus_force()
    root.update()


def type_line(root: tk.Misc, app: SusurroApp, text: str, *, shift_lines: tuple[str, ...] = ()) -> None:
    """Type into the real entry and press Enter (Shift+Enter between ``shift_lines``)."""
    window = app.window
    assert window is not None
    keyboard_to(root, window.entry)
    window.entry.insert("insert", text)
    for line in shift_lines:
        window.entry.event_generate("<Shift-Return>")
        window.entry.insert("insert", line)
    window.entry.event_generate("<Return>")
    root.update()


def shields(app: SusurroApp, conversation: str = ROOM) -> list[tuple[str, str]]:
    """(sender, trust) for each name header drawn in a pane, in order (the shield's colour is the trust)."""
    assert app.window is not None
    return list(app.window.conversations[conversation].shown_shields)


def buttons(widget: tk.Misc, text: str) -> list[tk.Misc]:
    """Every button under ``widget`` (at any depth) whose text contains ``text``."""
    found = []
    for child in widget.winfo_children():
        if child.winfo_class() in ("TButton", "Button") and text in str(child.cget("text")):
            found.append(child)
        found += buttons(child, text)
    return found


def roster(app: SusurroApp) -> dict[str, tuple[str, str]]:
    """name -> (fingerprint shown, trust shown), read from the Treeview."""
    assert app.window is not None
    tree = app.window.roster
    return {iid: tuple(tree.item(iid, "values")) for iid in tree.get_children()}  # type: ignore[misc]


def rooms(app: SusurroApp) -> dict[str, tuple[str, str]]:
    """key -> (label, short id) of the rooms in the sidebar."""
    assert app.window is not None
    return {
        i.key: (i.label, i.tag) for i in app.window.sidebar.items if i.kind is ConversationKind.ROOM and i.key != ROOM
    }


def room_named(root: tk.Misc, app: SusurroApp, label: str) -> str:
    """The key of the room labelled ``label`` in the sidebar, once it is there."""
    found = pump(
        root,
        lambda: next((k for k, (lab, _tag) in rooms(app).items() if lab == label), None),
        f"{label} in {app.options.name}'s sidebar",
    )
    assert isinstance(found, str)
    return found


def accept_invitation(root: tk.Misc, app: SusurroApp, label: str) -> str:
    """Press Accept on the sidebar's invitation to the room ``label`` once it is there; the room's key."""
    window = app.window
    assert window is not None and app.state is not None
    state = app.state
    found = pump(
        root,
        lambda: next((rid for rid, item in state.invitations.items() if item.room.startswith(f"{label} #")), None),
        f"an invitation to {label} in {app.options.name}'s sidebar",
    )
    assert isinstance(found, bytes)
    assert window.invitation_list.frame.winfo_manager(), "the invitations section is shown"
    window.invitation_list.rows[found][1].invoke()
    return room_named(root, app, label)


def close_app(root: tk.Misc, app: SusurroApp) -> None:
    """Close as a person does; if the window lists messages still without a receipt, close anyway."""
    if not app.closed:
        app.close()
        pump(root, lambda: app.closed or app.closing_dialog is not None, f"{app.options.name} closed or asking")
        if app.closing_dialog is not None:
            app.closing_dialog.close_button.invoke()
        pump(root, lambda: app.closed, f"{app.options.name} closed")


def fill_and_submit(root, app: SusurroApp, **fields: str) -> None:  # type: ignore[no-untyped-def]
    pump(root, lambda: app.dialog is not None, "the sign-in dialog")
    dialog = app.dialog
    assert dialog is not None
    for field, value in fields.items():
        entry = dialog.entries[field]
        entry.delete(0, "end")
        entry.insert(0, value)
    dialog.top.deiconify()
    root.update()
    dialog.connect_button.invoke()  # a click: no keyboard focus needed (Enter: test_signin)


@contextlib.contextmanager
def alice_and(
    root: tk.Misc,
    server: str,
    home: Path,
    name: str = "bob",
    folder: str | None = None,
    other_server: str | None = None,
) -> Iterator[tuple[SusurroApp, ChatWindow, SusurroApp]]:
    """alice's app and window, and ``name``'s app, signed in to ``server`` once alice saw ``name`` join.

    Both are closed afterwards, whatever the test did; ``folder`` is ``name``'s home under ``home``;
    ``other_server`` is where ``name`` connects, if not to ``server`` (alice behind a tampering proxy).
    """
    alice = start_app(root, home / "alice", name="alice", server=server)
    other = None
    try:
        window = signed_in(root, alice)
        other = start_app(root, home / (folder or name), name=name, server=other_server or server)
        signed_in(root, other)
        wait_in_pane(root, alice, f"{name} joined")
        yield alice, window, other
    finally:
        close_app(root, alice)
        if other is not None:
            close_app(root, other)


def bob_with_a_new_key(root: tk.Misc, tmp_path: Path, server: str, apps: list[SusurroApp]) -> SusurroApp:
    """alice and bob (``apps``, from ``signed_in_apps``): alice sees bob join and leave, then "bob" signs
    in again with a new key (another machine, or the relay lying), and alice's room shows the key-change
    banner. The new "bob" is appended to ``apps`` (so it is closed too) and returned."""
    alice, bob = apps[0], apps[1]
    wait_in_pane(root, alice, "bob joined")
    close_app(root, bob)
    wait_in_pane(root, alice, "bob left")
    impostor = start_app(root, tmp_path / "bob-new", name="bob", server=server)
    apps.append(impostor)
    signed_in(root, impostor)
    window = alice.window
    assert window is not None
    pump(root, lambda: window.conversations[ROOM].banners, "a key-change banner")
    return impostor


def banners(app: SusurroApp) -> list[str]:
    """Every warning banner in any of ``app``'s conversations."""
    assert app.window is not None
    return [text for conversation in app.window.conversations.values() for text in conversation.banner_texts()]
