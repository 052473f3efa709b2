"""The headless client core against a real relay core, in memory, honest and hostile.

Every scenario runs the real ``RelayCore`` and real ``ClientSession`` objects
(real keys, real Boxes, real signatures) through ``session_pair.SessionPair``;
a "hostile relay" is that same relay with a hook rewriting the frames it sends
to one client. Assertions name exact event types and warning kinds, so a
check that silently stops firing fails a test.
"""

from __future__ import annotations

import dataclasses
import struct
from pathlib import Path

import msgpack
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from susurro.client import events as ev
from susurro.client.events import WarningKind
from susurro.client.link import LinkState
from susurro.client.localstate import CounterState
from susurro.client.session import ClientSession, SendError
from susurro.crypto import (
    MAX_BODY_BYTES,
    BoxCache,
    IdentityKey,
    Recipient,
    SessionCertificate,
    SessionKey,
    fingerprint,
    pad,
    seal_message,
)
from susurro.protocol import RELAY_FRAMES, Ack, Challenge, Deliver, Error, Frame, Joined, Left, Member, Welcome, encode
from susurro.relay import RelayConfig
from tests.helpers.session_pair import SessionPair, flip_bit, kinds, only

# --- helpers --------------------------------------------------------------------


@pytest.fixture
def room() -> SessionPair:
    """alice, bob and carol, joined in that order, all events consumed."""
    pair = SessionPair()
    pair.join("alice", "bob", "carol")
    return pair


def member_info(pair: SessionPair, label: str) -> ev.MemberInfo:
    public = pair.identity(label).public
    return ev.MemberInfo(name=label, fingerprint=fingerprint(public), identity_key=public)


def member_record(pair: SessionPair, label: str) -> Member:
    """The roster record the relay holds for ``label``, rebuilt from its live session."""
    session = pair[label]
    peer_view = pair["alice" if label != "alice" else "bob"].peers[label]
    return Member(
        name=session.name,
        ik=session.identity.public,
        sk=session.session_key.public,
        cert=SessionCertificate.issue(
            session.identity, session.name, session.session_key.public, peer_view.issued_at
        ).signature,
        issued_at=peer_view.issued_at,
    )


def certified_member(identity: IdentityKey, name: str, session_public: bytes, issued_at: int = 1) -> Member:
    """A roster record whose certificate genuinely verifies under ``identity``."""
    cert = SessionCertificate.issue(identity, name, session_public, issued_at)
    return Member(name=name, ik=identity.public, sk=session_public, cert=cert.signature, issued_at=issued_at)


def capture_delivers(pair: SessionPair, label: str, *, pass_on: bool) -> list[Deliver]:
    """Record every ``deliver`` on its way to ``label``; optionally swallow it."""
    seen: list[Deliver] = []

    def hook(frame: Frame) -> list[Frame]:
        if isinstance(frame, Deliver):
            seen.append(frame)
            return [frame] if pass_on else []
        return [frame]

    pair.intercept(label, hook)
    return seen


def assert_clean_delivery(pair: SessionPair, sender: str, recipients: list[str], text: str = "still in step") -> None:
    """The next message from ``sender`` arrives exactly once, with no gap or replay warning.

    After a refused send this proves the counters did not advance: a counter
    that moved without a frame leaving would show up here as a ``gap``.
    """
    assert pair[sender].data_to_send() == b"", "a refused send must not queue bytes"
    msg_id = pair[sender].send_message(text, pair.now, to=recipients)
    produced = pair.pump()
    for label in recipients:
        assert kinds(produced[label]) == ["Message"], produced[label]
        assert produced[label][0].text == text
    assert kinds(produced[sender]) == ["Delivery"]
    assert produced[sender][0] == ev.Delivery(msg_id=msg_id, delivered=tuple(recipients), missing=())


# --- joining --------------------------------------------------------------------


def test_three_clients_join_and_see_each_other_with_real_fingerprints() -> None:
    pair = SessionPair()

    first = pair.join("alice")
    alice_fp = fingerprint(pair.identity("alice").public)
    assert first["alice"] == [
        ev.Connected(name="alice", fingerprint=alice_fp, relay="memory"),
        ev.Roster(members=()),
    ]

    second = pair.join("bob")
    assert second["bob"] == [
        ev.Connected(name="bob", fingerprint=fingerprint(pair.identity("bob").public), relay="memory"),
        ev.Roster(members=(member_info(pair, "alice"),)),
    ]
    assert second["alice"] == [ev.Joined(member=member_info(pair, "bob"))]

    third = pair.join("carol")
    assert kinds(third["carol"]) == ["Connected", "Roster"]
    assert third["carol"][0] == ev.Connected(
        name="carol", fingerprint=fingerprint(pair.identity("carol").public), relay="memory"
    )
    assert set(third["carol"][1].members) == {member_info(pair, "alice"), member_info(pair, "bob")}
    assert third["alice"] == [ev.Joined(member=member_info(pair, "carol"))]
    assert third["bob"] == [ev.Joined(member=member_info(pair, "carol"))]

    for label in ("alice", "bob", "carol"):
        assert pair[label].state is LinkState.JOINED
        assert pair[label].member_names() == sorted({"alice", "bob", "carol"} - {label})


def test_conversation_fed_byte_by_byte_matches_whole_frames() -> None:
    # h11's invariant: how the network splits the stream must not change a thing.
    transcripts = []
    for chunk in (0, 1, 7):
        pair = SessionPair(chunk=chunk)
        joined = pair.join("alice", "bob", "carol")
        pair["alice"].send_message("hello, room", pair.now)
        pair["bob"].send_message("just carol", pair.now, to=["carol"])
        produced = pair.pump()
        transcripts.append(
            (
                {who: kinds(events) for who, events in joined.items()},
                {who: kinds(events) for who, events in produced.items()},
                [m.text for m in only(produced["carol"], ev.Message)],
            )
        )
    assert transcripts[0] == transcripts[1] == transcripts[2]
    assert transcripts[0][1] == {
        "alice": ["Delivery"],
        "bob": ["Message", "Delivery"],
        "carol": ["Message", "Message"],
    }


