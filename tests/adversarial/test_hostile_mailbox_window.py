"""Review S5 finding 3: items that cannot be opened are confirmed once judged, so they never fill
the window that genuine mail behind them waits on; and one item larger than the window's bytes
still goes. Real sessions and a real relay core on a real SQLite data dir; mallory is a member
that posts whatever bytes she likes, which the relay stores (it cannot tell an envelope).
"""

from __future__ import annotations

import secrets
from pathlib import Path

from susurro.protocol import Post, encode
from susurro.relay.mailbox import WINDOW_BYTES, WINDOW_ITEMS
from tests.adversarial.test_hostile_mailbox import kinds, texts
from tests.unit.test_offline_sessions import User, bob_away


def junk_for(room: object, sender: str, recipient: bytes, count: int, size: int = 300) -> None:
    session = room[sender]  # type: ignore[index]
    for i in range(count):
        post = Post(id=f"junk{i}", kind="message", to={recipient: secrets.token_bytes(size)})
        session._outgoing += encode(post)


def test_a_window_of_junk_is_confirmed_and_the_message_behind_it_arrives(tmp_path: Path) -> None:
    room, _, bob, clock = bob_away(tmp_path)
    mallory = User("mallory", tmp_path)
    room.add("mallory", **mallory.session_options(clock))
    room.pump()
    junk_for(room, "mallory", bob.identity.public, WINDOW_ITEMS + 6)
    room.pump()
    room["alice"].send_message("behind the junk", room.now, to=["bob"])
    room.pump()
    room.add("bob2", name="bob", **bob.session_options(clock))
    events = room.pump()["bob2"]
    assert texts(events) == ["behind the junk"]
    assert kinds(events).count("malformed_message") == WINDOW_ITEMS + 6  # each refused, and said
    assert room.relay.mailbox.mailboxes.usage(bob.identity.public) == (0, 0)  # all confirmed


def test_an_item_over_the_window_bytes_still_goes_and_so_does_what_follows(tmp_path: Path) -> None:
    room, _, bob, clock = bob_away(tmp_path)
    mallory = User("mallory", tmp_path)
    room.add("mallory", **mallory.session_options(clock))
    room.pump()
    junk_for(room, "mallory", bob.identity.public, 1, size=WINDOW_BYTES + 1)
    room.pump()
    room["alice"].send_message("after the big one", room.now, to=["bob"])
    room.pump()
    room.add("bob2", name="bob", **bob.session_options(clock))
    events = room.pump()["bob2"]
    assert texts(events) == ["after the big one"]
    assert room.relay.mailbox.mailboxes.usage(bob.identity.public) == (0, 0)
