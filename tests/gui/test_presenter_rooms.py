"""The presenter's rooms, per-recipient delivery and history pages, without a display."""

from __future__ import annotations

import pytest

from susurro.client import events as ev
from susurro.client.gui.delivery import DeliveryState
from susurro.client.gui.panes import ROOM, conversation_key, history_name
from susurro.client.gui.presenter import ChatState
from susurro.client.gui.room_view import RoomInfo, RoomMemberInfo, room_key
from susurro.client.gui.strings import Strings
from susurro.client.gui.updates import (
    Banner,
    ConversationKind,
    DeliveryNote,
    HistoryBlock,
    Line,
    Notify,
    RosterRows,
    ShowConversation,
    Sidebar,
)
from susurro.client.history import HistoryEntry
from susurro.client.room_events import (
    Invited,
    MemberAdded,
    MemberRemoved,
    RoomAlert,
    RoomCreated,
    RoomMessage,
    RoomNotice,
)
from susurro.crypto import EntryKind, RoomPolicy
from susurro.crypto.history import HistoryRecord
from susurro.crypto.trust import TrustState

ALICE_KEY = b"a" * 32
BOB_KEY = b"b" * 32
CAROL_KEY = b"c" * 32


def member(name: str, key: bytes) -> ev.MemberInfo:
    return ev.MemberInfo(name=name, fingerprint="1111 2222 3333 4444 5555 6666 7777 8888", identity_key=key)  # type: ignore[arg-type]


def state(lang: str = "en") -> ChatState:
    chat = ChatState(
        Strings(lang),
        relay="r:1",
        identity_key=ALICE_KEY,
        trust_of=lambda name, _key: TrustState.PINNED if name == "carol" else TrustState.NEW,
    )
    chat.apply(ev.Connected(name="alice", fingerprint="9999 8888 7777 6666 5555 4444 3333 2222", relay="r:1"))
    chat.apply(ev.Roster(members=(member("bob", BOB_KEY),)))
    return chat


def room(room_id: bytes, label: str, *names: tuple[str, bytes], joined: bool = True) -> RoomInfo:
    members = tuple(RoomMemberInfo(name=n, identity_key=k, admin=i == 0) for i, (n, k) in enumerate(names))
    return RoomInfo(room_id=room_id, label=label, open=False, members=members, joined=joined)


def of(kind: type, updates: list) -> list:  # type: ignore[type-arg]
    return [u for u in updates if isinstance(u, kind)]


def test_rooms_are_keyed_by_id_so_two_rooms_with_one_label_stay_apart() -> None:
    chat = state()
    first, second = b"\x01" * 32, b"\x02" * 32
    chat.apply(RoomCreated(room="ops", room_id=first), room(first, "ops", ("alice", ALICE_KEY)))
    updates = chat.apply(
        Invited(room="ops", room_id=second, by="bob"), room(second, "ops", ("bob", BOB_KEY), ("alice", ALICE_KEY))
    )
    [sidebar] = of(Sidebar, updates)
    rooms = [i for i in sidebar.items if i.key != ROOM and i.kind is ConversationKind.ROOM]
    assert [(i.key, i.label, i.tag) for i in rooms] == [
        (room_key(first), "ops", "#" + "01" * 8),
        (room_key(second), "ops", "#" + "02" * 8),
    ]
    assert chat.selected == room_key(first), "creating a room switches to it"
    lines = of(Line, updates)
    assert lines[-1].conversation == room_key(second) and lines[-1].text == "bob added you to ops #0202020202020202."
    assert of(Notify, updates), "an invitation to a room not on screen notifies"


