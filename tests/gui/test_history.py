"""A real window over a real encrypted history file: the newest page on start, older pages on scrolling up.

Bob's history (``client/history.py``, sealed under his key) holds 180
messages of the relay-wide conversation before his window opens. The window
shows the newest page, and each time the pane is scrolled to its top the
next older page is read off the Tk thread and drawn above, keeping the line
being read in view, until the start of the history. No message is shown
twice, their order is kept, and one day has one separator.
"""

from __future__ import annotations

import re
import time
from pathlib import Path

from susurro import crypto
from susurro.client.gui.panes import ROOM
from susurro.client.history import DEFAULT_PAGE, SqliteHistory
from susurro.crypto.history import HistoryKey, HistoryRecord
from tests.helpers.gui_driver import close_app, pane, pump, signed_in, start_app

COUNT = 180


def fill(home: Path, name: str) -> None:
    """What bob's earlier runs left: ``COUNT`` messages, alternately his and alice's, a minute apart."""
    identity, _created = crypto.load_or_create_identity(home / f"{name}.key", None)
    history = SqliteHistory(home / "susurro" / "history" / f"{name}.sqlite3", HistoryKey.derive(identity))
    start = int(time.time() * 1000) - COUNT * 1000  # within the last minutes: one day (or two at midnight)
    history.add_many(
        HistoryRecord(
            conversation="room:main",
            msg_id=f"old{n:04d}",
            sender="alice" if n % 2 else name,
            sent_at=start + n * 1000,
            outgoing=n % 2 == 0,
            body=f"mensaje {n:04d}",
        )
        for n in range(COUNT)
    )
    history.close()


def numbers(text: str) -> list[int]:
    return [int(n) for n in re.findall(r"mensaje (\d{4})", text)]


def test_history_on_start_and_older_pages_on_scrolling_up(tk_root, relay_server, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    root = tk_root
    server = "{}:{}".format(*relay_server.address)
    home = tmp_path / "bob"
    home.mkdir(mode=0o700)
    fill(home, "bob")
    bob = start_app(root, home, name="bob", server=server)
    try:
        window = signed_in(root, bob)
        pump(root, lambda: numbers(pane(bob)), "the newest page of bob's history")
        assert numbers(pane(bob)) == list(range(COUNT - DEFAULT_PAGE, COUNT)), "the newest page, in order"
        assert "loading older messages…" in pane(bob)
        conversation = window.conversations[ROOM]
        pages = 1
        while "start of the history kept on this computer" not in pane(bob):
            shown = len(numbers(pane(bob)))
            oldest = numbers(pane(bob))[0]
            conversation.text.yview_moveto(0.0)  # the user scrolls to the top, reading the oldest line
            pump(
                root,
                lambda shown=shown: len(numbers(pane(bob))) > shown or "start of the history" in pane(bob),
                f"page {pages + 1} of the history",
            )
            root.update()
            pages += 1
            if len(numbers(pane(bob))) > shown:
                top = conversation.text.get("@0,0 linestart", "@0,0 lineend")
                assert numbers(top) == [oldest], "the line being read stays where it was, under the new page"
            assert pages <= COUNT // DEFAULT_PAGE + 2, "every page brings messages"
        assert numbers(pane(bob)) == list(range(COUNT)), "all of it, oldest first, none twice"
        days = [
            line
            for line in pane(bob).splitlines()
            if line in ("Today", "Yesterday") or line[:3] in ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")
        ]
        assert len(days) <= 2, f"one separator per day, not one per page: {days}"
        assert "bob \tmensaje 0000" in pane(bob) and "alice \tmensaje 0001" in pane(bob)
    finally:
        close_app(root, bob)
