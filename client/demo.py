"""The one-command local demo: a relay started inside the client when none is running.

Both views use it (``susurro-cli`` and ``susurro`` without ``--server``).
This is the only client module that imports the relay, lazily, inside
``start_local_relay`` (docs/decisions.md, entry 1).
"""

from __future__ import annotations

import logging
from collections.abc import Callable

from .home import susurro_home

DEFAULT_RELAY = "127.0.0.1:12345"
#: Overrides the address of the one-command local demo (tests use a free port).
LOCAL_RELAY_ENV = "SUSURRO_LOCAL_RELAY"


def start_local_relay(host: str, port: int, notice: Callable[[str], None]) -> Callable[[], None] | None:
    """Start an in-process relay on (host, port); returns its stop function.

    Returns None when the address is taken (another demo just started one).
    ``notice`` tells the user where the relay runs and where it logs.
    The client core never imports the relay; only this demo entry point does.
    """
    from susurro.relay import RelayConfig, RelayServer
    from susurro.relay.store import StoreError

    home = susurro_home()
    home.mkdir(parents=True, exist_ok=True)
    log_file = home / "relay.log"
    # The demo relay logs to a file, not over the chat on this terminal.
    if not logging.getLogger("susurro.relay").handlers:
        handler = logging.FileHandler(log_file, encoding="utf-8")
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(message)s"))
        logger = logging.getLogger("susurro.relay")
        logger.addHandler(handler)
        logger.setLevel(logging.INFO)
        logger.propagate = False
    # Rooms made in the demo outlive it, in the user's own directory.
    data_dir = home / "relay-data"
    try:
        server = RelayServer(RelayConfig(host=host, port=port, data_dir=str(data_dir)))
    except StoreError as exc:
        notice(f"rooms are kept in memory only this time: {exc}")
        server = RelayServer(RelayConfig(host=host, port=port))
    try:
        server.start()
    except OSError:
        return None
    notice(
        f"no relay was running on {host}:{port}; started one in this process "
        f"(others on this machine join with: susurro-cli --name NAME; relay log: {log_file}; rooms in {data_dir})"
    )
    return lambda: server.stop("the person running this demo relay left")
