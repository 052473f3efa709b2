"""The client's protocol logic with no I/O: bytes in, events and bytes out.

``ClientSession`` runs one connection's life as a small facade over parts
that each own one thing:

- ``session_parts``: what the parts know, for the connection and the views;
- ``link``: the state and its transition table;
- ``relay_frames``: what each frame from the relay does (one table, one handler each);
- ``handshake``: challenge, hello, welcome;
- ``admission``: who is in the room (``Members.admit`` checks every member once);
- ``rotation``: our own session key, its rotation and the previous keys;
- ``incoming``: opening and checking peers' messages;
- ``mail_path``: mailbox frames, and receipts for what was shown;
- ``sending``: who a message is sealed to, and the send path;
- ``outgoing``: acks awaited for what we sent.

Everything the relay says is checked; a frame that fails a check turns into
a ``Warning`` event, never into a ``Message``, and never into an exception
that escapes ``receive_data``. Time is passed in (``now``, seconds since the
epoch), so tests drive it.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable

from susurro.crypto import (
    IdentityKey,
    ReplayGuard,
)
from susurro.crypto.trust import TrustStore
from susurro.protocol import (
    RELAY_FRAMES,
    Bye,
    Frame,
    FrameDecoder,
    RemoteProtocolError,
    decode_frame,
    encode,
    name_key,
    normalize_name,
)
from susurro.protocol.limits import ABSOLUTE_MAX_FRAME

from . import clock
from . import events as ev
from .admission import Members
from .counters import SendCounters
from .errors import SendError, TrustError
from .events import EndCode, WarningKind
from .gap_hold import GapHold
from .handshake import Handshake
from .history import History, NoHistory
from .incoming import Incoming, shown_records
from .link import Link, LinkEvent, LinkState
from .lobby import Lobby
from .mail_path import MailPath
from .mailbox import Mailbox
from .outgoing import PendingAcks, about
from .pacing import SendPacer
from .relay_frames import RelayFrames
from .resend import Resender
from .rooms import RememberedRoom, RoomBook
from .rotation import ROTATE_AFTER_MESSAGES, ROTATE_AFTER_SECONDS, OwnSessionKeys
from .sending import Sender
from .session_parts import SessionParts
from .trust_actions import TrustActions
from .unconfirmed import Unconfirmed

__all__ = ["ClientSession", "SendError", "TrustError"]


class ClientSession(SessionParts, RelayFrames):
    def __init__(
        self,
        identity: IdentityKey,
        name: str,
        relay: str = "",
        trust: TrustStore | None = None,
        strict: bool = False,
        *,
        rotate_after_messages: int = ROTATE_AFTER_MESSAGES,
        rotate_after_seconds: float = ROTATE_AFTER_SECONDS,
        issued_after: int = 0,
        counters: SendCounters | None = None,
        replay: ReplayGuard | None = None,
        mailbox: Mailbox | None = None,
        wall_clock: Callable[[], float] = clock.wall_clock,
        history: History | None = None,
        rooms: RoomBook | None = None,
        save_state: Callable[[float, bool], None] | None = None,
        lobby: Lobby | None = None,
        remembered_rooms: Iterable[RememberedRoom] = (),
        unconfirmed: Unconfirmed | None = None,
        pace: bool = False,
    ) -> None:
        self.identity = identity
        self.name = normalize_name(name)  # raises BadName with the rule broken
        self.relay = relay
        #: Pinned keys; in memory only unless the caller passes a store with a file.
        self.trust = trust if trust is not None else TrustStore(None, key_of=name_key)
        #: Send only to members whose key the user verified.
        self.strict = strict
        self._link = Link()
        self._keys = OwnSessionKeys(
            identity,
            self.name,
            rotate_after_messages=rotate_after_messages,
            rotate_after_seconds=rotate_after_seconds,
            issued_after=issued_after,
        )
        self._handshake = Handshake(identity, self.name, self._keys)
        # Counters outlive the session: a reconnect or a rotation continues them.
        self._counters = counters if counters is not None else SendCounters()
        replay = replay if replay is not None else ReplayGuard()
        self._replay = replay
        #: Messages that wait (prekeys, mailboxes); None: this client neither leaves nor fetches any.
        self.mailbox = mailbox
        #: Seconds since the epoch, for what outlives a process (prekey ages); tests pass their own.
        self._wall_clock = wall_clock
        #: Where messages shown and sent are kept (``NoHistory`` keeps nothing).
        self.history: History = history if history is not None else NoHistory()
        #: Saves our counters and streams (wall time, force); called from ``tick`` and ``close``.
        self._save_state = save_state
        self._members = Members(
            self.name, self.trust, self._keys, retire=replay.forget_session, ended=replay.ended_sessions
        )
        #: Verified room logs; kept across reconnects, so a head verified once is never forgotten.
        self.rooms = (
            rooms
            if rooms is not None
            else RoomBook(self.name, identity, pinned=self._pinned_key, remembered=remembered_rooms)
        )
        self.rooms.roster_key = self._roster_key  # this session's roster (the book outlives a reconnect)
        #: The demo's open room, joined by itself after each join (None: rooms are the user's choice).
        self.lobby = lobby
        #: Gap judgements held while our mailbox drains (an honest live copy may overtake a waiting one).
        self._gaps = GapHold()
        self._incoming = Incoming(
            self.name, identity.public, self._keys, self._members, replay, self.rooms, gaps=self._gaps
        )
        self._pending = PendingAcks()
        self._decisions = TrustActions(identity.public, self.trust, self._members)
        self._decoder = FrameDecoder(self._handshake.incoming_limit)
        self._outgoing = bytearray()
        self._mail = (
            MailPath(mailbox, self.trust, self._members, wall_clock, self._incoming, self._gaps)
            if mailbox is not None
            else None
        )
        #: Our copies until their receipts (outlives the session, like the counters), and the paced send queue.
        self._resender = Resender(
            unconfirmed if unconfirmed is not None else Unconfirmed(),
            self._pending,
            self._members,
            lambda: self._keys.boxes,
            lambda: self._handshake.max_frame,
            self._outgoing,
        )
        if pace:
            self._resender.pacer = SendPacer()
        self._sender = Sender(
            identity,
            self.name,
            keys=self._keys,
            handshake=self._handshake,
            members=self._members,
            counters=self._counters,
            pending=self._pending,
            decisions=self._decisions,
            rooms=self.rooms,
            history=self.history,
            mailbox=mailbox,
            emit=self._emit,
            resender=self._resender,
        )

    def renewed(self) -> ClientSession:
        """A fresh session for a reconnect: same identity, name, relay label and trust store, new session key."""
        return ClientSession(
            self.identity,
            self.name,
            relay=self.relay,
            trust=self.trust,
            strict=self.strict,
            rotate_after_messages=self.rotate_after_messages,
            rotate_after_seconds=self.rotate_after_seconds,
            # Certified strictly later than every certificate of this session, so
            # peers can tell the new session from a replay of this one.
            issued_after=self.certificate_time,
            counters=self._counters,
            replay=self._replay,
            mailbox=self.mailbox,
            wall_clock=self._wall_clock,
            history=self.history,
            rooms=self.rooms,
            save_state=self._save_state,
            lobby=self.lobby,
            unconfirmed=self._resender.book,
            pace=self.pacing,
        )

    # --- I/O boundary ---------------------------------------------------------

    def _live(self) -> bool:
        """Not ended yet (a frame handler may end the session in the middle of a read)."""
        return self._link.state is not LinkState.CLOSED

    def data_to_send(self) -> bytes:
        self._resender.take()  # the paced sends whose turn has come
        out = bytes(self._outgoing)
        self._outgoing.clear()
        return out

    def receive_data(self, data: bytes, now: float) -> list[ev.Event]:
        """Feed bytes from the relay; returns the events they produced."""
        if self.state is LinkState.CLOSED:
            return []
        out: list[ev.Event] = []
        self._resender.clock(now)
        self._housekeeping(now)  # a busy room must not keep an expired key alive
        self._gaps.tick(now)
        try:
            self._decoder.feed(data)
            while self._live() and (payload := self._decoder.next_payload()) is not None:
                try:
                    frame = decode_frame(payload, RELAY_FRAMES, max_bin_len=self._decoder.max_frame)
                except RemoteProtocolError as exc:
                    out.append(
                        ev.Warning(kind=WarningKind.PROTOCOL_ERROR, detail=f"the relay sent a bad frame: {exc.detail}")
                    )
                    continue
                out.extend(self._handle(frame, now))
        except RemoteProtocolError as exc:  # framing: the stream cannot be trusted further
            out.extend(self._end(f"the relay broke the protocol: {exc.detail}", exc.code))
        out.extend(self._decisions.save())
        out.extend(self._take_notices())
        self._keep_shown(out)
        return out

    def _keep_shown(self, events: list[ev.Event]) -> None:
        """The messages just shown go into the history, and their senders get receipts."""
        shown = shown_records(events, self.name)
        if shown:
            self.history.add_many(shown)
        confirmed = self._resender.confirmed(events, self.trust)
        duplicates = self._incoming.take_duplicates()
        if self._mail is not None:
            self._mail.mailbox.delivered_online(confirmed)  # saved before after_read confirms the items
            for sender, identity_key, msg_id in duplicates:  # shown before: confirmed again
                self._mail.mailbox.shown(sender, identity_key, msg_id)
            for frame in self._mail.after_read(events):
                self._emit(frame)

    def tick(self, now: float) -> list[ev.Event]:
        """Time passes: rotate our session key when it is due, drop an expired previous key.

        The connection calls this about once a second (and after it, sends
        ``data_to_send()``); ``send_message`` and ``receive_data`` do the same
        housekeeping, so a key never outlives its grace while traffic flows.
        """
        self._resender.clock(now)
        self._housekeeping(now)
        self._gaps.tick(now)  # a relay that never says mail_end holds no gap for ever
        self._save_counters(force=False)
        # A room log that never comes must not keep messages waiting for ever (both ways).
        overdue = [*self._incoming.release_held(now), *self._sender.expire_room_waits(now, strict=self.strict)]
        if self.state is LinkState.JOINED:  # a check the relay never answers frees its place (hygiene L1)
            given_up, fetches = self.rooms.expire_checks(now)
            overdue.extend(given_up)
            for fetch in fetches:
                self._emit(fetch)
        self._keep_shown(overdue)
        return [*self._decisions.save(), *self._take_notices(), *overdue]

    def _take_notices(self) -> list[ev.Event]:
        # Gaps judged at the drain's end come after the read's messages, so none is kept with one.
        notices = [*self._sender.notices, *self._resender.notices, *self._gaps.take()]
        self._sender.notices, self._resender.notices = [], []
        return notices

    def _roster_key(self, name: str) -> bytes | None:
        peer = self._members.get(name)
        return None if peer is None else bytes(peer.identity_key)

    def _pinned_key(self, name: str) -> bytes | None:
        contact = self.trust.contact(name)
        return None if contact is None else contact.identity_key

    def _save_counters(self, *, force: bool) -> None:
        if self._save_state is not None:
            try:
                self._save_state(self._wall_clock(), force)
            except OSError:
                pass  # a full disk: the counters stay in memory; peers may see a reset after a restart

    def connection_lost(self, reason: str) -> list[ev.Event]:
        if self.state is LinkState.CLOSED:
            return []
        return self._end(reason)

    def _end(self, reason: str, code: EndCode | None = None) -> list[ev.Event]:
        """Close the session; messages still awaiting an ack are reported, not dropped."""
        if self._link.can(LinkEvent.END):
            self._link.advance(LinkEvent.END)
        never_left = self._resender.ended()
        self._gaps.abandon()
        return [
            *self._pending.abandon(never_left),
            *self._sender.abandon_room_waits(reason),
            *self._incoming.abandon_held(reason),
            *self._take_notices(),
            ev.Disconnected(reason=reason, code=code),
        ]

    def outstanding(self) -> list[ev.Event]:
        """Each of our messages not confirmed by everyone it went to, in the sender's words (for ``/quit``)."""
        return [
            ev.Warning(
                kind=WarningKind.UNCONFIRMED,
                detail=f"{about(msg_id, text, names)}: no receipt yet from {', '.join(names)}",
            )
            for msg_id, text, names in self.unconfirmed()
        ]

    def unconfirmed(self) -> list[tuple[str, str, tuple[str, ...]]]:
        """(msg_id, text, names whose receipt has not come) of each such message, oldest first: the
        parts of ``outstanding``, for a view that says them in its own words."""
        return self._resender.book.outstanding()

    def close(self) -> list[ev.Event]:
        """Say goodbye; the caller sends ``data_to_send()`` and closes the socket.

        Returns what is still unconfirmed (``outstanding``); those messages
        stay in the set the state file keeps, so the next start sends them
        again to whoever has not confirmed them.
        """
        report = self.outstanding()
        self._resender.ended()
        self._save_counters(force=True)
        if self.state is LinkState.JOINED:
            self._emit(Bye())
        if self._link.can(LinkEvent.END):
            self._link.advance(LinkEvent.END)
        return report

    # --- sending ----------------------------------------------------------------

    def send_message(
        self,
        text: str,
        now: float,
        to: list[str] | None = None,
        *,
        msg_id: str | None = None,
        room: str | bytes | None = None,
    ) -> str:
        """Seal ``text`` for everyone present (``to=None``), the named members, or a ``room``.

        A room message goes only to members of the room's verified log who are
        present, sealed at its head. Returns the message id; the frame is
        queued in ``data_to_send()``. Raises ``SendError`` with a plain reason
        when it cannot be sent.
        """
        if self.state is not LinkState.JOINED:
            raise SendError("not connected to the relay")
        if not text.strip():
            raise SendError("empty message")
        self._resender.clock(now)
        self._housekeeping(now, sending=True)
        if room is not None:
            return self._sender.send_to_room(text, now, room, msg_id, strict=self.strict)
        return self._sender.send(text, now, to, msg_id, strict=self.strict)

    # --- rooms ------------------------------------------------------------------------

    def room_request(self, build: Callable[[RoomBook, int], Frame], now: float) -> None:
        """Queue the room request ``build(book, now)`` makes (create, find, change...)."""
        if self.state is not LinkState.JOINED:
            raise SendError("not connected to the relay")
        self._emit(build(self.rooms, int(now)))

    # --- our session key ---------------------------------------------------------

    def _housekeeping(self, now: float, *, sending: bool = False) -> None:
        """Drop expired previous keys; rotate when due (by count only just before a send)."""
        if self.state is not LinkState.JOINED:
            return
        self._keys.expire(now)  # forward secrecy for what the old secrets opened
        if self._keys.due(now, sending=sending):
            # Counters run on: they are per conversation, not per session key.
            self._emit(self._keys.rotate(now))

    def _emit(self, frame: Frame) -> None:
        self._outgoing += encode(frame, max_frame=ABSOLUTE_MAX_FRAME)
