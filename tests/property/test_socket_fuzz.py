"""Fuzzing a real client on a real socket through the hostile relay.

The same valid-shaped hostile frames as ``test_client_frames`` (plus raw
bytes), but sent by the tampering proxy to a real ``RelayConnection`` whose
reader thread runs the session: whole, cut at random offsets, or one byte
per ``send``. Then the proxy ends the stream, and the client must have
turned every byte into events (no thread died), shown no forged text as
trusted, and ended with exactly one ``Disconnected``.

Each example is a fresh client joining the same room, where bob and carol are
real clients whose keys the fuzzer uses to seal genuine messages.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterator

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from susurro.client import events as ev
from tests.helpers.frame_strategies import Party, Target, check_invariants, cut, splitting, stream_items
from tests.helpers.hostile_relay import HostileRoom, Raw

pytestmark = pytest.mark.timeout(120)

#: What ends one session: ``Disconnected``, or ``Reconnecting`` once the connection reconnects by itself.
SESSION_END = tuple(t for t in (ev.Disconnected, getattr(ev, "Reconnecting", None)) if isinstance(t, type))


@pytest.fixture
def room() -> Iterator[HostileRoom]:
    hostile = HostileRoom()
    try:
        hostile.join("bob")
        hostile.join("carol")
        yield hostile
        hostile.check()
    finally:
        hostile.close()


def party(room: HostileRoom, label: str, seen_by: str) -> Party:
    """A real client as the fuzzer speaks for it: its keys, and the certificate time others hold."""
    client = room.clients[label]
    issued_at = room.clients[seen_by].session.peers[client.name].issued_at
    return Party(client.name, client.identity, client.session.session_key, issued_at)


@settings(
    max_examples=25,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(data=st.data())
def test_hostile_streams_on_a_real_socket_only_ever_yield_events(room: HostileRoom, data: st.DataObject) -> None:
    victim = room.join(f"victim{next(COUNTER)}", others_see_it=False)
    peers = [party(room, "bob", "carol"), party(room, "carol", "bob")]
    victim.log.clear()
    items = data.draw(st.lists(stream_items(Target.of(victim.session), peers), min_size=1, max_size=8))
    stream = b"".join(items)
    how = data.draw(splitting(len(stream)))
    room.proxy.inject(victim.label, *(Raw(piece) for piece in cut(stream, how)))
    room.proxy.end_stream(victim.label)
    end = victim.wait_for(lambda e: isinstance(e, SESSION_END), what="the end of the session")
    victim.connection.close()  # no reconnect: this example is over
    victim.gone = True
    session_events = victim.log[: victim.log.index(end) + 1]
    check_invariants(session_events)
    room.check()


COUNTER = itertools.count()
