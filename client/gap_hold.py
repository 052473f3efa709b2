"""Gap judgements held while our mailbox drains, so an honest race raises no warning. Pure.

The relay sends a client its mail only after the client has published its
prekeys, so a sender's live copy ``n + 1`` can honestly arrive before the
waiting copy ``n``: judged at once, that is a ``gap`` and then a ``late``
although nothing was lost, and warnings that cry wolf teach people to
ignore them. So from our welcome until the relay's ``mail_end``, a gap is
not warned at once: the numbers it skipped are held, per stream (sender
identity key and conversation), with the path of the copy that skipped
them (live or from the mailbox).

- A copy that fills a held number by the *other* path is the race: shown,
  no warning. One by the *same* path is the relay reordering that path
  (mail is sent in order; a live copy by the same key is refused before
  this): ``late``.
- At ``mail_end`` every held number still missing is a ``gap`` (one warning
  per stream, with the count): a copy never delivered is still flagged.
  Waiting room messages held for their room's log were confirmed, so
  ``mail_end`` may come before they are judged: the hold ends after them.
- The relay's ``mail_end`` is only a hint: holding ends ``GAP_HOLD_SECONDS``
  after the welcome whether or not it came, and when the connection ends;
  past ``MAX_HELD_GAPS`` streams the oldest is judged at once. A relay that
  withholds ``mail_end`` delays a gap warning, never suppresses it.

The message whose counter jumped is shown at once either way; only the
warning waits. ``take`` hands the session what was judged since it last
asked, after the read's messages.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass, field

from susurro.crypto.replay import MAX_SKIPPED_PER_STREAM, CounterCheck

from . import events as ev
from .events import WarningKind

#: Streams whose gap may be held at once; past it the oldest held is judged (and warned) at once.
MAX_HELD_GAPS = 256
#: Seconds after our welcome that gaps are held at most, if ``mail_end`` never comes (the session's clock).
GAP_HOLD_SECONDS = 60.0

#: (sender identity key, conversation), as the replay guard names a stream.
Stream = tuple[bytes, str]


def gap_warning(missed: int, sender: str) -> ev.Warning:
    """Messages from ``sender`` to us that the counters show never arrived (dropped on the way)."""
    return ev.Warning(
        kind=WarningKind.GAP, detail=f"{missed} message(s) from {sender} addressed to you never arrived", sender=sender
    )


def late_warning(sender: str) -> ev.Warning:
    """A message that fills a gap reported before: it came after a later one, by another path or held back."""
    return ev.Warning(
        kind=WarningKind.LATE,
        detail=f"a message from {sender} arrived after a later one (reordered or held back by the relay)",
        sender=sender,
    )


@dataclass(slots=True)
class _Held:
    """One stream's held gap: the numbers still missing, each with whether a waiting copy skipped it."""

    sender: str
    numbers: dict[int, bool] = field(default_factory=dict)
    #: Skipped numbers past the newest ``MAX_SKIPPED_PER_STREAM``: the replay guard keeps none of them
    #: either, so no copy can fill them; they count in the warning.
    beyond: int = 0

    def missing(self) -> int:
        return len(self.numbers) + self.beyond


class GapHold:
    def __init__(self) -> None:
        self._held: OrderedDict[Stream, _Held] = OrderedDict()
        #: Holding until this time (the session's clock); None: gaps are warned at once.
        self._until: float | None = None
        #: When holding began: a clock that goes back past it ends the hold (below).
        self._since = 0.0
        #: The relay said ``mail_end``; the hold ends once no waiting copy is still to be judged.
        self._mail_ended = False
        #: Whether waiting room messages are held for their room's log (set by ``room_intake.RoomIntake``):
        #: they were confirmed, so ``mail_end`` can come before they are judged, and with them the fills.
        self.mail_held: Callable[[], bool] = lambda: False
        self._judged: list[ev.Warning] = []

    @property
    def holding(self) -> bool:
        return self._until is not None

    def open(self, now: float) -> None:
        """Our prekeys went out: what waited for us comes now, after live copies that may overtake it."""
        self._since, self._until = now, now + GAP_HOLD_SECONDS

    def judge(
        self, check: CounterCheck, sender: str, stream: Stream, counter: int, *, waited: bool
    ) -> list[ev.Warning]:
        """The warnings to show now before a copy the replay guard accepted (``check``), which came
        from our mailbox (``waited``) or live; a gap may instead be held until the drain ends."""
        out: list[ev.Warning] = []
        held = self._held.get(stream)
        if check.late:
            skipped_by_mail = None if held is None else held.numbers.pop(counter, None)
            if skipped_by_mail is None or skipped_by_mail == waited:  # not held, or reordered on one path
                out.append(late_warning(sender))
            if held is not None and not held.missing():
                del self._held[stream]
        if check.missed:
            if self._until is None:
                out.append(gap_warning(check.missed, sender))
            else:
                self._hold(stream, sender, counter, check.missed, waited)
        return out

    def _hold(self, stream: Stream, sender: str, counter: int, missed: int, waited: bool) -> None:
        held = self._held.pop(stream, None) or _Held(sender)
        self._held[stream] = held  # most recently held last
        first = counter - missed
        kept = max(first, counter - MAX_SKIPPED_PER_STREAM)
        held.beyond += kept - first
        held.numbers.update(dict.fromkeys(range(kept, counter), waited))
        if len(held.numbers) > MAX_SKIPPED_PER_STREAM:  # a second gap in the stream: its oldest numbers go
            for number in sorted(held.numbers)[: len(held.numbers) - MAX_SKIPPED_PER_STREAM]:
                del held.numbers[number]
                held.beyond += 1
        while len(self._held) > MAX_HELD_GAPS:
            self._judge(self._held.popitem(last=False)[1])

    def end(self) -> None:
        """The relay's ``mail_end``: what waited has come; every gap still open is warned once the
        waiting room messages held for their log are judged too (``settle``)."""
        self._mail_ended = True
        self.settle()

    def settle(self) -> None:
        """Held room messages were judged: after ``mail_end``, with none from the mailbox left, holding ends."""
        if self._mail_ended and self._until is not None and not self.mail_held():
            self._release()

    def tick(self, now: float) -> None:
        """Time passes: past ``GAP_HOLD_SECONDS`` without ``mail_end``, holding stops. So it does if the
        clock went back before holding began: the session's clock is the wall clock (stepped by NTP, or
        by whoever can fake its time source), and a step back must not stretch the hold by the step."""
        if self._until is not None and not self._since <= now < self._until:
            self._release()

    def abandon(self) -> None:
        """The connection ended before the drain did: what is held is judged now, never dropped."""
        self._release()

    def take(self) -> list[ev.Warning]:
        """Gap warnings judged since the last call (at the drain's end, or pushed out by the bound)."""
        judged, self._judged = self._judged, []
        return judged

    def _release(self) -> None:
        self._until = None
        while self._held:
            self._judge(self._held.popitem(last=False)[1])

    def _judge(self, held: _Held) -> None:
        if held.missing():
            self._judged.append(gap_warning(held.missing(), held.sender))
