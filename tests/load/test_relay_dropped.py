"""What the relay tells a sender when it throws away copies it had acked as queued.

The relay's ``ack`` means "queued". A recipient evicted as a slow reader, or
whose socket fails, loses what was still in its queue; the relay then sends
each sender a ``dropped`` frame naming their messages that never left, so no
copy acked as queued is lost without its sender being told. Real relay, real
sockets; counts, not times.
"""

from __future__ import annotations

import secrets
from collections.abc import Callable
from typing import Any

from susurro.protocol import Ack, Deliver, Dropped, DropReason, Frame, Joined
from susurro.relay import RelayServer
from tests.helpers.hostile_client import Closed, HostileClient, connect
from tests.helpers.system import WAIT

Factory = Callable[..., RelayServer]

#: Enough bytes per copy to fill the kernel's buffers in a few dozen messages.
COPY_BYTES = 200 * 1024
#: Sends before giving up on an eviction (the buffers hold a few MB at most).
MAX_SENDS = 200


def _read_all(client: HostileClient) -> list[Frame]:
    """Every whole frame the relay managed to hand this socket, up to its end (each read bounded)."""
    frames: list[Frame] = []
    while True:
        try:
            frames.append(client.recv_frame(timeout=WAIT))
        except Closed:
            return frames


def test_copies_acked_as_queued_for_an_evicted_reader_were_read_or_are_named_to_their_sender(
    relay_factory: Factory, member: Any, hostile_clients: list[HostileClient]
) -> None:
    # A generous flood allowance: this test is about the outbox, not pacing.
    server = relay_factory(outbox_bytes=256 * 1024, rate_burst=MAX_SENDS, rate_per_second=1000)
    alice = member(server, "alice")
    sloth = connect(server, rcvbuf=4096)  # joins, then never reads
    hostile_clients.append(sloth)
    sloth.join("sloth")
    alice.expect_frame(Joined)
    acked: list[str] = []  # ids the relay said it queued for sloth, in order
    dropped: list[Dropped] = []
    evicted = False
    sent = 0
    while not evicted:
        assert sent < MAX_SENDS, "sloth was never evicted"
        alice.send_message(f"m{sent:03d}", {"sloth": secrets.token_bytes(COPY_BYTES)})
        sent += 1
        ack = alice.expect_frame(Ack)
        assert isinstance(ack, Ack)
        if "sloth" in ack.delivered:
            acked.append(ack.id)
        evicted = "sloth" in ack.missing
    while not dropped:
        frame = alice.recv_frame(timeout=WAIT)
        if isinstance(frame, Dropped):
            dropped.append(frame)
    notice = dropped[0]
    assert notice.name == "sloth" and notice.reason == DropReason.SLOW_READER.value
    read = {f.id for f in _read_all(sloth) if isinstance(f, Deliver)}
    named = set(notice.ids)
    assert named, "copies were still queued when sloth was evicted"
    assert named <= set(acked), "only copies the relay had acked as queued are named"
    lost_unsaid = [msg_id for msg_id in acked if msg_id not in read and msg_id not in named]
    assert not lost_unsaid, f"acked as queued, never read by sloth, and not named to alice: {lost_unsaid}"
    # The queue's tail, in order (counted per flush: a copy in a flush the kernel took only in
    # part is named even if sloth read it whole, and the recipient drops such a resend by id).
    assert list(notice.ids) == [msg_id for msg_id in acked if msg_id in named]
