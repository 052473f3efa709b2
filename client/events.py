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


@dataclass(frozen=True, slots=True, kw_only=True)
class Warning(Event):
    """Something failed a check; never shown as a message. ``kind`` is stable."""

    kind: str
    detail: str
    sender: str | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class Delivery(Event):
    """The relay's report for one of our messages: who got it handed on, who did not."""

    msg_id: str
    delivered: tuple[str, ...]
    missing: tuple[str, ...]


@dataclass(frozen=True, slots=True, kw_only=True)
class Disconnected(Event):
    """The session ended. ``code`` is the relay's error code when it refused us."""

    reason: str
    code: str | None = None
