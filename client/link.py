"""The state of our link to the relay, with every transition in one table.

Modeled on h11's ``_state.py``: the states are an enum, what moves the link
from one to the next is another, and ``TRANSITIONS`` is the whole machine, so
a reader sees every legal step in one place and an illegal one is a
``LinkError`` (a bug on our side), never a silent state change.

One ``ClientSession`` lives through ``CONNECTING`` → ``JOINING`` → ``JOINED``
→ ``CLOSED``. ``RelayConnection`` strings sessions together: when one ends
and the reconnect policy retries, its own link goes ``RECONNECTING`` and back
to ``CONNECTING`` with a fresh session; ``CLOSED`` is then final.
"""

from __future__ import annotations

import enum


class LinkState(str, enum.Enum):
    #: The socket is up; we wait for the relay's ``challenge``.
    CONNECTING = "connecting"
    #: We answered with ``hello``; we wait for ``welcome`` (or a refusal).
    JOINING = "joining"
    #: In the room: messages flow.
    JOINED = "joined"
    #: The link broke and another attempt is scheduled (connection only).
    RECONNECTING = "reconnecting"
    #: Over: closed by us, refused, shut down, or given up.
    CLOSED = "closed"

    def __str__(self) -> str:
        return str(self.value)


class LinkEvent(enum.Enum):
    """What moves the link: frames from the relay, and decisions about the socket."""

    CHALLENGE = "challenge"
    WELCOME = "welcome"
    #: The session ended and the reconnect policy will try again.
    LOST = "lost"
    #: A new socket is up, with a fresh session.
    RETRY = "retry"
    #: The session ended for good (or, for one session, ended at all).
    END = "end"


_LIVE = (LinkState.CONNECTING, LinkState.JOINING, LinkState.JOINED)

#: Every legal step. ``END`` is legal from every state but ``CLOSED``.
TRANSITIONS: dict[tuple[LinkState, LinkEvent], LinkState] = {
    (LinkState.CONNECTING, LinkEvent.CHALLENGE): LinkState.JOINING,
    (LinkState.JOINING, LinkEvent.WELCOME): LinkState.JOINED,
    **{(state, LinkEvent.LOST): LinkState.RECONNECTING for state in _LIVE},
    (LinkState.RECONNECTING, LinkEvent.RETRY): LinkState.CONNECTING,
    **{(state, LinkEvent.END): LinkState.CLOSED for state in (*_LIVE, LinkState.RECONNECTING)},
}


class LinkError(Exception):
    """A transition the table does not allow: a bug in the client, not the relay's fault."""


class Link:
    """One link's current state; ``advance`` is the only way to change it."""

    __slots__ = ("state",)

    def __init__(self, state: LinkState = LinkState.CONNECTING) -> None:
        self.state = state

    def can(self, event: LinkEvent) -> bool:
        return (self.state, event) in TRANSITIONS

    def advance(self, event: LinkEvent) -> LinkState:
        try:
            self.state = TRANSITIONS[self.state, event]
        except KeyError:
            raise LinkError(f"no transition from {self.state.value} on {event.value}") from None
        return self.state
