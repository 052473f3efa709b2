"""People whose state outlives their sessions, for the mailbox tests without sockets.

``User`` is one person's lasting state (identity, pins, saved prekeys and mail
state, history file); ``relay`` a ``SessionPair`` on a real SQLite data dir;
``joined`` the room with some of them in it (and met), the clock at ``T0``;
``bob_away`` alice and bob who met, then bob went away.
"""

from __future__ import annotations

from pathlib import Path

from susurro.client.history import SqliteHistory
from susurro.client.mailbox import Mailbox
from susurro.client.mailstate import MailState
from susurro.client.prekeyring import PrekeyRing
from susurro.crypto import IdentityKey, ReplayGuard
from susurro.crypto.history import HistoryKey
from susurro.crypto.trust import TrustStore
from susurro.protocol import name_key
from susurro.relay import RelayConfig
from tests.helpers.session_pair import SessionPair

HOUR = 3600.0
T0 = 1_764_000_000.0


class User:
    """One person's lasting state: identity, pins, saved prekeys, history file."""

    def __init__(self, name: str, home: Path) -> None:
        self.name = name
        self.identity = IdentityKey.generate()
        self.trust = TrustStore(None, key_of=name_key)
        self.saved_ring: bytes | None = None
        self.saved_state: bytes | None = None
        self.history_path = home / name / "history.sqlite3"

    def session_options(self, clock: list[float]) -> dict[str, object]:
        ring = PrekeyRing.load(self.identity, self.saved_ring) if self.saved_ring else PrekeyRing(self.identity)
        state = MailState.unseal(self.identity, self.saved_state) if self.saved_state else None
        replay = ReplayGuard()

        def save(mailbox: Mailbox) -> None:
            self.saved_ring = mailbox.ring.export()
            self.saved_state = mailbox.export_state()

        mailbox = Mailbox(
            self.identity, self.name, self.trust, replay, ring=ring, save=save, state=state, clock=lambda: clock[0]
        )
        return {
            "identity": self.identity,
            "trust": self.trust,
            "replay": replay,
            "mailbox": mailbox,
            "wall_clock": lambda: clock[0],
            "history": SqliteHistory(self.history_path, HistoryKey.derive(self.identity)),
        }


def relay(data_dir: Path) -> SessionPair:
    return SessionPair(RelayConfig(data_dir=str(data_dir), rate_burst=10_000), now=T0)


def joined(tmp_path: Path, *names: str, home: Path | None = None) -> tuple[SessionPair, list[User], list[float]]:
    """A relay on ``tmp_path/relay`` with these people joined in turn (each pinned the others), at ``T0``.

    Returns the room, the users (in ``names`` order, their files under ``home``,
    ``tmp_path`` by default) and the clock their sessions read.
    """
    clock = [T0]
    users = [User(name, home if home is not None else tmp_path) for name in names]
    room = relay(tmp_path / "relay")
    for user in users:
        room.add(user.name, **user.session_options(clock))
    room.pump()
    return room, users, clock


def bob_away(tmp_path: Path) -> tuple[SessionPair, User, User, list[float]]:
    """alice and bob have met (each pinned the other), and bob has gone away; the clock is at ``T0``."""
    room, (alice, bob), clock = joined(tmp_path, "alice", "bob")
    room.hang_up("bob")
    room.pump()
    return room, alice, bob, clock
