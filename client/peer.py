"""A member the client admitted (``Peer``), and the words of admission: how the relay announced a
member (``Via``) and what ``admission.Members.admit`` decided (``Verdict``, in an ``Admission``)."""

from __future__ import annotations

import enum
from dataclasses import dataclass, field

from susurro.crypto import IdentityPublicKey, SessionPublicKey
from susurro.crypto.trust import TrustState

from . import events as ev


class Via(enum.Enum):
    """How the relay announced a member."""

    ROSTER = "roster"  # in our ``welcome``
    JOINED = "joined"
    REKEYED = "rekeyed"  # a present member's new session key


class Verdict(enum.Enum):
    """What ``admit`` decided about one announcement."""

    ADMITTED = "admitted"  # a new member (or a newer session of the same identity)
    ROTATED = "rotated"  # a present member's newer session key
    REPEATED = "repeated"  # the session we already hold, announced again: kept as it was, with a warning
    UNKNOWN = "unknown"  # a rotation for someone not in the room
    BAD_NAME = "bad_name"
    IMPERSONATION = "impersonation"  # our name or key, or another member's key
    DUPLICATE_NAME = "duplicate_name"  # a case variant or lookalike of a present name, or listed twice
    STALE_SESSION = "stale_session"  # an ended session brought back
    BAD_CERTIFICATE = "bad_certificate"  # the certificate or the session key does not hold up
    STALE_CERTIFICATE = "stale_certificate"  # certified no later than a session already seen
    KEY_CHANGED = "key_changed"  # another identity key under a present name: both are dropped
    ROSTER_FULL = "roster_full"


@dataclass(slots=True)
class Peer:
    """A member whose certificate verified (our counters to it are in ``counters.SendCounters``)."""

    name: str
    identity_key: IdentityPublicKey
    session_key: SessionPublicKey
    issued_at: int
    fingerprint: str
    trust: TrustState = TrustState.NEW

    def info(self) -> ev.MemberInfo:
        return ev.MemberInfo(
            name=self.name, fingerprint=self.fingerprint, identity_key=self.identity_key, trust=self.trust
        )


@dataclass(frozen=True, slots=True)
class Admission:
    verdict: Verdict
    #: What the user is told: ``Joined`` and trust events, or the warning that says why not.
    events: list[ev.Event] = field(default_factory=list)