def test_member_leaving_is_announced_and_forgotten(room: SessionPair) -> None:
    room["carol"].close()
    produced = room.pump()
    assert produced["alice"] == [ev.Left(name="carol")]
    assert produced["bob"] == [ev.Left(name="carol")]
    assert produced["carol"] == []  # it said bye itself: no Disconnected for a deliberate close
    assert "carol" not in room["alice"].peers
    with pytest.raises(SendError):
        room["alice"].send_message("are you there?", room.now, to=["carol"])
    assert_clean_delivery(room, "alice", ["bob"])


# --- messages -------------------------------------------------------------------


def test_room_message_reaches_each_other_member_once(room: SessionPair) -> None:
    room.now += 5.25
    msg_id = room["alice"].send_message("hello, room", room.now)
    produced = room.pump()

    assert kinds(produced["bob"]) == ["Message"]
    assert kinds(produced["carol"]) == ["Message"]
    at_bob, at_carol = produced["bob"][0], produced["carol"][0]
    assert at_bob == at_carol  # one signed inner: same text, same list, same id
    assert at_bob.sender == "alice"
    assert at_bob.text == "hello, room"
    assert sorted(at_bob.to) == ["bob", "carol"]
    assert at_bob.direct is False
    assert at_bob.msg_id == msg_id
    assert at_bob.sent_at == int(room.now * 1000)

    assert kinds(produced["alice"]) == ["Delivery"]
    delivery = produced["alice"][0]
    assert delivery.msg_id == msg_id
    assert sorted(delivery.delivered) == ["bob", "carol"]
    assert delivery.missing == ()


def test_direct_message_reaches_only_its_recipient(room: SessionPair) -> None:
    msg_id = room["alice"].send_message("just for you", room.now, to=["bob"])
    produced = room.pump()
    assert kinds(produced["bob"]) == ["Message"]
    message = produced["bob"][0]
    assert (message.sender, message.text, message.to, message.direct) == ("alice", "just for you", ("bob",), True)
    assert produced["carol"] == []
    assert produced["alice"] == [ev.Delivery(msg_id=msg_id, delivered=("bob",), missing=())]


def test_many_messages_both_ways_stay_in_step(room: SessionPair) -> None:
    for round_no in range(5):
        for sender in ("alice", "bob", "carol"):
            room[sender].send_message(f"{sender} #{round_no}", room.now)
        produced = room.pump()
        for label in ("alice", "bob", "carol"):
            assert kinds(produced[label]).count("Message") == 2
            assert kinds(produced[label]).count("Delivery") == 1
            assert only(produced[label], ev.Warning) == []


# --- refused sends --------------------------------------------------------------


def test_send_refused_before_join_and_after_close() -> None:
    pair = SessionPair()
    alice = pair.add("alice")
    with pytest.raises(SendError, match="not connected"):
        alice.send_message("too early", pair.now)  # awaiting the challenge
    alice.receive_data(pair.nodes["alice"].outbox.take_all(), pair.now)  # challenge in, hello out
    assert alice.state is LinkState.JOINING
    with pytest.raises(SendError, match="not connected"):
        alice.send_message("still too early", pair.now)
    pair.pump()
    pair.join("bob")
    assert alice.state is LinkState.JOINED
    alice.close()
    alice.data_to_send()
    with pytest.raises(SendError, match="not connected"):
        alice.send_message("too late", pair.now)


@pytest.mark.parametrize("text", ["", " ", "\n\t  "])
def test_send_refuses_empty_text(room: SessionPair, text: str) -> None:
    with pytest.raises(SendError, match="empty"):
        room["alice"].send_message(text, room.now)
    assert_clean_delivery(room, "alice", ["bob", "carol"])


def test_send_refused_when_nobody_else_is_in_the_room() -> None:
    pair = SessionPair()
    pair.join("alice")
    with pytest.raises(SendError, match="nobody"):
        pair["alice"].send_message("anyone?", pair.now)
    assert pair["alice"].data_to_send() == b""


@pytest.mark.parametrize("to", [["zed"], ["bob", "zed"], ["alice"], ["Bob"]])
def test_send_refuses_unknown_recipients(room: SessionPair, to: list[str]) -> None:
    with pytest.raises(SendError, match="not in the room"):
        room["alice"].send_message("hello?", room.now, to=to)
    assert_clean_delivery(room, "alice", ["bob"])


