"""The presenter and the string tables, without a display: what each event shows."""

from __future__ import annotations

import os
import string
import subprocess

import pytest

from susurro.client import events as ev
from susurro.client.gui.presenter import (
    ROOM,
    Banner,
    ChatState,
    DeliveryNote,
    Line,
    OpenTab,
    RosterRows,
    Status,
)
from susurro.client.gui.strings import EN, ES, Strings, pick_language
from tests.helpers.processes import console_script


def member(name: str, fp: str = "1111 2222 3333 4444 5555 6666 7777 8888") -> ev.MemberInfo:
    return ev.MemberInfo(name=name, fingerprint=fp, identity_key=name.encode().ljust(32, b"\0"))


def joined_state(lang: str = "en") -> ChatState:
    state = ChatState(Strings(lang), relay="127.0.0.1:1")
    state.apply(ev.Connected(name="alice", fingerprint="9999 8888 7777 6666 5555 4444 3333 2222", relay="r:1"))
    state.apply(ev.Roster(members=(member("bob"),)))
    return state


def fields(template: str) -> set[str]:
    return {name for _, name, _, _ in string.Formatter().parse(template) if name}


def test_both_languages_have_the_same_keys_and_fields() -> None:
    assert EN.keys() == ES.keys()
    for key in EN:
        assert fields(EN[key]) == fields(ES[key]), key


@pytest.mark.parametrize(
    ("requested", "env", "expected"),
    [
        ("es", {"LANG": "en_US.UTF-8"}, "es"),
        (None, {"LANG": "es_ES.UTF-8"}, "es"),
        (None, {"LC_ALL": "en_GB.UTF-8", "LANG": "es_ES.UTF-8"}, "en"),
        (None, {"LC_MESSAGES": "es_MX"}, "es"),
        (None, {}, "en"),
        ("fr", {"LANG": "fr_FR"}, "en"),
    ],
)
def test_language_comes_from_the_flag_then_the_locale(requested, env, expected) -> None:  # type: ignore[no-untyped-def]
    assert pick_language(requested, env) == expected


def test_join_leave_and_roster_with_self_first() -> None:
    state = joined_state()
    updates = state.apply(ev.Joined(member=member("carol", "1234 5678 0000 0000 0000 0000 0000 0000")))
    assert Line(conversation=ROOM, kind="notice", text="carol joined (fingerprint 1234 5678)",
                clock=updates[1].clock) in updates  # type: ignore[union-attr]
    rows = next(u for u in updates if isinstance(u, RosterRows)).rows
    assert [(r.name, r.fingerprint, r.is_self) for r in rows] == [
        ("alice", "9999 8888", True), ("bob", "1111 2222", False), ("carol", "1234 5678", False)
    ]
    left = state.apply(ev.Left(name="carol"))
    assert any(isinstance(u, Line) and u.text == "carol left" for u in left)


def test_a_warning_is_a_banner_never_a_line() -> None:
    state = joined_state()
    updates = state.apply(ev.Warning(kind="bad_signature", detail="forged\x1b[2J", sender="bob"))
    assert updates == [Banner(conversation=ROOM, kind="bad_signature", text="Warning (bad_signature): forged\\x1b[2J")]


def test_direct_message_opens_a_tab_without_focus_and_sends_there() -> None:
    state = joined_state()
    message = ev.Message(sender="bob", text="psst", to=("alice",), direct=True, msg_id="m1", sent_at=0)
    updates = state.apply(message)
    assert updates[0] == OpenTab(name="bob", focus=False)
    assert isinstance(updates[1], Line) and updates[1].conversation == "bob"
    outgoing, _ = state.compose("hola", "bob")
    assert outgoing is not None and outgoing.to == ("bob",)


def test_delivery_note_even_when_the_ack_beats_the_send_result() -> None:
    state = joined_state()
    outgoing, updates = state.compose("hi all", ROOM)
    assert outgoing is not None and outgoing.to is None
    assert isinstance(updates[-1], Line) and updates[-1].note == "sending…"
    assert state.apply(ev.Delivery(msg_id="x1", delivered=(), missing=("bob",))) == []
    assert state.sent(outgoing.ref, "x1") == [DeliveryNote(ref=outgoing.ref, text="not delivered to: bob", ok=False)]


@pytest.mark.parametrize(
    ("typed", "error"),
    [
        ("/msg", "usage: /msg NAME TEXT"),
        ("/msg zed hi", "zed is not in the room"),
        ("/frob", "unknown command /frob; commands: /msg NAME TEXT"),
    ],
)
def test_refusals_the_view_decides(typed: str, error: str) -> None:
    outgoing, updates = joined_state().compose(typed, ROOM)
    assert outgoing is None
    assert [(u.kind, u.text) for u in updates if isinstance(u, Line)] == [("error", error)]


def test_disconnected_disables_sending_with_a_reason_in_spanish() -> None:
    state = joined_state("es")
    updates = state.apply(ev.Disconnected(reason="the relay shut down"))
    status = next(u for u in updates if isinstance(u, Status))
    assert not status.can_send
    assert status.reason == "No se puede enviar: sin conexión con el relé"
    outgoing, refused = state.compose("hola", ROOM)
    assert outgoing is None and "no enviado" in refused[0].text  # type: ignore[union-attr]


def test_without_a_display_susurro_says_so_in_one_line() -> None:
    env = {k: v for k, v in os.environ.items() if k != "DISPLAY"}
    result = subprocess.run(
        [*console_script("susurro"), "--name", "alice"],
        env=env, capture_output=True, text=True, timeout=60, stdin=subprocess.DEVNULL,
    )
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and "susurro-cli" in lines[0] and "display" in lines[0], result.stderr
    assert result.stdout == ""


def test_delivery_lists_who_was_skipped_for_a_changed_key() -> None:
    state = joined_state()
    outgoing, _ = state.compose("hi", ROOM)
    assert outgoing is not None
    state.sent(outgoing.ref, "x2")
    note = state.apply(ev.Delivery(msg_id="x2", delivered=("carol",), missing=(), skipped=("bob",)))
    assert note == [DeliveryNote(ref=outgoing.ref, text="✓ delivered to carol; not encrypted to: bob", ok=False)]
