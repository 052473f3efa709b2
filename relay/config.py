"""Relay settings with their defaults; every limit is a flag of ``susurro-relay``."""

from __future__ import annotations

from dataclasses import dataclass

from susurro.protocol.limits import DEFAULT_MAX_FRAME, DEFAULT_MAX_RECIPIENTS

from .budget import DEFAULT_MAX_PARTIAL_BYTES, DEFAULT_MEMORY_BUDGET
from .idle import DEFAULT_IDLE_PING, DEFAULT_IDLE_TIMEOUT
from .outbox import DEFAULT_OUTBOX_BYTES
from .ratelimit import DEFAULT_RATE_BURST, DEFAULT_RATE_GRACE, DEFAULT_RATE_PER_SECOND
from .rooms import (
    DEFAULT_MAX_ENTRY_BYTES,
    DEFAULT_MAX_ROOM_ENTRIES,
    DEFAULT_MAX_ROOM_MEMBERS,
    DEFAULT_MAX_ROOMS,
    DEFAULT_MAX_ROOMS_PER_IDENTITY,
)
from .store.mailbox import (
    DEFAULT_MAILBOX_BYTES,
    DEFAULT_MAILBOX_DAYS,
    DEFAULT_MAILBOX_ITEMS,
    DEFAULT_MAILBOX_PER_SENDER,
    DEFAULT_ONE_TIME_PER_FETCHER,
)

DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 12345
DEFAULT_MAX_CLIENTS = 1000
DEFAULT_HANDSHAKE_TIMEOUT = 10.0
#: How long a closing connection's writer may take to flush before the socket is cut.
FLUSH_TIMEOUT = 2.0
#: Connections at once from one source address (loopback exempt unless asked).
DEFAULT_MAX_PER_IP = 16
#: A blocking send to one client may take this long before the client is dropped.
DEFAULT_SEND_TIMEOUT = 30.0
#: A frame whose first byte has arrived must be complete this many seconds later
#: (1 MiB at 35 KB/s); single bytes of it are not signs of life (a dribbling client must not pin a buffer).
DEFAULT_FRAME_TIMEOUT = 30.0
#: I/O threads (epoll loops), each owning a share of the connections; see decision 37.
DEFAULT_IO_THREADS = 1
#: Threads per I/O loop that send a large pass's copies while the loop goes on reading
#: (relay/outbox.py, FlushPool): two, so the sends use both cores of a small machine (decision 63).
DEFAULT_FLUSH_THREADS = 2
#: Longest a pass that wrote to many members keeps its copies while more input is
#: being read, so the next messages to the room leave in the same ``send`` per
#: member (relay/loop.py, FANOUT_HOLD_OUTBOXES); and the most an operator may set.
DEFAULT_FANOUT_HOLD_MS = 10
MAX_FANOUT_HOLD_MS = 50


def default_max_pending(max_clients: int) -> int:
    """Connections that have not joined yet, at most: a quarter of the slots (idle sockets cannot keep members out)."""
    return max(1, max_clients // 4)


@dataclass(frozen=True, slots=True, kw_only=True)
class RelayConfig:
    host: str = DEFAULT_HOST
    port: int = DEFAULT_PORT
    max_frame: int = DEFAULT_MAX_FRAME
    max_clients: int = DEFAULT_MAX_CLIENTS
    max_recipients: int = DEFAULT_MAX_RECIPIENTS
    outbox_bytes: int = DEFAULT_OUTBOX_BYTES
    handshake_timeout: float = DEFAULT_HANDSHAKE_TIMEOUT
    log_ciphertext: bool = False
    #: Name registry file (``--registry``); None: names are free again once their holder leaves.
    registry: str | None = None
    registry_max_names: int = 100_000
    # TLS (relay/tls.py): PEM certificate chain and key; None serves plain TCP.
    tls_cert: str | None = None
    tls_key: str | None = None
    # Keepalive, flood and per-address limits (see docs/deploy.md).
    idle_ping: float = DEFAULT_IDLE_PING
    idle_timeout: float = DEFAULT_IDLE_TIMEOUT
    send_timeout: float = DEFAULT_SEND_TIMEOUT
    max_per_ip: int = DEFAULT_MAX_PER_IP
    limit_loopback: bool = False
    rate_burst: int = DEFAULT_RATE_BURST
    rate_per_second: float = DEFAULT_RATE_PER_SECOND
    # Rooms in SQLite under data_dir (None: in memory), and their limits (relay/rooms.py).
    data_dir: str | None = None
    max_rooms_per_identity: int = DEFAULT_MAX_ROOMS_PER_IDENTITY
    max_room_members: int = DEFAULT_MAX_ROOM_MEMBERS
    max_room_entries: int = DEFAULT_MAX_ROOM_ENTRIES
    max_entry_bytes: int = DEFAULT_MAX_ENTRY_BYTES
    max_rooms: int = DEFAULT_MAX_ROOMS
    # Mailboxes for members who are away (relay/mailbox.py), in the same database.
    mailbox_messages: int = DEFAULT_MAILBOX_ITEMS
    mailbox_bytes: int = DEFAULT_MAILBOX_BYTES
    mailbox_per_sender: int = DEFAULT_MAILBOX_PER_SENDER
    mailbox_days: float = DEFAULT_MAILBOX_DAYS
    mailbox_prekeys_per_day: int = DEFAULT_ONE_TIME_PER_FETCHER
    # Capacity: pacing, unfinished frames, one memory budget, pre-join quota, I/O threads.
    rate_grace: float = DEFAULT_RATE_GRACE
    frame_timeout: float = DEFAULT_FRAME_TIMEOUT
    memory_budget: int = DEFAULT_MEMORY_BUDGET
    max_partial_bytes: int = DEFAULT_MAX_PARTIAL_BYTES
    #: None: ``default_max_pending(max_clients)``.
    max_pending: int | None = None
    io_threads: int = DEFAULT_IO_THREADS
    flush_threads: int = DEFAULT_FLUSH_THREADS
    fanout_hold: float = DEFAULT_FANOUT_HOLD_MS / 1000
    #: Give the allocator's stranded free memory back after a burst (relay/memory.py).
    memory_trim: bool = True
    # The cluster: ``redis://HOST:PORT/DB`` shared with other relay processes (relay/cluster/), and
    # the file holding its password (else $SUSURRO_REDIS_PASSWORD). None: one process, SQLite.
    cluster: str | None = None
    cluster_password_file: str | None = None

    @property
    def pending_quota(self) -> int:
        return self.max_pending if self.max_pending is not None else default_max_pending(self.max_clients)
