"""The app's history: pages read off the Tk thread, and rooms' logs fetched again."""

from __future__ import annotations

import contextlib
from collections.abc import Iterable

from susurro.client.history import DEFAULT_PAGE, HistoryPage
from susurro.client.mailstate import DeliveryState as WaitState

from .panes import conversation_key, history_name
from .room_view import is_room_key
from .signin import OpenedSession

#: After a restart, kept rooms are asked for this many at a time, one batch per tick: half the
#: relay's default flood allowance (10 frames a second), so typing at the start is not held up.
FETCHES_PER_TICK = 5
FETCH_TICK_MS = 1000


class HistoryLoading:
    """History pages, for ``SusurroApp``."""

    def _open_history(self) -> None:
        """Each conversation kept on this computer: its newest page now, older ones on scrolling up."""
        opened, state = self.opened, self.state
        if opened is None or state is None:
            return
        # Every room an earlier run verified here, with or without messages: checked against what it verified.
        self._fetch_rooms(opened.remembered_rooms)
        if opened.history is None:
            return
        reader = opened.history

        def found(names: list[str] | None, error: BaseException | None) -> None:
            if error is not None or names is None or self.state is not state:
                return
            keys = {conversation_key(name) for name in names} - {None}
            for key in sorted(k for k in keys if k is not None):
                self.load_older(key)
                if is_room_key(key) and self.opened is opened:
                    with contextlib.suppress(ValueError):  # only ever our own labels, but never a crash
                        room_id = bytes.fromhex(key[1:])
                        if room_id not in opened.remembered_rooms:  # asked for already
                            self._fetch_rooms([room_id])

        self.worker.submit(reader.conversations, found)

    def _fetch_rooms(self, room_ids: Iterable[bytes]) -> None:
        """Rooms this computer kept (their pins and heads, or history): ask for their logs again, each
        verified from its create entry and against the head kept for it.

        The core's book starts from what was kept; the relay is trusted for nothing here (the logs are
        checked, and which rooms to ask for comes from our own files), and answers ``RoomReady``.
        ``FETCHES_PER_TICK`` go at a time, one tick a second, so a person in hundreds of rooms is not
        held back (and after a while cut off) by the relay's flood control at every start.
        """
        first = not self._to_fetch
        self._to_fetch.extend(room_ids)
        if first:
            self._fetch_some(self.opened)

    def _fetch_some(self, opened: OpenedSession | None) -> None:
        if opened is None or self.opened is not opened or self.state is None or self._closing:
            self._to_fetch.clear()
            return
        batch, self._to_fetch = self._to_fetch[:FETCHES_PER_TICK], self._to_fetch[FETCHES_PER_TICK:]
        connection = opened.connection
        for room_id in batch:
            self.state.replaying(room_id)
            self.worker.submit(lambda r=room_id: connection.room_request(lambda book, _now: book.fetch(r, 0)))
        if self._to_fetch:
            self.root.after(FETCH_TICK_MS, lambda: self._fetch_some(opened))

    def load_older(self, key: str) -> None:
        opened, state = self.opened, self.state
        if opened is None or state is None or opened.history is None:
            return
        wanted, before = state.history_wanted(key)
        if not wanted:
            return
        reader, name, connection = opened.history, history_name(key), opened.connection

        def read() -> tuple[HistoryPage, dict[str, dict[str, WaitState]]]:
            page = reader.page(name, before=before, limit=DEFAULT_PAGE)
            # Where our own messages of the page are, as kept across our restarts (waiting, delivered).
            return page, connection.delivery_reports(e.record.msg_id for e in page.entries if e.record.outgoing)

        def shown(
            result: tuple[HistoryPage, dict[str, dict[str, WaitState]]] | None, error: BaseException | None
        ) -> None:
            if self.state is not state or self.window is None:
                return
            if error is not None or result is None:
                self._draw(state.history(key, (), older=False))
                return
            page, reports = result
            self._draw(state.history(key, page.entries, page.older, page.refused, reports))

        self.worker.submit(read, shown)
