"""The presenter and the string tables, without a display: what each event shows."""

from __future__ import annotations

import os
import string
import subprocess

import pytest

from susurro.client import events as ev
from susurro.client.gui.delivery import DeliveryState
from susurro.client.gui.panes import ROOM, fit
from susurro.client.gui.presenter import ChatState
from susurro.client.gui.strings import EN, ES, Strings, pick_language
from susurro.client.gui.updates import (
    Banner,
    ConversationKind,
    DeliveryNote,
    Line,
    Notify,
    RosterRows,
    ShowConversation,
    Sidebar,
    Status,
    Title,
    UnreadMarker,
)
from susurro.protocol import ErrorCode
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
        # Spanish may leave out a field that would put English words in it (the core's detail).
        assert fields(ES[key]) <= fields(EN[key]), key
        assert fields(ES[key]) == fields(EN[key]) or key in ("reason_other", "err_room_action"), key


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
    assert any(
        isinstance(u, Line) and u.kind == "notice" and u.text == "carol joined (fingerprint 1234 5678)" for u in updates
    )
    rows = next(u for u in updates if isinstance(u, RosterRows)).rows
    assert [(r.name, r.fingerprint, r.is_self) for r in rows] == [
        ("alice", "9999 8888", True),
        ("bob", "1111 2222", False),
        ("carol", "1234 5678", False),
    ]
    left = state.apply(ev.Left(name="carol"))
    assert any(isinstance(u, Line) and u.text == "carol left" for u in left)


def test_a_warning_is_a_banner_never_a_line() -> None:
    state = joined_state()
    updates = state.apply(ev.Warning(kind="bad_signature", detail="forged\x1b[2J", sender="bob"))
    assert updates == [
        Banner(
            conversation=ROOM,
            kind="bad_signature",
            text="A message from bob has a signature that does not match: it may be forged. It is not shown.",
        )
    ]


def test_direct_message_opens_a_conversation_without_focus_and_sends_there() -> None:
    state = joined_state()
    message = ev.Message(sender="bob", text="psst", to=("alice",), direct=True, msg_id="m1", sent_at=0)
    updates = state.apply(message)
    lines = [u for u in updates if isinstance(u, Line) and u.kind == "message"]
    assert lines and lines[0].conversation == "bob"
    sidebar = next(u for u in updates if isinstance(u, Sidebar))
    assert [(i.key, i.unread, i.selected) for i in sidebar.items] == [(ROOM, 0, True), ("bob", 1, False)]
    assert state.selected == ROOM
    outgoing, _ = state.compose("hola", "bob")
    assert outgoing is not None and outgoing.to == ("bob",)


def test_delivery_note_even_when_the_ack_beats_the_send_result() -> None:
    state = joined_state()
    outgoing, updates = state.compose("hi all", ROOM)
    assert outgoing is not None and outgoing.to is None
    assert isinstance(updates[-1], Line) and updates[-1].note == "sending…"
    assert state.apply(ev.Delivery(msg_id="x1", delivered=(), missing=("bob",))) == []
    [note] = state.sent(outgoing.ref, "x1")
    assert note == DeliveryNote(
        ref=outgoing.ref,
        text="not delivered to bob: not connected",
        ok=False,
        state=DeliveryState.NOT_DELIVERED,
        detail="Who has it:\nbob: not delivered: not connected",
    )


