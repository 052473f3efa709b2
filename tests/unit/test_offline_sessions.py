"""Messages that wait, end to end without sockets: real ``ClientSession`` objects
and a real ``RelayCore`` on a real SQLite data dir (``tests.helpers.session_pair``).

The wall clock is passed in (hours pass without sleeping); a relay restart is
a new ``RelayCore`` on the same data dir; a client restart is a new session
whose prekey ring is loaded from what the old one saved, and whose history is
the same file opened again.
"""

from __future__ import annotations

from pathlib import Path

from susurro.client import events as ev
from susurro.client.history import SqliteHistory
from susurro.client.mailbox import Mailbox
from susurro.client.prekeyring import PrekeyRing
from susurro.crypto import IdentityKey
from susurro.protocol import Deliver, Mail
from tests.helpers.offline import HOUR, T0, User, bob_away, joined, relay
from tests.helpers.session_pair import SessionPair


def all_bytes(*directories: Path) -> bytes:
    return b"".join(p.read_bytes() for d in directories for p in d.rglob("*") if p.is_file())


def test_a_direct_message_waits_for_bob_across_a_relay_restart_and_hours(tmp_path: Path) -> None:
    data_dir, home = tmp_path / "relay", tmp_path / "home"
    room, (alice, bob), clock = joined(tmp_path, "alice", "bob", home=home)
    room.hang_up("bob")  # bob goes away; alice has pinned him
    room.pump()
    msg_id = room["alice"].send_message("the plan is on for friday", room.now, to=["bob"])
    events = room.pump()["alice"]
    deliveries = [e for e in events if isinstance(e, ev.Delivery) and e.msg_id == msg_id]
    assert deliveries and deliveries[-1].waiting == ("bob",), events
    assert not [e for e in events if isinstance(e, ev.Warning)], events

    clock[0] += 7 * HOUR  # hours later, after the relay restarted
    room = relay(data_dir)
    room.add("alice", **alice.session_options(clock))
    room.add("bob", **bob.session_options(clock))
    produced = room.pump()
    messages = [e for e in produced["bob"] if isinstance(e, ev.Message)]
    assert [(m.sender, m.text, m.direct, m.waited) for m in messages] == [
        ("alice", "the plan is on for friday", True, True)
    ]
    assert not [e for e in produced["bob"] if isinstance(e, ev.Warning)], produced["bob"]
    assert room.relay.mailbox.mailboxes.usage(bob.identity.public) == (0, 0)  # confirmed, so deleted
    # Alice's report moves from waiting to delivered: bob's signed receipt, not the relay's word.
    receipts = [e for e in produced["alice"] if isinstance(e, ev.Receipt)]
    assert receipts == [ev.Receipt(sender="bob", msg_ids=(msg_id,), waited=(msg_id,))], produced["alice"]

    # bob's client restarts: the message is in his history, and is not delivered again.
    room.hang_up("bob")
    room.pump()
    again = bob.session_options(clock)
    history = again["history"]
    assert isinstance(history, SqliteHistory)
    page = history.page("dm:alice")
    assert [(e.record.sender, e.record.body) for e in page.entries] == [("alice", "the plan is on for friday")]
    room.add("bob2", name="bob", **again)
    assert not [e for e in room.pump()["bob2"] if isinstance(e, ev.Message)]
    secret = b"the plan is on for friday"
    assert secret not in all_bytes(data_dir, home)


def test_an_unconfirmed_item_comes_again_and_is_shown_once(tmp_path: Path) -> None:
    room, _, bob, clock = bob_away(tmp_path)
    room["alice"].send_message("once only", room.now, to=["bob"])
    room.pump()
    held: list[Mail] = []
    room.add("bob2", name="bob", **bob.session_options(clock))

    def lose_the_ack(frame: object) -> list[object]:
        if isinstance(frame, Mail):
            held.append(frame)
        return [frame]

    room.intercept("bob2", lose_the_ack)  # type: ignore[arg-type]
    first = room.pump()["bob2"]
    assert [e.text for e in first if isinstance(e, ev.Message)] == ["once only"]
    # The relay (or a crash) loses the confirmation and serves the item again: a duplicate, not shown.
    again = room.inject("bob2", *held)
    assert not [e for e in again if isinstance(e, (ev.Message, ev.Warning))], again


