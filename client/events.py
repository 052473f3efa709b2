"""What the client core tells its views (CLI, GUI): one stream of events.

Events are frozen, slotted dataclasses named as nouns. Views only draw them;
every decision (is this message genuine? who did not get mine?) was made in
the core before the event was built.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass

from susurro.crypto import IdentityPublicKey
from susurro.crypto.trust import TrustState
from susurro.protocol import ErrorCode


class WarningKind(str, enum.Enum):
    """What failed, as a stable short name (the ``kind`` of ``--json`` warnings).

    The crypto checks' names are the ``kind`` of the ``CryptoError`` that
    failed (``of_crypto`` maps one to the other); the rest are the client's.
    """

    # a check on a message failed (crypto's names)
    BAD_SIGNATURE = "bad_signature"
    BAD_CERTIFICATE = "bad_certificate"
    BAD_PUBLIC_KEY = "bad_public_key"
    DECRYPT_FAILED = "decrypt_failed"
    MALFORMED_MESSAGE = "malformed_message"
    SENDER_MISMATCH = "sender_mismatch"
    NOT_ADDRESSED_TO_ME = "not_addressed_to_me"
    REPLAY = "replay"
    MESSAGE_TOO_LARGE = "message_too_large"
    CRYPTO_ERROR = "crypto_error"
    GAP = "gap"
    RECIPIENT_KEY_MISMATCH = "recipient_key_mismatch"
    UNKNOWN_SENDER = "unknown_sender"
    # a roster entry was refused
    BAD_NAME = "bad_name"
    IMPERSONATION = "impersonation"
    DUPLICATE_NAME = "duplicate_name"
    STALE_SESSION = "stale_session"
    STALE_CERTIFICATE = "stale_certificate"
    KEY_CHANGED = "key_changed"
    ROSTER_FULL = "roster_full"
    # the relay, the link, our own messages
    PROTOCOL_ERROR = "protocol_error"
    RELAY_ERROR = "relay_error"
    INTERNAL_ERROR = "internal_error"
    DELIVERY_UNKNOWN = "delivery_unknown"
    #: The relay threw away copies of ours it had queued (``dropped``); they are sent again.
    DROPPED = "dropped"
    #: Quitting with a message no receipt has confirmed yet: kept, and sent again next time.
    UNCONFIRMED = "unconfirmed"
    MESSAGE_HELD = "message_held"
    NOT_SENT = "not_sent"
    TRUST_STORE = "trust_store"
    #: Entries of the saved state (rooms, invitations, rooms to check) that could not be read: left out.
    SAVED_ENTRY_UNREADABLE = "saved_entry_unreadable"
    #: The whole saved state file could not be opened: started afresh, the file kept aside.
    SAVED_STATE_UNREADABLE = "saved_state_unreadable"
    # messages that wait (prekeys and mailboxes)
    BAD_PREKEY = "bad_prekey"
    PREKEY_EXHAUSTED = "prekey_exhausted"
    PREKEY_REUSED = "prekey_reused"
    UNKNOWN_PREKEY = "unknown_prekey"
    #: A one-time prekey past its signed expiry was handed out: sealed to the signed prekey alone.
    PREKEY_EXPIRED = "prekey_expired"
    #: A waiting message signed longer ago than any mailbox keeps mail (15 days): not shown.
    STALE_MAIL = "stale_mail"
    LATE = "late"
    # a room's membership log failed a check (``rooms.RoomBook``)
    ROOM_BAD_LOG = "room_bad_log"
    ROOM_FORK = "room_fork"
    ROOM_FORK_CLAIMED = "room_fork_claimed"
    ROOM_WITHHELD = "room_withheld"
    ROOM_NOT_A_MEMBER = "room_not_a_member"
    ROOM_LABEL_CHANGED = "room_label_changed"
    ROOM_REFUSED = "room_refused"
    ROOM_STALE_HEAD = "room_stale_head"
    ROOM_LABEL_MOVED = "room_label_moved"
    ROOM_KEY_MISMATCH = "room_key_mismatch"
    ROOM_STALE_SENDER_HEAD = "room_stale_sender_head"
    #: A message to a room whose invitation we declined: not shown, nothing kept.
    ROOM_NOT_ACCEPTED = "room_not_accepted"
    # the terminal client's own refusals (``--json`` warnings it writes itself)
    SEND_FAILED = "send_failed"
    TRUST_FAILED = "trust_failed"

    def __str__(self) -> str:  # f-strings and JSON show the stable name, as they did when it was text
        return str(self.value)

    @classmethod
    def of_crypto(cls, kind: str) -> WarningKind:
        """The warning for a ``CryptoError.kind``; an unknown one is a generic crypto error."""
        try:
            return cls(kind)
        except ValueError:
            return cls.CRYPTO_ERROR


class Ending(str, enum.Enum):
    """Why the relay ended our session when it sent no error code."""

    #: The relay announced that it is shutting down (``shutdown`` frame).
    SHUTDOWN = "shutdown"

    def __str__(self) -> str:
        return str(self.value)


#: The relay's reason for ending our session: an ``ErrorCode`` it sent, an
#: announced ``SHUTDOWN``, or the text of an error code this version does not know.
EndCode = ErrorCode | Ending | str


def end_code(code: str) -> EndCode:
    """An error frame's ``code`` as the enum member it names, or as text when unknown."""
    try:
        return ErrorCode(code)
    except ValueError:
        return code


