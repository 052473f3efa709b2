"""The Susurro client: a headless core (``ClientSession``, sans-I/O), its socket
edge (``RelayConnection``) and the views built on its event stream (the CLI;
the Tk GUI in ``client.gui``).
"""

from . import events
from .connection import ConnectFailed, RelayConnection, parse_address
from .session import ClientSession, SendError, State

__all__ = ["ClientSession", "ConnectFailed", "RelayConnection", "SendError", "State", "events", "parse_address"]
