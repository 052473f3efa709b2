"""The join: answer the relay's ``challenge`` with ``hello``, check its ``welcome``.

Like wsproto's ``handshake.py``, this is apart from what follows the join:
it proves we hold our identity key (a signature over the relay's fresh
nonce, our name and our session key), certifies the session key, and takes
the relay's limits from the challenge. Who else is in the room is
``admission``'s business; the session only moves to ``JOINED`` when the
welcome names us as we asked.
"""

from __future__ import annotations

from susurro.crypto import IdentityKey, join_proof
from susurro.protocol import Challenge, Hello, Welcome
from susurro.protocol.limits import ABSOLUTE_MAX_FRAME, DEFAULT_MAX_FRAME

from .rotation import OwnSessionKeys

#: Relay frames may be larger than the relay's limit on ours (a welcome lists
#: up to 10,000 members at ~250 bytes each), so we accept at least this much.
MIN_RELAY_FRAME_LIMIT = 4 * 1024 * 1024


def relay_frame_limit(relay_max_frame: int) -> int:
    """The largest frame we accept from a relay that announced ``relay_max_frame``."""
    return min(ABSOLUTE_MAX_FRAME, max(MIN_RELAY_FRAME_LIMIT, 2 * relay_max_frame))


class Handshake:
    """Our side of the join, and the limits the relay announced in it."""

    def __init__(self, identity: IdentityKey, name: str, keys: OwnSessionKeys) -> None:
        self._identity = identity
        self._name = name
        self._keys = keys
        #: The relay's limit on our frames, and on recipients per message (from the challenge).
        self.max_frame = DEFAULT_MAX_FRAME
        self.max_recipients = 1

    @property
    def incoming_limit(self) -> int:
        """The largest frame we accept from this relay."""
        return relay_frame_limit(self.max_frame)

    def hello(self, challenge: Challenge, now: float) -> Hello:
        """Our answer to the challenge: a certified session key and the proof of our identity key."""
        self.max_frame = challenge.max_frame
        self.max_recipients = challenge.max_recipients
        cert = self._keys.certify(now)
        session_public = self._keys.current.public
        return Hello(
            name=self._name,
            ik=self._identity.public,
            sk=session_public,
            cert=cert.signature,
            issued_at=cert.issued_at,
            proof=join_proof(self._identity, challenge.nonce, self._name, session_public),
        )

    def refusal(self, welcome: Welcome) -> str | None:
        """Why this welcome cannot be accepted, or None: the relay must admit us under our name."""
        if welcome.name != self._name:
            return f"the relay welcomed us as {welcome.name!r}, not {self._name!r}"
        return None
