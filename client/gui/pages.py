"""The presenter's history pages: stored messages shown above a pane, one page at a time."""

from __future__ import annotations

import datetime
from collections.abc import Mapping

from susurro.client import events as ev
from susurro.client.history import HistoryEntry
from susurro.client.mailstate import DeliveryState as WaitState
from susurro.crypto.trust import TrustState

from .panes import ROOM, RUN_SECONDS, _Sent, clock, day_of, safe_lines, sender_colour
from .room_view import is_room_key
from .ticks import Ticks
from .updates import HistoryBlock, Line, Update


class HistoryPages(Ticks):
    """Older pages of a pane, with the ticks own messages had when the app last ran."""

    def history_wanted(self, key: str) -> tuple[bool, int | None]:
        """Whether pane ``key`` should read an older page now, and the position to read before (None:
        the newest page). Marks the pane as loading, so one page is read at a time."""
        pane = self._pane(key)
        if pane.loading or not pane.older:
            return False, None
        pane.loading = True
        return True, pane.oldest_seq

    def history(
        self,
        key: str,
        entries: tuple[HistoryEntry, ...],
        older: bool,
        refused: int = 0,
        reports: Mapping[str, Mapping[str, WaitState]] | None = None,
    ) -> list[Update]:
        """A page of stored messages, oldest first, to show above what pane ``key`` has.

        ``reports``: for own messages that waited for someone, who still waits and whose
        client confirmed it, as the core keeps it across restarts (``delivery_reports``).
        """
        s = self.strings
        pane = self._pane(key)
        pane.loading = False
        pane.older = older
        if entries:
            pane.oldest_seq = entries[0].seq
        lines: list[Line] = []
        day: datetime.date | None = None
        first_day: datetime.date | None = None
        last_sender, last_at = "", 0.0
        for entry in entries:
            record = entry.record
            if record.msg_id in pane.shown:
                continue
            self._shown(pane, record.msg_id)
            when = day_of(record.sent_at)
            if when != day:
                day, last_sender = when, ""
                first_day = first_day or when
                lines.append(Line(conversation=key, kind="day", text=self._day_label(when)))
            at = record.sent_at / 1000
            continued = record.sender == last_sender and at - last_at < RUN_SECONDS
            last_sender, last_at = record.sender, at
            ref, note = "", ""
            if record.outgoing:
                ref = f"h{record.msg_id}"
                if ref not in self._sent:
                    self._sent[ref] = _Sent(conversation=key, msg_id=record.msg_id)
                    self._by_msg_id.setdefault(record.msg_id, ref)
                for name, state in (reports or {}).get(record.msg_id, {}).items():
                    tracked = self._sent[ref].tracked
                    if state is WaitState.DELIVERED:
                        tracked.receipt(name)
                    else:
                        tracked.delivery(
                            ev.Delivery(msg_id=record.msg_id, delivered=(), missing=(), waiting=(name,)), why_skipped={}
                        )
                note = self._note(ref).text if self._sent[ref].tracked.recipients else ""
            trust = (
                "self"
                if record.outgoing
                else (self._trust(record.sender) if record.sender in self.members else "pinned")
            )
            if not record.outgoing and (
                record.trust is TrustState.CHANGED
                or (record.sender_key and self.trust_of(record.sender, record.sender_key) is TrustState.CHANGED)
            ):
                trust = "changed"  # shown flagged, or under a key no longer pinned: never back as clean
            lines.append(
                Line(
                    conversation=key,
                    kind="own" if record.outgoing else "message",
                    text=safe_lines(record.body),
                    sender=record.sender,
                    clock=clock(record.sent_at),
                    trust=trust,
                    colour=sender_colour(record.sender),
                    continued=continued,
                    ref=ref,
                    note=note,
                )
            )
        if refused:
            lines.append(Line(conversation=key, kind="error", text=s("history_refused", count=refused)))
        if not pane.history_started:
            pane.history_started = True
            if key != ROOM and not is_room_key(key) and key not in self.tabs and lines:
                self.tabs.add(key)  # a direct conversation from before: back in the sidebar
        same_day = day is not None and day == pane.first_day
        if first_day is not None:
            pane.first_day = first_day
        out: list[Update] = [
            HistoryBlock(
                conversation=key,
                lines=tuple(lines),
                older=older,
                same_day_below=same_day,
                top_text=s("history_loading") if older else s("history_start"),
            )
        ]
        for msg_id in [e.record.msg_id for e in entries if e.record.outgoing]:
            early = self._early_receipts.pop(msg_id, None)
            for sender in early or ():
                out += self._receipt(ev.Receipt(sender=sender, msg_ids=(msg_id,)))
        if key in self.tabs or key == ROOM:
            out.append(self.sidebar())
        return out