def test_room_messages_go_to_their_pane_and_the_member_list_shows_online_and_offline() -> None:
    chat = state()
    rid = b"\x03" * 32
    info = room(rid, "clase", ("alice", ALICE_KEY), ("bob", BOB_KEY), ("carol", CAROL_KEY))
    chat.apply(Invited(room="clase", room_id=rid, by="bob"), info)
    message = RoomMessage(
        sender="bob",
        text="hola clase",
        to=("alice", "carol"),
        direct=False,
        msg_id="r1",
        sent_at=0,
        room="clase",
        room_id=rid,
    )
    updates = chat.apply(message)
    [line] = [u for u in of(Line, updates) if u.kind == "message"]
    assert line.conversation == room_key(rid)
    [sidebar] = of(Sidebar, updates)
    assert next(i for i in sidebar.items if i.key == room_key(rid)).unread == 1
    updates = chat.select(room_key(rid))
    [show] = of(ShowConversation, updates)
    assert show.header == "clase #0303030303030303 · 3 members, 2 online"
    roster = chat.roster()
    assert roster.title == "Members of clase #0303030303030303" and roster.room == room_key(rid)
    rows = {r.name: (r.online, r.trust, r.fingerprint) for r in roster.rows}
    assert rows["alice"][:2] == (True, "self")
    assert rows["bob"][:2] == (True, "new")
    assert rows["carol"] == (False, "pinned", "offline"), "offline members: the pin's trust, no fingerprint claim"
    chat.open_tab("carol")
    assert chat.selected == "carol", "an offline member can be written to (it waits in their mailbox)"
    outgoing, _ = chat.compose("for when you are back", "carol")
    assert outgoing is not None and outgoing.to == ("carol",)
    chat.select(room_key(rid))
    # A relay-invented member is not in the log, so not in the list either (the core warns).
    chat.apply(ev.Joined(member=member("mallory", b"m" * 32)))
    assert "mallory" not in {r.name for r in chat.roster().rows}
    assert chat.invite_candidates(room_key(rid)) == ["mallory"]
    assert chat.invite_check(room_key(rid), "Bob") == "Bob is already a member of clase #0303030303030303."


def test_sending_in_a_room_needs_membership_and_names_the_room() -> None:
    chat = state()
    rid = b"\x04" * 32
    chat.apply(Invited(room="ops", room_id=rid, by="bob"), room(rid, "ops", ("bob", BOB_KEY), ("alice", ALICE_KEY)))
    outgoing, _ = chat.compose("hola ops", room_key(rid))
    assert outgoing is not None and outgoing.room == rid and outgoing.to is None
    updates = chat.apply(
        MemberRemoved(room="ops", room_id=rid, name="alice", by="bob"), room(rid, "ops", ("bob", BOB_KEY), joined=False)
    )
    assert of(Line, updates)[-1].text == "bob removed you from ops #0404040404040404. You no longer get its messages."
    outgoing, refused = chat.compose("still here?", room_key(rid))
    assert outgoing is None and of(Line, refused)[-1].text == "You are not a member of ops #0404040404040404."
    assert of(RosterRows, chat.select(room_key(rid)))[0].room == "", "no Invite… for a room you are not in"


def test_member_notices_and_room_warnings_land_in_the_room() -> None:
    chat = state("es")
    rid = b"\x05" * 32
    chat.apply(RoomCreated(room="aula", room_id=rid), room(rid, "aula", ("alice", ALICE_KEY)))
    updates = chat.apply(
        MemberAdded(room="aula", room_id=rid, name="bob", by="alice"),
        room(rid, "aula", ("alice", ALICE_KEY), ("bob", BOB_KEY)),
    )
    assert of(Line, updates)[-1].text == "alice ha añadido a bob."
    updates = chat.apply(MemberRemoved(room="aula", room_id=rid, name="bob", by="bob"))
    assert of(Line, updates)[-1].text == "bob ha salido de la sala."
    alert = RoomAlert(kind=ev.WarningKind.ROOM_NOT_A_MEMBER, detail="", sender="mallory", room="aula", room_id=rid)
    [banner] = of(Banner, chat.apply(alert))
    assert banner.conversation == room_key(rid)
    assert banner.text.startswith("El relé presentó a mallory como miembro de esta sala")


def sent(chat: ChatState, text: str, conversation: str, msg_id: str) -> str:
    outgoing, _ = chat.compose(text, conversation)
    assert outgoing is not None
    chat.sent(outgoing.ref, msg_id)
    return outgoing.ref


def note(updates: list) -> DeliveryNote:  # type: ignore[type-arg]
    [found] = of(DeliveryNote, updates)
    return found


def test_one_tick_from_the_relay_two_only_from_the_receipt() -> None:
    chat = state()
    chat.apply(ev.Joined(member=member("carol", CAROL_KEY)))
    sent(chat, "hola", ROOM, "d1")
    first = note(chat.apply(ev.Delivery(msg_id="d1", delivered=("bob", "carol"), missing=())))
    assert first.text == "✓ sent to bob, carol" and first.state is DeliveryState.SENT
    second = note(chat.apply(ev.Receipt(sender="Bob", msg_ids=("d1",))))
    assert second.text == "✓✓ delivered to bob · ✓ sent to carol", "the pinned name's case does not matter"
    assert second.detail.splitlines() == [
        "Who has it:",
        "bob: delivered (their client confirmed it)",
        "carol: on the relay and handed on; their client has not confirmed it yet",
    ]
    last = note(chat.apply(ev.Receipt(sender="carol", msg_ids=("d1",))))
    assert last.text == "✓✓ delivered to bob, carol" and last.state is DeliveryState.DELIVERED and last.ok


