"""What the client core tells its views (CLI, GUI): one stream of events.

Events are frozen, slotted dataclasses named as nouns. Views only draw them;
every decision (is this message genuine? who did not get mine?) was made in
the core before the event was built.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True, kw_only=True)
class MemberInfo:
    """A member whose session certificate verified: what a view may show."""

    name: str
    fingerprint: str
    identity_key: bytes
    #: "new" (first sight, pinned now), "pinned", "verified" or "changed" (blocked until accepted).
    trust: str = "new"


@dataclass(frozen=True, slots=True, kw_only=True)
class Event:
    pass


@dataclass(frozen=True, slots=True, kw_only=True)
class Connected(Event):
    """We joined the room as ``name``."""

    name: str
    fingerprint: str
    relay: str


@dataclass(frozen=True, slots=True, kw_only=True)
class Roster(Event):
    """Everyone else present when we joined (verified members only)."""

    members: tuple[MemberInfo, ...]


@dataclass(frozen=True, slots=True, kw_only=True)
class Joined(Event):
    member: MemberInfo


@dataclass(frozen=True, slots=True, kw_only=True)
class Left(Event):
    name: str


@dataclass(frozen=True, slots=True, kw_only=True)
class Message(Event):
    """A message that decrypted, verified, is addressed to us and is not a replay."""

    sender: str
    text: str
    to: tuple[str, ...]
    direct: bool
    msg_id: str
    sent_at: int
    #: The sender's trust state when it arrived: views badge "verified" and mark "new"/"changed".
    trust: str = "new"


@dataclass(frozen=True, slots=True, kw_only=True)
class Warning(Event):
    """Something failed a check; never shown as a message. ``kind`` is stable."""

    kind: str
    detail: str
    sender: str | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class KeyChanged(Warning):
    """A member's identity key differs from the one pinned for the name.

    Either they made a new key (new device, lost file) or the relay is
    substituting one. Nothing is encrypted to them until the user compares
    safety numbers and accepts the new key. ``kind`` is ``key_changed``.
    """

    name: str
    old_fingerprint: str
    new_fingerprint: str


@dataclass(frozen=True, slots=True, kw_only=True)
class TrustUpdated(Event):
    """The user verified or accepted a member's key; ``member.trust`` is the new state."""

    member: MemberInfo


@dataclass(frozen=True, slots=True, kw_only=True)
class Delivery(Event):
    """The relay's report for one of our messages: who got it handed on, who did not."""

    msg_id: str
    delivered: tuple[str, ...]
    missing: tuple[str, ...]
    #: Members we did not encrypt to: key changed and not accepted, or not verified in strict mode.
    skipped: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True, kw_only=True)
class Disconnected(Event):
    """The session ended. ``code`` is the relay's error code when it refused us."""

    reason: str
    code: str | None = None


# --- reconnect (issue 5) ----------------------------------------------------------


@dataclass(frozen=True, slots=True, kw_only=True)
class Reconnecting(Event):
    """The link to the relay broke; the next attempt starts in ``delay`` seconds.

    After a successful attempt the usual ``Connected`` and ``Roster`` follow
    (a fresh session key, the same identity). ``reason`` says what broke.
    """

    delay: float
    attempt: int
    reason: str
