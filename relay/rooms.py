"""Rooms on the relay: checking, storing and serving membership logs. No sockets.

``RoomService`` handles the room frames (``protocol/rooms.py``) for the core.
It verifies every entry with ``crypto.membership`` before storing it, the
same way every client verifies it again: the relay's check is defence in
depth, so a buggy or hostile client cannot leave a log that members would
refuse. It keeps presence per room (which members are connected, from the
core's roster) and pushes ``room_update`` to them when a log grows.

A refusal is a ``room_error`` for that request alone. Room changes are logged
(``room-create``, ``room-add``, ...) with the short room id, label and names:
all public parts of the signed log; there is no plaintext to log.
"""

from __future__ import annotations

import argparse
import dataclasses
import logging
import threading
from collections import OrderedDict
from collections.abc import Callable, Iterable
from functools import partial
from typing import TYPE_CHECKING, Any

from susurro.crypto import (
    EntryKind,
    LogHead,
    LogRules,
    RoomEntry,
    RoomLimitExceeded,
    RoomLogError,
    RoomPolicy,
    RoomState,
    entry_hash,
    short_room_id,
    verify_log,
)
from susurro.protocol import (
    ErrorCode,
    Frame,
    ProtocolError,
    RoomAppend,
    RoomCreate,
    RoomError,
    RoomFetch,
    RoomFind,
    RoomIndex,
    RoomInfo,
    RoomList,
    RoomLog,
    RoomUpdate,
    encode,
    name_key,
    normalize_name,
)
from susurro.protocol.limits import ABSOLUTE_MAX_FRAME, MAX_ENTRY_BYTES, MAX_LOG_BATCH, MAX_ROOM_INDEX

from .peer import Handler, Notify, offer, offer_each
from .peer import Peer as RoomPeer
from .store import HeadMoved, LabelTaken, MemberRecord, RoomStore, StoreError

if TYPE_CHECKING:
    from .config import RelayConfig

log = logging.getLogger("susurro.relay")

DEFAULT_MAX_ROOMS_PER_IDENTITY = 32
DEFAULT_MAX_ROOM_MEMBERS = 256
DEFAULT_MAX_ROOM_ENTRIES = 4096
DEFAULT_MAX_ENTRY_BYTES = 1024
DEFAULT_MAX_ROOMS = 10_000
#: Verified room states kept in memory; others are re-verified from the store when asked for.
STATE_CACHE_ROOMS = 1024


class RoomRefused(Exception):
    """A room request refused; becomes one ``room_error``."""

    def __init__(self, code: ErrorCode, detail: str) -> None:
        super().__init__(detail)
        self.code = code
        self.detail = detail


def valid_name(text: str) -> bool:
    """Subject names and labels follow the member-name rules, in normalized form."""
    try:
        return normalize_name(text) == text
    except ProtocolError:
        return False