def test_waiting_then_delivered_and_not_delivered_with_the_reason_in_both_languages() -> None:
    for lang, waiting, refused in (
        ("en", "◷ waiting for dave", "not delivered to erin: their mailbox on the relay is full"),
        ("es", "◷ esperando a dave", "no entregado a erin: su buzón en el relé está lleno"),
    ):
        chat = state(lang)
        chat.tabs.update({"dave", "erin"})  # conversations open from before: they are away now
        sent(chat, "nos vemos", "dave", "w1")
        shown = note(chat.apply(ev.Delivery(msg_id="w1", delivered=(), missing=(), waiting=("dave",))))
        assert shown.text == waiting and shown.state is DeliveryState.WAITING and shown.ok
        # A late relay word does not undo a receipt.
        note(chat.apply(ev.Receipt(sender="dave", msg_ids=("w1",))))
        after = note(chat.apply(ev.Delivery(msg_id="w1", delivered=(), missing=("dave",))))
        assert after.state is DeliveryState.DELIVERED
        sent(chat, "¿sigues?", "erin", "w2")
        shown = note(
            chat.apply(ev.Delivery(msg_id="w2", delivered=(), missing=(), not_delivered=(("erin", "mailbox_full"),)))
        )
        assert shown.text == refused and not shown.ok


def test_a_room_member_who_is_away_is_said_to_be_away_not_unverified() -> None:
    chat = state()
    rid = b"\x06" * 32
    chat.apply(
        Invited(room="ops", room_id=rid, by="bob"),
        room(rid, "ops", ("bob", BOB_KEY), ("alice", ALICE_KEY), ("carol", CAROL_KEY)),
    )
    sent(chat, "hola", room_key(rid), "r9")
    shown = note(chat.apply(ev.Delivery(msg_id="r9", delivered=("bob",), missing=(), skipped=("carol",))))
    assert shown.text == (
        "✓ sent to bob · not encrypted to carol: not connected, and no mailbox on this relay to wait in"
    )


def entry(seq: int, msg_id: str, sender: str, body: str, *, outgoing: bool = False) -> HistoryEntry:
    record = HistoryRecord(
        conversation="room:main",
        msg_id=msg_id,
        sender=sender,
        sent_at=1_764_000_000_000 + seq,
        outgoing=outgoing,
        body=body,
    )
    return HistoryEntry(seq=seq, record=record)


def test_history_pages_go_above_and_never_repeat_a_message_shown_live() -> None:
    chat = state()
    chat.apply(ev.Message(sender="bob", text="live", to=("alice",), direct=False, msg_id="h3", sent_at=0))
    assert chat.history_wanted(ROOM) == (True, None)
    assert chat.history_wanted(ROOM) == (False, None), "one page at a time"
    updates = chat.history(
        ROOM,
        (entry(1, "h1", "bob", "old"), entry(2, "h2", "alice", "mine", outgoing=True), entry(3, "h3", "bob", "live")),
        older=True,
    )
    [block] = of(HistoryBlock, updates)
    texts = [(line.kind, line.text) for line in block.lines if line.kind != "day"]
    assert texts == [("message", "old"), ("own", "mine")]
    assert block.older and block.top_text == "loading older messages…"
    assert chat.history_wanted(ROOM) == (True, 1), "the next page reads before the oldest shown"
    # A receipt for an own message from the history gives it its ticks.
    own = next(line for line in block.lines if line.kind == "own")
    assert note(chat.apply(ev.Receipt(sender="bob", msg_ids=("h2",)))).ref == own.ref
    [last] = of(HistoryBlock, chat.history(ROOM, (), older=False))
    assert last.top_text == "start of the history kept on this computer"
    assert chat.history_wanted(ROOM) == (False, None)


def test_history_names_map_to_panes() -> None:
    assert conversation_key("room:main") == ROOM and history_name(ROOM) == "room:main"
    assert conversation_key("dm:bob") == "bob" and history_name("bob") == "dm:bob"
    assert conversation_key("dm:bob,carol") is None, "a group direct conversation has no pane in the window"
    key = room_key(b"\x07" * 32)
    assert conversation_key(history_name(key)) == key


def test_own_messages_from_the_history_keep_where_they_were() -> None:
    from susurro.client.mailstate import DeliveryState as WaitState

    chat = state()
    page = (
        entry(1, "o1", "alice", "one", outgoing=True),
        entry(2, "o2", "alice", "two", outgoing=True),
        entry(3, "o3", "alice", "three", outgoing=True),
    )
    reports = {"o1": {"bob": WaitState.DELIVERED}, "o2": {"dave": WaitState.WAITING}}
    [block] = of(HistoryBlock, chat.history(ROOM, page, older=False, reports=reports))
    notes = [(line.text, line.note) for line in block.lines if line.kind == "own"]
    assert notes == [("one", "✓✓ delivered to bob"), ("two", "◷ waiting for dave"), ("three", "")]
    # The receipt that comes later still moves the waiting one.
    assert note(chat.apply(ev.Receipt(sender="dave", msg_ids=("o2",)))).text == "✓✓ delivered to dave"


