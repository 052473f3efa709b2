"""Every size limit of the wire protocol, in one place.

Anything that arrives from the network is bounded by one of these constants
before it is allocated or parsed; the relay exposes the ones an operator may
want to tune as flags, with these as the defaults.
"""

from __future__ import annotations

PROTOCOL_VERSION = 1

#: Bytes in the big-endian length prefix of every frame.
LENGTH_PREFIX_SIZE = 4
#: Default (and client-side assumed) maximum frame payload, in bytes.
DEFAULT_MAX_FRAME = 1024 * 1024
#: No relay may be configured above this: it bounds a reader's buffer.
ABSOLUTE_MAX_FRAME = 16 * 1024 * 1024
#: The smallest useful frame limit (a welcome for a small room must fit).
MIN_MAX_FRAME = 4 * 1024

#: Member names, in characters. Every name on the wire is already NFKC-normalized
#: (the relay refuses one that is not), so this one bound holds before and after.
MAX_NAME_CHARS = 32
#: Client-chosen message ids (the relay only echoes them).
MAX_MSG_ID_CHARS = 64
#: Free-text fields the relay writes (error details, shutdown reasons).
MAX_DETAIL_CHARS = 512
#: Error codes and frame type names.
MAX_CODE_CHARS = 32
#: Recipients in one ``send`` (the relay may be configured lower).
DEFAULT_MAX_RECIPIENTS = 256
#: No relay may allow more recipients per ``send``: a client seals one message to at most this many.
MAX_RECIPIENTS = 1024
#: Members listed in one ``welcome`` roster.
MAX_ROSTER = 10_000

#: Bounds handed to msgpack's unpacker; no single container or string from the
#: network can be larger than this, whatever its length header claims.
MAX_STR_LEN = 64 * 1024
MAX_ARRAY_LEN = MAX_ROSTER
MAX_MAP_LEN = 1024
#: Containers (maps and arrays) in one frame, in all: a full welcome needs one
#: map per member. Bounds the heap a frame can cost, whatever its nesting.
MAX_CONTAINERS = MAX_ROSTER + 64

#: Frames a relay accepts before a successful join: only a ``hello`` is valid
#: there, and it is about 300 bytes. Unauthenticated peers get no more.
MAX_HANDSHAKE_FRAME = 2048

#: Fixed sizes of keys and signatures on the wire. These, the name and message-id
#: bounds and MAX_RECIPIENTS are stated again in crypto/limits.py (crypto imports
#: nothing of ours); tests/unit/test_limits_agree.py checks that they agree.
PUBLIC_KEY_SIZE = 32
SIGNATURE_SIZE = 64
CHALLENGE_SIZE = 32

# --- rooms (protocol/rooms.py; the entry format is crypto/membership.py's) ------
#: A room id, and every entry hash, is a BLAKE2b-256 digest.
ROOM_ID_SIZE = 32
#: One membership-log entry on the wire (crypto.membership.MAX_ENTRY_BYTES).
MAX_ENTRY_BYTES = 2048
#: Entries in one ``room_append``.
MAX_APPEND_ENTRIES = 64
#: Entries in one ``room_log`` or ``room_update``: a batch of full entries
#: fits in the default 1 MiB frame; clients fetch on for the rest.
MAX_LOG_BATCH = 256
#: Rooms in one ``room_index``.
MAX_ROOM_INDEX = 1024
#: Names in a room's presence hint, and the member count a relay reports.
MAX_ROOM_ONLINE = 1024