@pytest.mark.parametrize(
    "body",
    ["x" * (MAX_BODY_BYTES + 1), "é" * (MAX_BODY_BYTES // 2 + 1)],  # the limit is bytes, not characters
    ids=["ascii", "two-byte-utf8"],
)
def test_send_refuses_body_over_max_body_bytes(room: SessionPair, body: str) -> None:
    assert len(body.encode("utf-8")) > MAX_BODY_BYTES
    with pytest.raises(SendError, match="limit"):
        room["alice"].send_message(body, room.now)
    assert_clean_delivery(room, "alice", ["bob", "carol"])


def test_body_of_exactly_max_body_bytes_is_sent() -> None:
    pair = SessionPair()
    pair.join("alice", "bob")
    body = "y" * MAX_BODY_BYTES
    pair["alice"].send_message(body, pair.now)
    produced = pair.pump()
    assert kinds(produced["bob"]) == ["Message"]
    assert produced["bob"][0].text == body


def test_send_refuses_a_frame_over_the_relays_limit_without_moving_counters() -> None:
    pair = SessionPair(RelayConfig(max_frame=8192))
    pair.join("alice", "bob", "carol")
    assert pair["alice"].max_frame == 8192  # learnt from the challenge
    body = "z" * 6000
    # Two ciphertexts of ~6 KB each cannot fit one 8 KiB frame...
    with pytest.raises(SendError, match="frame limit"):
        pair["alice"].send_message(body, pair.now)
    with pytest.raises(SendError, match="frame limit"):
        pair["alice"].send_message(body, pair.now, to=["bob", "carol"])
    # ...but one can, and it arrives with no gap: the refused sends advanced nothing.
    assert_clean_delivery(pair, "alice", ["bob"], text=body)
    assert_clean_delivery(pair, "alice", ["carol"], text=body)
    assert_clean_delivery(pair, "alice", ["bob", "carol"])


def test_send_refuses_more_recipients_than_the_relay_allows() -> None:
    pair = SessionPair(RelayConfig(max_recipients=1))
    pair.join("alice", "bob", "carol")
    with pytest.raises(SendError, match="allows 1"):
        pair["alice"].send_message("to both", pair.now)
    assert_clean_delivery(pair, "alice", ["bob"])
    assert_clean_delivery(pair, "alice", ["carol"])


def test_repeated_recipient_name_does_not_desynchronise_counters() -> None:
    pair = SessionPair()
    pair.join("alice", "bob")
    try:
        pair["alice"].send_message("twice?", pair.now, to=["bob", "bob"])
    except SendError:  # refusing the duplicate is as good as collapsing it
        assert pair.pump()["bob"] == []
    else:
        produced = pair.pump()["bob"]
        assert kinds(produced) == ["Message"]
        assert produced[0].to == ("bob",)
    assert_clean_delivery(pair, "alice", ["bob"])


# --- a hostile relay tampering with deliveries ------------------------------------


@pytest.mark.parametrize("index", [0, 23, 24, 40, -1], ids=["nonce-first", "nonce-last", "mac", "body", "last"])
def test_flipped_ciphertext_bit_is_decrypt_failed(room: SessionPair, index: int) -> None:
    room.intercept(
        "bob", lambda f: [dataclasses.replace(f, ct=flip_bit(f.ct, index))] if isinstance(f, Deliver) else [f]
    )
    room["alice"].send_message("hello", room.now)
    produced = room.pump()
    assert kinds(produced["bob"]) == ["Warning:decrypt_failed"]
    assert produced["bob"][0].sender == "alice"
    assert kinds(produced["carol"]) == ["Message"]  # untouched copy still fine


def test_duplicated_deliver_is_a_replay(room: SessionPair) -> None:
    room.intercept("bob", lambda f: [f, f] if isinstance(f, Deliver) else [f])
    room["alice"].send_message("once only", room.now)
    produced = room.pump()
    assert kinds(produced["bob"]) == ["Message", "Warning:replay"]
    assert produced["bob"][0].text == "once only"
    assert produced["bob"][1].sender == "alice"


def test_dropped_deliver_is_reported_as_a_gap_and_the_next_message_shown(room: SessionPair) -> None:
    dropped: list[Deliver] = []

    def drop_first(frame: Frame) -> list[Frame]:
        if isinstance(frame, Deliver) and not dropped:
            dropped.append(frame)
            return []
        return [frame]

    room.intercept("bob", drop_first)
    room["alice"].send_message("lost", room.now)
    assert room.pump()["bob"] == []
    room["alice"].send_message("found", room.now)
    produced = room.pump()
    assert kinds(produced["bob"]) == ["Warning:gap", "Message"]
    assert produced["bob"][0].sender == "alice"
    assert "1 message" in produced["bob"][0].detail
    assert produced["bob"][1].text == "found"
    # A late copy of the dropped one is now behind the counter: refused.
    assert kinds(room.inject("bob", dropped[0])) == ["Warning:replay"]


def test_reordered_delivers_reject_the_late_one(room: SessionPair) -> None:
    held: list[Deliver] = []

    def swap(frame: Frame) -> list[Frame]:
        if not isinstance(frame, Deliver):
            return [frame]
        if not held:
            held.append(frame)
            return []
        return [frame, held.pop()]

    room.intercept("bob", swap)
    room["alice"].send_message("first", room.now)
    room.pump()
    room["alice"].send_message("second", room.now)
    produced = room.pump()
    # "second" carries counter 2 after nothing: a gap; "first" (counter 1) then
    # arrives behind the counter and is refused, never shown out of order.
    assert kinds(produced["bob"]) == ["Warning:gap", "Message", "Warning:replay"]
    assert produced["bob"][1].text == "second"


def test_deliver_relabelled_as_from_another_member_fails_to_decrypt(room: SessionPair) -> None:
    # The relay says carol sent alice's ciphertext. bob opens it with
    # Box(bob, carol), but it was sealed with Box(alice, bob): the pairwise key
    # is the first check in open_message, so this is decrypt_failed and never
    # gets as far as the signed-sender comparison (sender_mismatch is reserved
    # for ciphertexts that do open under the claimed pair, i.e. reflections).
    room.intercept("bob", lambda f: [dataclasses.replace(f, sender="carol")] if isinstance(f, Deliver) else [f])
    room["alice"].send_message("from alice", room.now)
    produced = room.pump()
    assert kinds(produced["bob"]) == ["Warning:decrypt_failed"]
    assert produced["bob"][0].sender == "carol"


def test_reflected_message_is_a_sender_mismatch(room: SessionPair) -> None:
    captured = capture_delivers(room, "bob", pass_on=False)
    room["alice"].send_message("for bob", room.now, to=["bob"])
    room.pump()
    assert len(captured) == 1
    # Box(alice, bob) == Box(bob, alice): alice can open her own ciphertext,
    # so the signed `from` is what catches the reflection.
    reflected = Deliver(sender="bob", id=captured[0].id, ct=captured[0].ct)
    produced = room.inject("alice", reflected)
    assert kinds(produced) == ["Warning:sender_mismatch"]
    assert produced[0].sender == "bob"


def test_deliver_from_a_name_not_in_the_roster_is_unknown_sender(room: SessionPair) -> None:
    captured = capture_delivers(room, "bob", pass_on=False)
    room["alice"].send_message("hi", room.now)
    room.pump()
    produced = room.inject("bob", dataclasses.replace(captured[0], sender="mallory"))
    assert produced == [
        ev.Warning(kind="unknown_sender", detail=produced[0].detail, sender="mallory"),
    ]
    # Our own name is not a member either: a message "from alice" to alice is refused.
    assert kinds(room.inject("alice", dataclasses.replace(captured[0], sender="alice"))) == ["Warning:unknown_sender"]


def test_replay_from_a_previous_session_of_the_same_member_fails(room: SessionPair) -> None:
    captured = capture_delivers(room, "bob", pass_on=True)
    room["alice"].send_message("old session", room.now)
    assert kinds(room.pump()["bob"]) == ["Message"]
    room.intercept("bob", None)
    # alice leaves and comes back: same identity key, fresh session key.
    identity = room.identity("alice")
    room["alice"].close()
    assert room.pump()["bob"] == [ev.Left(name="alice")]
    del room.nodes["alice"]
    room.add("alice", identity=identity)
    produced = room.pump()
    assert kinds(produced["bob"]) == ["Joined"]
    # The old ciphertext was sealed with Box(old alice session, bob): it no longer opens.
    assert kinds(room.inject("bob", captured[0])) == ["Warning:decrypt_failed"]
    # The new session's counter starts again at 1 without a false replay or gap.
    assert_clean_delivery(room, "alice", ["bob", "carol"])


def test_fake_left_and_rejoin_does_not_reopen_the_replay_window(room: SessionPair) -> None:
    captured = capture_delivers(room, "bob", pass_on=True)
    room["alice"].send_message("say it once", room.now)
    assert kinds(room.pump()["bob"]) == ["Message"]
    # The relay pretends alice left and came back with the same session (which
    # would reset bob's counter for her). A session key is fresh per connection,
    # so an ended one coming back is refused, and the replay has nobody to be from.
    produced = room.inject("bob", Left(name="alice"), Joined(member=member_record(room, "alice")), captured[0])
    assert kinds(produced) == ["Left", "Warning:stale_session", "Warning:unknown_sender"]
    assert "alice" not in room["bob"].peers


def test_an_ended_session_brought_back_after_our_own_restart_is_still_refused(tmp_path: Path) -> None:
    # The ended session keys are kept in the sealed state file: the relay says alice left, bob
    # restarts, and the relay presents the very session it said had ended (a replay window, if
    # it holds that session's secret). Without the file's record bob would admit it.
    pair = SessionPair()
    bob = IdentityKey.generate()
    pair.add("alice")
    pair.pump()
    state = CounterState(bob, tmp_path / "bob.state")
    pair.add("bob", identity=bob, replay=state.replay)
    pair.pump()
    assert kinds(pair.inject("bob", Left(name="alice"))) == ["Left"]
    state.save(0.0, force=True)
    pair.hang_up("bob")
    pair.pump()
    again = CounterState(bob, tmp_path / "bob.state")
    pair.add("bob again", name="bob", identity=bob, replay=again.replay)
    produced = pair.pump()["bob again"]
    assert "Warning:stale_session" in kinds(produced) and "alice" not in pair["bob again"].peers


def test_ciphertext_not_addressed_to_the_recipient_is_refused(room: SessionPair) -> None:
    # A malicious *member* (alice) seals a message whose signed recipient list
    # names carol but encrypts it to bob's session key.
    alice, bob, carol = room["alice"], room["bob"], room["carol"]
    for wrong_name, wrong_ik in [("carol", carol.identity.public), ("bob", IdentityKey.generate().public)]:
        ct = seal_message(
            identity=alice.identity,
            boxes=BoxCache(alice.session_key),
            sender="alice",
            recipients=[
                Recipient(name=wrong_name, identity_key=wrong_ik, session_key=bob.session_key.public, counter=1)
            ],
            body="not for you",
            msg_id=f"forged-{wrong_name}",
            sent_at=0,
        )[wrong_name]
        assert kinds(room.inject("bob", Deliver(sender="alice", id="x", ct=ct))) == ["Warning:not_addressed_to_me"]


def test_message_signed_by_another_identity_is_bad_signature(room: SessionPair) -> None:
    alice, bob = room["alice"], room["bob"]
    ct = seal_message(
        identity=IdentityKey.generate(),  # not alice's identity key
        boxes=BoxCache(alice.session_key),
        sender="alice",
        recipients=[
            Recipient(name="bob", identity_key=bob.identity.public, session_key=bob.session_key.public, counter=1)
        ],
        body="forged",
        msg_id="forged",
        sent_at=0,
    )["bob"]
    assert kinds(room.inject("bob", Deliver(sender="alice", id="x", ct=ct))) == ["Warning:bad_signature"]


def test_garbage_inside_a_genuine_box_is_malformed(room: SessionPair) -> None:
    box = BoxCache(room["alice"].session_key).box_for(room["bob"].session_key.public)
    for inner in [b"", b"\xc1", msgpack.packb([b"x", 1]), msgpack.packb([b"x", 0]), msgpack.packb({"a": 1})]:
        ct = bytes(box.encrypt(pad(inner)))
        assert kinds(room.inject("bob", Deliver(sender="alice", id="x", ct=ct))) == ["Warning:malformed_message"]


def test_ack_for_an_unknown_id_is_a_protocol_warning(room: SessionPair) -> None:
    produced = room.inject("alice", Ack(id="never-sent", delivered=("bob",), missing=()))
    assert kinds(produced) == ["Warning:protocol_error"]


def test_duplicated_ack_is_reported_once_then_refused(room: SessionPair) -> None:
    room.intercept("alice", lambda f: [f, f] if isinstance(f, Ack) else [f])
    msg_id = room["alice"].send_message("hi", room.now)
    produced = room.pump()
    assert kinds(produced["alice"]) == ["Delivery", "Warning:protocol_error"]
    assert produced["alice"][0].msg_id == msg_id


def test_ack_omitting_a_recipient_lists_it_as_missing(room: SessionPair) -> None:
    room.intercept(
        "alice", lambda f: [dataclasses.replace(f, delivered=("bob",), missing=())] if isinstance(f, Ack) else [f]
    )
    msg_id = room["alice"].send_message("hi all", room.now)
    produced = room.pump()
    assert produced["alice"] == [ev.Delivery(msg_id=msg_id, delivered=("bob",), missing=("carol",))]


def test_ack_cannot_claim_delivery_to_someone_we_did_not_address(room: SessionPair) -> None:
    room.intercept(
        "alice",
        lambda f: [dataclasses.replace(f, delivered=("carol", "mallory"), missing=())] if isinstance(f, Ack) else [f],
    )
    msg_id = room["alice"].send_message("just bob", room.now, to=["bob"])
    produced = room.pump()
    warning, delivery = produced["alice"]
    assert delivery == ev.Delivery(msg_id=msg_id, delivered=(), missing=("bob",))
    # Naming people we never sent to is a lie about someone: said, not just ignored.
    assert isinstance(warning, ev.Warning) and warning.kind is WarningKind.PROTOCOL_ERROR
    assert "carol, to whom we did not send it" in warning.detail and "mallory" in warning.detail


@pytest.mark.parametrize(
    ("delivered", "missing", "said"),
    [
        (("bob", "carol"), ("bob",), "listed bob as both delivered and not delivered"),
        (("bob", "bob", "carol"), (), "listed bob more than once"),
        (("bob", "carol"), ("carol", "carol"), "listed carol as both delivered and not delivered"),
    ],
)
def test_a_contradictory_ack_is_a_warning_and_its_names_count_as_not_delivered(
    room: SessionPair, delivered: tuple[str, ...], missing: tuple[str, ...], said: str
) -> None:
    room.intercept(
        "alice", lambda f: [dataclasses.replace(f, delivered=delivered, missing=missing)] if isinstance(f, Ack) else [f]
    )
    msg_id = room["alice"].send_message("hi all", room.now)
    warning, delivery = room.pump()["alice"]
    assert isinstance(warning, ev.Warning) and warning.kind is WarningKind.PROTOCOL_ERROR and said in warning.detail
    doubtful = {n for n in ("bob", "carol") if n in missing or delivered.count(n) > 1 or missing.count(n) > 1}
    assert delivery == ev.Delivery(
        msg_id=msg_id,
        delivered=tuple(n for n in ("bob", "carol") if n not in doubtful),
        missing=tuple(n for n in ("bob", "carol") if n in doubtful),
    )


def test_the_relays_reason_for_a_missing_name_is_reported_and_one_for_anyone_else_is_not(room: SessionPair) -> None:
    # A cluster's relay gives a reason for a recipient on another node it could not reach.
    reasons = {"carol": "no_report", "bob": "refused", "zed": "cluster_down"}
    room.intercept(
        "alice",
        lambda f: (
            [dataclasses.replace(f, delivered=("bob",), missing=("carol",), reasons=reasons)]
            if isinstance(f, Ack)
            else [f]
        ),
    )
    msg_id = room["alice"].send_message("hi all", room.now)
    (delivery,) = room.pump()["alice"]
    # bob was delivered (a reason for him is no reason), zed was not addressed: only carol's is said.
    assert delivery == ev.Delivery(
        msg_id=msg_id, delivered=("bob",), missing=("carol",), not_delivered=(("carol", "no_report"),)
    )


def test_honest_relay_reports_a_recipient_that_left_as_missing(room: SessionPair) -> None:
    # Nothing tampered: bob leaves while alice's frame is in flight.
    room["alice"].send_message("race", room.now)
    room.hang_up("bob")
    produced = room.pump()
    assert kinds(produced["carol"]) == ["Left", "Message"]
    assert kinds(produced["alice"]) == ["Left", "Delivery"]
    assert produced["alice"][1].delivered == ("carol",)
    assert produced["alice"][1].missing == ("bob",)


def test_deliver_and_roster_changes_before_welcome_are_refused() -> None:
    pair = SessionPair()
    pair.join("bob")
    alice = pair.add("alice")
    # Challenge arrives, but the relay "forgets" the welcome and sends a deliver.
    alice.receive_data(pair.nodes["alice"].outbox.take_all(), pair.now)
    produced = pair.inject(
        "alice",
        Deliver(sender="bob", id="early", ct=b"\x01" * 80),
        Left(name="bob"),
        Ack(id="x", delivered=(), missing=()),
    )
    assert kinds(produced) == ["Warning:protocol_error"] * 3
    assert alice.state is LinkState.JOINING


# --- a hostile relay lying about the roster ----------------------------------------


def forged_cert_variants(pair: SessionPair, label: str) -> dict[str, Member]:
    genuine = member_record(pair, label)
    other = IdentityKey.generate()
    return {
        # Someone else's signature over the genuine fields.
        "signed-by-other-key": dataclasses.replace(
            genuine, cert=SessionCertificate.issue(other, label, genuine.sk, genuine.issued_at).signature
        ),
        # Genuine signature, but the relay swapped in its own session key.
        "swapped-session-key": dataclasses.replace(genuine, sk=IdentityKey.generate().public[:32]),
        # Genuine signature, but the issue time changed.
        "changed-issued-at": dataclasses.replace(genuine, issued_at=genuine.issued_at + 1),
        # A valid certificate issued for another name.
        "cert-for-other-name": dataclasses.replace(
            genuine,
            cert=SessionCertificate.issue(pair.identity(label), "mallory", genuine.sk, genuine.issued_at).signature,
        ),
        "flipped-cert": dataclasses.replace(genuine, cert=flip_bit(genuine.cert, 10)),
    }


@pytest.mark.parametrize(
    "variant",
    ["signed-by-other-key", "swapped-session-key", "changed-issued-at", "cert-for-other-name", "flipped-cert"],
)
def test_welcome_member_with_bad_certificate_is_ignored(variant: str) -> None:
    pair = SessionPair()
    pair.join("alice", "bob")
    forged = forged_cert_variants(pair, "bob")[variant]

    def lie(frame: Frame) -> list[Frame]:
        if isinstance(frame, Welcome):
            roster = tuple(forged if m.name == "bob" else m for m in frame.roster)
            return [dataclasses.replace(frame, roster=roster)]
        return [frame]

    pair.add("carol")
    pair.intercept("carol", lie)
    produced = pair.pump()
    assert kinds(produced["carol"]) == ["Connected", "Warning:bad_certificate", "Roster"]
    assert produced["carol"][1].sender == "bob"
    assert produced["carol"][2].members == (member_info(pair, "alice"),)
    carol = pair["carol"]
    assert "bob" not in carol.peers
    with pytest.raises(SendError, match="not in the room"):
        carol.send_message("hi bob", pair.now, to=["bob"])
    # The room message goes to alice only, and bob's messages are not trusted.
    carol.send_message("hi room", pair.now)
    produced = pair.pump()
    assert kinds(produced["alice"]) == ["Message"]
    assert produced["alice"][0].to == ("alice",)
    assert produced["bob"] == []
    pair["bob"].send_message("hi carol", pair.now, to=["carol"])
    assert kinds(pair.pump()["carol"]) == ["Warning:unknown_sender"]


def test_joined_member_with_bad_certificate_is_ignored() -> None:
    pair = SessionPair()
    pair.join("alice")
    other = IdentityKey.generate()

    def lie(frame: Frame) -> list[Frame]:
        if isinstance(frame, Joined):
            forged = SessionCertificate.issue(other, frame.member.name, frame.member.sk, frame.member.issued_at)
            return [dataclasses.replace(frame, member=dataclasses.replace(frame.member, cert=forged.signature))]
        return [frame]

    pair.intercept("alice", lie)
    produced = pair.join("bob")
    assert kinds(produced["alice"]) == ["Warning:bad_certificate"]
    assert produced["alice"][0].sender == "bob"
    assert pair["alice"].peers == {}
    with pytest.raises(SendError):
        pair["alice"].send_message("hi bob", pair.now, to=["bob"])
    with pytest.raises(SendError, match="nobody"):
        pair["alice"].send_message("hi room", pair.now)


LOW_ORDER_KEYS = {
    "zero": bytes(32),
    "one": (1).to_bytes(32, "little"),
    "order-8": (325606250916557431795983626356110631294008115727848805560023387167927233504).to_bytes(32, "little"),
}


@pytest.mark.parametrize("key", LOW_ORDER_KEYS.values(), ids=LOW_ORDER_KEYS.keys())
def test_member_with_low_order_session_key_is_refused(key: bytes) -> None:
    pair = SessionPair()
    pair.join("alice")
    # The certificate genuinely verifies (mallory signed her own weak key), so
    # only the Box check can catch it: the shared secret would be predictable.
    mallory = IdentityKey.generate()
    weak = certified_member(mallory, "mallory", key)
    produced = pair.inject("alice", Joined(member=weak))
    assert kinds(produced) == ["Warning:bad_public_key"]
    assert produced[0].sender == "mallory"
    assert "mallory" not in pair["alice"].peers
    # Same through a welcome.
    pair.add("dave")
    pair.intercept(
        "dave", lambda f: [dataclasses.replace(f, roster=(*f.roster, weak))] if isinstance(f, Welcome) else [f]
    )
    produced = pair.pump()
    assert kinds(produced["dave"]) == ["Connected", "Warning:bad_public_key", "Roster"]
    assert produced["dave"][2].members == (member_info(pair, "alice"),)


def test_member_under_our_own_name_is_impersonation() -> None:
    pair = SessionPair()
    pair.join("alice", "bob")
    mallory = IdentityKey.generate()
    fake_alice = certified_member(mallory, "alice", IdentityKey.generate().public)
    produced = pair.inject("alice", Joined(member=fake_alice))
    assert kinds(produced) == ["Warning:impersonation"]
    assert "alice" not in pair["alice"].peers
    # In a welcome too: carol is told a second "carol" is already here.
    pair.add("carol")
    fake_carol = certified_member(mallory, "carol", IdentityKey.generate().public)
    pair.intercept(
        "carol", lambda f: [dataclasses.replace(f, roster=(fake_carol, *f.roster))] if isinstance(f, Welcome) else [f]
    )
    produced = pair.pump()
    assert kinds(produced["carol"]) == ["Connected", "Warning:impersonation", "Roster"]
    assert {m.name for m in produced["carol"][2].members} == {"alice", "bob"}
    assert "carol" not in pair["carol"].peers


def test_relay_cannot_silently_swap_a_present_members_identity_key(room: SessionPair) -> None:
    mallory = IdentityKey.generate()
    mallory_session = IdentityKey.generate().public  # any valid-looking curve point
    impostor = certified_member(mallory, "bob", bytes(x ^ 0x55 for x in mallory_session))
    produced = room.inject("alice", Joined(member=impostor))
    assert [(type(e).__name__, getattr(e, "kind", None)) for e in produced] == [("Warning", "key_changed")]
    try:
        room["alice"].send_message("for the real bob", room.now, to=["bob"])
    except SendError:
        return
    # If alice still sends, it must still be to the genuine bob's key.
    assert kinds(room.pump()["bob"]) == ["Message"]


def test_joining_a_large_room_on_a_small_frame_relay() -> None:
    pair = SessionPair(RelayConfig(max_frame=4096))
    for i in range(60):
        produced = pair.join(f"u{i}")[f"u{i}"]
        assert kinds(produced) == ["Connected", "Roster"], (i, produced)
        assert len(produced[1].members) == i


# --- a hostile relay cannot crash a client -------------------------------------------


def joined_pair() -> SessionPair:
    pair = SessionPair()
    pair.join("alice", "bob")
    return pair


def assert_sane(session: ClientSession, produced: list[ev.Event]) -> None:
    """The fuzz invariant: only events come out, never a forged message, and the
    session is closed exactly when it said so once."""
    assert all(isinstance(e, ev.Event) for e in produced)
    assert not any(isinstance(e, ev.Message | ev.Delivery) for e in produced)
    disconnects = only(produced, ev.Disconnected)
    assert len(disconnects) <= 1
    assert (session.state is LinkState.CLOSED) == (len(disconnects) == 1)


def framed(payload: bytes) -> bytes:
    return struct.pack(">I", len(payload)) + payload


NAMES = st.sampled_from(["alice", "bob", "carol", ""]) | st.text(max_size=12)
SCALARS = (
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**63), max_value=2**64 - 1)
    | NAMES
    | st.binary(max_size=96)
    | st.sampled_from([bytes(32), bytes(64), b"\x01" * 32])
)
VALUES = st.recursive(
    SCALARS,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=10), inner, max_size=5),
    max_leaves=12,
)
WIRE_FIELDS = sorted(
    {
        *("name", "roster", "member", "from", "id", "ct", "delivered", "missing", "code", "detail", "reason"),
        *("nonce", "max_frame", "max_recipients", "ik", "sk", "cert", "issued_at"),
    }
)
MEMBERS = st.fixed_dictionaries(
    {
        "name": NAMES,
        "ik": st.binary(min_size=32, max_size=32),
        "sk": st.binary(min_size=32, max_size=32),
        "cert": st.binary(min_size=64, max_size=64),
        "issued_at": st.integers(min_value=0, max_value=2**40),
    }
)
FRAME_MAPS = st.builds(
    lambda v, t, fields, extra: {**fields, **extra, "v": v, "t": t},
    st.sampled_from([1, 1, 1, 0, 2, True, "1"]),
    st.sampled_from([*RELAY_FRAMES, "hello", "send", "nope"]),
    st.dictionaries(st.sampled_from(WIRE_FIELDS), VALUES, max_size=6),
    st.fixed_dictionaries({}, optional={"member": MEMBERS, "roster": st.lists(MEMBERS, max_size=3)}),
)
HOSTILE_CHUNKS = st.one_of(
    st.binary(max_size=64),
    st.binary(max_size=64).map(framed),
    FRAME_MAPS.map(lambda m: framed(msgpack.packb(m, use_bin_type=True))),
)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.binary(max_size=256))
def test_random_bytes_after_join_never_raise(data: bytes) -> None:
    pair = joined_pair()
    alice = pair["alice"]
    produced = alice.receive_data(data, pair.now)
    assert_sane(alice, produced)


@settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(chunks=st.lists(HOSTILE_CHUNKS, min_size=1, max_size=6), byte_by_byte=st.booleans())
def test_hostile_frame_sequences_never_raise(chunks: list[bytes], byte_by_byte: bool) -> None:
    pair = joined_pair()
    alice = pair["alice"]
    stream = b"".join(chunks)
    pieces = [stream[i : i + 1] for i in range(len(stream))] if byte_by_byte else chunks
    produced: list[ev.Event] = []
    for piece in pieces:
        produced.extend(alice.receive_data(piece, pair.now))
    assert_sane(alice, produced)
    if alice.state is LinkState.CLOSED:
        assert alice.receive_data(framed(b"\x80"), pair.now) == []


def test_garbage_after_a_valid_frame() -> None:
    def one_genuine_deliver() -> tuple[SessionPair, bytes]:
        pair = joined_pair()
        captured = capture_delivers(pair, "bob", pass_on=False)
        pair["alice"].send_message("genuine", pair.now)
        pair.pump()
        pair.intercept("bob", None)
        return pair, encode(captured[0])

    # Undecodable msgpack in a well-framed frame: a warning, the stream goes on.
    pair, good = one_genuine_deliver()
    produced = pair["bob"].receive_data(good + framed(b"\xc1\xc1\xc1"), pair.now)
    assert kinds(produced) == ["Message", "Warning:protocol_error"]
    assert pair["bob"].state is LinkState.JOINED
    assert_clean_delivery(pair, "alice", ["bob"])

    # A length prefix over the limit: the valid frame still counts, then we hang up.
    pair, good = one_genuine_deliver()
    produced = pair["bob"].receive_data(good + b"\xff\xff\xff\xff garbage", pair.now)
    assert kinds(produced) == ["Message", "Disconnected"]
    assert produced[1].code == "frame_too_large"
    assert pair["bob"].state is LinkState.CLOSED

    # A partial frame after it just waits for more.
    pair, good = one_genuine_deliver()
    produced = pair["bob"].receive_data(good + b"\x00\x00", pair.now)
    assert kinds(produced) == ["Message"]
    assert pair["bob"].state is LinkState.JOINED