def test_a_direct_message_to_someone_never_met_is_refused_plainly(tmp_path: Path) -> None:
    clock = [T0]
    alice = User("alice", tmp_path)
    room = relay(tmp_path / "relay")
    room.add("alice", **alice.session_options(clock))
    room.pump()
    try:
        room["alice"].send_message("hello?", room.now, to=["zed"])
    except Exception as exc:  # SendError
        assert "never met" in str(exc)
    else:
        raise AssertionError("a message to a stranger who is away was accepted")


def test_online_deliveries_are_confirmed_by_signed_receipts(tmp_path: Path) -> None:
    room, _, _ = joined(tmp_path, "alice", "bob", "carol")
    first = room["alice"].send_message("one", room.now)
    second = room["alice"].send_message("two", room.now)
    produced = room.pump()
    receipts = [e for e in produced["alice"] if isinstance(e, ev.Receipt)]
    confirmed = {(r.sender, i) for r in receipts for i in r.msg_ids}
    assert confirmed == {(who, m) for who in ("bob", "carol") for m in (first, second)}
    assert len(receipts) == 2  # batched: one receipt per reader for both messages


def test_a_receipt_the_relay_fabricates_is_refused(tmp_path: Path) -> None:
    room, (alice, bob), _ = joined(tmp_path, "alice", "bob")
    msg_id = room["alice"].send_message("did you get it?", room.now, to=["bob"])
    mallory = IdentityKey.generate()  # the relay (or anyone) signing a receipt "from bob" with another key
    from susurro.crypto.fingerprint import fingerprint_bytes
    from susurro.crypto.prekeys import (
        EnvelopeKind,
        PrekeyBundle,
        Receipt,
        check_bundle,
        receipt_block,
        seal_to_prekey,
    )

    signed = alice.saved_ring and PrekeyRing.load(alice.identity, alice.saved_ring).current_signed
    assert signed
    bundle = check_bundle(
        PrekeyBundle(name="alice", identity_key=alice.identity.public, signed=signed, one_time=None),
        alice.identity.public,
    )
    forged = Receipt(sender="bob", recipient="alice", recipient_fingerprint=fingerprint_bytes(alice.identity.public),
                     msg_ids=(msg_id,), at=1)  # fmt: skip
    envelope = seal_to_prekey(mallory, bundle, receipt_block(mallory, forged), EnvelopeKind.RECEIPT)
    events = room.inject(
        "alice", Mail(item=10**6, sender="bob", ik=bob.identity.public, id="x1", kind="receipt", ct=envelope, at=1)
    )
    assert not [e for e in events if isinstance(e, ev.Receipt)]
    assert [e.kind for e in events if isinstance(e, ev.Warning)] == ["sender_mismatch"], events


def test_a_sender_without_prekeys_is_asked_for_them_once_not_on_every_read(tmp_path: Path) -> None:
    """An older client (no mailbox): receipts to it stop after one fetch, so reads cannot flood the relay."""
    clock = [T0]
    bob = User("bob", tmp_path)
    room = relay(tmp_path / "relay")
    room.add("alice")  # no mailbox: never publishes prekeys
    options = bob.session_options(clock)
    room.add("bob", **options)
    room.pump()
    mailbox = options["mailbox"]
    assert isinstance(mailbox, Mailbox)
    for n in range(3):
        room["alice"].send_message(f"m{n}", room.now)
        assert f"m{n}" in [e.text for e in room.pump()["bob"] if isinstance(e, ev.Message)]
    assert mailbox._receipts._no_receipts == {room.identity("alice").public}
    assert not mailbox._receipts._shown and not mailbox._receipts._receipt_fetches