class RoomService:
    """Room requests in, frames to outboxes out. One lock orders every change."""

    def __init__(
        self,
        store: RoomStore,
        limits: RelayConfig,
        peers: Callable[[], Iterable[RoomPeer]],
        notify: Notify = offer_each,
    ) -> None:
        """``limits`` is the relay's config (its ``max_room*``, ``max_entry_bytes`` and ``max_rooms``);
        ``notify`` offers a ``room_update`` to the members it is for."""
        self.store = store
        self.limits = limits
        self.rules = LogRules(
            max_members=limits.max_room_members,
            max_entries=limits.max_room_entries,
            name_key=name_key,
            name_ok=valid_name,
        )
        self._peers = peers
        self._notify = notify
        self._lock = threading.Lock()
        self._states: OrderedDict[bytes, RoomState] = OrderedDict()

    def handlers(self) -> dict[type[Frame], Handler]:
        """Room request type -> its handler, for the relay core's dispatch table."""
        requests: dict[type[Frame], Callable[[RoomPeer, Any], Frame]] = {
            RoomCreate: self._create,
            RoomAppend: self._append,
            RoomFetch: lambda peer, frame: self._fetch(peer, frame.id, frame.room, frame.from_seq),
            RoomFind: self._find,
            RoomList: self._list,
        }
        return {kind: partial(self._answer, request) for kind, request in requests.items()}

    def handle(self, peer: RoomPeer, frame: Frame) -> None:
        """Answer one room request from a joined connection (as the core's table would)."""
        self.handlers()[type(frame)](peer, frame)

    def _answer(self, request: Callable[[RoomPeer, Any], Frame], peer: RoomPeer, frame: Frame) -> None:
        """Run ``request``; its answer, or the ``room_error`` it was refused with, goes to ``peer``."""
        request_id = getattr(frame, "id", "")
        try:
            answer = request(peer, frame)
        except RoomRefused as refusal:
            log.warning(
                "room-reject name=%s id=%s code=%s detail=%s", peer.name, request_id, refusal.code.value, refusal.detail
            )
            answer = RoomError(id=request_id, code=refusal.code.value, detail=refusal.detail[:512])
        except StoreError as exc:
            log.error("room-store-error name=%s id=%s error=%s", peer.name, request_id, exc)
            answer = RoomError(
                id=request_id, code=ErrorCode.INTERNAL.value, detail="the relay cannot store rooms right now"
            )
        offer(peer, answer)

    # --- requests ---------------------------------------------------------------

    def _create(self, peer: RoomPeer, frame: RoomCreate) -> Frame:
        self._check_size(frame.entry)
        try:
            state = verify_log([frame.entry], self.rules)
        except RoomLogError as exc:
            raise self._bad_entry(exc) from None
        if state.creator != peer.ik:
            raise RoomRefused(ErrorCode.BAD_ENTRY, "a room is created by its first member: sign it with your own key")
        _check_own_name(peer, RoomEntry.from_bytes(frame.entry))
        with self._lock:
            if self.store.rooms_created_by(peer.ik) >= self.limits.max_rooms_per_identity:
                raise RoomRefused(
                    ErrorCode.ROOM_LIMIT,
                    f"you have created {self.limits.max_rooms_per_identity} rooms, the most this relay allows",
                )
            if self.store.room_count() >= self.limits.max_rooms:
                raise RoomRefused(ErrorCode.ROOM_LIMIT, f"this relay holds {self.limits.max_rooms} rooms, its limit")
            try:
                self.store.create_room(
                    room_id=state.room_id,
                    label=state.label,
                    label_key=name_key(state.label),
                    creator=state.creator,
                    open=state.policy is RoomPolicy.OPEN,
                    entry=frame.entry,
                    members=member_records(state),
                )
            except LabelTaken as taken:
                shown = taken.args[0]
                looks = "" if shown == state.label else f" (it looks like {shown!r})"
                raise RoomRefused(
                    ErrorCode.LABEL_TAKEN, f"the label {state.label!r}{looks} is taken on this relay"
                ) from None
            self._remember(state)
        creator = state.members[state.creator].name
        log.info(
            "room-create room=%s label=%s by=%s policy=%s", state.short_id, state.label, creator, state.policy.value
        )
        return self._log_frame(frame.id, state, state.head.seq + 1, ())

    def _append(self, peer: RoomPeer, frame: RoomAppend) -> Frame:
        for entry in frame.entries:
            self._check_size(entry)
        for entry in frame.entries:
            try:
                parsed = RoomEntry.from_bytes(entry)
            except RoomLogError:
                continue  # refused with its verifier's reason below
            if parsed.kind is EntryKind.ADD and parsed.signer == parsed.subject_ik == peer.ik:
                _check_own_name(peer, parsed)
        with self._lock:
            before = self._state(frame.room)
            first_seq = _seq_of(frame.entries[0])
            if first_seq is not None and first_seq <= before.head.seq:
                raise RoomRefused(
                    ErrorCode.ROOM_CONFLICT,
                    f"the log is at entry {before.head.seq}; fetch it and sign your change after that",
                )
            try:
                after = before.extend(frame.entries)
            except RoomLimitExceeded as exc:
                raise RoomRefused(ErrorCode.ROOM_LIMIT, exc.detail) from None
            except RoomLogError as exc:
                raise self._bad_entry(exc) from None
            try:
                self.store.append_entries(
                    room_id=before.room_id,
                    expected_seq=before.head.seq,
                    entries=frame.entries,
                    head_hash=after.head.hash,
                    open=after.policy is RoomPolicy.OPEN,
                    members=member_records(after),
                )
            except HeadMoved:  # another relay process on the same data dir appended first
                self._states.pop(before.room_id, None)
                raise RoomRefused(ErrorCode.ROOM_CONFLICT, "the log moved on; fetch it and try again") from None
            self._remember(after)
            self._log_changes(before, frame.entries)
            # Everyone of before or after hears of the change (a removed member
            # learns it was removed), but presence is the room as it is now.
            told = self._online(before, after)
            update = RoomUpdate(
                room=after.room_id,
                label=after.label,
                from_seq=before.head.seq + 1,
                entries=frame.entries,
                head_seq=after.head.seq,
                head_hash=after.head.hash,
                online=tuple(name for name, _ in self._online(after)),
            )
            self._notify(
                [other for _, other in told if other is not peer], encode(update, max_frame=ABSOLUTE_MAX_FRAME)
            )
        return self._log_frame(frame.id, after, after.head.seq + 1, ())

    def _fetch(self, peer: RoomPeer, request_id: str, room_id: bytes, from_seq: int) -> Frame:
        with self._lock:
            state = self._state(room_id)
            self._check_may_read(peer, state)
            end = self._served_head(peer, state)
            count = min(MAX_LOG_BATCH, end.seq + 1 - from_seq)
            entries = tuple(self.store.entries(room_id, from_seq, count)) if count > 0 else ()
        if end != state.head:  # a past member: the log as it was when it left, and nobody's presence
            return dataclasses.replace(
                self._log_frame(request_id, state, from_seq, entries), head_seq=end.seq, head_hash=end.hash, online=()
            )
        return self._log_frame(request_id, state, from_seq, entries)

    def _served_head(self, peer: RoomPeer, state: RoomState) -> LogHead:
        """How far the log is served to ``peer``: all of it, but to a past member of an invite-only room.

        A past member reads up to and including the entry that ended its
        membership (it can see its own removal), and no further: who joins
        an invite-only room later is not its business (spec review S4,
        finding 15). The caller holds the lock and checked ``peer`` may read.
        """
        if state.policy is RoomPolicy.OPEN or peer.ik in state.members:
            return state.head
        end: LogHead | None = None
        for start in range(0, state.head.seq + 1, MAX_LOG_BATCH):
            for offset, data in enumerate(self.store.entries(state.room_id, start, MAX_LOG_BATCH)):
                entry = RoomEntry.from_bytes(data)
                if entry.kind in (EntryKind.REMOVE, EntryKind.LEAVE) and entry.subject_ik == peer.ik:
                    end = LogHead(start + offset, entry_hash(data))
        if end is None:
            raise RoomRefused(ErrorCode.NO_SUCH_ROOM, "no such room (or it is not open to you)")
        return end

    def _find(self, peer: RoomPeer, frame: RoomFind) -> Frame:
        with self._lock:
            stored = self.store.room_by_label(name_key(frame.label))
        if stored is None:
            raise RoomRefused(ErrorCode.NO_SUCH_ROOM, f"no room on this relay is labelled {frame.label[:40]!r}")
        return self._fetch(peer, frame.id, stored.room_id, 0)

    def _list(self, peer: RoomPeer, frame: RoomList) -> Frame:
        with self._lock:
            mine = self.store.rooms_of(peer.ik, MAX_ROOM_INDEX)
            rooms = {room.room_id: room for room in mine}
            for room in self.store.open_rooms(MAX_ROOM_INDEX):
                if len(rooms) >= MAX_ROOM_INDEX:
                    break
                rooms.setdefault(room.room_id, room)
            connected = {p.ik for p in self._peers() if p.name is not None}
            infos = []
            for room in sorted(rooms.values(), key=lambda r: name_key(r.label)):
                online = sum(1 for m in self.store.members(room.room_id) if m.identity_key in connected)
                infos.append(
                    RoomInfo(
                        room=room.room_id,
                        label=room.label,
                        open=room.open,
                        members=room.members,
                        online=online,
                        head_seq=room.head_seq,
                    )
                )
        return RoomIndex(id=frame.id, rooms=tuple(infos))

    # --- helpers ------------------------------------------------------------------

    def _check_size(self, entry: bytes) -> None:
        limit = min(self.limits.max_entry_bytes, MAX_ENTRY_BYTES)
        if len(entry) > limit:
            raise RoomRefused(ErrorCode.ROOM_LIMIT, f"an entry is {len(entry)} bytes; this relay takes at most {limit}")

    @staticmethod
    def _bad_entry(exc: RoomLogError) -> RoomRefused:
        return RoomRefused(ErrorCode.BAD_ENTRY, f"{exc.kind}: {exc.detail}")

    def _check_may_read(self, peer: RoomPeer, state: RoomState) -> None:
        """Members, past members and anyone for an open room; others are told it does not exist."""
        if state.policy is RoomPolicy.OPEN or peer.ik in state.members:
            return
        if not self.store.was_member(state.room_id, peer.ik):
            raise RoomRefused(ErrorCode.NO_SUCH_ROOM, "no such room (or it is not open to you)")

    def _state(self, room_id: bytes) -> RoomState:
        """The verified state of a stored room (the caller holds the lock)."""
        stored = self.store.room(room_id)
        if stored is None:
            raise RoomRefused(ErrorCode.NO_SUCH_ROOM, "no such room (or it is not open to you)")
        state = self._states.get(room_id)
        if state is not None and stored.head_seq >= state.head.seq:
            # Another relay on the same store (one --data-dir, or a cluster's Redis) may have
            # appended since: continue the cached state from its head, verifying what is new.
            while state.head.seq < stored.head_seq:
                batch = self.store.entries(room_id, state.head.seq + 1, 4096)
                if not batch:
                    break
                try:
                    state = state.extend(batch)
                except RoomLogError as exc:
                    log.error("room-corrupt room=%s error=%s", short_room_id(room_id), exc.detail)
                    raise StoreError(f"the stored log of room {short_room_id(room_id)} does not verify") from None
            self._remember(state)
            return state
        entries: list[bytes] = []
        while len(entries) <= stored.head_seq:
            batch = self.store.entries(room_id, len(entries), 4096)
            if not batch:
                break
            entries.extend(batch)
        try:
            state = verify_log(entries, self.rules)
        except RoomLogError as exc:  # the database was altered behind the relay's back
            log.error("room-corrupt room=%s error=%s", short_room_id(room_id), exc.detail)
            raise StoreError(f"the stored log of room {short_room_id(room_id)} does not verify") from None
        self._remember(state)
        return state

    def _remember(self, state: RoomState) -> None:
        self._states[state.room_id] = state
        self._states.move_to_end(state.room_id)
        while len(self._states) > STATE_CACHE_ROOMS:
            self._states.popitem(last=False)

    def _online(self, *states: RoomState) -> list[tuple[str, RoomPeer]]:
        """Connected members of any of ``states``: (roster name, peer)."""
        members = set().union(*(state.members for state in states))
        return [(p.name, p) for p in self._peers() if p.name is not None and p.ik in members]

    def _log_frame(self, request_id: str, state: RoomState, from_seq: int, entries: tuple[bytes, ...]) -> RoomLog:
        return RoomLog(
            id=request_id,
            room=state.room_id,
            label=state.label,
            from_seq=from_seq,
            entries=entries,
            head_seq=state.head.seq,
            head_hash=state.head.hash,
            online=tuple(name for name, _ in self._online(state)),
        )

    def _log_changes(self, before: RoomState, entries: tuple[bytes, ...]) -> None:
        names = {ik: m.name for ik, m in before.members.items()}
        for data in entries:
            entry = RoomEntry.from_bytes(data)
            names.setdefault(entry.subject_ik, entry.subject_name)
            extra = f" policy={entry.policy}" if entry.kind is EntryKind.POLICY else ""
            log.info(
                "room-%s room=%s label=%s seq=%d name=%s by=%s%s",
                entry.kind.value,
                before.short_id,
                before.label,
                entry.seq,
                entry.subject_name,
                names.get(entry.signer, "?"),
                extra,
            )