def test_four_gib_length_prefix_disconnects() -> None:
    pair = joined_pair()
    bob = pair["bob"]
    produced = bob.receive_data(b"\xff\xff\xff\xff", pair.now)
    assert kinds(produced) == ["Disconnected"]
    assert produced[0].code == "frame_too_large"
    assert bob.state is LinkState.CLOSED
    assert bob.receive_data(framed(b"\x80"), pair.now) == []  # closed stays closed
    assert bob.connection_lost("eof") == []


def test_zero_length_frame_disconnects() -> None:
    pair = joined_pair()
    produced = pair["bob"].receive_data(b"\x00\x00\x00\x00", pair.now)
    assert kinds(produced) == ["Disconnected"]
    assert produced[0].code == "bad_frame"


def test_name_taken_during_join_disconnects_with_the_relays_code() -> None:
    pair = SessionPair()
    pair.join("bob")
    pair.add("bob2", name="bob")
    produced = pair.pump()
    assert kinds(produced["bob2"]) == ["Disconnected"]
    assert produced["bob2"][0].code == "name_taken"
    assert pair["bob2"].state is LinkState.CLOSED
    assert produced["bob"] == []  # the real bob never heard of it
    assert pair.relay.connection_count == 1


@pytest.mark.parametrize("code", ["bad_proof", "full", "something_new"])
def test_error_frame_during_join_disconnects_with_that_code(code: str) -> None:
    pair = SessionPair()
    alice = pair.add("alice")
    alice.receive_data(pair.nodes["alice"].outbox.take_all(), pair.now)  # challenge -> hello
    produced = pair.inject("alice", Error(code=code, detail="no"))
    assert kinds(produced) == ["Disconnected"]
    assert produced[0].code == code
    assert alice.state is LinkState.CLOSED


