"""Every storage backend of the relay, opened the same way, so one contract test runs on each.

Each call of ``rooms()``, ``mailboxes()`` or ``prekeys()`` opens another handle
on the one shared backend, as another relay process would: another
``Database`` on the same SQLite file, or another Redis client on the same
server. ``restart()`` is what a restart is for that backend: every SQLite
handle closed (the file stays); the real ``redis-server`` stopped and started
again on its append-only file. Nothing is faked.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from pathlib import Path

import redis

from susurro.crypto.prekeys import MAX_STORED_ONE_TIME_PREKEYS
from susurro.relay.cluster.connect import open_redis
from susurro.relay.store import Database, RoomStore, SQLiteRoomStore
from susurro.relay.store.mailbox import (
    MailboxLimits,
    MailboxStore,
    PrekeyStore,
    SQLiteMailboxStore,
    SQLitePrekeyStore,
)
from susurro.relay.store.redis import RedisRoomStore
from susurro.relay.store.redis_mailbox import RedisMailboxStore, RedisPrekeyStore
from tests.helpers.redis_server import RedisServer

BACKENDS = ("sqlite", "redis")


class StoreBackend(ABC):
    name: str

    @abstractmethod
    def rooms(self) -> RoomStore: ...

    @abstractmethod
    def mailboxes(self, limits: MailboxLimits | None = None) -> MailboxStore: ...

    @abstractmethod
    def prekeys(self, max_one_time: int = MAX_STORED_ONE_TIME_PREKEYS) -> PrekeyStore: ...

    @abstractmethod
    def restart(self) -> None:
        """Stop and start the backend; handles opened before are closed and must not be used again."""

    @abstractmethod
    def close(self) -> None: ...


class SQLiteBackend(StoreBackend):
    name = "sqlite"

    def __init__(self, path: Path) -> None:
        self.path = path
        self._open: list[Database] = []

    def _database(self) -> Database:
        self._open.append(Database(self.path))
        return self._open[-1]

    def rooms(self) -> RoomStore:
        return SQLiteRoomStore(self._database())

    def mailboxes(self, limits: MailboxLimits | None = None) -> MailboxStore:
        return SQLiteMailboxStore(self._database(), limits)

    def prekeys(self, max_one_time: int = MAX_STORED_ONE_TIME_PREKEYS) -> PrekeyStore:
        return SQLitePrekeyStore(self._database(), max_one_time)

    def restart(self) -> None:
        self.close()

    def close(self) -> None:
        for database in self._open:
            database.close()
        self._open.clear()


class RedisBackend(StoreBackend):
    name = "redis"

    def __init__(self, server: RedisServer) -> None:
        self.server = server
        self._open: list[redis.Redis] = []

    def client(self) -> redis.Redis:
        """A client as the relay opens it (bounded waits, one retry)."""
        self._open.append(open_redis(self.server.url, self.server.password))
        return self._open[-1]

    def rooms(self) -> RoomStore:
        return RedisRoomStore(self.client())

    def mailboxes(self, limits: MailboxLimits | None = None) -> MailboxStore:
        return RedisMailboxStore(self.client(), limits)

    def prekeys(self, max_one_time: int = MAX_STORED_ONE_TIME_PREKEYS) -> PrekeyStore:
        return RedisPrekeyStore(self.client(), max_one_time)

    def restart(self) -> None:
        self.close()
        self.server.restart()

    def close(self) -> None:
        for client in self._open:
            client.close()
        self._open.clear()