def member_records(state: RoomState) -> list[MemberRecord]:
    return [MemberRecord(m.identity_key, m.name, m.admin) for m in state.members.values()]


def _check_own_name(peer: RoomPeer, entry: RoomEntry) -> None:
    """A member naming itself (``create``, its own ``add``) takes the name its connection joined with.

    Otherwise mallory, joined as ``mallory``, adds herself to an open room as
    ``alice``, and the room lists an ``alice`` whose messages come from mallory
    (spec review S4, finding 12).
    """
    if peer.name is not None and entry.subject_name != peer.name:
        why = f"you joined as {peer.name!r}; a member names itself in a room by that name, not {entry.subject_name!r}"
        raise RoomRefused(ErrorCode.BAD_ENTRY, f"invalid_entry: {why}")


def _seq_of(data: bytes) -> int | None:
    try:
        return RoomEntry.from_bytes(data).seq
    except RoomLogError:
        return None


# --- flags ------------------------------------------------------------------------


def add_room_flags(parser: argparse.ArgumentParser, positive: Callable[[int, int | None], object]) -> None:
    rooms = parser.add_argument_group("rooms (stored in SQLite under --data-dir)")
    rooms.add_argument(
        "--data-dir",
        metavar="DIR",
        help="keep rooms and their membership logs in DIR/relay.sqlite3 (created 0700 if absent), across restarts; "
        "default: in memory, gone when the relay stops",
    )
    rooms.add_argument(
        "--max-rooms-per-identity",
        metavar="N",
        type=positive(1, None),
        default=DEFAULT_MAX_ROOMS_PER_IDENTITY,
        help=f"rooms one identity may create (default {DEFAULT_MAX_ROOMS_PER_IDENTITY})",
    )
    rooms.add_argument(
        "--max-room-members",
        metavar="N",
        type=positive(1, 1024),
        default=DEFAULT_MAX_ROOM_MEMBERS,
        help=f"members in one room (default {DEFAULT_MAX_ROOM_MEMBERS}, at most 1024)",
    )
    rooms.add_argument(
        "--max-room-entries",
        metavar="N",
        type=positive(2, 100_000),
        default=DEFAULT_MAX_ROOM_ENTRIES,
        help=f"entries in one room's membership log (default {DEFAULT_MAX_ROOM_ENTRIES})",
    )
    rooms.add_argument(
        "--max-entry-bytes",
        metavar="N",
        type=positive(256, MAX_ENTRY_BYTES),
        default=DEFAULT_MAX_ENTRY_BYTES,
        help=f"bytes in one membership-log entry (default {DEFAULT_MAX_ENTRY_BYTES}, at most {MAX_ENTRY_BYTES})",
    )
    rooms.add_argument(
        "--max-rooms",
        metavar="N",
        type=positive(1, None),
        default=DEFAULT_MAX_ROOMS,
        help=f"rooms on this relay in all (default {DEFAULT_MAX_ROOMS})",
    )


def room_settings(args: argparse.Namespace) -> dict[str, object]:
    """``RelayConfig`` fields from the parsed room flags."""
    return {
        "data_dir": args.data_dir,
        "max_rooms_per_identity": args.max_rooms_per_identity,
        "max_room_members": args.max_room_members,
        "max_room_entries": args.max_room_entries,
        "max_entry_bytes": args.max_entry_bytes,
        "max_rooms": args.max_rooms,
    }
