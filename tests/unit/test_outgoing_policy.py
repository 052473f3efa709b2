"""The connection's decisions without a socket: held messages, ack timeouts, the reconnect policy, the link table."""

from __future__ import annotations

import pytest

from susurro.client import events as ev
from susurro.client.errors import SendError
from susurro.client.events import Ending, WarningKind
from susurro.client.link import TRANSITIONS, Link, LinkError, LinkEvent, LinkState
from susurro.client.outgoing import PRESENCE_WAIT, Outgoing
from susurro.client.reconnect import (
    NAME_TAKEN_RETRIES,
    RELAY_DEAD_AFTER,
    RELAY_PING_AFTER,
    Backoff,
    Decision,
    Liveness,
    ReconnectPolicy,
    RelayWatch,
)
from susurro.protocol import ErrorCode

# --- held messages ---------------------------------------------------------------------


def test_a_message_typed_while_reconnecting_is_held_and_said_so() -> None:
    outgoing = Outgoing(max_held=2)
    msg_id, notice = outgoing.hold("hola", None, ["bob", "carol"])
    assert notice.kind is WarningKind.MESSAGE_HELD and msg_id in notice.detail
    assert len(outgoing.held) == 1


def test_held_messages_are_refused_when_full_or_empty_never_dropped() -> None:
    outgoing = Outgoing(max_held=1)
    with pytest.raises(SendError, match="empty"):
        outgoing.hold("   ", None, ["bob"])
    outgoing.hold("one", None, ["bob"])
    with pytest.raises(SendError, match="1 messages are already waiting"):
        outgoing.hold("two", None, ["bob"])
    assert len(outgoing.held) == 1


def test_held_messages_are_sent_in_order_with_the_ids_shown_and_watched_for_acks() -> None:
    outgoing = Outgoing(ack_timeout=30.0)
    first, _ = outgoing.hold("one", None, ["bob"])
    second, _ = outgoing.hold("two", ["carol", "carol"], ["bob"])
    sent: list[tuple[str, list[str] | None, str]] = []

    def send(text: str, to: list[str] | None, msg_id: str) -> str:
        sent.append((text, to, msg_id))
        return msg_id

    assert outgoing.resend(send, now=100.0, present=["bob", "carol"]) == []
    assert sent == [("one", None, first), ("two", ["carol", "carol"], second)]
    assert len(outgoing.held) == 0 and len(outgoing.acks) == 2


def test_a_held_message_that_cannot_go_after_the_reconnect_is_reported_missing_for_whom_it_was_typed() -> None:
    outgoing = Outgoing()
    msg_id, _ = outgoing.hold("psst", ["bob"], ["bob", "carol"])

    def refuse(text: str, to: list[str] | None, msg_id: str) -> str:
        raise SendError("bob is not in the room")

    assert outgoing.resend(refuse, now=0.0, present=[]) == []  # rejoined: bob is not back, it waits
    produced = outgoing.resend(refuse, now=PRESENCE_WAIT, present=[])  # he never came back
    assert [type(e) for e in produced] == [ev.Warning, ev.Delivery]
    warning, delivery = produced
    assert isinstance(warning, ev.Warning) and warning.kind is WarningKind.NOT_SENT
    assert "bob is not in the room" in warning.detail
    assert delivery == ev.Delivery(msg_id=msg_id, delivered=(), missing=("bob",))
    assert len(outgoing.acks) == 0


def test_a_held_room_message_counts_as_missing_for_members_who_did_not_come_back() -> None:
    outgoing = Outgoing()
    msg_id, _ = outgoing.hold("hi all", None, ["bob", "carol"])
    outgoing.resend(lambda text, to, msg_id: msg_id, now=0.0, present=["bob"])
    assert len(outgoing.held) == 1, "carol is not back yet: it waits"
    outgoing.resend(lambda text, to, msg_id: msg_id, now=PRESENCE_WAIT, present=["bob"])
    report = outgoing.delivered(ev.Delivery(msg_id=msg_id, delivered=("bob",), missing=()))
    assert report.missing == ("carol",) and report.delivered == ("bob",)
    assert len(outgoing.acks) == 0  # settled


def test_giving_up_reports_every_held_message_as_never_sent() -> None:
    outgoing = Outgoing()
    ids = [outgoing.hold(text, None, ["bob"])[0] for text in ("a", "b")]
    produced = outgoing.give_up("the relay shut down")
    deliveries = [e for e in produced if isinstance(e, ev.Delivery)]
    assert [d.msg_id for d in deliveries] == ids and all(d.missing == ("bob",) for d in deliveries)
    assert all("never sent: the relay shut down" in e.detail for e in produced if isinstance(e, ev.Warning))
    assert outgoing.give_up("again") == []