@pytest.mark.parametrize(
    ("lang", "expected"),
    [
        (
            "en",
            [
                "bob made carol an admin.",
                "bob made you an admin of ops #0909090909090909.",
                "bob removed carol as admin.",
                "bob removed you as admin of ops #0909090909090909.",
                "bob opened the room: anyone on this relay may join it.",
                "bob made the room invite-only: its admins decide who joins.",
            ],
        ),
        (
            "es",
            [
                "bob ha hecho administrador a carol.",
                "bob te ha hecho administrador de ops #0909090909090909.",
                "bob ha quitado a carol de administrador.",
                "bob te ha quitado de administrador de ops #0909090909090909.",
                "bob ha abierto la sala: cualquiera en este relé puede entrar.",
                "bob ha hecho la sala solo con invitación: solo entran las personas que añadan sus administradores.",
            ],
        ),
    ],
)
def test_promotions_and_policy_changes_are_said_in_the_windows_language(lang: str, expected: list[str]) -> None:
    chat = state(lang)
    rid = b"\x09" * 32
    info = room(rid, "ops", ("bob", BOB_KEY), ("alice", ALICE_KEY), ("carol", CAROL_KEY))
    chat.apply(Invited(room="ops", room_id=rid, by="bob"), info)
    notices = [
        RoomNotice(room="ops", room_id=rid, kind=EntryKind.PROMOTE, by="bob", name="carol"),
        RoomNotice(room="ops", room_id=rid, kind=EntryKind.PROMOTE, by="bob", name="alice"),
        RoomNotice(room="ops", room_id=rid, kind=EntryKind.DEMOTE, by="bob", name="carol"),
        RoomNotice(room="ops", room_id=rid, kind=EntryKind.DEMOTE, by="bob", name="alice"),
        RoomNotice(room="ops", room_id=rid, kind=EntryKind.POLICY, by="bob", policy=RoomPolicy.OPEN),
        RoomNotice(room="ops", room_id=rid, kind=EntryKind.POLICY, by="bob", policy=RoomPolicy.INVITE),
    ]
    said = [of(Line, chat.apply(notice, info))[-1].text for notice in notices]
    assert said == expected


def test_the_terminal_still_reads_a_room_notice_in_english() -> None:
    notice = RoomNotice(room="ops", room_id=b"\x09" * 32, kind=EntryKind.POLICY, by="bob", policy=RoomPolicy.OPEN)
    assert notice.text == "bob made the room open"
    assert RoomNotice(room="ops", room_id=b"\x09" * 32, kind=EntryKind.PROMOTE, by="bob", name="c").text == (
        "bob made c an admin"
    )


def test_room_commands_are_refused_in_words_where_the_log_already_refuses_them() -> None:
    chat = state()
    rid = b"\x0a" * 32
    info = room(rid, "ops", ("bob", BOB_KEY), ("alice", ALICE_KEY))  # bob is the admin, alice is not
    chat.apply(Invited(room="ops", room_id=rid, by="bob"), info)

    def typed(line: str, where: str) -> tuple[object, str]:
        command, updates = chat.compose(line, where)
        lines = of(Line, updates)
        return command, lines[-1].text if lines else ""

    assert typed("/leave", ROOM) == (None, "Type /leave in a room's conversation: choose the room on the left first.")
    assert typed("/remove bob", room_key(rid)) == (None, "Only an admin of ops #0a0a0a0a0a0a0a0a can do that.")
    command, said = typed("/members", room_key(rid))
    assert said == "Members: bob, alice" and command is not None
    command, said = typed("/leave", room_key(rid))
    assert command is not None and said == "", "carried out by the app"
    admin = room(rid, "ops", ("alice", ALICE_KEY), ("bob", BOB_KEY))
    chat.apply(Invited(room="ops", room_id=rid, by="bob"), admin)
    assert typed("/promote carol", room_key(rid)) == (None, "carol is not a member of ops #0a0a0a0a0a0a0a0a.")
    assert typed("/remove alice", room_key(rid)) == (None, "That is you: to leave the room, use Leave room.")
    command, _said = typed("/remove BOB", room_key(rid))
    assert command is not None, "names compare casefolded"
