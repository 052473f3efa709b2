"""Opening a large encrypted history: ``python -m benchmarks.history_open``.

Fills one conversation of a real SQLite history file (``client/history.py``)
with 100,000 messages, closes it, and measures, in a fresh process state:

- opening the file and showing the newest page (what a window does on start);
- scrolling back one page at a time (what a view does when you scroll up);
- reading and opening every one of the 100,000 messages, page by page;
- the file's size per message.

Wall-clock times (SQLite waits on the disk), best of ``--repeat`` runs.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from datetime import datetime, timezone
from pathlib import Path

from susurro.client.history import DEFAULT_PAGE, MAX_PAGE, SqliteHistory
from susurro.crypto import IdentityKey
from susurro.crypto.history import HistoryKey, HistoryRecord

CONVERSATION = "room:main"
BODY = "see you at the station at nine, bring the map"


def fill(path: Path, key: HistoryKey, count: int) -> float:
    history = SqliteHistory(path, key, max_per_conversation=max(count, 1))
    start = time.perf_counter()
    batch = 5_000
    for first in range(0, count, batch):
        history.add_many(
            HistoryRecord(
                conversation=CONVERSATION,
                msg_id=f"{n:016x}",
                sender="bob" if n % 3 else "alice",
                sent_at=1_764_000_000_000 + n * 1000,
                outgoing=n % 3 == 0,
                body=f"{BODY} #{n}",
            )
            for n in range(first, min(count, first + batch))
        )
    elapsed = time.perf_counter() - start
    history.close()
    return elapsed


def measure(path: Path, key: HistoryKey, count: int) -> dict[str, float]:
    start = time.perf_counter()
    history = SqliteHistory(path, key)
    newest = history.page(CONVERSATION, limit=DEFAULT_PAGE)
    open_first = time.perf_counter() - start
    start = time.perf_counter()
    page = history.page(CONVERSATION, before=newest.entries[0].seq, limit=DEFAULT_PAGE)
    scroll = time.perf_counter() - start
    start = time.perf_counter()
    seen, before = 0, None
    while True:
        page = history.page(CONVERSATION, before=before, limit=MAX_PAGE)
        seen += len(page.entries)
        if not page.older:
            break
        before = page.entries[0].seq
    read_all = time.perf_counter() - start
    history.close()
    assert seen == count, (seen, count)
    return {"open": open_first, "scroll": scroll, "all": read_all}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--messages", type=int, default=100_000)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--quick", action="store_true", help="2,000 messages, one run (smoke test)")
    args = parser.parse_args(argv)
    count, repeat = (2_000, 1) if args.quick else (args.messages, args.repeat)
    key = HistoryKey.derive(IdentityKey.generate())
    with tempfile.TemporaryDirectory() as directory:
        path = Path(directory) / "history" / "alice.sqlite3"
        filled = fill(path, key, count)
        best: dict[str, float] = {}
        for _ in range(repeat):
            for name, value in measure(path, key, count).items():
                best[name] = min(best.get(name, value), value)
        size = sum(p.stat().st_size for p in path.parent.iterdir())
    print(f"history_open {datetime.now(timezone.utc):%Y-%m-%d %H:%M} UTC, {count:,} messages in one conversation")
    print(f"{'step':<40} {'time':>12}")
    print(f"{'fill (batches of 5,000)':<40} {filled:>10.2f} s  ({count / filled:,.0f} msg/s)")
    print(f"{'open + newest page of ' + str(DEFAULT_PAGE):<40} {best['open'] * 1000:>10.1f} ms")
    print(f"{'one older page of ' + str(DEFAULT_PAGE):<40} {best['scroll'] * 1000:>10.1f} ms")
    print(f"{'read and open all ' + format(count, ','):<40} {best['all']:>10.2f} s  ({count / best['all']:,.0f} msg/s)")
    print(f"{'file size':<40} {size / 1e6:>10.1f} MB  ({size / count:.0f} bytes/message)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
