"""The Susurro client: a headless core (``ClientSession``, sans-I/O, a facade
over the handshake, admission, rotation, incoming and outgoing parts), its
socket edge (``RelayConnection``) and the views built on its event stream
(the CLI; the Tk GUI in ``client.gui``).
"""

from . import events
from .connection import RelayConnection
from .errors import SendError, TrustError
from .link import LinkState
from .session import ClientSession
from .sockets import ConnectFailed, parse_address

__all__ = [
    "ClientSession",
    "ConnectFailed",
    "LinkState",
    "RelayConnection",
    "SendError",
    "TrustError",
    "events",
    "parse_address",
]
