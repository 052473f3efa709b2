"""The blind relay: routes sealed envelopes and the roster, never plaintext.

``RelayCore`` is the logic with no sockets; ``RelayServer`` runs it on TCP.
"""

from .config import RelayConfig
from .core import Connection, RelayCore
from .outbox import Outbox
from .roster import Roster
from .server import RelayServer

__all__ = ["Connection", "Outbox", "RelayConfig", "RelayCore", "RelayServer", "Roster"]