@pytest.mark.parametrize(
    ("typed", "error"),
    [
        ("/msg", "To send a direct message, type /msg, a name, then the text."),
        ("/msg zed hi", "zed is not in the room."),
        ("/frob", "There is no /frob command; /help lists them."),
        ("/verify", "Type it as: /verify NAME"),
        ("/verify zed", "zed is not in the room."),
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
    assert outgoing is None and "No enviado" in refused[-1].text  # type: ignore[union-attr]


def test_without_a_display_susurro_says_so_in_one_line() -> None:
    env = {k: v for k, v in os.environ.items() if k != "DISPLAY"}
    result = subprocess.run(
        [*console_script("susurro"), "--name", "alice"],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        stdin=subprocess.DEVNULL,
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
    [shown] = note
    assert shown.text == "✓ sent to carol · not encrypted to bob: not verified, and strict mode is on"
    assert not shown.ok and shown.state is DeliveryState.NOT_ENCRYPTED
    state.apply(
        ev.KeyChanged(
            kind=ev.WarningKind.KEY_CHANGED,
            detail="",
            sender="bob",
            name="bob",
            old_fingerprint="1111 2222",
            new_fingerprint="3333 4444",
        )
    )
    outgoing, _ = state.compose("again", ROOM)
    assert outgoing is not None
    state.sent(outgoing.ref, "x3")
    [shown] = state.apply(ev.Delivery(msg_id="x3", delivered=("carol",), missing=(), skipped=("bob",)))
    assert shown.text.endswith("not encrypted to bob: their identity key changed; accept it or verify first")


# --- the sidebar, unread, day separators, runs, notifications -----------------------------


def message(sender: str, text: str, *, direct: bool = False, sent_at: int = 0, msg_id: str = "") -> ev.Message:
    return ev.Message(
        sender=sender,
        text=text,
        to=("alice",),
        direct=direct,
        msg_id=msg_id or text,
        sent_at=sent_at or int(__import__("time").time() * 1000),
    )


def test_unread_counts_badges_marker_title_and_reading_them() -> None:
    state = joined_state()
    first = state.apply(message("bob", "psst", direct=True))
    assert any(isinstance(u, UnreadMarker) and u.conversation == "bob" for u in first)
    state.apply(message("bob", "¿estás?", direct=True))
    second = state.apply(message("bob", "hola", direct=True))
    assert not any(isinstance(u, UnreadMarker) for u in second), "one marker, before the first unread"
    sidebar = next(u for u in second if isinstance(u, Sidebar))
    assert {i.key: i.unread for i in sidebar.items} == {ROOM: 0, "bob": 3}
    assert sidebar.items[1].kind is ConversationKind.DIRECT and sidebar.items[1].trust == "new"
    assert next(u for u in second if isinstance(u, Title)).text == "(3) Susurro: alice"
    shown = state.select("bob")
    assert next(u for u in shown if isinstance(u, Sidebar)).items[1].unread == 0
    assert next(u for u in shown if isinstance(u, Title)).text == "Susurro: alice"
    assert next(u for u in shown if isinstance(u, ShowConversation)).key == "bob"
    # The room, while reading bob: counted, and counted while the window is not focused.
    state.apply(message("bob", "a todos"))
    assert state.sidebar().items[0].unread == 1
    state.set_focus(False)
    state.apply(message("bob", "¿me lees?", direct=True))
    assert state.sidebar().items[1].unread == 1
    assert state.set_focus(True) and state.sidebar().items[1].unread == 0


def test_notifications_for_what_is_not_on_screen_and_off_with_the_setting() -> None:
    state = joined_state()
    notes = [u for u in state.apply(message("bob", "hola", direct=True)) if isinstance(u, Notify)]
    assert notes == [Notify(title="bob (direct message)", body="hola")]
    assert not [u for u in state.apply(message("bob", "en la sala")) if isinstance(u, Notify)], "on screen"
    state.notifications = False
    assert not [u for u in state.apply(message("bob", "otra", direct=True)) if isinstance(u, Notify)]


def test_day_separators_and_one_name_header_per_run() -> None:
    import datetime as dt

    state = joined_state()
    state.today = lambda: dt.date(2026, 12, 1)
    monday = int(dt.datetime(2026, 11, 30, 9, 0).timestamp() * 1000)
    tuesday = int(dt.datetime(2026, 12, 1, 9, 0).timestamp() * 1000)
    lines = [
        u
        for m in (
            message("bob", "uno", sent_at=monday),
            message("bob", "dos", sent_at=monday + 60_000),
            message("bob", "tres", sent_at=tuesday),
        )
        for u in state.apply(m)
        if isinstance(u, Line) and u.conversation == ROOM
    ]
    assert [(u.kind, u.text, u.continued) for u in lines] == [
        ("day", "Yesterday", False),
        ("message", "uno", False),
        ("message", "dos", True),
        ("day", "Today", False),
        ("message", "tres", False),
    ]
    spanish = joined_state("es")
    spanish.today = lambda: dt.date(2026, 12, 1)
    older = int(dt.datetime(2026, 11, 3, 9, 0).timestamp() * 1000)
    day = next(u for u in spanish.apply(message("bob", "x", sent_at=older)) if isinstance(u, Line) and u.kind == "day")
    assert day.text == "martes, 3 de noviembre de 2026"


def test_status_is_not_secure_when_disconnected_and_offers_reconnect_after_a_refusal() -> None:
    state = joined_state()
    assert state.status().secure
    status = next(
        u for u in state.apply(ev.Disconnected(reason="name taken", code=ErrorCode.NAME_TAKEN)) if isinstance(u, Status)
    )
    assert not status.secure and status.e2e == "not connected" and status.offer_reconnect
    assert status.connection == "disconnected: someone else is using your name on this relay"


def test_close_a_direct_conversation_and_jump_targets() -> None:
    state = joined_state()
    state.apply(ev.Joined(member=member("carol")))
    state.open_tab("bob")
    assert [k for k, _ in state.jump_targets()] == [ROOM, "bob", "carol"]
    updates = state.close_tab("bob")
    assert state.selected == ROOM and [i.key for i in state.sidebar().items] == [ROOM]
    assert next(u for u in updates if isinstance(u, ShowConversation)).key == ROOM
    assert state.close_tab(ROOM) == [], "the room stays"


@pytest.mark.parametrize(
    ("text", "width", "groups", "expected"),
    [
        ("short", 100, False, "short"),
        ("averyveryverylongname", 10, False, "averyvery…"),
        ("1111 2222 3333 4444", 14, True, "1111 2222 …"),
        ("1111 2222", 1, True, "…"),
    ],
)
def test_fit_cuts_with_an_ellipsis_and_fingerprints_between_groups(text, width, groups, expected) -> None:  # type: ignore[no-untyped-def]
    assert fit(text, width, len, groups=groups) == expected
