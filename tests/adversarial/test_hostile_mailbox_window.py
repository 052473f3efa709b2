"""Review S5 finding 3: items that cannot be opened are confirmed once judged, so they never fill
the window that genuine mail behind them waits on; and one item larger than the window's bytes
still goes. Real sessions and a real relay core on a real SQLite data dir; mallory is a member
that posts whatever bytes she likes, which the relay stores (it cannot tell an envelope).
"""

from __future__ import annotations

import secrets
from pathlib import Path

from susurro.client import events as ev
from susurro.protocol import Post, encode
from susurro.relay.mailbox import WINDOW_BYTES, WINDOW_ITEMS
from susurro.relay.store.mailbox import MailboxStore
from tests.adversarial.test_hostile_mailbox import kinds, texts
from tests.helpers.offline import User, bob_away


def junk_then_mail(
    tmp_path: Path, text: str, count: int, size: int = 300
) -> tuple[list[ev.Event], bytes, MailboxStore]:
    """While bob is away mallory posts ``count`` items of random bytes to his mailbox, then alice
    leaves him ``text``; bob comes back. His events, his key and the relay's mailboxes."""
    room, _, bob, clock = bob_away(tmp_path)
    mallory = User("mallory", tmp_path)
    room.add("mallory", **mallory.session_options(clock))
    room.pump()
    for i in range(count):
        post = Post(id=f"junk{i}", kind="message", to={bob.identity.public: secrets.token_bytes(size)})
        room["mallory"]._outgoing += encode(post)
    room.pump()
    room["alice"].send_message(text, room.now, to=["bob"])
    room.pump()
    room.add("bob2", name="bob", **bob.session_options(clock))
    return room.pump()["bob2"], bob.identity.public, room.relay.mailbox.mailboxes


def test_a_window_of_junk_is_confirmed_and_the_message_behind_it_arrives(tmp_path: Path) -> None:
    events, bob, mailboxes = junk_then_mail(tmp_path, "behind the junk", WINDOW_ITEMS + 6)
    assert texts(events) == ["behind the junk"]
    assert kinds(events).count("malformed_message") == WINDOW_ITEMS + 6  # each refused, and said
    assert mailboxes.usage(bob) == (0, 0)  # all confirmed


def test_an_item_over_the_window_bytes_still_goes_and_so_does_what_follows(tmp_path: Path) -> None:
    events, bob, mailboxes = junk_then_mail(tmp_path, "after the big one", 1, size=WINDOW_BYTES + 1)
    assert texts(events) == ["after the big one"]
    assert mailboxes.usage(bob) == (0, 0)
