"""The presenter's invitation notices, without a display (session 8's invitation review leftovers)."""

from __future__ import annotations

import pytest

from susurro.client.gui.panes import ROOM
from susurro.client.gui.updates import Line
from susurro.client.room_invites import AcceptWaiting
from tests.gui.test_presenter_rooms import of, state


@pytest.mark.parametrize(("lang", "words"), [("en", "asked for again now"), ("es", "se pide de nuevo")])
def test_an_accept_restored_whose_log_had_not_come_is_said_in_the_window(lang: str, words: str) -> None:
    """review-s8-ifix L1: an accepted room whose log the relay held back was in no list and said nowhere."""
    chat = state(lang)
    updates = chat.apply(AcceptWaiting(room="ops", room_id=b"\x03" * 32, by="bob"))
    (line,) = of(Line, updates)
    assert line.conversation == ROOM and words in line.text and "bob" in line.text and "ops #0303" in line.text
    assert not chat.rooms, "no room row: nothing of its log is held yet"
