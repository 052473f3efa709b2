"""The terminal client's rendering of events: complete JSON, safe text."""

from __future__ import annotations

import json

import pytest
from hypothesis import given
from hypothesis import strategies as st

from susurro.client import events as ev
from susurro.client.events import Ending, WarningKind
from susurro.client.printable import printable
from susurro.client.render import event_to_json, event_to_text
from susurro.crypto.trust import TrustState

MEMBER = ev.MemberInfo(name="bob", fingerprint="1234 5678 9012 3456 7890 1234 5678 9012", identity_key=b"\x01" * 32)

EVENTS = [
    (
        ev.Connected(name="alice", fingerprint="1 2", relay="r:1"),
        {"event": "connected", "name": "alice", "fingerprint": "1 2"},
    ),
    (
        ev.Roster(members=(MEMBER,)),
        {"event": "roster", "members": [{"name": "bob", "fingerprint": MEMBER.fingerprint, "trust": "new"}]},
    ),
    (ev.Joined(member=MEMBER), {"event": "joined", "name": "bob", "fingerprint": MEMBER.fingerprint}),
    (ev.Left(name="bob"), {"event": "left", "name": "bob"}),
    (
        ev.Message(sender="bob", text="hi", to=("alice",), direct=True, msg_id="m1", sent_at=0),
        {"event": "message", "from": "bob", "text": "hi", "to": ["alice"], "direct": True, "msg_id": "m1"},
    ),
    (
        ev.Delivery(msg_id="m1", delivered=("bob",), missing=("carol",)),
        {"event": "delivery", "msg_id": "m1", "delivered": ["bob"], "missing": ["carol"], "skipped": []},
    ),
    (
        ev.Warning(kind=WarningKind.REPLAY, detail="d", sender="bob"),
        {"event": "warning", "kind": "replay", "detail": "d"},
    ),
    (
        ev.KeyChanged(
            kind=WarningKind.KEY_CHANGED, detail="d", sender="bob", name="bob", old_fingerprint="1", new_fingerprint="2"
        ),
        {"event": "warning", "kind": "key_changed", "from": "bob", "old_fingerprint": "1", "new_fingerprint": "2"},
    ),
    (
        ev.TrustUpdated(
            member=ev.MemberInfo(name="bob", fingerprint="1", identity_key=b"k", trust=TrustState.VERIFIED)
        ),
        {"event": "trust", "name": "bob", "trust": "verified"},
    ),
    (
        ev.Disconnected(reason="gone", code=Ending.SHUTDOWN),
        {"event": "disconnected", "reason": "gone", "code": "shutdown"},
    ),
]


@pytest.mark.parametrize(("event", "expected"), EVENTS, ids=[type(e).__name__ for e, _ in EVENTS])
def test_json_form_has_the_documented_fields(event: ev.Event, expected: dict[str, object]) -> None:
    produced = event_to_json(event)
    assert json.loads(json.dumps(produced)) == produced
    for key, value in expected.items():
        assert produced[key] == value


def test_delivery_text_names_who_was_not_reached() -> None:
    text = event_to_text(ev.Delivery(msg_id="m1", delivered=("bob",), missing=("carol", "dave")))
    assert text == "! not delivered to: carol, dave"


def test_delivery_text_says_the_relays_reason_in_words_once_per_name() -> None:
    event = ev.Delivery(msg_id="m1", delivered=(), missing=("carol", "dave"), not_delivered=(("carol", "no_report"),))
    assert event_to_text(event) == (
        "! not delivered to: dave\n! not delivered to: carol (their relay did not confirm it in time)"
    )


def test_delivery_text_names_who_was_skipped() -> None:
    text = event_to_text(ev.Delivery(msg_id="m1", delivered=("bob",), missing=(), skipped=("mallory",)))
    assert text == "! not encrypted to (key changed or not verified): mallory"


def test_key_change_text_says_what_to_do() -> None:
    text = event_to_text(
        ev.KeyChanged(
            kind=WarningKind.KEY_CHANGED, detail="d", sender="bob", name="bob", old_fingerprint="1", new_fingerprint="2"
        )
    )
    assert text is not None and "CHANGED" in text and "/verify bob" in text and "/accept bob" in text


def test_warning_is_never_rendered_like_a_message() -> None:
    text = event_to_text(ev.Warning(kind=WarningKind.BAD_SIGNATURE, detail="<bob> transfer the money", sender="bob"))
    assert text == "! A message from bob has a signature that does not match: it may be forged. It is not shown."


def test_message_text_cannot_drive_the_terminal() -> None:
    hostile = "ok\x1b[2J\x1b]0;pwned\x07\rreset\n[12:04] <carol> fake line\u202egnp.exe"
    text = event_to_text(ev.Message(sender="bob", text=hostile, to=("alice",), direct=False, msg_id="m", sent_at=0))
    assert text is not None
    assert "\x1b" not in text and "\r" not in text and "\x07" not in text and "\u202e" not in text
    assert "\\x1b[2J" in text and "\\u202e" in text
    # A newline inside a message continues it, indented: it cannot start a line of its own.
    assert all(line.startswith("    ") for line in text.split("\n")[1:])


@given(st.text())
def test_printable_leaves_no_control_or_bidi_character(text: str) -> None:
    shown = printable(text)
    for line in shown.split("\n"):
        assert not any(ord(ch) < 0x20 or ord(ch) == 0x7F or 0x80 <= ord(ch) < 0xA0 for ch in line)
        assert not any(ch in "\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069\u200e\u200f" for ch in line)
