"""Replay, reorder and drop detection for incoming messages (pure, stateful).

For each sender *session* (identified by its session public key) we remember
the last counter seen. The next message must carry exactly last + 1: a larger
counter means messages addressed to us never arrived (a gap, reported but the
message is shown), a smaller or equal one is a replay or reorder (rejected).
Message ids are remembered too, in a bounded window, so a message replayed
across sender sessions is also caught.

Senders count per (conversation, recipient), not per session key, so their
counters run on across rotations, reconnects and (with a state file)
restarts. Given a ``stream`` (the sender's identity key and the
conversation), the guard also keeps the stream's last counter and the
numbers a gap skipped:

- the first message of a new sender session continues the stream, so a jump
  is a gap even across a rotation (the last messages under the old key were
  dropped); a counter at or below the stream's last in a *new* session is not
  a replay (the new session key proves the copy is new) but a sender that lost
  its counters, reported as a reset;
- a copy with no session (a mailbox item) must be above the stream's last, or
  one of the numbers a gap skipped (it arrived late, by the other path:
  reported as late, shown once); anything else is a replay;
- a copy of a known session at or below its last counter is a replay, unless
  it carries a number a gap skipped and came by a key of ours the session's
  last copy did not (the sender resending a lost copy to our next session):
  late, shown once.

What a stream remembers is bounded, since its sender chooses the counters
(any of 1..2^63-1): at most ``MAX_SKIPPED_PER_STREAM`` skipped numbers, none
more than ``MAX_LATE_DISTANCE`` below the last, at most ``MAX_STREAMS``
streams (the least recently used go first) and ``MAX_SKIPPED_TOTAL``
skipped numbers across them (past it, the stream holding the most gives up
its oldest). A copy under a number let go is refused as
too late. The caller counts a copy only once it passed every other check, so
a message that is not shown creates no stream.

A message id seen before is a replay, except for a *resend*: a sender resends
what a recipient never confirmed to the recipient's next session, under the
same id. Given the copy's content digest and the key that opened it
(``via``), a copy whose signed content equals the one accepted under that id
but that arrived by a key no earlier copy came by is a duplicate: dropped, not
shown, not a warning. A second copy by the same key is the relay replaying it.

The ids window outlives a restart when the guard is given a ``SeenStore``
(``keep_seen_in``: the client keeps it next to its history): every id it
accepts is written there with its content digest, so a resend that reaches a recipient after its restart (it showed
the message, its receipt was lost) is still a duplicate, not a second copy
shown with a "reset".
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Protocol

from .errors import Replay
from .keytypes import SessionPublicKey

DEFAULT_REMEMBERED_IDS = 100_000
#: Streams remembered (sender identity and conversation); the least recently used go first. A
#: forgotten stream starts again at its next copy (a gap counted from 0 for a new session).
MAX_STREAMS = 10_000
#: Skipped numbers remembered per stream, for copies that arrive late: the newest ones.
MAX_SKIPPED_PER_STREAM = 256
#: A skipped number this far below the stream's last is let go: its copy is too late to fill the gap.
MAX_LATE_DISTANCE = 10_000
#: Skipped numbers across all streams (the state file stays small whatever senders choose).
MAX_SKIPPED_TOTAL = 65_536
#: Keys one message may arrive by (the first copy and its resends) before more copies are replays.
MAX_RESENDS_SEEN = 8


class SeenStore(Protocol):
    """Where the ids window is kept across restarts (sealed, bounded: ``client/seen_store.py``)."""

    def put(self, sender: str, msg_id: str, digest: bytes) -> None:
        """``msg_id`` from ``sender`` was accepted, its signed content's digest ``digest``."""
        ...


@dataclass(frozen=True, slots=True)
class CounterCheck:
    """The result for a message that is not a replay."""

    #: How many were skipped just before it (a gap).
    missed: int
    #: The sender's counter for this stream started again (it lost its state).
    reset: bool = False
    #: It fills a gap reported earlier: it arrived late, by the other path.
    late: bool = False
    #: A resend of a message already accepted (same signed content, another key): not shown again.
    duplicate: bool = False


@dataclass(slots=True)
class StreamState:
    last: int = 0
    missing: set[int] = field(default_factory=set)