# --- nothing lost that the relay only queued (the sender keeps each copy until its receipt) ---


def _alice_and_bob(tmp_path: Path) -> SessionPair:
    return joined(tmp_path, "alice", "bob")[0]


def _confirming_pair(tmp_path: Path) -> SessionPair:
    """alice and bob joined; bob has confirmed a first message, so alice knows he sends receipts."""
    room = _alice_and_bob(tmp_path)
    room["alice"].send_message("warm-up", room.now, to=["bob"])
    assert [e for e in room.pump()["alice"] if isinstance(e, ev.Receipt)]
    return room


def test_copies_the_relay_queued_but_lost_reach_the_recipients_next_session_once(tmp_path: Path) -> None:
    room = _confirming_pair(tmp_path)
    room.intercept("bob", lambda frame: [] if isinstance(frame, Deliver) else [frame])  # lost after "queued"
    sent = [room["alice"].send_message(text, room.now, to=["bob"]) for text in ("one", "two", "three")]
    produced = room.pump()
    queued = [e for e in produced["alice"] if isinstance(e, ev.Delivery) and e.delivered == ("bob",)]
    assert [d.msg_id for d in queued] == sent and not [e for e in produced["bob"] if isinstance(e, ev.Message)]
    room.hang_up("bob")  # evicted: bob comes back with a new session key
    room.pump()
    room.rejoin("bob", "bob-again")
    produced = room.pump()
    shown = [e for e in produced["bob-again"] if isinstance(e, ev.Message)]
    assert [m.text for m in shown] == ["one", "two", "three"] and [m.msg_id for m in shown] == sent
    assert not [e for e in produced["bob-again"] if isinstance(e, ev.Warning)], produced["bob-again"]
    confirmed = {i for e in produced["alice"] if isinstance(e, ev.Receipt) for i in e.msg_ids}
    assert confirmed == set(sent)
    assert room["alice"].outstanding() == []


def test_a_resent_copy_of_a_message_already_shown_is_dropped_and_confirmed_again(tmp_path: Path) -> None:
    room = _confirming_pair(tmp_path)
    room.intercept("alice", lambda frame: [] if isinstance(frame, Mail) and frame.kind == "receipt" else [frame])
    msg_id = room["alice"].send_message("shown, but the receipt is lost", room.now, to=["bob"])
    shown = [e for e in room.pump()["bob"] if isinstance(e, ev.Message)]
    assert [m.msg_id for m in shown] == [msg_id]
    room.intercept("alice", None)
    room.hang_up("bob")
    room.pump()
    room.rejoin("bob", "bob-again")
    produced = room.pump()
    assert not [e for e in produced["bob-again"] if isinstance(e, (ev.Message, ev.Warning))], produced["bob-again"]
    assert msg_id in {i for e in produced["alice"] if isinstance(e, ev.Receipt) for i in e.msg_ids}
    assert room["alice"].outstanding() == []


def test_the_relays_dropped_report_resends_at_once_to_a_recipient_already_back(tmp_path: Path) -> None:
    room = _alice_and_bob(tmp_path)  # no receipt from bob yet: only what the relay says it dropped is resent
    bob_conn = room.nodes["bob"].conn
    assert bob_conn is not None
    room.intercept("bob", lambda frame: [] if isinstance(frame, Deliver) else [frame])
    msg_id = room["alice"].send_message("queued, then thrown away", room.now, to=["bob"])
    room.pump()
    tags = list(room.nodes["bob"].outbox.tags)
    room.hang_up("bob")
    room.rejoin("bob", "bob-again")
    room.pump()  # bob is back before the relay's report comes
    room.relay.report_dropped(bob_conn, tags, "slow_consumer")
    produced = room.pump()
    warnings = [e for e in produced["alice"] if isinstance(e, ev.Warning)]
    assert [w.kind for w in warnings] == [ev.WarningKind.DROPPED], warnings
    assert [m.msg_id for m in produced["bob-again"] if isinstance(m, ev.Message)] == [msg_id]
