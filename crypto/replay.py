"""Replay, reorder and drop detection for incoming messages (pure, stateful).

For each sender *session* (identified by its session public key) we remember
the last counter seen. The next message must carry exactly last + 1: a larger
counter means messages addressed to us never arrived (a gap, reported but the
message is shown), a smaller or equal one is a replay or reorder (rejected).
Message ids are remembered too, in a bounded window, so a message replayed
across sender sessions is also caught.
"""

from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass

from .errors import Replay

DEFAULT_REMEMBERED_IDS = 100_000


@dataclass(frozen=True, slots=True)
class CounterCheck:
    """The result for a message that is not a replay: how many were skipped before it."""

    missed: int


class ReplayGuard:
    def __init__(self, remembered_ids: int = DEFAULT_REMEMBERED_IDS) -> None:
        self._last_counter: dict[bytes, int] = {}
        self._seen_ids: OrderedDict[tuple[str, str], None] = OrderedDict()
        self._remembered_ids = remembered_ids

    def check(self, sender_session_key: bytes, sender: str, msg_id: str, counter: int) -> CounterCheck:
        """Accept or raise ``Replay``. Accepting records the message as seen."""
        if (sender, msg_id) in self._seen_ids:
            raise Replay(f"message {msg_id!r} from {sender!r} was already received")
        last = self._last_counter.get(sender_session_key, 0)
        if counter <= last:
            raise Replay(
                f"message from {sender!r} carries counter {counter}, but {last} was already received "
                "(replayed or reordered)"
            )
        self._last_counter[sender_session_key] = counter
        self._seen_ids[(sender, msg_id)] = None
        if len(self._seen_ids) > self._remembered_ids:
            self._seen_ids.popitem(last=False)
        return CounterCheck(missed=counter - last - 1)

    def forget_session(self, sender_session_key: bytes) -> None:
        """Drop the counter of a session that ended; ids stay remembered."""
        self._last_counter.pop(sender_session_key, None)
