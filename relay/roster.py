"""Who is in the room: one object behind one lock.

Entries are keyed by ``name_key`` (casefolded, lookalikes folded) so
``Alice`` and ``alice``, or Cyrillic ``аӏісе`` and ``alice``, cannot both join.
Every method takes the lock briefly and never does I/O;
callers that must keep an order (welcome before anyone's ``joined``) pass a
callback that runs under the lock and may only enqueue.
"""

from __future__ import annotations

import sys
import threading
from collections.abc import Callable, Iterable, Mapping
from typing import Generic, TypeVar

from susurro.protocol import Member, name_key
from susurro.protocol.frames import packed_member

P = TypeVar("P")
#: A copy in a ``send``'s map (the relay's are ``bytes``; ``split`` only carries them).
V = TypeVar("V")


class NameTaken(Exception):
    """The name, or one a reader could mistake for it, is present; ``args[0]`` is that name."""


class IdentityInUse(NameTaken):
    """A member under another name holds this identity key (``args[0]``): one session per identity
    key, so that a key names one member to everyone (rooms, mailboxes and receipts go by key)."""


class SessionKeyInUse(Exception):
    """Another member holds this session key: two members with one key would make
    clients refuse one of them as an impersonator (the join proof is signed by the
    identity key, so nothing else stops a member from naming someone else's key)."""


def exact_name(member: Member) -> str:
    """``member.name``, interned: the key ``_exact`` holds it under.

    msgpack interns every ``str`` key of a map it decodes, so each name of a
    ``send``'s ``to`` went into the interpreter's table of interned strings and
    out again when the frame was freed: both a dict insertion and a deletion a
    copy, 412 instructions a copy at N = 100 (callgrind, session 14). With the
    member's own name interned while it is in the room, the decoder finds it
    there, hands over this one object, and the lookup below matches it by
    identity. The table holds only names that something still references
    (CPython's interned strings are mortal on its default builds): it shrinks
    again as members leave.
    """
    name = member.name
    # A str subclass (only an embedding caller could pass one: msgpack makes exact str)
    # cannot be interned: it keeps its own object, as every name did before.
    return sys.intern(name) if type(name) is str else name


class RosterEntry(Generic[P]):
    """A member present: its record, where it is connected, and its record packed.

    A plain class, not a dataclass: this module is compiled (decision 61), and
    mypyc cannot compile a generic dataclass (the class fails at import).
    Nothing changes an entry once made; a rekey makes a new one.
    """

    __slots__ = ("member", "name", "packed", "peer")

    def __init__(self, member: Member, peer: P, packed: bytes) -> None:
        self.member = member
        #: ``member.name``, interned (``exact_name``), read here by every lookup (an attribute
        #: of this compiled class, not of the pure ``Member`` dataclass).
        self.name = exact_name(member)
        self.peer = peer
        #: ``member`` as msgpack, packed once: every later join's welcome lists it.
        self.packed = packed