def test_held_lines_wait_for_everyone_they_were_typed_for_then_go_in_order() -> None:
    """After a relay restart members come back one by one: a held line waits for all of them."""
    outgoing = Outgoing()
    first, _ = outgoing.hold("hola a todos", None, ["bob", "carol"])
    second, _ = outgoing.hold("solo bob", ["bob"], ["bob", "carol"])
    sent: list[str] = []

    def send(text: str, to: list[str] | None, msg_id: str) -> str:
        sent.append(msg_id)
        return msg_id

    assert outgoing.resend(send, now=10.0, present=[]) == []  # rejoined, nobody back yet
    assert outgoing.resend(send, now=12.0, present=["bob"]) == []
    assert sent == [], "the second line (bob is back) does not overtake the first (carol is not)"
    assert outgoing.waiting
    outgoing.resend(send, now=14.0, present=["bob", "carol"])
    assert sent == [first, second] and not outgoing.waiting


def test_a_held_line_stops_waiting_after_the_presence_wait() -> None:
    outgoing = Outgoing()
    msg_id, _ = outgoing.hold("hola", None, ["bob", "gone"])
    sent: list[str] = []
    outgoing.resend(lambda text, to, i: sent.append(i) or i, now=100.0, present=["bob"])
    outgoing.resend(lambda text, to, i: sent.append(i) or i, now=100.0 + PRESENCE_WAIT - 1, present=["bob"])
    assert sent == []
    outgoing.resend(lambda text, to, i: sent.append(i) or i, now=100.0 + PRESENCE_WAIT, present=["bob"])
    assert sent == [msg_id]
    report = outgoing.delivered(ev.Delivery(msg_id=msg_id, delivered=("bob",), missing=()))
    assert report.missing == ("gone",), "whoever never came back is told as not delivered"


def test_the_room_as_it_was_when_the_session_ended_is_remembered_for_held_lines() -> None:
    outgoing = Outgoing()
    outgoing.session_ended(["bob", "carol"])
    outgoing.session_ended([])  # a failed attempt's fresh session knew nobody: keep the room as it was
    assert outgoing.last_present == ("bob", "carol")


# --- ack timeouts --------------------------------------------------------------------


def test_a_late_ack_is_reported_once_as_delivery_unknown_and_an_answered_one_never() -> None:
    outgoing = Outgoing(ack_timeout=30.0)
    outgoing.sent("early", now=0.0)
    outgoing.sent("answered", now=1.0)
    outgoing.sent("late", now=5.0)
    outgoing.delivered(ev.Delivery(msg_id="answered", delivered=("bob",), missing=()))
    assert outgoing.overdue(now=29.9) == []
    first = [w for w in outgoing.overdue(now=30.0) if isinstance(w, ev.Warning)]
    assert [w.kind for w in first] == [WarningKind.DELIVERY_UNKNOWN] and "early" in first[0].detail
    assert len(outgoing.overdue(now=35.0)) == 1  # "late"
    assert outgoing.overdue(now=1000.0) == []


def test_the_end_of_a_session_stops_the_ack_timers() -> None:
    outgoing = Outgoing(ack_timeout=1.0)
    outgoing.sent("x", now=0.0)
    outgoing.session_ended(["bob"])  # the session itself reports what was unacknowledged
    assert outgoing.overdue(now=100.0) == []


# --- reconnect policy ------------------------------------------------------------------


def policy(enabled: bool = True) -> ReconnectPolicy:
    return ReconnectPolicy(enabled=enabled, backoff=Backoff(rng=lambda: 1.0))


def test_a_lost_connection_is_retried_with_growing_waits_and_the_link_says_reconnecting() -> None:
    p = policy()
    p.joined()
    assert p.ended(None, closing=False) is Decision.RETRY
    assert p.link.state is LinkState.RECONNECTING and p.between_sessions
    assert [p.next_attempt("lost").delay for _ in range(3)] == [1, 2, 4]
    p.connected_again()
    assert p.link.state is LinkState.CONNECTING and not p.between_sessions
    p.joined()
    assert p.ended(None, closing=False) is Decision.RETRY
    assert p.next_attempt("lost again").delay == 1  # a join starts the waits over
    assert p.next_attempt("x").attempt == 2