def code_text(code: EndCode | None) -> str | None:
    """The stable text of an ending's code (what ``--json`` shows)."""
    if isinstance(code, (ErrorCode, Ending)):
        return str(code.value)
    return code


@dataclass(frozen=True, slots=True, kw_only=True)
class MemberInfo:
    """A member whose session certificate verified: what a view may show."""

    name: str
    fingerprint: str
    identity_key: IdentityPublicKey
    #: ``NEW`` (first sight, pinned now), ``PINNED``, ``VERIFIED`` or ``CHANGED`` (blocked until accepted).
    trust: TrustState = TrustState.NEW


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
    #: The sender's trust state when it arrived: views badge ``VERIFIED`` and mark ``NEW``/``CHANGED``.
    trust: TrustState = TrustState.NEW
    #: It waited in our mailbox on the relay (sent while we were away).
    waited: bool = False
    #: The sender's identity key it verified under (kept in the history with ``trust``).
    identity_key: bytes = b""


@dataclass(frozen=True, slots=True, kw_only=True)
class Warning(Event):
    """Something failed a check; never shown as a message. ``kind`` is stable."""

    kind: WarningKind
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
    #: Absent members whose copy waits in their mailbox on the relay (messages that wait).
    waiting: tuple[str, ...] = ()
    #: Absent members whose copy could not be left for them: (name, reason).
    not_delivered: tuple[tuple[str, str], ...] = ()


@dataclass(frozen=True, slots=True, kw_only=True)
class Receipt(Event):
    """``sender``'s client signed that it has shown these messages of ours: delivered, in their own word."""

    sender: str
    msg_ids: tuple[str, ...]
    #: Those of ``msg_ids`` that were waiting for ``sender`` in their mailbox (remembered across our
    #: restarts): "waiting for bob" becomes "delivered to bob" for these.
    waited: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True, kw_only=True)
class Disconnected(Event):
    """The session ended. ``code`` is the relay's error code when it refused us."""

    reason: str
    code: EndCode | None = None


# --- the link comes back by itself ----------------------------------------------------


@dataclass(frozen=True, slots=True, kw_only=True)
class Reconnecting(Event):
    """The link to the relay broke; the next attempt starts in ``delay`` seconds.

    After a successful attempt the usual ``Connected`` and ``Roster`` follow
    (a fresh session key, the same identity). ``reason`` says what broke;
    ``code`` is the relay's error code when it refused us (``cluster_down``: it
    cannot let anyone join right now), else None.
    """

    delay: float
    attempt: int
    reason: str
    code: EndCode | None = None
