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

from susurro.crypto import (
    BoxCache,
    CryptoError,
    DecryptFailed,
    IdentityKey,
    MessageTooLarge,
    OpenedMessage,
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
from susurro.crypto.safety import safety_number
from susurro.crypto.trust import MAX_CONTACTS, TrustState, TrustStore, TrustStoreError
from susurro.protocol import (
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
    Keepalive,
    KeepaliveAck,
    Left,
    LocalProtocolError,
    Member,
    Pong,
    Rekey,
    Rekeyed,
    RemoteProtocolError,
    Send,
    Shutdown,
    Welcome,
    decode_frame,
    encode,
    name_key,
    normalize_name,
)
from susurro.protocol import Joined as JoinedFrame
from susurro.protocol.limits import ABSOLUTE_MAX_FRAME, DEFAULT_MAX_FRAME, MAX_ROSTER

from . import events as ev

#: Acks we wait for at once; older entries are forgotten (reported as unknown).
MAX_PENDING_ACKS = 10_000
ROOM = "main"
#: Relay frames may be larger than the relay's limit on ours (a welcome lists
#: up to 10,000 members at ~250 bytes each), so we accept at least this much.
MIN_RELAY_FRAME_LIMIT = 4 * 1024 * 1024
#: Members met for the first time that one session pins; past it they show as
#: new without being remembered, so a relay cannot flood the trust store.
MAX_NEW_PINS_PER_SESSION = 1_000
#: Ended peer sessions remembered so the relay cannot bring one back (32 bytes each).
MAX_RETIRED_SESSIONS = 65_536
#: Our session key is replaced after this many sent messages or this age,
#: whichever comes first, so a stolen session key exposes a bounded window.
ROTATE_AFTER_MESSAGES = 1_000
ROTATE_AFTER_SECONDS = 24 * 3600
#: After a rotation, the previous key still opens messages that peers sealed
#: before they heard of the new one (they arrive within seconds); then it is dropped.
PREVIOUS_KEY_GRACE = 120.0
#: At most this many previous keys are kept (rotations within one grace period).
MAX_PREVIOUS_KEYS = 4


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


class TrustError(Exception):
    """A trust action (verify, accept) the client refuses, with the reason for the user."""


@dataclass(slots=True)
class PreviousKey:
    """Our session key before the last rotation, kept briefly for in-flight messages."""

    key: SessionKey
    boxes: BoxCache
    expires: float


@dataclass(slots=True)
class Peer:
    """A member whose certificate verified, with our message counter to it."""

    name: str
    identity_key: bytes
    session_key: bytes
    issued_at: int
    fingerprint: str
    sent: int = 0
    trust: TrustState = TrustState.NEW

    def info(self) -> ev.MemberInfo:
        return ev.MemberInfo(
            name=self.name, fingerprint=self.fingerprint, identity_key=self.identity_key, trust=self.trust.value
        )


class ClientSession:
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
    ) -> None:
        self.identity = identity
        self.name = normalize_name(name)  # raises BadName with the rule broken
        self.relay = relay
        #: Pinned keys; in memory only unless the caller passes a store with a file.
        self.trust = trust if trust is not None else TrustStore(None, key_of=name_key)
        #: Send only to members whose key the user verified.
        self.strict = strict
        self.rotate_after_messages = rotate_after_messages
        self.rotate_after_seconds = rotate_after_seconds
        #: A reconnecting client passes its last certificate time here, so the
        #: new session is certified later even if rotations ran ahead of the clock.
        self._key_issued_at = issued_after
        self._key_born = 0.0
        self._sent_with_key = 0
        #: Our session keys before the last rotations, newest last, each until its grace ends.
        self._previous: list[PreviousKey] = []
        self._warned: set[str] = set()
        self._new_pins = 0
        self.state = State.AWAITING_CHALLENGE
        self.session_key = SessionKey.generate()
        self._boxes = BoxCache(self.session_key)
        self._replay = ReplayGuard()
        self._decoder = FrameDecoder(relay_frame_limit(DEFAULT_MAX_FRAME))
        self._outgoing = bytearray()
        self.max_frame = DEFAULT_MAX_FRAME
        self.max_recipients = 1
        self.peers: dict[str, Peer] = {}
        # Indexes over ``peers`` so checking a roster of n members costs O(n), not O(n**2).
        self._peer_by_name_key: dict[str, str] = {}
        self._peer_by_session_key: dict[bytes, str] = {}
        #: msg id -> (members addressed, members skipped), until the relay's ack.
        self._pending: dict[str, tuple[tuple[str, ...], tuple[str, ...]]] = {}
        self._retired_sessions: OrderedDict[bytes, None] = OrderedDict()

    @property
    def certificate_time(self) -> int:
        """``issued_at`` of our current session certificate (pass it as ``issued_after`` on reconnect)."""
        return self._key_issued_at

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
        if self.state is State.JOINED:
            self._housekeeping(now)  # a busy room must not keep an expired key alive
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
        out.extend(self._save_trust())
        return out

    def tick(self, now: float) -> list[ev.Event]:
        """Time passes: rotate our session key when it is due, drop an expired previous key.

        The connection calls this about once a second (and after it, sends
        ``data_to_send()``); ``send_message`` and ``receive_data`` do the same
        housekeeping, so a key never outlives its grace while traffic flows.
        """
        if self.state is State.JOINED:
            self._housekeeping(now)
        return self._save_trust()

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

    def send_message(self, text: str, now: float, to: list[str] | None = None, *, msg_id: str | None = None) -> str:
        """Seal ``text`` for the room (``to=None``) or for the named members.

        Returns the message id; the frame is queued in ``data_to_send()``.
        Raises ``SendError`` with a plain reason when it cannot be sent.
        """
        if self.state is not State.JOINED:
            raise SendError("not connected to the relay")
        if not text.strip():
            raise SendError("empty message")
        self._housekeeping(now, sending=True)
        if to is None:
            candidates = list(self.peers.values())
            if not candidates:
                raise SendError("nobody else is in the room")
        else:
            candidates = []
            for name in dict.fromkeys(to):  # each recipient once, in order: one counter step each
                peer = self.peers.get(name)
                if peer is None:
                    raise SendError(f"{name} is not in the room")
                candidates.append(peer)
        targets = [p for p in candidates if self._may_encrypt_to(p)]
        skipped = tuple(p.name for p in candidates if not self._may_encrypt_to(p))
        if not targets:
            raise SendError("not sent: " + "; ".join(self._blocked_reason(self.peers[n]) for n in skipped))
        if len(targets) > self.max_recipients:
            raise SendError(f"{len(targets)} recipients; this relay allows {self.max_recipients} per message")
        msg_id = msg_id or secrets.token_hex(8)  # a held message keeps the id its sender was shown
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
        self._sent_with_key += 1
        if len(self._pending) >= MAX_PENDING_ACKS:
            self._pending.pop(next(iter(self._pending)))
        self._pending[msg_id] = (tuple(p.name for p in targets), skipped)
        self._outgoing += data
        return msg_id

    def recipients_of(self, msg_id: str) -> tuple[tuple[str, ...], tuple[str, ...]]:
        """(encrypted to, skipped) for a message still awaiting its ack; empty once acked."""
        return self._pending.get(msg_id, ((), ()))

    def _may_encrypt_to(self, peer: Peer) -> bool:
        if peer.trust is TrustState.CHANGED:
            return False
        return peer.trust is TrustState.VERIFIED or not self.strict

    def _blocked_reason(self, peer: Peer) -> str:
        if peer.trust is TrustState.CHANGED:
            return (
                f"{peer.name}'s identity key changed; compare safety numbers, then accept the new key "
                f"(/verify {peer.name}, /accept {peer.name})"
            )
        return f"{peer.name} is not verified and strict mode is on (/verify {peer.name})"

    # --- trust ------------------------------------------------------------------

    def _present(self, name: str) -> Peer:
        peer = self.peers.get(name)
        if peer is None:
            raise TrustError(f"{name} is not in the room")
        return peer

    def safety_number(self, name: str) -> str:
        """The safety number to compare with ``name`` (12 groups of 5 digits)."""
        return safety_number(self.identity.public, self._present(name).identity_key)

    def mark_verified(self, name: str, compared: str | None = None) -> list[ev.Event]:
        """The user compared safety numbers with ``name``: pin its current key as verified.

        ``compared`` is the safety number the user was shown and compared;
        if the key changed since (the relay swapped it in between), this is
        refused rather than verifying a key the user never saw. Views always
        pass it. For a changed key, verifying also accepts it: comparing the
        number is the check that accepting asks for.
        """
        peer = self._present(name)
        if compared is not None and compared != safety_number(self.identity.public, peer.identity_key):
            raise TrustError(
                f"{name}'s identity key is not the one whose safety number you compared; "
                f"compare the numbers again (/verify {name})"
            )
        try:
            self.trust.mark_verified(peer.name, peer.identity_key, peer.issued_at)
        except TrustStoreError as exc:
            raise TrustError(str(exc)) from None
        peer.trust = TrustState.VERIFIED
        return [ev.TrustUpdated(member=peer.info()), *self._save_trust()]

    def accept_key(self, name: str) -> list[ev.Event]:
        """Accept ``name``'s changed identity key (pinned, not verified) so messages reach it again."""
        peer = self._present(name)
        if peer.trust is not TrustState.CHANGED:
            raise TrustError(f"{name}'s identity key has not changed; there is nothing to accept")
        try:
            self.trust.accept(peer.name, peer.identity_key, peer.issued_at)
        except TrustStoreError as exc:
            raise TrustError(str(exc)) from None
        peer.trust = TrustState.PINNED
        return [ev.TrustUpdated(member=peer.info()), *self._save_trust()]

    def _save_trust(self) -> list[ev.Event]:
        """Persist pins; a failure is reported once and chatting goes on (pins stay in memory)."""
        try:
            self.trust.save()
        except TrustStoreError as exc:
            return self._warn_once("save", ev.Warning(kind="trust_store", detail=str(exc)))
        return []

    # --- our session key ---------------------------------------------------------

    def _housekeeping(self, now: float, *, sending: bool = False) -> None:
        """Drop expired previous keys; rotate by age, and by count just before a send.

        Counting rotations happen only on the send path, so the message that
        crosses the threshold is the first one sealed with the new key.
        """
        # Drop old secrets whose grace is over: forward secrecy for what they opened.
        self._previous = [previous for previous in self._previous if now < previous.expires]
        if self.state is State.JOINED and (
            (sending and self._sent_with_key >= self.rotate_after_messages)
            or now - self._key_born >= self.rotate_after_seconds
        ):
            self._rotate(now)

    def _rotate(self, now: float) -> None:
        """Certify a fresh session key and announce it through the relay.

        Counters restart: receivers keep counters per *sender session key*,
        and ours is new. The relay forwards our ``rekey`` before any message
        we seal with the new key, so peers always know it first.
        """
        new_key = SessionKey.generate()
        issued_at = max(int(now), self._key_issued_at + 1)  # strictly later, or peers call it stale
        cert = SessionCertificate.issue(self.identity, self.name, new_key.public, issued_at)
        self._emit(Rekey(sk=new_key.public, cert=cert.signature, issued_at=issued_at))
        self._previous.append(PreviousKey(self.session_key, self._boxes, now + PREVIOUS_KEY_GRACE))
        del self._previous[:-MAX_PREVIOUS_KEYS]
        self.session_key = new_key
        self._boxes = BoxCache(new_key)
        self._key_issued_at = issued_at
        self._key_born = now
        self._sent_with_key = 0
        for peer in self.peers.values():
            peer.sent = 0

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
        if isinstance(frame, Keepalive):  # the relay checks we are still here
            self._emit(KeepaliveAck())
            return []
        if isinstance(frame, Welcome):
            return self._on_welcome(frame)
        if self.state is not State.JOINED:
            return [ev.Warning(kind="protocol_error", detail=f"the relay sent {frame.TYPE} before welcome")]
        if isinstance(frame, JoinedFrame):
            return self._on_joined(frame.member)
        if isinstance(frame, Left):
            return self._on_left(frame.name)
        if isinstance(frame, Rekeyed):
            return self._on_rekeyed(frame.member)
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
        issued_at = max(int(now), self._key_issued_at + 1)
        self._key_issued_at, self._key_born = issued_at, now
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
                if member.name in self.peers:
                    self._drop_peer(self.peers[member.name])
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
            elif len(self.peers) >= MAX_ROSTER:
                out.append(self._roster_full(member.name))
            else:
                self._add_peer(peer_or_warning)
                out.extend(self._apply_trust(peer_or_warning))
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
        own_keys = {self.session_key.public, *(previous.key.public for previous in self._previous)}
        member_key = name_key(member.name)
        if member_key == name_key(self.name) or member.sk in own_keys:
            return ev.Warning(kind="impersonation", detail=f"the relay lists another member as us ({member.name!r})")
        other = self._peer_by_name_key.get(member_key)
        if other is not None and other != member.name:
            return ev.Warning(
                kind="duplicate_name",
                detail=f"the relay listed {member.name!r} while {other!r} is present (member ignored)",
                sender=member.name,
            )
        other = self._peer_by_session_key.get(member.sk)
        if other is not None and other != member.name:
            return ev.Warning(
                kind="impersonation",
                detail=f"the relay listed {member.name!r} with {other!r}'s session key (member ignored)",
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
        cert = SessionCertificate.of(member)
        try:
            cert.verify()
            make_box(self.session_key, member.sk)  # refuses all-zero and low-order keys
        except CryptoError as exc:  # BadCertificate or BadPublicKey
            return ev.Warning(kind=exc.kind, detail=f"{member.name}: {exc} (member ignored)", sender=member.name)
        if self.trust.is_stale(member.name, member.ik, member.issued_at):
            # A certificate older than one already seen for this key is an
            # ended session brought back, even across our restarts.
            return ev.Warning(
                kind="stale_certificate",
                detail=f"the relay announced {member.name!r} with a session certificate older than one already "
                "seen for that key (an old session replayed; member ignored)",
                sender=member.name,
            )
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
        if old is not None and old.identity_key == member.ik and member.issued_at <= old.issued_at:
            # Sessions of one identity are certified in increasing time: one no
            # later than the current is an old session brought back.
            return [
                ev.Warning(
                    kind="stale_certificate",
                    detail=f"the relay announced {member.name} with a session certified no later than the "
                    "current one (an old session replayed; ignored)",
                    sender=member.name,
                )
            ]
        if old is not None:
            # The relay keeps names unique and announces ``left`` first, so a
            # second ``joined`` is the relay speaking for someone else.
            self._drop_peer(old)
            if old.identity_key != member.ik:
                return [
                    ev.Warning(
                        kind="key_changed",
                        detail=f"the relay announced {member.name} again with a different identity key "
                        f"(fingerprint {peer_or_warning.fingerprint}, was {old.fingerprint}) without them leaving; "
                        "this member is ignored until they join again",
                        sender=member.name,
                    )
                ]
        elif len(self.peers) >= MAX_ROSTER:
            return [self._roster_full(member.name)]
        self._add_peer(peer_or_warning)
        trust_events = self._apply_trust(peer_or_warning)
        return [ev.Joined(member=peer_or_warning.info()), *trust_events]

    def _apply_trust(self, peer: Peer) -> list[ev.Event]:
        """Compare a verified member's identity key with the pin; a changed key blocks sending."""
        pinned = self.trust.contact(peer.name)
        # Pinning is bounded per session, so a relay cannot fill the store with
        # ghosts (which would end pinning for everyone met later).
        may_pin = self._new_pins < MAX_NEW_PINS_PER_SESSION and not self.trust.full
        peer.trust = self.trust.observe(peer.name, peer.identity_key, peer.issued_at, pin=may_pin)
        if peer.trust is TrustState.NEW:
            if may_pin:
                self._new_pins += 1
                return []
            return self._warn_once(
                "pins",
                ev.Warning(
                    kind="trust_store",
                    detail=(
                        f"your trust store is full ({MAX_CONTACTS} contacts): people you meet now are not pinned; "
                        f"remove old contacts from {self.trust.path}"
                        if self.trust.full
                        else f"the relay introduced more than {MAX_NEW_PINS_PER_SESSION} people you had never seen "
                        "in this session; the others are shown as new and not pinned"
                    ),
                ),
            )
        if peer.trust is not TrustState.CHANGED or pinned is None:
            return []
        old = fingerprint(pinned.identity_key)
        return [
            ev.KeyChanged(
                kind="key_changed",
                detail=f"{peer.name}'s identity key changed (fingerprint was {old}, now {peer.fingerprint}). "
                "They may have a new device or key file, or the relay is substituting keys. Nothing is "
                f"encrypted to {peer.name} until you compare safety numbers and accept the new key.",
                sender=peer.name,
                name=peer.name,
                old_fingerprint=old,
                new_fingerprint=peer.fingerprint,
            )
        ]

    def _on_rekeyed(self, member: Member) -> list[ev.Event]:
        """A present member rotated its session key: check the new certificate like a join."""
        peer = self.peers.get(member.name)
        if peer is None:
            return [
                ev.Warning(
                    kind="unknown_sender",
                    detail=f"the relay announced a new session key for {member.name!r}, who is not in the room",
                    sender=member.name,
                )
            ]
        if member.sk == peer.session_key:
            return []  # a repeated announcement
        checked = self._verify_member(member)
        if isinstance(checked, ev.Warning):
            return [checked]
        if member.ik != peer.identity_key:
            # Rotation never changes the identity key: this is the relay
            # speaking for someone else. Trust neither key until they rejoin.
            self._drop_peer(peer)
            return [
                ev.Warning(
                    kind="key_changed",
                    detail=f"the relay announced a session key rotation for {member.name} under a different "
                    "identity key; this member is ignored until they join again",
                    sender=member.name,
                )
            ]
        if member.issued_at <= peer.issued_at:
            return [
                ev.Warning(
                    kind="stale_certificate",
                    detail=f"the relay announced a session key for {member.name} certified no later than the "
                    "current one (an old session replayed; ignored)",
                    sender=member.name,
                )
            ]
        self._forget(peer)  # the old session key is retired: it can never come back
        del self._peer_by_session_key[peer.session_key]
        peer.session_key, peer.issued_at = member.sk, member.issued_at
        self._peer_by_session_key[peer.session_key] = peer.name
        self.trust.observe(peer.name, peer.identity_key, peer.issued_at, pin=False)
        return []

    def _on_left(self, name: str) -> list[ev.Event]:
        peer = self.peers.get(name)
        if peer is None:
            return []
        self._drop_peer(peer)
        return [ev.Left(name=name)]

    def _add_peer(self, peer: Peer) -> None:
        self.peers[peer.name] = peer
        self._peer_by_name_key[name_key(peer.name)] = peer.name
        self._peer_by_session_key[peer.session_key] = peer.name

    def _drop_peer(self, peer: Peer) -> None:
        """Remove a member and retire its session key for good."""
        del self.peers[peer.name]
        self._peer_by_name_key.pop(name_key(peer.name), None)
        self._peer_by_session_key.pop(peer.session_key, None)
        self._forget(peer)

    def _roster_full(self, name: str) -> ev.Warning:
        return ev.Warning(
            kind="roster_full",
            detail=f"the relay announced more than {MAX_ROSTER} members; {name!r} is ignored",
            sender=name,
        )

    def _warn_once(self, topic: str, warning: ev.Warning) -> list[ev.Event]:
        if topic in self._warned:
            return []
        self._warned.add(topic)
        return [warning]

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
            opened = self._open(deliver, peer)
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
                trust=peer.trust.value,
            )
        )
        return out

    def _open(self, deliver: Deliver, peer: Peer) -> OpenedMessage:
        """Open with our current session key, or the previous one within its grace period."""
        keys = [self._boxes, *(previous.boxes for previous in reversed(self._previous))]
        for index, boxes in enumerate(keys):
            try:
                return open_message(
                    boxes=boxes,
                    ciphertext=deliver.ct,
                    relay_sender=deliver.sender,
                    sender_identity_key=peer.identity_key,
                    sender_session_key=peer.session_key,
                    own_name=self.name,
                    own_identity_key=self.identity.public,
                )
            except DecryptFailed:
                if index == len(keys) - 1:
                    raise
        raise AssertionError("unreachable")

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
        pending = self._pending.pop(ack.id, None)
        if pending is None:
            return [
                ev.Warning(
                    kind="protocol_error", detail=f"the relay acknowledged a message we did not send ({ack.id!r})"
                )
            ]
        addressed, skipped = pending
        # Trust the relay only for names we addressed; anyone we addressed that
        # the relay does not list as delivered counts as missing.
        delivered = tuple(n for n in addressed if n in ack.delivered)
        missing = tuple(n for n in addressed if n not in delivered)
        return [ev.Delivery(msg_id=ack.id, delivered=delivered, missing=missing, skipped=skipped)]

    def _emit(self, frame: Frame) -> None:
        self._outgoing += encode(frame, max_frame=ABSOLUTE_MAX_FRAME)

    # for views
    def member_names(self) -> list[str]:
        return sorted(self.peers)
