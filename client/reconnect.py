"""When to connect again, and how long to wait first, with no I/O.

``RelayConnection`` (``connection.py``) owns the socket and the threads; the
decisions it makes about reconnecting live here, as small objects that take
a random source as an argument, so tests drive them without sleeping:

- ``Backoff``: how long to wait before the next attempt (1 s doubling to
  30 s, with jitter so a room that lost its relay does not come back in one
  synchronized wave);
- ``retry_after_refusal``: which endings are worth another attempt;
- ``ReconnectPolicy``: the two together with what the connection has seen
  (ever joined? how many ``name_taken`` in a row?), and the link's state
  between sessions (``RECONNECTING``, or ``CLOSED`` once it gives up);
- ``Addresses``: which relay node to try next when ``--server`` lists
  several (the nodes of one cluster): the next one after the node that went
  away, in turn, each attempt on the same backoff;
- ``JoinWait``: how long a first join still waits for its welcome.
"""

from __future__ import annotations

import enum
import random
from collections.abc import Callable, Sequence

from susurro.protocol import ErrorCode

from . import events as ev
from .events import WarningKind
from .link import Link, LinkEvent, LinkState

BACKOFF_INITIAL = 1.0
BACKOFF_CAP = 30.0
#: Refusals that another attempt cannot fix: our name or our software is the problem.
PERMANENT_CODES = frozenset({ErrorCode.BAD_NAME, ErrorCode.BAD_VERSION, ErrorCode.BAD_PROOF, ErrorCode.BAD_CERT})
#: ``name_taken`` right after a reconnect is usually our own old connection,
#: which the relay drops within its idle timeout (120 s): retry this often
#: (1+2+4+8+16+30+30+30 s ≈ 2 min) before believing someone else has the name.
NAME_TAKEN_RETRIES = 8
#: Refusals that mean "someone holds it now": our name, or our identity key under another session.
_HELD = frozenset({ErrorCode.NAME_TAKEN, ErrorCode.IDENTITY_IN_USE})
#: Endings where the relay's byte stream broke: reported as a warning before the reconnect.
BROKEN_STREAM_CODES = frozenset({ErrorCode.BAD_FRAME, ErrorCode.FRAME_TOO_LARGE})
#: Seconds a first join waits for the relay to answer an attempt with its welcome (``JoinWait``).
JOIN_TIMEOUT = 20.0
#: Seconds a first join waits in all, however many ``cluster_down`` refusals start its wait again:
#: a script with no one to press Ctrl-C is not kept waiting for ever by a relay that only refuses.
JOIN_GIVE_UP = 600.0


class Backoff:
    """Exponential backoff with "equal jitter": attempt n waits between d/2 and d, d = min(cap, initial·2ⁿ⁻¹)."""

    def __init__(
        self,
        initial: float = BACKOFF_INITIAL,
        cap: float = BACKOFF_CAP,
        rng: Callable[[], float] = random.random,
    ) -> None:
        if not 0 < initial <= cap:
            raise ValueError("need 0 < initial <= cap")
        self.initial = initial
        self.cap = cap
        self._rng = rng
        self.attempt = 0

    def next_delay(self) -> float:
        self.attempt += 1
        ceiling = min(self.cap, self.initial * 2.0 ** min(self.attempt - 1, 62))
        return ceiling / 2 + self._rng() * ceiling / 2

    def reset(self) -> None:
        """After a successful join: the next outage starts from the shortest wait again."""
        self.attempt = 0


class Addresses:
    """The relay nodes a client may use, and which to try next. Pure: no sockets, no clock.

    A connection starts on the first node that answers; when it ends, each
    attempt goes to the next node in the list after the last one tried, so
    members of a node that died move to the others at once instead of
    waiting out the backoff against a dead address. With one address this is
    that address, every time.
    """

    def __init__(self, addresses: Sequence[tuple[str, int]]) -> None:
        if not addresses:
            raise ValueError("at least one relay address")
        self.all = tuple(addresses)
        self._index = 0

    @property
    def current(self) -> tuple[str, int]:
        return self.all[self._index]

    def advance(self) -> tuple[str, int]:
        """The node to try now: the one after the last one tried."""
        self._index = (self._index + 1) % len(self.all)
        return self.current

    def first_attempts(self) -> list[tuple[str, int]]:
        """Nodes for the first connection, in order; ``settle`` on the one that answered."""
        return list(self.all)

    def settle(self, address: tuple[str, int]) -> None:
        self._index = self.all.index(address)