def test_an_announced_shutdown_is_a_restart_to_ride_through() -> None:
    p = policy()
    p.joined()
    assert p.ended(Ending.SHUTDOWN, closing=False) is Decision.RETRY
    assert p.will_retry(closing=False) and p.may_hold(LinkState.RECONNECTING, closing=False)


def test_refusals_of_our_name_or_keys_end_the_link_for_good() -> None:
    for code in (ErrorCode.BAD_NAME, ErrorCode.BAD_CERT, ErrorCode.BAD_PROOF):
        p = policy()
        p.joined()
        assert p.ended(code, closing=False) is Decision.GIVE_UP
        assert p.link.state is LinkState.CLOSED and not p.will_retry(closing=False)


def test_name_taken_after_a_reconnect_is_retried_for_a_while_then_believed() -> None:
    p = policy()
    p.joined()
    for _ in range(NAME_TAKEN_RETRIES):
        assert p.ended(ErrorCode.NAME_TAKEN, closing=False) is Decision.RETRY
        p.connected_again()
    assert p.ended(ErrorCode.NAME_TAKEN, closing=False) is Decision.GIVE_UP


def test_name_taken_on_the_first_join_is_final() -> None:
    assert policy().ended(ErrorCode.NAME_TAKEN, closing=False) is Decision.GIVE_UP


def test_closing_by_the_user_is_neither_retried_nor_announced() -> None:
    p = policy()
    p.joined()
    assert p.ended(None, closing=True) is Decision.CLOSED
    assert p.link.state is LinkState.CLOSED


def test_closing_while_waiting_to_reconnect_closes_the_link() -> None:
    p = policy()
    p.joined()
    p.ended(None, closing=False)
    p.close()
    assert p.link.state is LinkState.CLOSED
    p.close()  # twice is harmless


def test_without_reconnect_every_ending_is_final() -> None:
    p = policy(enabled=False)
    p.joined()
    assert p.ended(None, closing=False) is Decision.GIVE_UP


def test_messages_are_held_only_after_a_join_and_while_a_retry_is_coming() -> None:
    p = policy()
    assert not p.may_hold(LinkState.CONNECTING, closing=False)  # never joined: refuse, say why
    p.joined()
    assert not p.may_hold(LinkState.JOINED, closing=False)  # joined: send at once
    assert p.may_hold(LinkState.CLOSED, closing=False)
    assert not p.may_hold(LinkState.CLOSED, closing=True)
    p.ended(ErrorCode.BAD_NAME, closing=False)
    assert not p.may_hold(LinkState.CLOSED, closing=False)


def test_a_broken_stream_is_announced_before_the_retry_and_a_plain_loss_is_not() -> None:
    p = policy()
    assert [w.kind for w in p.announce(ErrorCode.BAD_FRAME, "garbage") if isinstance(w, ev.Warning)] == [
        WarningKind.PROTOCOL_ERROR
    ]
    assert p.announce(None, "lost") == []


def test_a_quiet_relay_is_pinged_once_then_presumed_gone() -> None:
    watch = RelayWatch(now=0.0)
    assert watch.check(RELAY_PING_AFTER - 1) is Liveness.ALIVE
    assert watch.check(RELAY_PING_AFTER) is Liveness.PING
    assert watch.check(RELAY_PING_AFTER + 1) is Liveness.ALIVE  # asked once per silence
    watch.heard(RELAY_PING_AFTER + 2)
    assert watch.check(2 * RELAY_PING_AFTER + 2) is Liveness.PING
    assert watch.check(RELAY_PING_AFTER + 2 + RELAY_DEAD_AFTER) is Liveness.GONE


# --- the link table ---------------------------------------------------------------------


def test_one_session_goes_connecting_joining_joined_closed() -> None:
    link = Link()
    assert link.advance(LinkEvent.CHALLENGE) is LinkState.JOINING
    assert link.advance(LinkEvent.WELCOME) is LinkState.JOINED
    assert link.advance(LinkEvent.END) is LinkState.CLOSED


@pytest.mark.parametrize("state", list(LinkState))
@pytest.mark.parametrize("event", list(LinkEvent))
def test_every_step_not_in_the_table_is_refused(state: LinkState, event: LinkEvent) -> None:
    link = Link(state)
    if (state, event) in TRANSITIONS:
        assert link.advance(event) is TRANSITIONS[state, event]
    else:
        with pytest.raises(LinkError):
            link.advance(event)
        assert link.state is state


def test_closed_is_final() -> None:
    assert not any(state is LinkState.CLOSED for state, _ in TRANSITIONS)