#: Ended session keys a state file keeps (32 bytes each): an ended session brought back after our
#: restart is still refused, for the newest this many (the process itself remembers more).
MAX_SAVED_ENDED_SESSIONS = 4_096


class ReplayGuard:
    def __init__(
        self,
        remembered_ids: int = DEFAULT_REMEMBERED_IDS,
        streams: OrderedDict[tuple[bytes, str], StreamState] | None = None,
    ) -> None:
        #: session key -> conversation -> (last counter, the key of ours its copy came by).
        self._last_counter: dict[bytes, dict[str, tuple[int, bytes]]] = {}
        #: (sender, msg_id) -> (content digest, keys that opened a copy of it).
        self._seen_ids: OrderedDict[tuple[str, str], tuple[bytes, tuple[bytes, ...]]] = OrderedDict()
        self._remembered_ids = remembered_ids
        #: Where accepted ids are also written (None: in memory only, for as long as the process runs).
        self._store: SeenStore | None = None
        self._streams: OrderedDict[tuple[bytes, str], StreamState] = OrderedDict()
        #: Skipped numbers held across ``streams``.
        self._skipped = 0
        self.streams = streams if streams is not None else OrderedDict()
        #: Session keys that ended (the newest ``MAX_SAVED_ENDED_SESSIONS``); a state file may own and save it.
        self.ended_sessions: OrderedDict[bytes, None] = OrderedDict()

    @property
    def streams(self) -> OrderedDict[tuple[bytes, str], StreamState]:
        """(sender identity key, conversation) -> its state, least recently used first; a state file saves it."""
        return self._streams

    @streams.setter
    def streams(self, streams: OrderedDict[tuple[bytes, str], StreamState]) -> None:
        """Take a state file's streams, held to today's bounds (a file written under older ones may hold more)."""
        self._streams = streams
        self._skipped = 0
        for state in streams.values():
            _trim(state)
            self._skipped += len(state.missing)
        self._evict()

    def keep_seen_in(self, store: SeenStore, saved: Iterable[tuple[str, str, bytes]]) -> None:
        """Start from ``saved`` (what ``store`` kept, oldest first: sender, msg_id, digest) and write every
        id accepted from now on to ``store``.

        The keys earlier copies came by are not kept: they were session keys of
        a process that has ended, which no copy can be opened by again, so after
        a restart any copy of the same content is a resend.
        """
        for sender, msg_id, digest in saved:
            self._seen_ids[(sender, msg_id)] = (digest, ())
            self._seen_ids.move_to_end((sender, msg_id))
        while len(self._seen_ids) > self._remembered_ids:
            self._seen_ids.popitem(last=False)
        self._store = store

    def check(
        self,
        sender_session_key: SessionPublicKey | None,
        sender: str,
        msg_id: str,
        counter: int,
        stream: tuple[bytes, str] | None = None,
        *,
        digest: bytes = b"",
        via: bytes = b"",
    ) -> CounterCheck:
        """Accept or raise ``Replay``. Accepting records the message as seen.

        ``sender_session_key`` None: a copy that came without a session (from
        a mailbox), checked against ``stream`` alone. ``digest`` and ``via``
        (the copy's ``content_digest`` and the key that opened it) tell a
        resend, ``duplicate`` in the result, from a replay.
        """
        seen = self._seen_ids.get((sender, msg_id))
        if seen is not None:
            accepted, vias = seen
            if digest and accepted == digest and via not in vias and len(vias) < MAX_RESENDS_SEEN:
                self._seen_ids[(sender, msg_id)] = (accepted, (*vias, via))  # a second copy by it is a replay
                return CounterCheck(missed=0, duplicate=True)
            raise Replay(f"message {msg_id!r} from {sender!r} was already received")
        if sender_session_key is None and stream is None:
            raise ValueError("a copy without a session needs its stream")
        conversation = stream[1] if stream is not None else ""
        session = self._last_counter.get(sender_session_key, {}) if sender_session_key is not None else {}
        known_session = conversation in session
        last, last_via = session.get(conversation, (0, b""))
        refill = False
        if sender_session_key is not None and counter <= last:
            gapped = self._streams.get(stream) if stream is not None else None
            # A number a gap skipped, by a key of ours this session's last copy did not come by (our
            # next session, after the relay cut the one that lost it): the sender's resend fills the
            # gap, late. By the same key it is the relay reordering: refused.
            if gapped is None or counter not in gapped.missing or not via or via == last_via:
                raise Replay(
                    f"message from {sender!r} carries counter {counter}, but {last} was already received "
                    "(replayed or reordered)"
                )
            refill = True
        result = CounterCheck(missed=counter - last - 1)
        if stream is not None:
            state = self._streams.get(stream) or StreamState()
            before = len(state.missing)
            result = self._stream_check(state, sender, counter, known_session, sender_session_key is None, result)
            self._skipped += len(state.missing) - before
            self._streams[stream] = state
            self._streams.move_to_end(stream)
            self._evict(state)
        if sender_session_key is not None and not refill:  # a late fill does not move the session back
            self._last_counter.setdefault(sender_session_key, {})[conversation] = (counter, via)
        self._seen_ids[(sender, msg_id)] = (digest, (via,))
        if len(self._seen_ids) > self._remembered_ids:
            self._seen_ids.popitem(last=False)
        if self._store is not None:
            self._store.put(sender, msg_id, digest)
        return result

    @staticmethod
    def _stream_check(
        state: StreamState, sender: str, counter: int, known_session: bool, sessionless: bool, result: CounterCheck
    ) -> CounterCheck:
        if counter in state.missing:
            state.missing.discard(counter)
            return CounterCheck(missed=0, late=True)
        if counter <= state.last:
            if sessionless:
                raise Replay(
                    f"a waiting copy from {sender!r} carries counter {counter}: already received, or too late to "
                    "fill the gap it left"
                )
            if not known_session:
                state.last = counter
                state.missing.clear()
                return CounterCheck(missed=0, reset=True)
            return result  # within a session that started after a reset: the session check decided
        if not known_session:
            result = CounterCheck(missed=counter - state.last - 1)
        # Only the newest skipped numbers: a jump to 2^63 - 1 costs what any gap over 256 does.
        state.missing.update(range(max(state.last + 1, counter - MAX_SKIPPED_PER_STREAM), counter))
        state.last = counter
        _trim(state)
        return result

    def _evict(self, current: StreamState | None = None) -> None:
        """Least recently used streams go past ``MAX_STREAMS``; past ``MAX_SKIPPED_TOTAL`` the stream
        holding the most skipped numbers lets its oldest go, so senders who skip thousands cannot push
        out the streams of those who skip few (a forgotten stream would show them a false gap)."""
        while len(self._streams) > MAX_STREAMS:
            _, state = self._streams.popitem(last=False)
            self._skipped -= len(state.missing)
        while self._skipped > MAX_SKIPPED_TOTAL:
            # The stream that just grew, if it holds its share or more (no scan), else the biggest.
            fair = MAX_SKIPPED_TOTAL // len(self._streams)
            if current is not None and current.missing and len(current.missing) >= fair:
                state = current
            else:
                state = max(self._streams.values(), key=lambda s: len(s.missing))
            keep = max(0, len(state.missing) - (self._skipped - MAX_SKIPPED_TOTAL))
            self._skipped -= len(state.missing) - keep
            state.missing = set(sorted(state.missing)[len(state.missing) - keep :])

    def forget_session(self, sender_session_key: SessionPublicKey) -> None:
        """Drop the counter of a session that ended, and remember that it ended; ids and streams stay."""
        self._last_counter.pop(sender_session_key, None)
        self.ended_sessions[bytes(sender_session_key)] = None
        self.ended_sessions.move_to_end(bytes(sender_session_key))
        while len(self.ended_sessions) > MAX_SAVED_ENDED_SESSIONS:
            self.ended_sessions.popitem(last=False)


def _trim(state: StreamState) -> None:
    """Hold one stream's skipped numbers to ``MAX_SKIPPED_PER_STREAM``, none past ``MAX_LATE_DISTANCE``."""
    floor = state.last - MAX_LATE_DISTANCE
    if state.missing and min(state.missing) < floor:
        state.missing = {n for n in state.missing if n >= floor}
    if len(state.missing) > MAX_SKIPPED_PER_STREAM:
        state.missing = set(sorted(state.missing)[-MAX_SKIPPED_PER_STREAM:])
