"""What each frame from the relay does to the session: one table, one handler per frame type. Pure.

``ClientSession.receive_data`` hands every decoded relay frame to
``_handle``, which looks its type up in ``_HANDLERS``: whether it needs
``JOINED``, and its handler. A frame no row takes, one that needs the welcome
and comes before it, or a mailbox frame for a session that never opted in is
a ``protocol_error`` warning, never an exception. ``RelayFrames`` is the
half of ``ClientSession`` that holds these handlers (the class inherits it);
the parts they use are the session's, named below.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from susurro.crypto import IdentityKey
from susurro.protocol import (
    Ack,
    Challenge,
    Deliver,
    Dropped,
    Error,
    Frame,
    FrameDecoder,
    Keepalive,
    KeepaliveAck,
    Left,
    Pong,
    Rekeyed,
    RoomError,
    RoomIndex,
    RoomLog,
    RoomUpdate,
    Shutdown,
    Welcome,
)
from susurro.protocol import Joined as JoinedFrame

from . import events as ev
from .admission import Members
from .events import EndCode, Ending, WarningKind, end_code
from .handshake import Handshake
from .incoming import Incoming
from .link import Link, LinkEvent, LinkState
from .lobby import Lobby
from .mail_path import MAIL_FRAMES, MailPath
from .outgoing import PendingAcks
from .peer import Via
from .resend import Resender
from .room_directory import read_index
from .room_events import RoomReady
from .rooms import RoomBook
from .sending import Sender


class RelayFrames:
    """The relay frames' handlers, as methods of ``ClientSession``."""

    # The session's parts these handlers use (``ClientSession.__init__`` sets them).
    identity: IdentityKey
    name: str
    relay: str
    strict: bool
    rooms: RoomBook
    lobby: Lobby | None
    _link: Link
    _handshake: Handshake
    _decoder: FrameDecoder
    _members: Members
    _incoming: Incoming
    _pending: PendingAcks
    _mail: MailPath | None
    _sender: Sender
    _resender: Resender

    def _emit(self, frame: Frame) -> None:
        raise NotImplementedError  # the session queues the frame's bytes

    def _end(self, reason: str, code: EndCode | None = None) -> list[ev.Event]:
        raise NotImplementedError  # the session closes the link and reports what was unacknowledged

    def _handle(self, frame: Frame, now: float) -> list[ev.Event]:
        entry = _HANDLERS.get(type(frame))
        if entry is None:
            return [ev.Warning(kind=WarningKind.PROTOCOL_ERROR, detail=f"unexpected {frame.TYPE} frame")]
        needs_joined, handler = entry
        if needs_joined and self._link.state is not LinkState.JOINED:
            return [ev.Warning(kind=WarningKind.PROTOCOL_ERROR, detail=f"the relay sent {frame.TYPE} before welcome")]
        try:
            return handler(self, frame, now)
        except _Unexpected:
            return [ev.Warning(kind=WarningKind.PROTOCOL_ERROR, detail=f"unexpected {frame.TYPE} frame")]

    def _on_challenge(self, challenge: Challenge, now: float) -> list[ev.Event]:
        if not self._link.can(LinkEvent.CHALLENGE):
            return [ev.Warning(kind=WarningKind.PROTOCOL_ERROR, detail="the relay sent a second challenge")]
        self._emit(self._handshake.hello(challenge, now))
        self._decoder.max_frame = self._handshake.incoming_limit
        self._link.advance(LinkEvent.CHALLENGE)
        return []

    def _on_error(self, error: Error, now: float) -> list[ev.Event]:
        if self._link.state is not LinkState.JOINED:
            return self._end(f"the relay refused to let us join: {error.detail}", end_code(error.code))
        return [ev.Warning(kind=WarningKind.RELAY_ERROR, detail=f"{error.code}: {error.detail}")]

    def _on_shutdown(self, shutdown: Shutdown, now: float) -> list[ev.Event]:
        return self._end(f"the relay shut down ({shutdown.reason or 'no reason given'})", Ending.SHUTDOWN)

    def _on_nothing(self, frame: Frame, now: float) -> list[ev.Event]:
        # A pong answers our ping: the relay is there, which reading it already showed.
        return []

    def _on_room_index(self, frame: RoomIndex, now: float) -> list[ev.Event]:
        """The relay's room list, read against the verified logs (its numbers only for rooms not verified)."""
        present = {p.identity_key for p in self._members}
        alerts, directory = read_index(self.rooms, frame, present, self.identity.public)
        return [*alerts, directory]

    def _on_keepalive(self, keepalive: Keepalive, now: float) -> list[ev.Event]:
        self._emit(KeepaliveAck())  # the relay checks we are still here
        return []

    def _on_welcome(self, welcome: Welcome, now: float) -> list[ev.Event]:
        if not self._link.can(LinkEvent.WELCOME):
            return [ev.Warning(kind=WarningKind.PROTOCOL_ERROR, detail="unexpected welcome")]
        refusal = self._handshake.refusal(welcome)
        if refusal is not None:
            return self._end(refusal)
        self._link.advance(LinkEvent.WELCOME)
        connected = ev.Connected(name=self.name, fingerprint=self.identity.fingerprint, relay=self.relay)
        admitted = self._members.admit_roster(welcome.roster, now)
        if self._mail is not None:
            for frame in self._mail.joined(now):
                self._emit(frame)
        if self.lobby is not None:
            for frame in self.lobby.start(self.rooms, int(now)):
                self._emit(frame)
        for frame in self.rooms.rejoined():  # rooms verified before a reconnect: catch up before sealing
            self._emit(frame)
        for peer in list(self._members):  # what they never confirmed, sealed to their sessions now
            admitted += self._resender.arrived(peer)
        restored = self.rooms.invites.take_restored()  # invitations kept from the last run, once
        return [connected, *restored, *admitted, ev.Roster(members=tuple(p.info() for p in self._members))]

    def _on_joined(self, joined: JoinedFrame, now: float) -> list[ev.Event]:
        events = self._members.admit(joined.member, Via.JOINED, now).events
        peer = self._members.get(joined.member.name)
        if peer is not None and peer.session_key == joined.member.sk:  # admitted: a new session of theirs
            events += self._resender.arrived(peer)
        return events

    def _on_dropped(self, dropped: Dropped, now: float) -> list[ev.Event]:
        return self._resender.dropped(dropped)

    def _on_rekeyed(self, rekeyed: Rekeyed, now: float) -> list[ev.Event]:
        return self._members.admit(rekeyed.member, Via.REKEYED, now).events

    def _on_left(self, left: Left, now: float) -> list[ev.Event]:
        return self._members.left(left.name)

    def _on_deliver(self, deliver: Deliver, now: float) -> list[ev.Event]:
        events = self._incoming.deliver(deliver, now)
        for frame in self._incoming.take_room_requests():
            self._emit(frame)
        return events

    def _on_room(self, frame: Frame, now: float) -> list[ev.Event]:
        if isinstance(frame, RoomError) and self.lobby is not None:
            instead = self.lobby.refused(frame, self.rooms, int(now))
            if instead is not None:  # the lobby's find or create: not a refusal to report
                self.rooms.forget_request(frame.id)
                for request in instead:
                    self._emit(request)
                return []
        events, requests = self.rooms.receive(frame, int(now))
        for request in requests:
            self._emit(request)
        for event in events:
            state = self.rooms.state(event.room_id) if isinstance(event, RoomReady) else None
            if state is not None and self.lobby is not None:
                for request in self.lobby.ready(state, self.rooms, int(now)):
                    self._emit(request)
        # The log may have caught up (or the relay refused to let it): what waited for it goes on.
        events.extend(self._incoming.release_held())
        events.extend(self._sender.release_room_sends(now, strict=self.strict))
        return events

    def _on_ack(self, ack: Ack, now: float) -> list[ev.Event]:
        events = self._pending.settle(ack)
        self._resender.settled(events)
        return events

    def _on_mail_frame(self, frame: Frame, now: float) -> list[ev.Event]:
        if self._mail is None:  # the relay sends these only to a client that published prekeys
            raise _Unexpected()
        events, frames = self._mail.receive(frame)
        for out in frames:
            self._emit(out)
        return events


