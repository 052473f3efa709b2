"""What a ``ClientSession``'s parts know, asked by the connection and the views. Pure.

``SessionParts`` is the read side of ``ClientSession`` (the class inherits
it, as it inherits ``relay_frames.RelayFrames``): the link state, our
session key and its rotation settings, the relay's limits, the members
present, our messages awaiting acks, and the user's trust decisions, each
answered by the one part that owns it. ``ClientSession.__init__`` sets the
parts named below.
"""

from __future__ import annotations

from susurro.crypto import SessionKey

from . import events as ev
from .admission import Members
from .handshake import Handshake
from .link import Link, LinkState
from .outgoing import PendingAcks
from .pacing import SendPacer
from .peer import Peer
from .resend import Resender
from .rotation import OwnSessionKeys
from .trust_actions import TrustActions


class SessionParts:
    """The parts' answers, as properties and methods of ``ClientSession``."""

    _link: Link
    _keys: OwnSessionKeys
    _handshake: Handshake
    _members: Members
    _pending: PendingAcks
    _resender: Resender
    _decisions: TrustActions

    @property
    def state(self) -> LinkState:
        return self._link.state

    @property
    def session_key(self) -> SessionKey:
        """Our current session key (it changes when it rotates)."""
        return self._keys.current

    @property
    def certificate_time(self) -> int:
        """``issued_at`` of our current session certificate (pass it as ``issued_after`` on reconnect)."""
        return self._keys.issued_at

    @property
    def rotate_after_messages(self) -> int:
        return self._keys.rotate_after_messages

    @property
    def rotate_after_seconds(self) -> float:
        return self._keys.rotate_after_seconds

    @property
    def max_frame(self) -> int:
        return self._handshake.max_frame

    @property
    def max_recipients(self) -> int:
        return self._handshake.max_recipients

    @property
    def peers(self) -> dict[str, Peer]:
        """The verified members present, by name."""
        return self._members.as_dict()

    def member_names(self) -> list[str]:
        return self._members.names()

    @property
    def pacing(self) -> bool:
        """Whether our ``send`` frames are paced under the relay's flood allowance (the connection turns it on)."""
        return self._resender.pacer is not None

    def pace_sends(self) -> None:
        if self._resender.pacer is None:
            self._resender.pacer = SendPacer()

    # --- our messages awaiting their acks --------------------------------------------

    def recipients_of(self, msg_id: str) -> tuple[tuple[str, ...], tuple[str, ...]]:
        """(encrypted to, skipped) for a message still awaiting its ack; empty once acked."""
        return self._pending.recipients_of(msg_id)

    def describe(self, msg_id: str) -> str:
        """One of our messages in our words: id, first words, recipients (for reports about it)."""
        return self._pending.describe(msg_id)

    # --- trust: what the user decides about a member's key (``trust_actions``) ---------

    def safety_number(self, name: str) -> str:
        """The safety number to compare with ``name`` (12 groups of 5 digits)."""
        return self._decisions.safety_number(name)

    def mark_verified(self, name: str, compared: str | None = None) -> list[ev.Event]:
        """The user compared safety numbers with ``name``; see ``TrustActions.mark_verified``."""
        return self._decisions.mark_verified(name, compared)

    def accept_key(self, name: str) -> list[ev.Event]:
        """Accept ``name``'s changed identity key (pinned, not verified) so messages reach it again."""
        return self._decisions.accept_key(name)