def retry_after_refusal(code: ev.EndCode | None, *, ever_joined: bool, name_taken_seen: int) -> bool:
    """Is a connection that ended with ``code`` worth another attempt?

    ``None`` (the connection was lost), an announced ``shutdown`` (a
    restart: every ``systemctl restart`` and certificate renewal sends one,
    and a relay that is not coming back costs a retry every 30 s), ``full``,
    ``too_many_connections``, timeouts, ``rate_limited`` and protocol errors
    from a misbehaving relay are. A refusal of our name or keys is not, except
    ``name_taken`` (or ``identity_in_use``: our own session the relay has
    not yet seen end) after we were already in the room, for a while (see
    ``NAME_TAKEN_RETRIES``): only a relay that refuses *us* ends the session.
    ``cluster_down`` (a node of a cluster that cannot reach its shared store, so
    it cannot check anyone's name) refuses everyone, not us: retried, a first join too.
    """
    if code in PERMANENT_CODES:
        return False
    if code in _HELD:
        return ever_joined and name_taken_seen <= NAME_TAKEN_RETRIES
    return True


class JoinWait:
    """How long a first join still waits for its welcome. Pure: driven with monotonic ``now``.

    ``timeout`` (``JOIN_TIMEOUT``) is for the relay to answer an attempt. A ``cluster_down``
    refusal is an answer: the relay is there and lets nobody in until it reaches its cluster's
    store again, and the connection tries again ``delay`` seconds later. So each one starts the
    wait again, from that next attempt: a client waits out an outage of any length and says why
    (the user can stop it), instead of giving up ``timeout`` after its first try as if the relay
    had never answered; but never past ``give_up`` (``JOIN_GIVE_UP``, 10 min) from the start. Any
    other ending retried before the welcome (the connection lost, the relay full) leaves the
    deadline as it was and ends ``refusal``: the words at the end name the relay's last answer,
    not an older one.
    """

    def __init__(self, now: float, timeout: float = JOIN_TIMEOUT, give_up: float = JOIN_GIVE_UP) -> None:
        self.timeout = timeout
        self.deadline = now + timeout
        #: Seconds the wait may last in all, from the start.
        self.give_up = max(timeout, give_up)
        self._last = now + self.give_up
        #: The latest ``cluster_down`` refusal, while nothing else has ended an attempt since; else None.
        self.refusal: ev.Reconnecting | None = None

    def seen(self, event: object, now: float) -> None:
        """Count ``event``, one that came before the welcome."""
        if not isinstance(event, ev.Reconnecting):
            return
        if event.code == ErrorCode.CLUSTER_DOWN:
            self.deadline = min(max(self.deadline, now + event.delay + self.timeout), self._last)
            self.refusal = event
        else:
            self.refusal = None

    def left(self, now: float) -> float:
        """Seconds still to wait (0 once the deadline has passed)."""
        return max(0.0, self.deadline - now)

    def expired(self, now: float) -> bool:
        return now >= self.deadline

    @property
    def capped(self) -> bool:
        """The deadline is the last ``give_up`` allows: the wait ends ``give_up`` from the start, maybe only
        a moment after the latest attempt (a refusal at 599 s), so its words name the whole wait."""
        return self.deadline >= self._last

    def waited(self) -> str:
        """The wait the words at its end name: ``timeout`` from an attempt, or ``give_up`` in all."""
        seconds = self.give_up if self.capped else self.timeout
        return f"{seconds / 60:g} min" if seconds >= 60 and seconds % 60 == 0 else f"{seconds:g} s"

    def gave_up(self) -> str:
        """Why the wait ended, in the terminal's words."""
        if self.refusal is None:
            return f"no welcome from the relay within {self.waited()}"
        since = "" if self.capped else " of trying again"
        return (
            f"the relay refused the join for now ({self.refusal.reason}) and did not let us in within "
            f"{self.waited()}{since}"
        )


