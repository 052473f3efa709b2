"""What the window keeps of its rooms between runs: each label's room id and the head it verified.

Alice's window talks to a real relay through ``TamperingProxy``. She makes a
room ``ops`` and adds bob, closes the window and opens it again; the room is
back in her sidebar though nobody wrote in it (the state file remembers it,
not only the history). Then the relay misbehaves in ways only a client that
remembers can see: it serves the log as it was before bob was added (rolled
back), or offers another room under the label ``ops``. Each is a banner,
and the sidebar keeps the one ``ops`` she knew.
"""

from __future__ import annotations

import contextlib
import dataclasses
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path

from susurro.client.gui import app_history
from susurro.client.gui.app import SusurroApp
from susurro.client.gui.room_view import room_key
from susurro.client.rooms import RoomBook
from susurro.crypto import IdentityKey, RoomPolicy, entry_hash
from susurro.protocol import Frame, RoomLog
from tests.helpers.gui_driver import (
    alice_and,
    banners,
    close_app,
    pump,
    room_named,
    rooms,
    signed_in,
    start_app,
    wait_in_pane,
)
from tests.helpers.hostile_relay import Hook, TamperingProxy


def ops_with_bob(root, alice: SusurroApp) -> bytes:  # type: ignore[no-untyped-def]
    """alice creates the invite-only room ops and adds bob (entries 0 and 1); its id."""
    assert alice.rooms.create("ops", open_room=False) is None
    key = room_named(root, alice, "ops")
    assert alice.rooms.invite_name(key, "bob") is None
    wait_in_pane(root, alice, "alice added bob.", key)
    return bytes.fromhex(key[1:])


@contextlib.contextmanager
def restarted_after_ops(
    root,
    proxy: TamperingProxy,
    tmp_path: Path,
    hook: Callable[[bytes], Hook] | None = None,  # type: ignore[no-untyped-def]
) -> Iterator[tuple[SusurroApp, bytes]]:
    """alice makes ops with bob, closes her window and opens it again (through ``hook(room id)``, if
    given): her new app, signed in, and the room's id."""
    server = "{}:{}".format(*proxy.address)
    proxy.expect("alice")
    with alice_and(root, server, tmp_path) as (alice, _window, _bob):
        room = ops_with_bob(root, alice)
        close_app(root, alice)
        if hook is not None:
            proxy.set_hook("alice-again", hook(room))
        proxy.expect("alice-again")
        again = start_app(root, tmp_path / "alice", name="alice", server=server)
        try:
            signed_in(root, again)
            yield again, room
        finally:
            close_app(root, again)


def before_bob(room: bytes) -> Hook:
    def hook(_label: str, frame: Frame) -> Sequence[Frame]:
        """The log as it stood at its create entry: bob's addition withheld."""
        if isinstance(frame, RoomLog) and frame.room == room:
            entries = frame.entries[: max(0, 1 - frame.from_seq)]
            head = entry_hash(entries[-1]) if frame.from_seq + len(entries) == 1 else bytes(32)
            return [dataclasses.replace(frame, entries=entries, head_seq=0, head_hash=head)]
        return [frame]

    return hook


def test_a_room_rolled_back_after_the_window_restarts_is_caught(tk_root, proxy, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    root = tk_root
    with restarted_after_ops(root, proxy, tmp_path, before_bob) as (again, _room):
        pump(
            root,
            lambda: any("holding back a change" in b for b in banners(again)),
            "the withheld-change banner after the restart",
        )


def test_a_room_is_back_after_a_restart_and_its_label_cannot_be_moved(tk_root, proxy, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    root = tk_root
    with restarted_after_ops(root, proxy, tmp_path) as (again, room):
        # Nobody wrote in ops, so the history does not name it: the remembered rooms do.
        pump(root, lambda: list(rooms(again)) == [room_key(room)], "ops back in the sidebar")
        wait_in_pane(root, again, "Members: alice, bob", room_key(room))

        # The relay offers another room under the label ops.
        other = RoomBook("mallory", IdentityKey.generate()).create("ops", RoomPolicy.OPEN, 1)
        other_id = entry_hash(other.entry)
        # As the answer to a find of alice's (a room nobody asked for is an invitation at most, never followed).
        assert again.opened is not None
        asked = again.opened.connection.session.rooms.find("ops").id
        fake = RoomLog(
            id=asked,
            room=other_id,
            label="ops",
            from_seq=0,
            entries=(other.entry,),
            head_seq=0,
            head_hash=other_id,
            online=(),
        )
        proxy.inject("alice-again", fake)
        pump(
            root,
            lambda: any("different room under a room name you already know" in b for b in banners(again)),
            "the label-moved banner",
        )
        assert list(rooms(again)) == [room_key(room)], "still the one ops alice knew"


def test_many_kept_rooms_are_asked_for_a_few_at_a_time_and_all_come_back(  # type: ignore[no-untyped-def]
    tk_root, relay_server, tmp_path: Path, monkeypatch
) -> None:
    root = tk_root
    monkeypatch.setattr(app_history, "FETCHES_PER_TICK", 2)
    monkeypatch.setattr(app_history, "FETCH_TICK_MS", 100)
    # How many each tick asked for, recorded around the real method (it still runs): counted, the test
    # does not depend on how many 100 ms ticks pass before it looks, as it did under load.
    asked: list[int] = []
    fetch_some = app_history.HistoryLoading._fetch_some

    def counted(self: SusurroApp, opened: object) -> None:
        before = len(self._to_fetch)
        fetch_some(self, opened)  # type: ignore[arg-type]
        asked.append(before - len(self._to_fetch))

    monkeypatch.setattr(app_history.HistoryLoading, "_fetch_some", counted)
    server = "{}:{}".format(*relay_server.address)
    alice = start_app(root, tmp_path / "alice", name="alice", server=server)
    labels = [f"sala-{n}" for n in range(5)]
    try:
        signed_in(root, alice)
        for label in labels:
            assert alice.rooms.create(label, open_room=False) is None
            room_named(root, alice, label)
    finally:
        close_app(root, alice)
    again = start_app(root, tmp_path / "alice", name="alice", server=server)
    try:
        asked.clear()  # the first session's own ticks (it kept nothing to ask for)
        signed_in(root, again)
        pump(root, lambda: sorted(label for label, _tag in rooms(again).values()) == labels, "all five back")
        assert asked == [2, 2, 1], "two a tick, not all five at once"
    finally:
        close_app(root, again)