class _Unexpected(Exception):
    """A mailbox frame for a session that never opted in: a protocol error, said at the boundary."""


#: Relay frame type -> (needs ``JOINED``, handler); one row per relay frame type.
_HANDLERS: dict[type[Frame], tuple[bool, Callable[[RelayFrames, Any, float], list[ev.Event]]]] = {
    Challenge: (False, RelayFrames._on_challenge),
    Error: (False, RelayFrames._on_error),
    Shutdown: (False, RelayFrames._on_shutdown),
    Pong: (False, RelayFrames._on_nothing),
    Keepalive: (False, RelayFrames._on_keepalive),
    Welcome: (False, RelayFrames._on_welcome),
    JoinedFrame: (True, RelayFrames._on_joined),
    Left: (True, RelayFrames._on_left),
    Rekeyed: (True, RelayFrames._on_rekeyed),
    Deliver: (True, RelayFrames._on_deliver),
    Ack: (True, RelayFrames._on_ack),
    Dropped: (True, RelayFrames._on_dropped),
    RoomLog: (True, RelayFrames._on_room),
    RoomUpdate: (True, RelayFrames._on_room),
    RoomError: (True, RelayFrames._on_room),
    RoomIndex: (True, RelayFrames._on_room_index),
    **{frame: (True, RelayFrames._on_mail_frame) for frame in MAIL_FRAMES},
}
