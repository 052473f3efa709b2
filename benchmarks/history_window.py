"""How long the window's Tk loop is blocked by a 100,000-message history: ``python -m benchmarks.history_window``.

A real ``SusurroApp`` window (Tk, on Xvfb when no display is set) signs in
to a relay started in this process, over a real history file of 100,000
messages (``benchmarks.history_open.fill``). A heartbeat scheduled on the Tk
loop every 5 ms records how late each beat runs: the longest lateness is the
longest time the loop could not handle a key press, a click or a redraw.

- **window, open**: signing in and showing the newest page (read on the
  worker thread, drawn on the Tk thread);
- **window, scroll up**: scrolling the pane to its top ``--pages`` times,
  each loading one older page the same way;
- **baseline**: what a window without pages does, reading and drawing the
  history on the Tk thread at once: the newest ``--baseline`` messages
  (20,000 by default; all 100,000 did not finish within 8 minutes here, as
  Tk's text widget slows as it grows).

Wall-clock figures on a shared machine: read them as orders of magnitude.
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
import tkinter as tk
from collections.abc import Callable
from datetime import datetime, timezone
from pathlib import Path

from benchmarks.history_open import BODY, CONVERSATION, fill
from susurro import crypto
from susurro.client.gui.app import Options, SusurroApp
from susurro.client.gui.panes import ROOM
from susurro.client.gui.settings import Settings
from susurro.client.history import MAX_PAGE, SqliteHistory
from susurro.crypto.history import HistoryKey

#: How often the heartbeat asks to run (seconds).
BEAT = 0.005
#: Bound on each phase, so a broken run ends by itself.
PHASE_TIMEOUT = 600.0


class Heartbeat:
    """Lateness of a timer on the Tk loop: how long the loop was busy with something else."""

    def __init__(self, root: tk.Misc) -> None:
        self.root = root
        self.late: list[float] = []
        self._due = 0.0
        self._running = False

    def start(self) -> None:
        self.late.clear()
        self._running = True
        self._due = time.perf_counter() + BEAT
        self.root.after(int(BEAT * 1000), self._beat)

    def _beat(self) -> None:
        now = time.perf_counter()
        self.late.append(max(0.0, now - self._due))
        if self._running:
            self._due = now + BEAT
            self.root.after(int(BEAT * 1000), self._beat)

    def stop(self) -> tuple[float, float]:
        """(longest lateness, 99th percentile), in seconds."""
        self._running = False
        late = sorted(self.late) or [0.0]
        return late[-1], late[min(len(late) - 1, int(len(late) * 0.99))]


def run_until(root: tk.Misc, done: Callable[[], bool], step: Callable[[], None] | None = None) -> float:
    """Run the Tk loop (``mainloop``, as the real app does) until ``done``; returns the wall time."""
    start = time.perf_counter()
    deadline = time.monotonic() + PHASE_TIMEOUT

    def check() -> None:
        if done():
            root.quit()
            return
        if time.monotonic() > deadline:
            raise SystemExit("a phase did not finish in time")
        if step is not None:
            step()
        root.after(10, check)

    root.after(10, check)
    root.mainloop()
    return time.perf_counter() - start


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--messages", type=int, default=100_000)
    parser.add_argument("--pages", type=int, default=100, help="older pages to scroll up through")
    parser.add_argument("--baseline", type=int, default=20_000, help="messages the baseline draws at once")
    parser.add_argument("--quick", action="store_true", help="2,000 messages, 5 pages (smoke test)")
    args = parser.parse_args(argv)
    count, pages, at_once = (2_000, 5, 2_000) if args.quick else (args.messages, args.pages, args.baseline)
    at_once = min(at_once, count)
    xvfb = None
    if not os.environ.get("DISPLAY"):
        from tests.helpers.xvfb import start_xvfb

        log = Path(tempfile.mkdtemp()) / "xvfb.log"
        xvfb, os.environ["DISPLAY"] = start_xvfb(log)
    from susurro.relay import RelayConfig, RelayServer

    with tempfile.TemporaryDirectory() as directory:
        home = Path(directory)
        os.environ["SUSURRO_HOME"] = str(home / "susurro")
        key_file = home / "reader.key"
        identity, _created = crypto.load_or_create_identity(key_file, None)
        history_file = home / "susurro" / "history" / "reader.sqlite3"
        filled = fill(history_file, HistoryKey.derive(identity), count)
        relay = RelayServer(RelayConfig(host="127.0.0.1", port=0))
        host, port = relay.start()
        root = tk.Tk()
        root.withdraw()
        beat = Heartbeat(root)
        app = SusurroApp(
            root,
            Options(
                server=f"{host}:{port}", name="reader", identity=str(key_file), trust_file=str(home / "trust.json")
            ),
            settings=Settings(home / "gui.json"),
        )
        try:
            beat.start()
            app.start()

            def lines() -> int:
                window = app.window
                if window is None or ROOM not in window.conversations:
                    return 0
                return window.conversations[ROOM].contents().count(BODY)

            opened_wall = run_until(root, lambda: lines() > 0)
            opened = beat.stop()
            assert app.window is not None
            conversation = app.window.conversations[ROOM]
            shown_before = lines()
            target = {"pages": 0, "lines": shown_before}

            def scroll() -> None:
                now = lines()
                if now > target["lines"]:
                    target["pages"] += 1
                    target["lines"] = now
                conversation.text.yview_moveto(0.0)  # the user keeps scrolling to the top

            beat.start()
            start_of_history = app.strings("history_start")
            scrolled_wall = run_until(
                root, lambda: target["pages"] >= pages or start_of_history in conversation.contents(), scroll
            )
            scrolled = beat.stop()
            scrolled_pages, scrolled_lines = target["pages"], lines() - shown_before

            # Baseline: everything read and drawn on the Tk thread, in one go.
            state = app.state
            assert state is not None
            reader = SqliteHistory(history_file, HistoryKey.derive(identity))
            key = "baseline"
            beat.start()

            def everything() -> None:
                entries = []
                before = None
                while len(entries) < at_once:
                    page = reader.page(CONVERSATION, before=before, limit=min(MAX_PAGE, at_once - len(entries)))
                    entries[:0] = page.entries
                    if not page.older:
                        break
                    before = page.entries[0].seq
                state.tabs.add(key)
                app.window.apply(state.history(key, tuple(entries), older=False))  # type: ignore[union-attr]
                root.after(50, root.quit)

            start = time.perf_counter()
            root.after(20, everything)
            root.mainloop()
            baseline_wall = time.perf_counter() - start
            baseline = beat.stop()
            reader.close()
        finally:
            app.close()
            run_until(root, lambda: app.closed)
            root.destroy()
            relay.stop()
            if xvfb is not None:
                from tests.helpers.xvfb import stop_xvfb

                stop_xvfb(xvfb)
    print(
        f"history_window {datetime.now(timezone.utc):%Y-%m-%d %H:%M} UTC, {count:,} messages in one "
        f"conversation (filled in {filled:.1f} s), Tk on {os.environ.get('DISPLAY')}, load {os.getloadavg()[0]:.1f}"
    )
    print(f"{'':52} {'drawn':>8} {'longest Tk block':>17} {'p99 beat late':>14} {'wall':>8}")
    rows = [
        ("baseline: read and drawn at once on the Tk thread", at_once, baseline, baseline_wall),
        ("window: open, newest page (read on the worker)", shown_before, opened, opened_wall),
        (
            f"window: scroll up {scrolled_pages} pages (each read on the worker)",
            scrolled_lines,
            scrolled,
            scrolled_wall,
        ),
    ]
    for label, drawn, (longest, p99), wall in rows:
        print(f"{label:52} {drawn:>8,} {longest * 1000:>14.1f} ms {p99 * 1000:>11.1f} ms {wall:>7.2f}s")
    per_page = scrolled_wall / max(1, scrolled_pages)
    print(f"one older page, from scrolling to drawn: {per_page * 1000:.0f} ms (the app polls its queues every 50 ms)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