def test_error_frame_after_join_is_only_a_warning(room: SessionPair) -> None:
    produced = room.inject("bob", Error(code="bad_field", detail="your last frame"))
    assert kinds(produced) == ["Warning:relay_error"]
    assert room["bob"].state is LinkState.JOINED
    assert_clean_delivery(room, "alice", ["bob"])


def test_welcome_under_another_name_disconnects() -> None:
    pair = SessionPair()
    pair.add("alice")
    pair.intercept("alice", lambda f: [dataclasses.replace(f, name="mallory")] if isinstance(f, Welcome) else [f])
    produced = pair.pump()
    assert kinds(produced["alice"]) == ["Disconnected"]
    assert pair["alice"].state is LinkState.CLOSED


def test_second_challenge_and_second_welcome_are_warnings(room: SessionPair) -> None:
    produced = room.inject(
        "bob",
        Challenge(nonce=b"\x00" * 32, max_frame=4096, max_recipients=1),
        Welcome(name="bob", roster=()),
    )
    assert kinds(produced) == ["Warning:protocol_error", "Warning:protocol_error"]
    assert room["bob"].max_frame == 1024 * 1024  # a late challenge changes nothing
    assert set(room["bob"].peers) == {"alice", "carol"}


def test_shutdown_disconnects_every_client_once(room: SessionPair) -> None:
    room.relay.shutdown("maintenance")
    produced = room.pump()
    for label in ("alice", "bob", "carol"):
        assert kinds(produced[label]) == ["Disconnected"]
        assert produced[label][0].code == "shutdown"
        assert "maintenance" in produced[label][0].reason
        assert room[label].state is LinkState.CLOSED
        assert room[label].connection_lost("socket closed") == []