class Decision(enum.Enum):
    """What to do when a session ends."""

    RETRY = "retry"
    GIVE_UP = "give_up"  # the ending is final: say so (``Disconnected``)
    CLOSED = "closed"  # the user closed the connection: say nothing


class ReconnectPolicy:
    """Whether and when the connection tries again, across its sessions.

    The first connection is never retried (``RelayConnection.open`` reports
    a wrong address at once); ``enabled=False`` studies one connection's end.
    """

    def __init__(self, *, enabled: bool, backoff: Backoff | None = None) -> None:
        self.enabled = enabled
        self.backoff = backoff or Backoff()
        self.link = Link()
        self.ever_joined = False
        self._name_taken_seen = 0

    @property
    def between_sessions(self) -> bool:
        """No session is live: waiting to reconnect, or over."""
        return self.link.state in (LinkState.RECONNECTING, LinkState.CLOSED)

    def will_retry(self, *, closing: bool) -> bool:
        return self.enabled and not closing and self.link.state is not LinkState.CLOSED

    def may_hold(self, session_state: LinkState, *, closing: bool) -> bool:
        """Hold a message typed now for after the reconnect, rather than refusing it?"""
        return session_state is not LinkState.JOINED and self.ever_joined and self.will_retry(closing=closing)

    def joined(self) -> None:
        """A session joined: the next outage starts from the shortest wait, with a clean count."""
        self.backoff.reset()
        self.ever_joined = True
        self._name_taken_seen = 0

    def ended(self, code: ev.EndCode | None, *, closing: bool) -> Decision:
        """A session ended with ``code`` (None: the connection was lost); moves the link."""
        if closing:
            self.link.advance(LinkEvent.END)
            return Decision.CLOSED
        if code in _HELD:
            self._name_taken_seen += 1
        retry = self.enabled and retry_after_refusal(
            code, ever_joined=self.ever_joined, name_taken_seen=self._name_taken_seen
        )
        if not retry:
            self.link.advance(LinkEvent.END)
            return Decision.GIVE_UP
        self.link.advance(LinkEvent.LOST)
        return Decision.RETRY

    def announce(self, code: ev.EndCode | None, reason: str) -> list[ev.Event]:
        """What the user is told before a retry: a broken stream is a warning too."""
        if code in BROKEN_STREAM_CODES:
            return [ev.Warning(kind=WarningKind.PROTOCOL_ERROR, detail=reason)]
        return []

    def next_attempt(self, reason: str, code: ev.EndCode | None = None) -> ev.Reconnecting:
        """The wait before the next attempt, as the event that tells the user (and the relay's code, if it refused)."""
        delay = self.backoff.next_delay()
        return ev.Reconnecting(delay=delay, attempt=self.backoff.attempt, reason=reason, code=code)

    def connected_again(self) -> None:
        """A new socket is up with a fresh session."""
        self.link.advance(LinkEvent.RETRY)

    def close(self) -> None:
        """The user closed while waiting for the next attempt."""
        if self.link.can(LinkEvent.END):
            self.link.advance(LinkEvent.END)


#: A relay silent this long is pinged; silent this long after that, it is presumed gone
#: and the connection is started over. (The relay pings a quiet member after 60 s.)
RELAY_PING_AFTER = 90.0
RELAY_DEAD_AFTER = 180.0


class Liveness(enum.Enum):
    ALIVE = "alive"
    PING = "ping"  # quiet for a while: ask (once per silence)
    GONE = "gone"  # no answer: start over


class RelayWatch:
    """Is the relay still there? Driven with monotonic ``now``; ``heard`` on every byte received."""

    def __init__(self, now: float) -> None:
        self._heard = now
        self._pinged = False

    def heard(self, now: float) -> None:
        self._heard, self._pinged = now, False

    def check(self, now: float) -> Liveness:
        silent = now - self._heard
        if silent >= RELAY_DEAD_AFTER:
            return Liveness.GONE
        if silent >= RELAY_PING_AFTER and not self._pinged:
            self._pinged = True
            return Liveness.PING
        return Liveness.ALIVE
