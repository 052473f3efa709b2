"""Protocol errors, split by who is at fault (as h11 does).

``RemoteProtocolError`` means the peer sent something we refuse; the relay turns
it into an ``error`` frame, the client into a warning. ``LocalProtocolError``
means our own code tried to build something invalid: a bug or a request the
protocol cannot carry (e.g. a message larger than the relay's frame limit).
"""

from __future__ import annotations

from enum import Enum


class ErrorCode(str, Enum):
    """Codes carried in ``error`` frames; stable strings, documented in docs/protocol.md."""

    BAD_FRAME = "bad_frame"
    FRAME_TOO_LARGE = "frame_too_large"
    BAD_VERSION = "bad_version"
    BAD_TYPE = "bad_type"
    BAD_FIELD = "bad_field"
    NOT_JOINED = "not_joined"
    ALREADY_JOINED = "already_joined"
    BAD_PROOF = "bad_proof"
    BAD_CERT = "bad_cert"
    BAD_NAME = "bad_name"
    NAME_TAKEN = "name_taken"
    #: Another session of the same identity key is connected (under another name): one at a time.
    IDENTITY_IN_USE = "identity_in_use"
    FULL = "full"
    #: A relay node of a cluster cannot reach the store it shares with the other nodes (Redis), so it
    #: cannot check that a joiner's name and key are free: refused, and worth another try shortly.
    CLUSTER_DOWN = "cluster_down"
    TOO_MANY_RECIPIENTS = "too_many_recipients"
    HANDSHAKE_TIMEOUT = "handshake_timeout"
    INTERNAL = "internal"
    # Limits that keep one client from costing the others (flood, idle, per-address).
    RATE_LIMITED = "rate_limited"
    IDLE_TIMEOUT = "idle_timeout"
    TOO_MANY_CONNECTIONS = "too_many_connections"
    # Rooms: answered in ``room_error``; the connection stays.
    NO_SUCH_ROOM = "no_such_room"
    ROOM_CONFLICT = "room_conflict"
    BAD_ENTRY = "bad_entry"
    LABEL_TAKEN = "label_taken"
    ROOM_LIMIT = "room_limit"
    # Messages that wait (mailboxes): a refused prekeys frame; the connection stays.
    BAD_PREKEY = "bad_prekey"
    TOO_MANY_PREKEYS = "too_many_prekeys"


class ProtocolError(Exception):
    """Base of every protocol error: a machine-readable code and a human detail."""

    def __init__(self, code: ErrorCode, detail: str) -> None:
        super().__init__(f"{code.value}: {detail}")
        self.code = code
        self.detail = detail


class RemoteProtocolError(ProtocolError):
    """The peer sent bytes or a frame that breaks the protocol."""


class LocalProtocolError(ProtocolError):
    """We were asked to build or send something the protocol forbids."""