def test_connection_lost_yields_exactly_one_disconnected(room: SessionPair) -> None:
    produced = room.hang_up("bob", "reset by peer")
    assert produced == [ev.Disconnected(reason="reset by peer")]
    assert room["bob"].connection_lost("again") == []
    assert room["bob"].receive_data(b"\x00\x00\x00\x01\x80", room.now) == []
    others = room.pump()
    assert others["alice"] == [ev.Left(name="bob")]
    assert others["carol"] == [ev.Left(name="bob")]


def test_roster_lies_about_names_and_session_keys_are_refused(room: SessionPair) -> None:
    bob = room["bob"]
    alice_record = member_record(room, "alice")
    mallory = IdentityKey.generate()
    # A case variant of a present member.
    variant = certified_member(mallory, "Alice", SessionKey.generate().public)
    # A new name carrying a present member's session key.
    cloned = certified_member(mallory, "eve", alice_record.sk)
    # A member presented with bob's own session key.
    mirrored = certified_member(mallory, "zed", bob.session_key.public)
    produced = room.inject("bob", Joined(member=variant), Joined(member=cloned), Joined(member=mirrored))
    assert kinds(produced) == ["Warning:duplicate_name", "Warning:impersonation", "Warning:impersonation"]
    assert set(bob.peers) == {"alice", "carol"}


