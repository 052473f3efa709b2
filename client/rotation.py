"""Our own session key's life: certified at the join, rotated, kept briefly, dropped.

A session key is fresh for every connection and is replaced after
``ROTATE_AFTER_MESSAGES`` sent messages or ``ROTATE_AFTER_SECONDS``, so a
stolen one opens a bounded window. After a rotation the previous key still
opens, for ``PREVIOUS_KEY_GRACE`` seconds, what peers sealed before they heard
of the new one; then its secret is dropped (forward secrecy for what it opened).
Time is passed in (``now``), like everywhere in the core.
"""

from __future__ import annotations

from dataclasses import dataclass

from susurro.crypto import BoxCache, IdentityKey, SessionCertificate, SessionKey, SessionPublicKey
from susurro.protocol import Rekey

ROTATE_AFTER_MESSAGES = 1_000
ROTATE_AFTER_SECONDS = 24 * 3600
#: Long enough for messages sealed to the old key to arrive; short enough to bound what a stolen one opens.
PREVIOUS_KEY_GRACE = 120.0
#: At most this many previous keys are kept (rotations within one grace period).
MAX_PREVIOUS_KEYS = 4


@dataclass(slots=True)
class PreviousKey:
    """Our session key before a rotation, kept briefly for in-flight messages."""

    key: SessionKey
    boxes: BoxCache
    expires: float


class OwnSessionKeys:
    """The current session key with its Box cache, the previous ones, and when to rotate.

    ``issued_after``: a reconnecting client passes its last certificate time,
    so the new session is certified later even if rotations ran ahead of the
    clock (peers refuse a certificate no later than one they saw).
    """

    def __init__(
        self,
        identity: IdentityKey,
        name: str,
        *,
        rotate_after_messages: int = ROTATE_AFTER_MESSAGES,
        rotate_after_seconds: float = ROTATE_AFTER_SECONDS,
        issued_after: int = 0,
    ) -> None:
        self._identity = identity
        self._name = name
        self.rotate_after_messages = rotate_after_messages
        self.rotate_after_seconds = rotate_after_seconds
        self.current = SessionKey.generate()
        self.boxes = BoxCache(self.current)
        self.issued_at = issued_after
        self._born = 0.0
        self._sent = 0
        #: Newest last, each until its grace ends.
        self._previous: list[PreviousKey] = []

    def certify(self, now: float) -> SessionCertificate:
        """A certificate for the current key, strictly later than any before it (for ``hello``)."""
        self.issued_at = max(int(now), self.issued_at + 1)
        self._born = now
        return SessionCertificate.issue(self._identity, self._name, self.current.public, self.issued_at)

    def public_keys(self) -> set[SessionPublicKey]:
        """Our current and still-kept previous public keys (a member holding one impersonates us)."""
        return {self.current.public, *(previous.key.public for previous in self._previous)}

    def opening_boxes(self) -> list[BoxCache]:
        """The Box caches to try on an incoming message: the current key first, then newer before older."""
        return [self.boxes, *(previous.boxes for previous in reversed(self._previous))]

    def forget_peer(self, peer_session_public: SessionPublicKey) -> None:
        """A peer's session ended: drop its cached Box."""
        self.boxes.forget(peer_session_public)

    def count_sent(self) -> None:
        self._sent += 1

    def expire(self, now: float) -> None:
        """Drop old secrets whose grace is over."""
        self._previous = [previous for previous in self._previous if now < previous.expires]

    def due(self, now: float, *, sending: bool) -> bool:
        """Rotate now? By age at any time; by count only just before a send.

        Counting only on the send path makes the message that crosses the
        threshold the first one sealed with the new key.
        """
        return (sending and self._sent >= self.rotate_after_messages) or now - self._born >= self.rotate_after_seconds

    def rotate(self, now: float) -> Rekey:
        """Certify a fresh key and keep the old one for its grace; returns the ``rekey`` to send.

        The relay forwards our ``rekey`` before any message we seal with the
        new key, so peers always know it first. The caller restarts its
        per-peer counters: receivers keep them per sender session key.
        """
        new_key = SessionKey.generate()
        issued_at = max(int(now), self.issued_at + 1)  # strictly later, or peers call it stale
        cert = SessionCertificate.issue(self._identity, self._name, new_key.public, issued_at)
        self._previous.append(PreviousKey(self.current, self.boxes, now + PREVIOUS_KEY_GRACE))
        del self._previous[:-MAX_PREVIOUS_KEYS]
        self.current = new_key
        self.boxes = BoxCache(new_key)
        self.issued_at = issued_at
        self._born = now
        self._sent = 0
        return Rekey(sk=new_key.public, cert=cert.signature, issued_at=issued_at)
