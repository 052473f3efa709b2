"""The sender's outstanding set (``client/unconfirmed.py``): what is kept until a receipt, and what is resent."""

from __future__ import annotations

from susurro.client import events as ev
from susurro.client.unconfirmed import Unconfirmed
from susurro.crypto import IdentityKey, IdentityPublicKey, Recipient, SessionKey, SessionPublicKey
from susurro.crypto.seal import SignedMessage, sign_message

ALICE = IdentityKey.generate()
BOB_IK = IdentityKey.generate().public
CAROL_IK = IdentityKey.generate().public


def _session() -> SessionPublicKey:
    return SessionKey.generate().public


BOB_1, BOB_2, CAROL_1, CAROL_2 = _session(), _session(), _session(), _session()


def _signed(msg_id: str) -> SignedMessage:
    return sign_message(
        identity=ALICE, sender="alice", recipients=[("bob", BOB_IK), ("carol", CAROL_IK)], body="hola",
        msg_id=msg_id, sent_at=1, room="main",
    )  # fmt: skip


def _to(name: str, ik: IdentityPublicKey, sk: SessionPublicKey, counter: int) -> Recipient:
    return Recipient(name=name, identity_key=ik, session_key=sk, counter=counter)


def _send(book: Unconfirmed, msg_id: str, counter: int) -> None:
    assert (
        book.sent(
            msg_id, _signed(msg_id), [_to("bob", BOB_IK, BOB_1, counter), _to("carol", CAROL_IK, CAROL_1, counter)]
        )
        == []
    )


def test_a_recipient_who_confirms_is_sent_its_unconfirmed_copies_again_in_its_next_session_once() -> None:
    book = Unconfirmed()
    for n in (1, 2, 3):
        _send(book, f"m{n}", n)
    book.confirmed(BOB_IK, ["m1"])  # bob's receipt: bob confirms, and has m1
    assert book.due("bob", BOB_IK, BOB_1) == []  # same session: nothing lost
    again = book.due("bob", BOB_IK, BOB_2)
    assert [(r.msg_id, r.recipient.counter, r.recipient.session_key) for r in again] == [
        ("m2", 2, BOB_2),
        ("m3", 3, BOB_2),
    ]
    assert again[0].signed.inner.msg_id == "m2"  # the message as it was signed
    assert book.due("bob", BOB_IK, BOB_2) == [], "handed out once per session"
    assert book.outstanding() == [
        ("m1", "hola", ("carol",)),
        ("m2", "hola", ("bob", "carol")),
        ("m3", "hola", ("bob", "carol")),
    ]


def test_a_recipient_never_heard_confirming_gets_only_what_the_relay_said_it_dropped() -> None:
    book = Unconfirmed()
    for n in (1, 2, 3):
        _send(book, f"m{n}", n)
    assert book.due("carol", CAROL_IK, CAROL_2) == []  # an older client: resending everything would repeat it
    book.dropped("Carol", ["m3", "unknown"], "slow_reader")
    assert [r.msg_id for r in book.due("carol", CAROL_IK, CAROL_2)] == ["m3"]


def test_receipts_and_the_relays_missing_end_a_copy_and_the_message_goes_with_its_last_copy() -> None:
    book = Unconfirmed()
    _send(book, "m1", 1)
    book.not_queued("m1", ["carol"])  # the ack said carol was not there: reported, not kept
    assert book.outstanding() == [("m1", "hola", ("bob",))]
    book.confirmed(BOB_IK, ["m1"])
    assert len(book) == 0 and book.outstanding() == []


def test_a_full_set_lets_the_oldest_go_and_says_so_only_if_someone_was_confirming() -> None:
    book = Unconfirmed(limit=2)
    _send(book, "m1", 1)
    _send(book, "m2", 2)
    _send(book, "m3", 3)  # m1 goes: nobody ever confirmed anything, so nothing is said
    book.confirmed(BOB_IK, [])
    out = book.sent("m4", _signed("m4"), [_to("bob", BOB_IK, BOB_1, 4)])
    assert len(out) == 1 and isinstance(out[0], ev.Warning)
    assert out[0].kind is ev.WarningKind.DELIVERY_UNKNOWN and "m2" in out[0].detail and "bob" in out[0].detail
    assert [msg_id for msg_id, _, _ in book.outstanding()] == ["m3", "m4"]