def test_a_second_session_of_a_present_identity_key_is_not_addressed(room: SessionPair) -> None:
    # alice's own key, validly certified under a second name (a second device on a relay that does
    # not keep one session per key): the name would be addressed as another member; it is not.
    second = certified_member(room.identity("alice"), "alice2", SessionKey.generate().public)
    produced = room.inject("bob", Joined(member=second))
    assert kinds(produced) == ["Warning:impersonation"] and "identity key" in produced[0].detail
    assert set(room["bob"].peers) == {"alice", "carol"}


def test_a_name_listed_twice_in_welcome_is_blocked() -> None:
    pair = SessionPair()
    pair.join("alice", "bob")
    pair.add("carol")

    def duplicate_bob(frame: Frame) -> list[Frame]:
        if isinstance(frame, Welcome):
            fake = certified_member(IdentityKey.generate(), "bob", SessionKey.generate().public)
            return [dataclasses.replace(frame, roster=(*frame.roster, fake))]
        return [frame]

    pair.intercept("carol", duplicate_bob)
    produced = pair.pump()["carol"]
    assert kinds(produced) == ["Connected", "Warning:duplicate_name", "Roster"]
    assert "bob" not in pair["carol"].peers
    with pytest.raises(SendError, match="not in the room"):
        pair["carol"].send_message("hi bob", pair.now, to=["bob"])


def test_a_key_substituted_for_one_member_is_seen_by_the_others(room: SessionPair) -> None:
    # The relay gave alice a different identity key for carol (as a
    # man-in-the-middle would). bob sees alice's signed recipient list name
    # carol with a key that is not the carol bob knows.
    mallory = IdentityKey.generate()
    alice = room["alice"]
    alice.peers["carol"].identity_key = mallory.public
    alice.send_message("who is reading this?", room.now)
    produced = room.pump()["bob"]
    assert kinds(produced) == ["Warning:recipient_key_mismatch", "Message"]
    assert "carol" in produced[0].detail


# --- a repeated announcement is never silent -------------------------------------------------


@pytest.mark.parametrize(
    ("change", "said"),
    [
        (lambda m: dataclasses.replace(m, cert=flip_bit(m.cert)), WarningKind.BAD_CERTIFICATE),
        (lambda m: m, WarningKind.PROTOCOL_ERROR),  # the very same record, without a `left` first
    ],
    ids=["bad-certificate", "identical"],
)
def test_a_repeated_joined_for_the_present_session_is_a_warning(
    room: SessionPair, change: object, said: WarningKind
) -> None:
    repeated = change(member_record(room, "bob"))  # type: ignore[operator]
    events = room.inject("alice", Joined(member=repeated))
    assert [(type(e).__name__, getattr(e, "kind", None)) for e in events] == [("Warning", said)]
    assert events[0].sender == "bob"
    # The session already verified stays, counters and all: bob's next message opens cleanly.
    assert_clean_delivery(room, "bob", ["alice"])
