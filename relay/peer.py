"""What the relay's request services (rooms, mailboxes) need of a joined connection, and how they answer it.

``RelayCore`` hands each room or mailbox request to the service's handler for
its type (the services' ``handlers()`` join the core's dispatch table); a
handler answers by offering frames to the connection's outbox.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any, Protocol

from susurro.protocol import Frame, encode
from susurro.protocol.limits import ABSOLUTE_MAX_FRAME


class Outbox(Protocol):
    def offer(self, data: bytes) -> bool: ...


class Peer(Protocol):
    """A joined connection: who it is and where its frames go."""

    @property
    def name(self) -> str | None: ...

    @property
    def ik(self) -> bytes: ...

    @property
    def outbox(self) -> Outbox: ...

    @property
    def node(self) -> str | None:
        """The other relay node it is connected to (``--cluster``), or None: connected here."""
        ...


#: A service's handler for one request type (the frame is of that type).
Handler = Callable[[Any, Any], None]


def offer(peer: Peer, frame: Frame) -> None:
    """Queue ``frame`` for ``peer`` (its outbox decides what a slow reader costs)."""
    peer.outbox.offer(encode(frame, max_frame=ABSOLUTE_MAX_FRAME))


#: How a service offers one frame to several peers. The relay's core passes its own: a member
#: connected to another relay node (``--cluster``) gets it through that node, once per node.
Notify = Callable[[Iterable[Peer], bytes], None]


def offer_each(peers: Iterable[Peer], data: bytes) -> None:
    """``Notify`` for peers that are all here (a service on its own, in tests)."""
    for peer in peers:
        peer.outbox.offer(data)
