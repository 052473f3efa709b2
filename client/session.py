"""The client's protocol logic with no I/O: bytes in, events and bytes out.

``ClientSession`` runs one connection's life: answer the challenge with a
certified session key and a proof, learn the roster, verify every member's
certificate itself, seal outgoing messages per recipient and open incoming
ones. Everything the relay says is checked; a frame that fails a check turns
into a ``Warning`` event, never into a ``Message``, and never into an
exception that escapes ``receive_data``.

Time is passed in (``now``, seconds since the epoch), so tests drive it.
"""

from __future__ import annotations

import enum
import secrets
from collections import OrderedDict
from dataclasses import dataclass

from crypto import (
    BoxCache,
    CryptoError,
    IdentityKey,
    MessageTooLarge,
    Recipient,
    ReplayGuard,
    SessionCertificate,
    SessionKey,
    fingerprint,
    fingerprint_bytes,
    join_proof,
    make_box,
    open_message,
    seal_message,
)
from protocol import (
    RELAY_FRAMES,
    Ack,
    BadName,
    Bye,
    Challenge,
    Deliver,
    Error,
    Frame,
    FrameDecoder,
    Hello,
    Left,
    LocalProtocolError,
    Member,
    Pong,
    RemoteProtocolError,
    Send,
    Shutdown,
    Welcome,
    decode_frame,
    encode,
    name_key,
    normalize_name,
)
from protocol import Joined as JoinedFrame
from protocol.limits import ABSOLUTE_MAX_FRAME, DEFAULT_MAX_FRAME

from . import events as ev

#: Acks we wait for at once; older entries are forgotten (reported as unknown).
MAX_PENDING_ACKS = 10_000
ROOM = "main"
#: Relay frames may be larger than the relay's limit on ours (a welcome lists
#: up to 10,000 members at ~250 bytes each), so we accept at least this much.
MIN_RELAY_FRAME_LIMIT = 4 * 1024 * 1024
#: Ended peer sessions remembered so the relay cannot bring one back (32 bytes each).
MAX_RETIRED_SESSIONS = 65_536


def relay_frame_limit(relay_max_frame: int) -> int:
    """The largest frame we accept from a relay that announced ``relay_max_frame``."""
    return min(ABSOLUTE_MAX_FRAME, max(MIN_RELAY_FRAME_LIMIT, 2 * relay_max_frame))


class State(enum.Enum):
    AWAITING_CHALLENGE = "awaiting_challenge"
    JOINING = "joining"
    JOINED = "joined"
    CLOSED = "closed"


class SendError(Exception):
    """A message the client refuses to send, with the reason for the user."""


@dataclass(slots=True)
class Peer:
    """A member whose certificate verified, with our message counter to it."""

    name: str
    identity_key: bytes
    session_key: bytes
    issued_at: int
    fingerprint: str
    sent: int = 0

    def info(self) -> ev.MemberInfo:
        return ev.MemberInfo(name=self.name, fingerprint=self.fingerprint, identity_key=self.identity_key)