class Roster(Generic[P]):
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._entries: dict[str, RosterEntry[P]] = {}
        #: The same entries under the exact name each member joined with: a
        #: ``send`` names members as the roster spells them, so routing finds
        #: them without folding every name (``name_key`` is the slow part).
        self._exact: dict[str, RosterEntry[P]] = {}
        self._session_keys: set[bytes] = set()
        #: identity key -> the name_key of the member holding it.
        self._identity_keys: dict[bytes, str] = {}
        #: Counts every change of the entries (a join, a leave, a rekey).
        self.generation = 0
        #: What callers keep of the current entries, by peer (the core: each sender's last
        #: delivered names). Replaced by an empty one at every change, after ``generation``
        #: moves: a caller that read the generation before its lookup and finds it unchanged
        #: when it stores here stores into the current dict; otherwise it must not store.
        self.kept: dict[P, object] = {}

    def __len__(self) -> int:
        with self._lock:
            return len(self._entries)

    def join(
        self,
        member: Member,
        peer: P,
        announce: Callable[[list[RosterEntry[P]]], None],
    ) -> None:
        """Add ``member``; ``announce(others)`` runs under the lock to enqueue welcome/joined."""
        key = name_key(member.name)
        with self._lock:
            if key in self._entries:
                raise NameTaken(self._entries[key].member.name)
            if member.sk in self._session_keys:
                raise SessionKeyInUse()
            holder = self._identity_keys.get(member.ik)
            if holder is not None:
                raise IdentityInUse(self._entries[holder].member.name)
            others = list(self._entries.values())
            entry = RosterEntry(member, peer, packed_member(member))
            self._entries[key] = self._exact[entry.name] = entry
            self._session_keys.add(member.sk)
            self._identity_keys[member.ik] = key
            self.generation += 1
            self.kept = {}
            announce(others)

    def leave(self, name: str, peer: P, announce: Callable[[list[RosterEntry[P]]], None]) -> bool:
        """Remove ``name`` if it is still held by ``peer``; ``announce(others)`` runs under the lock."""
        key = name_key(name)
        with self._lock:
            entry = self._entries.get(key)
            if entry is None or entry.peer is not peer:
                return False
            del self._entries[key]
            self._exact.pop(entry.member.name, None)
            self._session_keys.discard(entry.member.sk)
            self._identity_keys.pop(entry.member.ik, None)
            self.generation += 1
            self.kept = {}
            announce(list(self._entries.values()))
            return True

    def replace(
        self, name: str, peer: P, member: Member, announce: Callable[[list[RosterEntry[P]]], None]
    ) -> Member | None:
        """Swap ``peer``'s roster record (session key rotation); returns the old record.

        ``announce(others)`` runs under the lock, so anyone joining later gets
        the new record in its welcome and nobody hears of it twice.
        """
        key = name_key(name)
        with self._lock:
            entry = self._entries.get(key)
            if entry is None or entry.peer is not peer:
                return None
            if member.sk in self._session_keys:
                raise SessionKeyInUse()
            new = RosterEntry(member, peer, packed_member(member))  # before any change: it may raise
            self._exact.pop(entry.member.name, None)
            self._entries[key] = self._exact[new.name] = new
            self._session_keys.discard(entry.member.sk)
            self._session_keys.add(member.sk)
            self.generation += 1
            self.kept = {}
            announce([e for k, e in self._entries.items() if k != key])
            return entry.member

    def member(self, name: str, peer: P) -> Member | None:
        """The current record of ``name`` if ``peer`` holds it."""
        with self._lock:
            entry = self._entries.get(name_key(name))
            return entry.member if entry is not None and entry.peer is peer else None

    def lookup(self, names: Iterable[str]) -> tuple[list[tuple[str, str, P]], list[str]]:
        """Split ``names`` into present ``(asked name, roster name, peer)`` and absent names."""
        found: list[tuple[str, str, P]] = []
        missing: list[str] = []
        with self._lock:
            exact = self._exact
            for name in names:
                entry = exact.get(name)
                if entry is None:
                    entry = self._entries.get(name_key(name))
                if entry is None:
                    missing.append(name)
                else:
                    found.append((name, entry.name, entry.peer))
        return found, missing

    def split(self, to: Mapping[str, V]) -> tuple[list[RosterEntry[P]], list[str], list[V], list[str], bool]:
        """``lookup`` for a ``send``'s map of name -> copy, as parallel lists.

        Returns (the entries found, the names as asked, their copies, the
        absent names, whether any name was found only folded). The lists are
        parallel, not a tuple a recipient, and the copies come from the map's
        own items: at N = 100 a delivery's two tuples and its second dict
        lookup were a tenth of its routing. Two names of the map can reach one
        member only if one of them was found folded (the exact names are one
        per entry and the map's keys are distinct), so ``folded`` False means
        no member is named twice.
        """
        entries: list[RosterEntry[P]] = []
        asked: list[str] = []
        copies: list[V] = []
        missing: list[str] = []
        folded = False
        with self._lock:
            exact = self._exact
            for name, copy in to.items():
                entry = exact.get(name)
                if entry is None:
                    entry = self._entries.get(name_key(name))
                    if entry is None:
                        missing.append(name)
                        continue
                    folded = True
                entries.append(entry)
                asked.append(name)
                copies.append(copy)
        return entries, asked, copies, missing, folded

    def peers(self) -> list[P]:
        with self._lock:
            return [entry.peer for entry in self._entries.values()]