class ClientSession:
    def __init__(self, identity: IdentityKey, name: str, relay: str = "") -> None:
        self.identity = identity
        self.name = normalize_name(name)  # raises BadName with the rule broken
        self.relay = relay
        self.state = State.AWAITING_CHALLENGE
        self.session_key = SessionKey.generate()
        self._boxes = BoxCache(self.session_key)
        self._replay = ReplayGuard()
        self._decoder = FrameDecoder(relay_frame_limit(DEFAULT_MAX_FRAME))
        self._outgoing = bytearray()
        self.max_frame = DEFAULT_MAX_FRAME
        self.max_recipients = 1
        self.peers: dict[str, Peer] = {}
        self._pending: dict[str, tuple[str, ...]] = {}
        self._retired_sessions: OrderedDict[bytes, None] = OrderedDict()

    # --- I/O boundary ---------------------------------------------------------

    def data_to_send(self) -> bytes:
        out = bytes(self._outgoing)
        self._outgoing.clear()
        return out

    def receive_data(self, data: bytes, now: float) -> list[ev.Event]:
        """Feed bytes from the relay; returns the events they produced."""
        if self.state is State.CLOSED:
            return []
        out: list[ev.Event] = []
        try:
            self._decoder.feed(data)
            while self.state is not State.CLOSED and (payload := self._decoder.next_payload()) is not None:
                try:
                    frame = decode_frame(payload, RELAY_FRAMES, max_bin_len=self._decoder.max_frame)
                except RemoteProtocolError as exc:
                    out.append(ev.Warning(kind="protocol_error", detail=f"the relay sent a bad frame: {exc.detail}"))
                    continue
                out.extend(self._handle(frame, now))
        except RemoteProtocolError as exc:  # framing: the stream cannot be trusted further
            out.extend(self._end(f"the relay broke the protocol: {exc.detail}", exc.code.value))
        return out

    def connection_lost(self, reason: str) -> list[ev.Event]:
        if self.state is State.CLOSED:
            return []
        return self._end(reason)

    def _end(self, reason: str, code: str | None = None) -> list[ev.Event]:
        """Close the session; messages still awaiting an ack are reported, not dropped."""
        self.state = State.CLOSED
        out: list[ev.Event] = []
        if self._pending:
            shown = list(self._pending)[:10]
            ids = ", ".join(shown) + (", …" if len(self._pending) > len(shown) else "")
            out.append(
                ev.Warning(
                    kind="delivery_unknown",
                    detail=f"the connection ended before the relay reported delivery of {len(self._pending)} "
                    f"message(s): {ids}",
                )
            )
            self._pending.clear()
        out.append(ev.Disconnected(reason=reason, code=code))
        return out

    def close(self) -> None:
        """Say goodbye; the caller sends ``data_to_send()`` and closes the socket."""
        if self.state is State.JOINED:
            self._emit(Bye())
        self.state = State.CLOSED

    # --- sending ----------------------------------------------------------------

    def send_message(self, text: str, now: float, to: list[str] | None = None) -> str:
        """Seal ``text`` for the room (``to=None``) or for the named members.

        Returns the message id; the frame is queued in ``data_to_send()``.
        Raises ``SendError`` with a plain reason when it cannot be sent.
        """
        if self.state is not State.JOINED:
            raise SendError("not connected to the relay")
        if not text.strip():
            raise SendError("empty message")
        if to is None:
            targets = list(self.peers.values())
            if not targets:
                raise SendError("nobody else is in the room")
        else:
            targets = []
            for name in dict.fromkeys(to):  # each recipient once, in order: one counter step each
                peer = self.peers.get(name)
                if peer is None:
                    raise SendError(f"{name} is not in the room")
                targets.append(peer)
        if len(targets) > self.max_recipients:
            raise SendError(f"{len(targets)} recipients; this relay allows {self.max_recipients} per message")
        msg_id = secrets.token_hex(8)
        recipients = [
            Recipient(name=p.name, identity_key=p.identity_key, session_key=p.session_key, counter=p.sent + 1)
            for p in targets
        ]
        try:
            ciphertexts = seal_message(
                identity=self.identity,
                boxes=self._boxes,
                sender=self.name,
                recipients=recipients,
                body=text,
                msg_id=msg_id,
                sent_at=int(now * 1000),
                room=ROOM,
                direct=to is not None,
            )
            data = encode(Send(id=msg_id, to=ciphertexts), max_frame=self.max_frame)
        except MessageTooLarge as exc:
            raise SendError(str(exc)) from None
        except LocalProtocolError:
            raise SendError(
                f"message too large for {len(targets)} recipient(s) under the relay's "
                f"{self.max_frame}-byte frame limit; shorten it or send it to fewer people"
            ) from None
        except CryptoError as exc:  # e.g. a peer's session key went bad
            raise SendError(f"cannot encrypt: {exc}") from None
        for peer in targets:  # only now that the frame exists do counters advance
            peer.sent += 1
        if len(self._pending) >= MAX_PENDING_ACKS:
            self._pending.pop(next(iter(self._pending)))
        self._pending[msg_id] = tuple(p.name for p in targets)
        self._outgoing += data
        return msg_id

    # --- frame handlers -----------------------------------------------------------

    def _handle(self, frame: Frame, now: float) -> list[ev.Event]:
        if isinstance(frame, Challenge):
            return self._on_challenge(frame, now)
        if isinstance(frame, Error):
            return self._on_error(frame)
        if isinstance(frame, Shutdown):
            return self._end(f"the relay shut down ({frame.reason or 'no reason given'})", "shutdown")
        if isinstance(frame, Pong):
            return []
        if isinstance(frame, Welcome):
            return self._on_welcome(frame)
        if self.state is not State.JOINED:
            return [ev.Warning(kind="protocol_error", detail=f"the relay sent {frame.TYPE} before welcome")]
        if isinstance(frame, JoinedFrame):
            return self._on_joined(frame.member)
        if isinstance(frame, Left):
            return self._on_left(frame.name)
        if isinstance(frame, Deliver):
            return self._on_deliver(frame)
        if isinstance(frame, Ack):
            return self._on_ack(frame)
        return [ev.Warning(kind="protocol_error", detail=f"unexpected {frame.TYPE} frame")]

    def _on_challenge(self, challenge: Challenge, now: float) -> list[ev.Event]:
        if self.state is not State.AWAITING_CHALLENGE:
            return [ev.Warning(kind="protocol_error", detail="the relay sent a second challenge")]
        self.max_frame = challenge.max_frame
        self.max_recipients = challenge.max_recipients
        self._decoder.max_frame = relay_frame_limit(challenge.max_frame)
        issued_at = int(now)
        cert = SessionCertificate.issue(self.identity, self.name, self.session_key.public, issued_at)
        self._emit(
            Hello(
                name=self.name,
                ik=self.identity.public,
                sk=self.session_key.public,
                cert=cert.signature,
                issued_at=issued_at,
                proof=join_proof(self.identity, challenge.nonce, self.name, self.session_key.public),
            )
        )
        self.state = State.JOINING
        return []

    def _on_error(self, error: Error) -> list[ev.Event]:
        if self.state is not State.JOINED:
            return self._end(f"the relay refused to let us join: {error.detail}", error.code)
        return [ev.Warning(kind="relay_error", detail=f"{error.code}: {error.detail}")]

    def _on_welcome(self, welcome: Welcome) -> list[ev.Event]:
        if self.state is not State.JOINING:
            return [ev.Warning(kind="protocol_error", detail="unexpected welcome")]
        if welcome.name != self.name:
            return self._end(f"the relay welcomed us as {welcome.name!r}, not {self.name!r}")
        self.state = State.JOINED
        out: list[ev.Event] = [ev.Connected(name=self.name, fingerprint=self.identity.fingerprint, relay=self.relay)]
        listed_twice: set[str] = set()
        for member in welcome.roster:
            if member.name in self.peers or member.name in listed_twice:
                # Which of the two keys is the real one? Trust neither.
                self.peers.pop(member.name, None)
                listed_twice.add(member.name)
                out.append(
                    ev.Warning(
                        kind="duplicate_name",
                        detail=f"the relay listed {member.name} more than once; messages to this name are blocked",
                        sender=member.name,
                    )
                )
                continue
            peer_or_warning = self._verify_member(member)
            if isinstance(peer_or_warning, ev.Warning):
                out.append(peer_or_warning)
            else:
                self.peers[peer_or_warning.name] = peer_or_warning
        out.append(ev.Roster(members=tuple(p.info() for p in self.peers.values())))
        return out

    def _verify_member(self, member: Member) -> Peer | ev.Warning:
        """Check a roster entry ourselves: the relay's word that a key is a name's is not enough."""
        try:
            canonical = normalize_name(member.name)
        except BadName as exc:
            return ev.Warning(kind="bad_name", detail=f"the relay listed a member with an invalid name: {exc.detail}")
        if canonical != member.name:
            return ev.Warning(
                kind="bad_name", detail=f"the relay listed a member with a non-normalized name {member.name!r}"
            )
        if name_key(member.name) == name_key(self.name) or member.sk == self.session_key.public:
            return ev.Warning(kind="impersonation", detail=f"the relay lists another member as us ({member.name!r})")
        for other in self.peers.values():
            if other.name != member.name and name_key(other.name) == name_key(member.name):
                return ev.Warning(
                    kind="duplicate_name",
                    detail=f"the relay listed {member.name!r} while {other.name!r} is present (member ignored)",
                    sender=member.name,
                )
            if other.name != member.name and other.session_key == member.sk:
                return ev.Warning(
                    kind="impersonation",
                    detail=f"the relay listed {member.name!r} with {other.name!r}'s session key (member ignored)",
                    sender=member.name,
                )
        if member.sk in self._retired_sessions:
            # Session keys are fresh for every connection: an ended one coming
            # back is the relay replaying an old announcement, which would let
            # it replay that session's messages with their counters reset.
            return ev.Warning(
                kind="stale_session",
                detail=f"the relay re-announced an ended session of {member.name!r} (member ignored)",
                sender=member.name,
            )
        cert = SessionCertificate(
            name=member.name,
            identity_key=member.ik,
            session_key=member.sk,
            issued_at=member.issued_at,
            signature=member.cert,
        )
        try:
            cert.verify()
            make_box(self.session_key, member.sk)  # refuses all-zero and low-order keys
        except CryptoError as exc:  # BadCertificate or BadPublicKey
            return ev.Warning(kind=exc.kind, detail=f"{member.name}: {exc} (member ignored)", sender=member.name)
        return Peer(
            name=member.name,
            identity_key=member.ik,
            session_key=member.sk,
            issued_at=member.issued_at,
            fingerprint=fingerprint(member.ik),
        )

    def _on_joined(self, member: Member) -> list[ev.Event]:
        old = self.peers.get(member.name)
        if old is not None and old.session_key == member.sk:
            return []  # a repeated announcement; resetting counters would break the session
        peer_or_warning = self._verify_member(member)
        if isinstance(peer_or_warning, ev.Warning):
            return [peer_or_warning]
        if old is not None:
            # The relay keeps names unique and announces ``left`` first, so a
            # second ``joined`` is the relay speaking for someone else.
            self._forget(old)
            if old.identity_key != member.ik:
                del self.peers[member.name]
                return [
                    ev.Warning(
                        kind="key_changed",
                        detail=f"the relay announced {member.name} again with a different identity key "
                        f"(fingerprint {peer_or_warning.fingerprint}, was {old.fingerprint}) without them leaving; "
                        "messages to this name are blocked",
                        sender=member.name,
                    )
                ]
        self.peers[member.name] = peer_or_warning
        return [ev.Joined(member=peer_or_warning.info())]

    def _on_left(self, name: str) -> list[ev.Event]:
        peer = self.peers.pop(name, None)
        if peer is None:
            return []
        self._forget(peer)
        return [ev.Left(name=name)]

    def _forget(self, peer: Peer) -> None:
        self._boxes.forget(peer.session_key)
        self._replay.forget_session(peer.session_key)
        self._retired_sessions[peer.session_key] = None
        if len(self._retired_sessions) > MAX_RETIRED_SESSIONS:
            self._retired_sessions.popitem(last=False)

    def _on_deliver(self, deliver: Deliver) -> list[ev.Event]:
        peer = self.peers.get(deliver.sender)
        if peer is None:
            return [
                ev.Warning(
                    kind="unknown_sender",
                    detail=f"a message claimed to be from {deliver.sender!r}, who is not in the room",
                    sender=deliver.sender,
                )
            ]
        try:
            opened = open_message(
                boxes=self._boxes,
                ciphertext=deliver.ct,
                relay_sender=deliver.sender,
                sender_identity_key=peer.identity_key,
                sender_session_key=peer.session_key,
                own_name=self.name,
                own_identity_key=self.identity.public,
            )
            check = self._replay.check(peer.session_key, peer.name, opened.inner.msg_id, opened.counter)
        except CryptoError as exc:  # each failed check, Replay included, has its own kind
            return [ev.Warning(kind=exc.kind, detail=str(exc), sender=peer.name)]
        out: list[ev.Event] = []
        if check.missed:
            out.append(
                ev.Warning(
                    kind="gap",
                    detail=f"{check.missed} message(s) from {peer.name} addressed to you never arrived",
                    sender=peer.name,
                )
            )
        inner = opened.inner
        out.extend(self._cross_check_recipients(peer.name, inner.to))
        out.append(
            ev.Message(
                sender=peer.name,
                text=inner.body,
                to=inner.recipient_names,
                direct=inner.direct,
                msg_id=inner.msg_id,
                sent_at=inner.sent_at,
            )
        )
        return out

    def _cross_check_recipients(self, sender: str, to: tuple[tuple[str, bytes], ...]) -> list[ev.Event]:
        """Compare the signed recipient list with the keys we hold for the same names.

        The sender signed which identity key it encrypted to for each member.
        If that differs from the key we hold for the member, the relay gave
        one of us a substituted key: someone may be reading along.
        """
        out: list[ev.Event] = []
        for name, fp in to:
            peer = self.peers.get(name)
            if peer is not None and fingerprint_bytes(peer.identity_key) != fp:
                out.append(
                    ev.Warning(
                        kind="recipient_key_mismatch",
                        detail=f"{sender} encrypted this message to a different identity key for {name} than the "
                        f"one you have ({peer.fingerprint}); one of you was given a substituted key",
                        sender=sender,
                    )
                )
        return out

    def _on_ack(self, ack: Ack) -> list[ev.Event]:
        addressed = self._pending.pop(ack.id, None)
        if addressed is None:
            return [
                ev.Warning(
                    kind="protocol_error", detail=f"the relay acknowledged a message we did not send ({ack.id!r})"
                )
            ]
        # Trust the relay only for names we addressed; anyone we addressed that
        # the relay does not list as delivered counts as missing.
        delivered = tuple(n for n in addressed if n in ack.delivered)
        missing = tuple(n for n in addressed if n not in delivered)
        return [ev.Delivery(msg_id=ack.id, delivered=delivered, missing=missing)]

    def _emit(self, frame: Frame) -> None:
        self._outgoing += encode(frame, max_frame=ABSOLUTE_MAX_FRAME)

    # for views
    def member_names(self) -> list[str]:
        return sorted(self.peers)
